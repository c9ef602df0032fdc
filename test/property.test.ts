// The main property test: random mask/score programs and shapes are printed to source, compiled
// through the whole pipeline, executed as WGSL on WebGPU (lavapipe on CI) and compared with the
// dense float64 reference (relative error ≤ 1e-5 in f32). A failure shrinks to a minimal program
// and prints its source. ≥ 200 executed cases per run.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import { printDecl } from '../src/dsl/print.js';
import type { Schedule } from '../src/ir/kernel.js';
import { verify } from '../src/ir/verify.js';
import { createKernel, deviceLimits, getDevice } from '../src/runtime/webgpu.js';
import { arbProgram, arbShape, makeInputs, type Shape } from './support/arbitraries.js';
import { expectAgreement, runDense } from './support/oracle-cases.js';

const runs = Number(process.env.ATTNC_PROPERTY_RUNS ?? 220);
/** The coop engine gets fewer cases: the row engine's 220 keep the ≥ 200 contract. */
const coopRuns = Number(process.env.ATTNC_COOP_PROPERTY_RUNS ?? 12);
let executed = 0;
let rowRan = false;

type Engine = 'row' | 'coop';

/**
 * Tile overrides per engine: the row engine an invocation per row; the coop engine 4 or 8 lanes
 * per row (two or four rows per invocation), 16- or 32-row tiles (lavapipe compiles those in
 * seconds; some other shapes take it a minute), subgroup reductions on or off, and its tuning
 * knobs (prefetch, two K/V buffers, Q from storage, query tiles last first, fma chains, chunk spans, P
 * shuffled between lanes) by variant.
 */
function engineSchedule(engine: Engine, tile: number, variant: number): Partial<Schedule> {
  if (engine === 'row') return { blockQ: tile, threads: tile, blockK: tile };
  const t = tile === 8 ? 16 : tile;
  return {
    blockQ: t,
    threads: 2 * t,
    blockK: t,
    subgroups: variant % 2 === 0,
    coopLanes: variant >= 3 ? 8 : 4,
    coopPrefetch: variant % 3 === 1,
    coopSplitKv: variant % 3 === 2,
    coopQGlobal: variant === 2 || variant === 5,
    coopQDescending: variant === 1 || variant === 4,
    coopFma: variant >= 2,
    coopChunkSpan: variant % 2 === 0,
    // P in registers needs subgroups (check() drops it where the device has none).
    coopPShuffle: variant === 2 || variant === 4,
  };
}

async function check(
  engine: Engine,
  source: string,
  shape: Shape,
  seed: number,
  magnitude: number,
  tile: number,
  variant: number,
): Promise<void> {
  const device = await getDevice();
  const limits = deviceLimits(device);
  const schedule = engineSchedule(engine, tile, variant);
  const compiled = compile(source, {
    target: 'wgsl',
    file: 'prop.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits,
    wgslEngine: engine,
    schedule: {
      ...schedule,
      subgroups: schedule.subgroups === true && limits.subgroups === true,
      coopPShuffle: schedule.coopPShuffle === true && limits.subgroups === true,
    },
    // Every pass must leave well-formed IR.
    observe: (pass, ir) => expect(verify(ir), `IR after ${pass}`).toEqual([]),
  });
  const inputs = makeInputs(shape, seed, { magnitude });
  const params = Object.fromEntries(compiled.decl.defaults);
  const gpu = await createKernel(device, compiled.artifact);
  try {
    const { res, ref } = await runDense(gpu, compiled, shape, inputs, params);
    const where = `\n${source}\nshape ${JSON.stringify(shape)} seed ${seed} magnitude ${magnitude} tile ${tile} engine ${engine} ${JSON.stringify(compiled.artifact.schedule)}`;
    expectAgreement(res, ref, where, 1e-5, () => {
      if (engine === 'row') executed++;
    });
  } finally {
    gpu.destroy();
  }
}

describe('WGSL kernels agree with the dense reference on random programs', () => {
  afterAll(() => {
    // The run count is part of the contract (≥ 200 executed cases per CI run).
    if (runs >= 200 && rowRan) expect(executed).toBeGreaterThanOrEqual(200);
  });
  it.each([
    ['row', runs],
    ['coop', coopRuns],
  ] as const)(
    '%s engine: %i random programs × shapes',
    async (engine, numRuns) => {
      if (engine === 'row') rowRan = true;
      await fc.assert(
        fc.asyncProperty(
          arbProgram({ extended: true }),
          arbShape({ maxN: 80 }),
          fc.integer(),
          // Large magnitudes only where the scale 1/sqrt(D) is exact (D = 16, 64), so scores are
          // exact in f32 and a 1e-5 bound is meaningful for scores in the thousands.
          fc.constantFrom(1, 1, 1, 32),
          fc.constantFrom(8, 16, 32),
          fc.nat(5),
          (decl, shape, seed, magnitude, tile, variant) =>
            check(
              engine,
              printDecl(decl),
              shape,
              seed,
              shape.D === 16 || shape.D === 64 ? magnitude : 1,
              tile,
              variant,
            ),
        ),
        { numRuns },
      );
      // Each case builds a new pipeline: lavapipe compiles a shader in ~0.5–1.5 s.
    },
    1_200_000,
  );
});
