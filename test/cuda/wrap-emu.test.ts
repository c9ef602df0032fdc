// Int32 wrap and non-finite constants in the CUDA device code, executed on the CPU (emu.ts) and
// compared with the float64 reference: issue #9's two examples, int edge cases and
// products that wrap inside a tile — each at ordinary offsets and at offsets near the limits.
import fc from 'fast-check';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import { arbProgram } from '../support/arbitraries.js';
import { identitiesSource } from '../support/int-identities.js';
import { buildEmulation } from './emu.js';
import { runCase, type Case } from './emu-case.js';
import { render, scratchDir } from './support.js';

const I32_MAX = 2147483647;
const I32_MIN = -2147483648;

const programs: [string, string][] = [
  ['issue #9 wrap', 'attention wrap_add() { mask q + 2147483640 > 0 }'],
  [
    'issue #9 non-finite constants',
    `attention nonfinite() {
      score max(score, -1.0 / 0.0) + float(int(0.0 / 0.0)) + float(int(1.0 / 0.0)) * 1e-9
        + float(int(-1.0 / 0.0)) * 1e-9 + tanh(1.0 / 0.0) + exp(-1.0 / 0.0) + min(1.0 / 0.0, 0.5)
      mask causal && 1.0 / 0.0 > float(q) && log(0.0) < float(k)
    }`,
  ],
  ['int edge cases at run time', identitiesSource('ids_runtime', false)],
  ['int edge cases folded', identitiesSource('ids_folded', true)],
  // f32 arithmetic in a mask: the classifier guards it with is_finite (a NaN would compare false).
  ['f32 mask', 'attention fmask(c: f32 = 0.5) { mask float(q - k) * c < 3.0 && float(k) * c >= -8.0 }'],
  ['products', 'attention products() { mask q * 1073741824 >= 0 || k * 65537 < q * 3 || -q == q }'],
  // Random wrap-prone programs (fixed seed under CI, like every property test).
  ...fc
    .sample(arbProgram({ wrap: true, depth: 2 }), Number(process.env.ATTNC_WRAP_EMU_RUNS ?? 1))
    .map((d, i): [string, string] => [`random ${i}`, printDecl({ ...d, name: `random${i}` })]),
];

// Near the top the last real position is MAX − 24: the device code also computes positions of the
// padding rows and keys of a tail tile (i + q_offset for i < ⌈Nq / BQ⌉ · BQ) and tile ends as
// q_offset + min(...) − 1, whose intermediates would pass MAX — signed overflow in C++ (see the
// report of issue #9); the slack keeps this test about the mask, not about that.
const TOP = I32_MAX - 24;
const cases: readonly Case[] = [
  { label: '16 x 16, default offsets', B: 1, H: 2, Hkv: 1, Nq: 16, Nk: 16 },
  { label: 'positions at the top', B: 1, H: 1, Hkv: 1, Nq: 37, Nk: 45, qOffset: TOP - 36, kOffset: TOP - 50 },
  {
    label: 'positions at the bottom',
    B: 1,
    H: 1,
    Hkv: 1,
    Nq: 21,
    Nk: 30,
    qOffset: I32_MIN,
    kOffset: I32_MIN + 3,
  },
  { label: 'products wrap inside a tile', B: 1, H: 1, Hkv: 1, Nq: 24, Nk: 20, qOffset: 4, kOffset: 32760 },
];

describe.concurrent('cuda backend under int32 wrap: device code executed on the CPU', () => {
  const dir = scratchDir('wrap');
  for (const [label, source] of programs)
    it(
      label,
      async () => {
        const { kernel } = compile(source, {
          target: 'cuda',
          headDim: 16,
          valueDim: 16,
          dtype: 'f32',
          schedule: { engine: 'simt', blockQ: 16, blockK: 16, threads: 16 },
        });
        expect(kernel.schedule.engine ?? 'simt').toBe('simt');
        const a = render(kernel);
        const exe = await buildEmulation(dir, a, kernel);
        for (const [i, c] of cases.entries())
          await runCase(exe, join(dir, kernel.name), a, kernel, c, 100 * i + 3);
      },
      240_000,
    );
});
