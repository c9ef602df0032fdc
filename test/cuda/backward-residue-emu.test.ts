// The tensor-core backward's dK/dV kernel in residue-class order (codegen/cuda/backward-residue.ts)
// on the CPU emulator (backward-mma-emu.ts) against the float64 gradient reference: dilated masks
// with a param and literal d, negative d and d above the lengths, Nq ≠ Nk, ragged lengths that
// d does not divide, offsets, GQA, classes with fewer rows than a q-tile, several key tiles a
// class (more units than the plain order's key tiles), dilation beside a sliding window, the pure
// dilation (the reduced mask is `true`: only the class tails are masked), D = 128, f16 and the
// deterministic mode (dK/dV permuted, dq by the unpermuted bwd_dq); then random masks with one-
// sided parts (sided-masks.ts: the reduced mask's hoists) and a dilation conjunct, random shapes
// (ATTNC_BWD_RESIDUE_PROP_RUNS draws, default 8). Each case first checks that its bwd_dkdv really
// runs the residue order. (The fuzz target bwd-emu draws a dilation conjunct rarely: 3 in 600.)
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Shape } from '../support/arbitraries.js';
import { checkMmaBackward, MMA_GRAD_TOL } from '../backward/mma-check.js';
import type { MmaCheckOptions } from '../backward/mma-check.js';
import { arbSidedProgram, sidedTensors } from '../support/sided-masks.js';
import { mmaDkdvText, mmaDqText } from './backward-engines.js';

const dilated = readFileSync('stdlib/dilated.attn', 'utf8');
const literal3 = 'attention t() { mask causal && (q - k) % 3 == 0 }';
const windowed =
  'attention t(d: int = 3, window: int = 40) { mask causal && q - k < window && (q - k) % d == 0 }';
const pure = 'attention t() { mask (k - q) % 4 == 0 }';
// A learnable param (its gradient summed in bwd_dkdv) and a score reading the positions.
const softcapAlibi = `attention t(cap: f32 = 2.5, d: int = 3) {
  score cap * tanh((score - 0.125 * float(q - k)) / cap)
  mask causal && (q - k) % d == 0
}`;

const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 70, Nk: 90, D: 64, Dv: 64, ...s });

const cases: readonly [string, string, Partial<Shape>, MmaCheckOptions][] = [
  ['d = 2 (param)', dilated, {}, {}],
  [
    'd = 3, GQA, offsets, Nq > Nk',
    dilated,
    { B: 2, Hq: 4, Hkv: 2, Nq: 131, Nk: 97, qOffset: 5, kOffset: 11 },
    { params: { dilation: 3 } },
  ],
  ['literal d = 3, ragged', literal3, { Nq: 101, Nk: 89 }, {}],
  // 150 keys a class: two key tiles each (4 units, where the plain order has 3 key tiles).
  ['two key tiles a class', dilated, { Nq: 300, Nk: 300 }, {}],
  [
    'd = -3, negative q offset',
    dilated,
    { Nq: 50, Nk: 77, qOffset: -4, kOffset: 3 },
    { params: { dilation: -3 } },
  ],
  ['d = 7: classes of 2 or 3 rows', dilated, { Nq: 20, Nk: 150 }, { params: { dilation: 7 } }],
  ['d = 200: above both lengths', dilated, { Nq: 70, Nk: 90 }, { params: { dilation: 200 } }],
  ['sliding window and dilation, GQA 3', windowed, { Hq: 3, Hkv: 1, Nq: 200, Nk: 200 }, {}],
  ['pure dilation (reduced mask true)', pure, { Nq: 90, Nk: 70, qOffset: 2, kOffset: 0 }, {}],
  ['D = 128', dilated, { D: 128, Dv: 128, Nq: 100, Nk: 140 }, {}],
  ['f16, d = 5', dilated, { Nq: 77, Nk: 120 }, { dtype: 'f16', params: { dilation: 5 } }],
  ['learnable cap, positions in the score', softcapAlibi, { Hq: 2, Hkv: 1, Nq: 150, Nk: 170 }, {}],
  ['deterministic, d = 3', dilated, { Nq: 90, Nk: 110 }, { deterministic: true, params: { dilation: 3 } }],
];

// The deterministic bwd_dq in residue order (backward-dq-order.ts): units looped by a grid of
// cdiv(Nq, BQ) blocks (more units than blocks where classes have ragged tails), param gradients
// summed per block over its units, classes with no keys, offsets and GQA.
const deterministicCases: readonly [string, string, Partial<Shape>, MmaCheckOptions][] = [
  [
    'd = 2, GQA, offsets, Nq > Nk, two q-tiles a class: 4 units on 3 blocks',
    dilated,
    { B: 2, Hq: 4, Hkv: 2, Nq: 260, Nk: 197, qOffset: 5, kOffset: 11 },
    { params: { dilation: 2 } },
  ],
  // 7 units (one a class) on one block of BQ = 128 rows.
  ['d = 7: classes of 2 or 3 rows', dilated, { Nq: 20, Nk: 150 }, { params: { dilation: 7 } }],
  ['d = 200: classes with no keys', dilated, { Nq: 70, Nk: 90 }, { params: { dilation: 200 } }],
  ['sliding window and dilation', windowed, { Hq: 3, Hkv: 1, Nq: 200, Nk: 200 }, {}],
  ['pure dilation (reduced mask true)', pure, { Nq: 90, Nk: 70, qOffset: 2, kOffset: 0 }, {}],
  ['learnable cap (partials over units)', softcapAlibi, { Hq: 2, Hkv: 1, Nq: 150, Nk: 170 }, {}],
  ['D = 128, d = -3', dilated, { D: 128, Dv: 128, Nq: 100, Nk: 140 }, { params: { dilation: -3 } }],
];

describe('deterministic tensor-core CUDA backward, dQ in residue-class order (CPU emulation) vs the reference', () => {
  it.each(deterministicCases)(
    '%s',
    async (_, source, s, opts) => {
      const sh = shape(s);
      const det = { ...opts, deterministic: true } as const;
      const dq = mmaDqText(source, sh, det);
      expect(dq).toContain('residue_unit(units - 1 - iu, RD, a.Nq, a.Nk');
      expect(dq).toContain('load_rows_strided<D, BK>');
      expect(dq).not.toContain('floormod'); // the dilation conjunct is never evaluated
      const errors = await checkMmaBackward(source, sh, 11, det);
      if (process.env.ATTNC_SHOW_ERRORS) console.log(_, errors);
      for (const [g, e] of Object.entries(errors)) expect(e, `${g} ${_}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
    },
    300_000,
  );
});

describe('tensor-core CUDA backward, dK/dV in residue-class order (CPU emulation) vs the reference', () => {
  it.each(cases)(
    '%s',
    async (_, source, s, opts) => {
      const sh = shape(s);
      const dkdv = mmaDkdvText(source, sh, opts);
      expect(dkdv).toContain('residue_key_unit(blockIdx.x, ');
      expect(dkdv).toContain('load_rows_strided<D, BM>');
      expect(dkdv).not.toContain('floormod'); // the dilation conjunct is never evaluated
      const errors = await checkMmaBackward(source, sh, 7, opts);
      if (process.env.ATTNC_SHOW_ERRORS) console.log(_, errors);
      for (const [g, e] of Object.entries(errors)) expect(e, `${g} ${_}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
    },
    300_000,
  );
});

const runs = Number(process.env.ATTNC_BWD_RESIDUE_PROP_RUNS ?? 8);

/** A random mask with one-sided parts (sided-masks.ts) and a dilation conjunct of either side order. */
const arbDilatedProgram: fc.Arbitrary<string> = fc
  .tuple(arbSidedProgram(), fc.constantFrom('2', '3', '-3', '5'), fc.boolean())
  .map(([source, d, qFirst]) =>
    source.replace(/\n}\n$/, `\n  mask (${qFirst ? 'q - k' : 'k - q'}) % ${d} == 0\n}\n`),
  );

const arbShape: fc.Arbitrary<Shape> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    ratio: fc.integer({ min: 1, max: 3 }),
    Nq: fc.integer({ min: 1, max: 300 }),
    Nk: fc.integer({ min: 1, max: 300 }),
    D: fc.constantFrom(64, 128),
    qOffset: fc.option(fc.integer({ min: -8, max: 40 }), { nil: undefined }),
    kOffset: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
  })
  .map(({ ratio, ...s }) => ({ ...s, Hq: s.Hkv * ratio, Dv: s.D }));

describe('dK/dV in residue-class order (CPU emulation): random masks with a dilation conjunct', () => {
  it(`matches the gradient reference (${runs} draws)`, async () => {
    await fc.assert(
      fc.asyncProperty(arbDilatedProgram, arbShape, fc.integer(), async (source, sh, seed) => {
        const opts = { tensors: sidedTensors(sh, seed) } as const;
        const where = `\n${source}${JSON.stringify(sh)} seed ${seed}`;
        expect(mmaDkdvText(source, sh, opts), where).toContain('residue_key_unit(blockIdx.x, ');
        const errors = await checkMmaBackward(source, sh, seed, opts);
        for (const [g, e] of Object.entries(errors))
          expect(e, `${g}${where}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
      }),
      { numRuns: runs },
    );
  }, 900_000);
});
