// Random masks with one-sided parts (test/support/sided-masks.ts) through the tensor-core CUDA
// backward on the CPU emulator (test/backward/mma-check.ts), against the float64 gradient
// reference: the dK/dV kernels read those parts from shared memory (backward-mask-hoists.ts), filled
// per key tile and per q-tile buffer, under GQA, ragged and offset positions, D 64 and 128, bf16 and
// f16, both modes. CI draws from the fixed fast-check seed (test/support/fast-check-seed.ts);
// ATTNC_BWD_MMA_PROP_RUNS sets the number of draws (each builds and runs one emulation, ~2 s).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Shape } from '../support/arbitraries.js';
import { arbSidedProgram, sidedTensors } from '../support/sided-masks.js';
import { checkMmaBackward, MMA_GRAD_TOL } from '../backward/mma-check.js';

const runs = Number(process.env.ATTNC_BWD_MMA_PROP_RUNS ?? 20);

/** Two key tiles and more (BN = 64), q-tiles of 64 or 128 rows with a tail, GQA up to 3. */
const arbShape: fc.Arbitrary<Shape> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    ratio: fc.integer({ min: 1, max: 3 }),
    Nq: fc.integer({ min: 1, max: 150 }),
    Nk: fc.integer({ min: 1, max: 150 }),
    D: fc.constantFrom(64, 128),
    qOffset: fc.option(fc.integer({ min: -8, max: 40 }), { nil: undefined }),
    kOffset: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
  })
  .map(({ ratio, ...s }) => ({ ...s, Hq: s.Hkv * ratio, Dv: s.D }));

/** Tensor gradients have no deterministic tensor-core path: such programs run the default mode. */
const refusesDeterministic = (e: unknown): boolean =>
  (e as Error)?.name === 'CompileError' && /deterministic/.test((e as Error).message);

describe('tensor-core CUDA backward (mma.sync, CPU emulation): random masks with one-sided parts', () => {
  it(`matches the gradient reference (${runs} draws)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbSidedProgram(),
        arbShape,
        fc.constantFrom('bf16', 'f16'),
        fc.boolean(),
        fc.integer(),
        async (source, sh, dtype, deterministic, seed) => {
          const opts = { dtype, deterministic, tensors: sidedTensors(sh, seed) } as const;
          let errors: Record<string, number>;
          try {
            errors = await checkMmaBackward(source, sh, seed, opts);
          } catch (e) {
            if (!deterministic || !refusesDeterministic(e)) throw e;
            errors = await checkMmaBackward(source, sh, seed, { ...opts, deterministic: false });
          }
          const where = `\n${source}${JSON.stringify(sh)} ${dtype} deterministic ${deterministic} seed ${seed}`;
          for (const [g, e] of Object.entries(errors))
            expect(e, `${g}${where}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
        },
      ),
      { numRuns: runs },
    );
  });
});
