// createKernel(...).run names a bad arguments object instead of failing with a TypeError, and
// refuses wrapped positions before anything reaches the GPU (issue #9 items 3, 13). WebGPU.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { InputError } from '../../src/runtime/validate.js';
import { createKernel, getDevice, type RunInputs } from '../../src/runtime/webgpu.js';

describe('GpuKernel.run arguments', () => {
  it('a missing or non-object inputs argument is an InputError naming it', async () => {
    const artifact = compile('attention c() { mask causal }', { target: 'wgsl', headDim: 16 }).artifact;
    const kernel = await createKernel(await getDevice(), artifact);
    for (const bad of [null, undefined, 3, [1]]) {
      await expect(kernel.run(bad as unknown as RunInputs)).rejects.toThrow(
        /^run\(inputs\): expected an object \{ q, k, v, B, H, Hkv, Nq, Nk, \.\.\. \}, got /,
      );
    }
    const n = 8 * 16;
    const wrapped = kernel.run({
      ...{ q: new Float32Array(n), k: new Float32Array(n), v: new Float32Array(n) },
      ...{ B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8, qOffset: 2147483644, kOffset: 2147483640 },
    });
    await expect(wrapped).rejects.toBeInstanceOf(InputError);
    await expect(wrapped).rejects.toThrow(/^qOffset: query positions \[2147483644, 2147483651\] leave int32/);
    // A grid past the device's per-dimension limit is an input problem, raised before any upload.
    const B = (await getDevice()).limits.maxComputeWorkgroupsPerDimension + 1;
    const big = kernel.run({
      ...{ q: new Float32Array(B * 16), k: new Float32Array(B * 16), v: new Float32Array(B * 16) },
      ...{ B, H: 1, Hkv: 1, Nq: 1, Nk: 1 },
    });
    await expect(big).rejects.toBeInstanceOf(InputError);
    await expect(big).rejects.toThrow(
      `attention: grid [1, 1, ${B}] exceeds ${B - 1} workgroups per dimension`,
    );
    kernel.destroy();
  });
});
