// An emitted module's backward() against hostile arguments, which the forward's dispatch already
// refuses: a misspelt key (qoffset, dOut) ran with the default offsets or ignored the value, an
// i32 param of 3.5 or 2^40 reached the uniforms truncated or wrapped, a bool param took a number,
// and a device that is none died inside with a TypeError. Each is a KernelInputError naming it.
import { beforeAll, describe, expect, it } from 'vitest';
import { compileBackward } from '../../src/backward.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { findAdapter } from '../../src/runtime/device.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { importTs } from './support.js';

interface Module {
  createKernel(device: GPUDevice): Promise<{
    dispatch(args: object): Promise<{ out: Float32Array; lse: Float32Array }>;
    destroy(): void;
  }>;
  backward(device: unknown, args: object): Promise<{ dq: Float32Array }>;
}

const source = `attention p(window: int = 4, cap: f32 = 5.0, flag: bool = false) {
  score cap * tanh(score / cap)
  mask (flag || causal) && q - k < window
}`;
const [B, H, Hkv, Nq, Nk, D] = [1, 2, 1, 5, 7, 16];
const sizes = { B, H, Hkv, Nq, Nk };
let device: GPUDevice;
let mod: Module;
let base: Record<string, unknown>;

beforeAll(async () => {
  device = await getDevice();
  const c = compileBackward(source, { headDim: D });
  mod = await importTs<Module>(
    'p_bwd_args',
    emitKernelModule(c.artifact, { backward: c.backward }).files['p.ts']!,
  );
  const q = randomNormal(B * H * Nq * D, rng(1));
  const k = randomNormal(B * Hkv * Nk * D, rng(2));
  const v = randomNormal(B * Hkv * Nk * D, rng(3));
  const kernel = await mod.createKernel(device);
  const { out, lse } = await kernel.dispatch({ q, k, v, sizes });
  kernel.destroy();
  base = { q, k, v, out, lse, dout: randomNormal(B * H * Nq * D, rng(4)), sizes };
}, 120_000);

const refuses = (args: Record<string, unknown>, message: string) =>
  expect(mod.backward(device, { ...base, ...args })).rejects.toThrow(`kernel "p": ${message}`);

describe('emitted backward() arguments', () => {
  it('the good call runs, and its params give the same gradients as the defaults they equal', async () => {
    const plain = await mod.backward(device, base);
    const given = await mod.backward(device, { ...base, params: { window: 4, cap: 5, flag: false } });
    expect(given.dq).toEqual(plain.dq);
  });

  it('names a misspelt or unknown argument instead of ignoring it', async () => {
    await refuses(
      { qoffset: 3 },
      'argument "qoffset": the kernel has no such argument (known: q, k, v, out, lse, dout, dlse, sizes, params, qOffset, kOffset, scale, kvCache)',
    );
  });

  it('checks each param against its type, as dispatch does', async () => {
    await refuses(
      { params: { window: 3.5 } },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 3.5',
    );
    await refuses(
      { params: { window: 2 ** 40 } },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 1099511627776',
    );
    await refuses({ params: { flag: 1 } }, 'param "flag" (bool): expected true or false, got number 1');
    await refuses(
      { params: { cap: 1e39 } },
      'param "cap" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got number 1e+39',
    );
  });

  it('names the storage-buffer limit of a device with the default limits (every backward binds 9+)', async () => {
    // It threw Dawn's GPUPipelineError "Invalid PipelineLayout ... is invalid due to a previous
    // error", with the real reason only in uncaptured-error logs.
    const { adapter } = (await findAdapter())!;
    const bare = await adapter.requestDevice();
    bare.pushErrorScope('validation');
    await expect(mod.backward(bare, base)).rejects.toThrow(
      /^kernel "p": backward\(\) binds \d+ storage buffers, the device allows 8 \(request a device with a higher maxStorageBuffersPerShaderStage\)$/,
    );
    expect(await bare.popErrorScope()).toBeNull();
    bare.destroy();
  });

  it('names a device that is none', async () => {
    await expect(mod.backward(undefined, base)).rejects.toThrow(
      'kernel "p": backward(device, args): expected a GPUDevice, got undefined',
    );
  });
});
