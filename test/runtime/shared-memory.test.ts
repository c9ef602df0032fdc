// Typed arrays over a SharedArrayBuffer (what a worker pool or WebAssembly threads hand over) are
// valid inputs everywhere host arrays are taken: GpuKernel.run, runWgslBackward, and an emitted
// module's dispatch and backward. Dawn's writeBuffer takes no shared memory ("no overload matched
// for writeBuffer"), so each must give the same numbers as for the same data in an ArrayBuffer.
import { describe, expect, it } from 'vitest';
import { compileBackward } from '../../src/backward.js';
import { compile } from '../../src/compile.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { runWgslBackward } from '../../src/runtime/backward-webgpu.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { createKernel, getDevice } from '../../src/runtime/webgpu.js';
import { importTs } from '../emit-ts/support.js';

const source = 'attention c() { mask causal }';
const [B, H, Hkv, Nq, Nk, D] = [1, 2, 1, 5, 7, 16];
const sizes = { B, H, Hkv, Nq, Nk };

/** The same values in a Float32Array over a SharedArrayBuffer, at an element offset of 1. */
function shared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(4 * (a.length + 1)), 4, a.length);
  s.set(a);
  return s;
}

const data = () => ({
  q: randomNormal(B * H * Nq * D, rng(1)),
  k: randomNormal(B * Hkv * Nk * D, rng(2)),
  v: randomNormal(B * Hkv * Nk * D, rng(3)),
});

interface Module {
  createKernel(device: GPUDevice): Promise<{
    dispatch(args: object): Promise<{ out: Float32Array; lse: Float32Array }>;
    destroy(): void;
  }>;
  backward(
    device: GPUDevice,
    args: object,
  ): Promise<{ dq: Float32Array; dk: Float32Array; dv: Float32Array }>;
}

describe('inputs over a SharedArrayBuffer', () => {
  it('GpuKernel.run and runWgslBackward take them, with the same results', async () => {
    const device = await getDevice();
    const kernel = await createKernel(device, compile(source, { target: 'wgsl', headDim: D }).artifact);
    const { q, k, v } = data();
    const want = await kernel.run({ q, k, v, ...sizes });
    const got = await kernel.run({ q: shared(q), k: shared(k), v: shared(v), ...sizes });
    expect([got.out, got.lse]).toEqual([want.out, want.lse]);
    kernel.destroy();

    const { backward } = compileBackward(source, { headDim: D });
    const dout = randomNormal(B * H * Nq * D, rng(4));
    const base = { ...sizes, out: want.out, lse: want.lse! };
    const plain = await runWgslBackward(device, backward, { ...base, q, k, v, dout });
    const viaShared = await runWgslBackward(device, backward, {
      ...base,
      ...{ q: shared(q), k: shared(k), v: shared(v), dout: shared(dout) },
    });
    expect([viaShared.dq, viaShared.dk, viaShared.dv]).toEqual([plain.dq, plain.dk, plain.dv]);
  }, 120_000);

  it("an emitted module's dispatch and backward take them, with the same results", async () => {
    const device = await getDevice();
    const c = compileBackward(source, { headDim: D });
    const mod = await importTs<Module>(
      'c_shared',
      emitKernelModule(c.artifact, { backward: c.backward }).files['c.ts']!,
    );
    const kernel = await mod.createKernel(device);
    const { q, k, v } = data();
    const want = await kernel.dispatch({ q, k, v, sizes });
    const got = await kernel.dispatch({ q: shared(q), k: shared(k), v: shared(v), sizes });
    expect([got.out, got.lse]).toEqual([want.out, want.lse]);
    kernel.destroy();

    const dout = randomNormal(B * H * Nq * D, rng(4));
    const plain = await mod.backward(device, { q, k, v, out: want.out, lse: want.lse, dout, sizes });
    const viaShared = await mod.backward(device, {
      ...{ q: shared(q), k: shared(k), v: shared(v), out: shared(want.out), lse: shared(want.lse) },
      ...{ dout: shared(dout), sizes },
    });
    expect([viaShared.dq, viaShared.dk, viaShared.dv]).toEqual([plain.dq, plain.dk, plain.dv]);
  }, 120_000);
});
