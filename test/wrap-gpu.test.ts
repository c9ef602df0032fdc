// Int32 wrap and non-finite constants, executed as WGSL on WebGPU (lavapipe on CI) against the
// dense reference: issue #9's two examples pinned, and random wrap-prone programs (constants near
// ±2^31, wrapping products) at offsets near the ends of int32. Few cases: each builds a pipeline.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import { printDecl } from '../src/dsl/print.js';
import { verify } from '../src/ir/verify.js';
import { createKernel, deviceLimits, getDevice } from '../src/runtime/webgpu.js';
import { arbProgram, arbShape, makeInputs, type Shape } from './support/arbitraries.js';
import { identitiesSource } from './support/int-identities.js';
import { expectAgreement, runDense } from './support/oracle-cases.js';

const I32_MAX = 2147483647;
const shape16: Shape = { B: 1, Hq: 2, Hkv: 1, Nq: 16, Nk: 16, D: 16, Dv: 16 };

/** Compiles `source` for WebGPU, runs it at `shape` and compares with the reference. */
async function agrees(source: string, shape: Shape, seed = 1, tile = 16): Promise<void> {
  const device = await getDevice();
  const compiled = compile(source, {
    target: 'wgsl',
    file: 'wrap.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    schedule: { blockQ: tile, threads: tile, blockK: tile },
    observe: (pass, ir) => expect(verify(ir), `IR after ${pass}`).toEqual([]),
  });
  const inputs = makeInputs(shape, seed);
  const params = Object.fromEntries(compiled.decl.defaults);
  const gpu = await createKernel(device, compiled.artifact);
  try {
    const { res, ref } = await runDense(gpu, compiled, shape, inputs, params);
    expectAgreement(res, ref, `\n${source}\nshape ${JSON.stringify(shape)} seed ${seed} tile ${tile}`, 1e-5);
  } finally {
    gpu.destroy();
  }
}

describe('WGSL under int32 wrap and with non-finite constants', () => {
  it('issue #9: q + 2147483640 > 0 at 16 x 16 (wraps to false for q >= 8)', async () => {
    await agrees('attention m() { mask q + 2147483640 > 0 }', shape16);
  }, 60_000);

  it('issue #9: 1.0 / 0.0 and int(0.0 / 0.0) fold to constants WGSL accepts', async () => {
    const source = `attention m() {
      score max(score, -1.0 / 0.0) + float(int(0.0 / 0.0)) + float(int(1.0 / 0.0)) * 1e-9
        + float(int(-1.0 / 0.0)) * 1e-9 + tanh(1.0 / 0.0) + exp(-1.0 / 0.0) + 1.0 / (1.0 / 0.0)
        + min(1.0 / 0.0, 0.5)
      mask causal && 1.0 / 0.0 > float(q) && log(0.0) < float(k) && exp(100.0) > 1.0
    }`;
    await agrees(source, shape16);
  }, 60_000);

  for (const folded of [false, true])
    it(`int edge cases (wrap, floor division, saturating int()) ${folded ? 'folded' : 'at run time'}`, async () => {
      await agrees(identitiesSource('ids', folded), shape16);
    }, 60_000);

  it('f32 arithmetic in a mask (the classifier guards it with is_finite)', async () => {
    const source = 'attention fmask(c: f32 = 0.5) { mask float(q - k) * c < 3.0 && float(k) * c >= -8.0 }';
    await agrees(source, { ...shape16, Nq: 48, Nk: 40 }, 3, 8);
  }, 60_000);

  it('a sliding window with every position near the top of int32', async () => {
    const shape = { ...shape16, Nq: 40, Nk: 56, qOffset: I32_MAX - 39, kOffset: I32_MAX - 60 };
    await agrees('attention m() { mask causal && q - k < 9 }', shape, 2, 8);
  }, 60_000);

  it('random wrap-prone programs at offsets near the ends of int32', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram({ wrap: true, depth: 2 }),
        arbShape({ maxN: 40, nearLimits: true }),
        fc.integer(),
        fc.constantFrom(8, 16),
        (decl, shape, seed, tile) => agrees(printDecl(decl), shape, seed, tile),
      ),
      { numRuns: Number(process.env.ATTNC_WRAP_GPU_RUNS ?? 2) },
    );
  }, 300_000);
});
