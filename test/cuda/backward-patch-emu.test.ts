// The tensor-core backward's dK/dV kernel in 2-D patch order (codegen/cuda/backward-patch.ts) on
// the CPU emulator (backward-mma-emu.ts) against the float64 gradient reference:
// stdlib/neighbourhood.attn with image widths that are not powers of two, radii 1..3, Nq ≠ Nk,
// ragged lengths (not whole image rows), offsets, GQA, an image narrower than the patch (its
// pixels past W are no keys), patches with no key (an image wider than the keys), the plain
// fallback (more patches than 4x the plain key tiles plus 16), D = 128 and the deterministic mode
// (dK/dV in patches, and since round 20 its bwd_dq over query patches), a causal conjunct beside the
// two with a learnable param in the score; then random images and shapes. Each case first checks
// that its kernels run the patch order.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Shape } from '../support/arbitraries.js';
import { checkMmaBackward, MMA_GRAD_TOL } from '../backward/mma-check.js';
import type { MmaCheckOptions } from '../backward/mma-check.js';
import { mmaDkdvText, mmaDqText } from './backward-engines.js';

const neighbourhood = readFileSync('stdlib/neighbourhood.attn', 'utf8');

// Another conjunct beside the two, and a learnable param read by the score (its gradient is summed
// in bwd_dkdv, where the patch's missing pixels must be masked out, not only zero rows).
const causalSoftcap = `attention t(cap: f32 = 2.5, W: int = 10, r: int = 2) {
  score cap * tanh((score - 0.125 * float(q - k)) / cap)
  mask causal && abs(q / W - k / W) <= r && abs(q % W - k % W) <= r
}`;

// The patch order is the default (backward-patch.ts backwardPatchAsked); patchTweaks named without
// 'backward' keep the plain order.
const plain = { schedule: { patchTweaks: [] } } as const satisfies MmaCheckOptions;
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 1, Hkv: 1, Nq: 70, Nk: 90, D: 64, Dv: 64, ...s });

const cases: readonly [string, Partial<Shape>, MmaCheckOptions, string?][] = [
  // 10-wide image under 8 x 16 patches: columns 10..15 of each patch are no keys.
  ['W 10 (narrower than the patch), r 1', { Nq: 100, Nk: 100 }, { params: { W: 10, r: 1 } }],
  [
    'W 24, r 2, ragged, offsets, GQA, Nq > Nk',
    { B: 2, Hq: 4, Hkv: 2, Nq: 203, Nk: 170, qOffset: 5, kOffset: 11 },
    { params: { W: 24, r: 2 } },
  ],
  // Three patch columns a row of patches; negative positions are pixels of negative image rows.
  [
    'W 40, r 3, negative q offset',
    { Nq: 330, Nk: 300, qOffset: -17, kOffset: 3 },
    { params: { W: 40, r: 3 } },
  ],
  // 1000-wide: one image row, eight 128-pixel patches of which only the first holds keys.
  ['W 1000: patches with no key', { Nq: 60, Nk: 90 }, { params: { W: 1000, r: 2 } }],
  ['W 5000: plain fallback units', { Nq: 80, Nk: 150 }, { params: { W: 5000, r: 3 } }],
  ['D = 128, W 20, r 2', { D: 128, Dv: 128, Nq: 90, Nk: 140 }, { params: { W: 20, r: 2 } }],
  ['deterministic, W 12, r 3', { Nq: 90, Nk: 110 }, { deterministic: true, params: { W: 12, r: 3 } }],
  ['causal conjunct, learnable cap, W 10 (narrower)', { Hq: 2, Nq: 120, Nk: 130 }, {}, causalSoftcap],
];

describe('tensor-core CUDA backward, dK/dV in 2-D patch order (CPU emulation) vs the reference', () => {
  it.each(cases)(
    '%s',
    async (_, s, opts, source = neighbourhood) => {
      const sh = shape(s);
      const dkdv = mmaDkdvText(source, sh, opts);
      expect(dkdv).toContain('patch_key_unit(blockIdx.x, ');
      expect(dkdv).toContain('load_rows_gather<D, BM>');
      const errors = await checkMmaBackward(source, sh, 7, opts);
      if (process.env.ATTNC_SHOW_ERRORS) console.log(_, errors);
      for (const [g, e] of Object.entries(errors)) expect(e, `${g} ${_}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
    },
    300_000,
  );

  it('patchTweaks named without backward: the plain order, also right', async () => {
    const sh = shape({ Hq: 2, Nq: 100, Nk: 110 });
    const opts = { params: { W: 12, r: 2 }, ...plain };
    expect(mmaDkdvText(neighbourhood, sh, opts)).not.toContain('patch_key');
    const errors = await checkMmaBackward(neighbourhood, sh, 7, opts);
    for (const [g, e] of Object.entries(errors)) expect(e, g).toBeLessThanOrEqual(MMA_GRAD_TOL);
  }, 300_000);
});

// The deterministic bwd_dq in patch order (backward-dq-order.ts) on the same images: query patches
// gathered, keys the box's slot runs, units looped by cdiv(Nq, BQ) blocks (W 40: six 8 x 16
// patches on three blocks), param gradients summed per block over its units (the causal case).
const deterministicCases = cases.filter(([, , opts]) => !opts.deterministic);

describe('deterministic tensor-core CUDA backward, dQ in 2-D patch order (CPU emulation) vs the reference', () => {
  it.each(deterministicCases)(
    '%s',
    async (_, s, opts, source = neighbourhood) => {
      const sh = shape(s);
      const det = { ...opts, deterministic: true } as const;
      const dq = mmaDqText(source, sh, det);
      expect(dq).toContain(
        'pu_s = patch_unit(patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x), iu',
      );
      expect(dq).toContain('load_rows_gather<D, BK>');
      const errors = await checkMmaBackward(source, sh, 13, det);
      if (process.env.ATTNC_SHOW_ERRORS) console.log(_, errors);
      for (const [g, e] of Object.entries(errors)) expect(e, `${g} ${_}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
    },
    300_000,
  );

  it('patchTweaks named without backward: bwd_dq keeps the plain rows', () => {
    const sh = shape({ Nq: 100, Nk: 110 });
    const dq = mmaDqText(neighbourhood, sh, { params: { W: 12, r: 2 }, ...plain, deterministic: true });
    expect(dq).not.toContain('patch_');
    expect(dq).toContain('const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;');
  });
});

const runs = Number(process.env.ATTNC_BWD_PATCH_PROP_RUNS ?? 3);

/** Random images (W 1..40, r -1..3) under random shapes: most draws patch, some fall back. */
const arbCase = fc.record({
  W: fc.integer({ min: 1, max: 40 }),
  r: fc.integer({ min: -1, max: 3 }),
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  ratio: fc.integer({ min: 1, max: 2 }),
  Nq: fc.integer({ min: 1, max: 260 }),
  Nk: fc.integer({ min: 1, max: 260 }),
  qOffset: fc.integer({ min: -30, max: 30 }),
  kOffset: fc.integer({ min: -30, max: 30 }),
});

describe('dK/dV in 2-D patch order (CPU emulation): random images and shapes', () => {
  it(`matches the gradient reference (${runs} draws)`, async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, fc.integer(), async ({ W, r, ratio, ...s }, seed) => {
        const sh = shape({ ...s, Hq: s.Hkv * ratio });
        const where = `W ${W} r ${r} ${JSON.stringify(sh)} seed ${seed}`;
        const errors = await checkMmaBackward(neighbourhood, sh, seed, { params: { W, r } });
        for (const [g, e] of Object.entries(errors))
          expect(e, `${g} ${where}`).toBeLessThanOrEqual(MMA_GRAD_TOL);
      }),
      { numRuns: runs },
    );
  }, 900_000);
});
