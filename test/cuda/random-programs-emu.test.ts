// Random DSL programs on the CUDA SIMT engine, executed by the CPU emulator (emu.ts) against the
// dense float64 reference — the CUDA twin of property.test.ts's WGSL run. Before it, CUDA saw
// random programs only through wrap-emu's int arithmetic: the hand kernels of emulate.test.ts and
// the stdlib cover the renderer's usual paths, not arbitrary masks × score modifiers × tails ×
// offsets × GQA × head dims × storage dtypes × tile shapes. Each run builds one emulation (g++),
// so CI runs few (ATTNC_CUDA_EMU_RUNS raises it; round 12's fuzz ran 172 programs clean).
import fc from 'fast-check';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import { arbProgram } from '../support/arbitraries.js';
import { buildEmulation } from './emu.js';
import { runCase, type Case } from './emu-case.js';
import { render, scratchDir } from './support.js';

const runs = Number(process.env.ATTNC_CUDA_EMU_RUNS ?? 10);

const arbCase: fc.Arbitrary<Case> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    ratio: fc.constantFrom(1, 2, 4),
    Nq: fc.integer({ min: 1, max: 48 }),
    Nk: fc.integer({ min: 0, max: 64 }),
    qOffset: fc.option(fc.integer({ min: -20, max: 80 }), { nil: undefined }),
    kOffset: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  })
  .map(({ ratio, ...s }) => ({ label: JSON.stringify(s), ...s, H: s.Hkv * ratio }));

/** The SIMT tile's shape: `threads = blockQ · tpr / rows` (simt-tile.ts's rule), tpr ≤ 2^tprLog. */
const arbTile = fc.record({
  blockQ: fc.constantFrom(4, 8, 16, 32),
  blockK: fc.constantFrom(8, 16, 32),
  rows: fc.constantFrom(1, 2, 4),
  tprLog: fc.integer({ min: 0, max: 5 }),
});

/** The largest power of two dividing n (n > 0). */
const twos = (n: number): number => n & -n;

/** A schedule the SIMT rule accepts for head dims D and Dv: tpr a power of two dividing both. */
function simtTile(
  t: { blockQ: number; blockK: number; rows: number; tprLog: number },
  D: number,
  Dv: number,
) {
  const tpr = Math.min(2 ** t.tprLog, twos(D), twos(Dv));
  return { blockQ: t.blockQ, blockK: t.blockK, threads: (t.blockQ * tpr) / t.rows };
}

describe('cuda simt: random programs executed on the CPU agree with the reference', () => {
  const dir = scratchDir('random-emu');
  let count = 0;
  it(`${runs} random programs × dtypes × head dims × tiles`, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram({ extended: true }),
        fc.constantFrom('f32', 'bf16', 'f16'),
        fc.constantFrom(3, 8, 16, 20, 33),
        fc.option(fc.constantFrom(1, 8, 24), { nil: undefined }),
        arbTile,
        fc.array(arbCase, { minLength: 1, maxLength: 2 }),
        fc.integer({ min: 0, max: 1e6 }),
        async (decl, dtype, D, Dv, tile, cases, seed) => {
          const source = printDecl({ ...decl, name: `rnd${count++}` });
          const options = { target: 'cuda' as const, headDim: D, valueDim: Dv ?? D, dtype };
          const schedule = { engine: 'simt' as const, ...simtTile(tile, D, Dv ?? D) };
          const { kernel } = compile(source, { ...options, schedule });
          const artifact = render(kernel);
          const exe = await buildEmulation(dir, artifact, kernel);
          for (const [i, c] of cases.entries()) {
            try {
              await runCase(exe, join(dir, kernel.name), artifact, kernel, c, seed + i);
            } catch (e) {
              const where = `${dtype} D ${D} Dv ${Dv ?? D} ${JSON.stringify(kernel.schedule)} seed ${seed + i}`;
              throw new Error(`${source}\n${where}\ncase ${c.label}\n${(e as Error).message}`);
            }
          }
        },
      ),
      { numRuns: runs },
    );
  }, 900_000);
});
