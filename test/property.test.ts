// The main property test: random mask/score programs and shapes are printed to source, compiled
// through the whole pipeline, executed as WGSL on WebGPU (lavapipe on CI) and compared with the
// dense float64 reference (relative error ≤ 1e-5 in f32). A failure shrinks to a minimal program
// and prints its source. ≥ 200 executed cases per run.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import { printDecl } from '../src/dsl/print.js';
import { verify } from '../src/ir/verify.js';
import { declPredicates } from '../src/runtime/ast-eval.js';
import { compareArrays } from '../src/runtime/compare.js';
import { referenceAttention } from '../src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../src/runtime/webgpu.js';
import { arbProgram, arbShape, makeInputs, type Shape } from './support/arbitraries.js';

const runs = Number(process.env.ATTNC_PROPERTY_RUNS ?? 220);
let executed = 0;

async function check(
  source: string,
  shape: Shape,
  seed: number,
  magnitude: number,
  tile: number,
): Promise<void> {
  const device = await getDevice();
  const { artifact, kernel, decl } = compile(source, {
    target: 'wgsl',
    file: 'prop.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    schedule: { blockQ: tile, threads: tile, blockK: tile },
    // Every pass must leave well-formed IR.
    observe: (pass, ir) => expect(verify(ir), `IR after ${pass}`).toEqual([]),
  });
  const inputs = makeInputs(shape, seed, { magnitude });
  const params = Object.fromEntries(decl.defaults);
  const tensors = Object.fromEntries(kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc']]));
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
  const gpu = await createKernel(device, artifact);
  try {
    const res = await gpu.run({
      q: inputs.q,
      k: inputs.k,
      v: inputs.v,
      ...sizes,
      tensors: Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.data])),
      params,
      ...(shape.qOffset !== undefined ? { qOffset: shape.qOffset } : {}),
      ...(shape.kOffset !== undefined ? { kOffset: shape.kOffset } : {}),
    });
    const pred = declPredicates(decl.decl, { params, tensors, sizes: { ...sizes, D: shape.D } });
    const ref = referenceAttention(
      {
        ...inputs,
        ...sizes,
        Hq: shape.Hq,
        D: shape.D,
        Dv: shape.Dv,
        qOffset: shape.qOffset,
        kOffset: shape.kOffset,
      },
      pred,
    );
    const out = compareArrays(res.out, ref.out);
    const lse = compareArrays(res.lse!, ref.lse, 1);
    executed++;
    const where = `\n${source}\nshape ${JSON.stringify(shape)} seed ${seed} magnitude ${magnitude} tile ${tile}`;
    expect(out.nanCount, `NaN in out${where}`).toBe(0);
    expect(out.relError, `out${where}`).toBeLessThanOrEqual(1e-5);
    expect(lse.relError, `lse${where}`).toBeLessThanOrEqual(1e-5);
  } finally {
    gpu.destroy();
  }
}

describe('WGSL kernels agree with the dense reference on random programs', () => {
  afterAll(() => {
    // The run count is part of the contract (≥ 200 executed cases per CI run).
    if (runs >= 200) expect(executed).toBeGreaterThanOrEqual(200);
  });
  it(`${runs} random programs × shapes`, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram(),
        arbShape({ maxN: 80 }),
        fc.integer(),
        // Large magnitudes only where the scale 1/sqrt(D) is exact (D = 16, 64), so scores are
        // exact in f32 and a 1e-5 bound is meaningful for scores in the thousands.
        fc.constantFrom(1, 1, 1, 32),
        fc.constantFrom(8, 16, 32),
        (decl, shape, seed, magnitude, tile) =>
          check(printDecl(decl), shape, seed, shape.D === 16 || shape.D === 64 ? magnitude : 1, tile),
      ),
      { numRuns: runs },
    );
    // Each case builds a new pipeline: lavapipe compiles a shader in ~0.5–1.5 s.
  }, 1_200_000);
});
