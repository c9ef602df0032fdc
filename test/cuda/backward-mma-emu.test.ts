// The tensor-core CUDA backward (bf16) run on the CPU (backward-mma-emu.ts: the emulation shim with
// warp-collective ldmatrix / mma.sync stand-ins) against the float64 gradient reference: stdlib
// masks and modifiers (full, partial and empty q-tiles, summaries), GQA, ragged Nq ≠ Nk, offsets,
// tails of both tiles, a learnable param (softcap's cap) and tensor (sink-calibration gains).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Shape } from '../support/arbitraries.js';
import { checkMmaBackward as check, MMA_GRAD_TOL as TOL } from '../backward/mma-check.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 70, Nk: 90, D: 64, Dv: 64, ...s });

const expectSmall = (errors: Record<string, number>, where: string): void => {
  if (process.env.ATTNC_SHOW_ERRORS) console.log(where, errors);
  for (const [name, e] of Object.entries(errors)) expect(e, `${name} ${where}`).toBeLessThanOrEqual(TOL);
};

describe('tensor-core CUDA backward (CPU emulation of mma.sync) vs the float64 gradient reference', () => {
  it.each([
    ['full', {}, {}, false],
    ['causal', { B: 2, Hq: 4, Hkv: 2 }, {}, true],
    ['sliding_window', { Nq: 130, Nk: 130 }, { window: 40 }, false],
    ['document', { Hq: 3, Hkv: 3 }, {}, true],
    ['dilated', {}, {}, false],
    ['alibi', { Hq: 4, Hkv: 1 }, {}, false],
    ['softcap', {}, { cap: 2.5 }, false],
    ['prefix_lm', { Nq: 90, Nk: 70, qOffset: 3, kOffset: 0 }, { prefix: 20 }, false],
    ['causal', { D: 128, Dv: 128, Nq: 50, Nk: 75 }, {}, false],
    ['softcap', { D: 128, Dv: 128, Nq: 40, Nk: 40 }, { cap: 3 }, true],
    // 35 q-tiles: the last key tiles' ballot scans page past 32 empty q-tiles.
    ['sliding_window', { Nq: 2200, Nk: 2200 }, { window: 40 }, false],
  ] as const)(
    '%s %j %j, a gradient into lse: %s',
    async (name, s, params, dlse) => {
      expectSmall(await check(stdlib(name), shape(s), 11, { params: { ...params }, dlse }), name);
    },
    300_000,
  );

  it.each([
    ['causal', { B: 2, Hq: 4, Hkv: 2 }, {}],
    ['softcap', { Nq: 150, Nk: 170 }, { cap: 2.5 }],
    ['document', { Hq: 3, Hkv: 3 }, {}],
    ['softcap', { D: 128, Dv: 128, Nq: 40, Nk: 40 }, { cap: 3 }],
    ['prefix_lm', { Nq: 90, Nk: 70, qOffset: 3, kOffset: 0 }, { prefix: 20 }],
  ] as const)(
    'deterministic mode (dq by its own kernel), a gradient into lse: %s %j %j',
    async (name, s, params) => {
      const opts = { params: { ...params }, deterministic: true, dlse: true };
      const e = await check(stdlib(name), shape(s), 11, opts);
      expectSmall(e, `${name} deterministic`);
    },
    300_000,
  );

  it('a learnable tensor: sink-calibration gains', async () => {
    const gain = { data: Float32Array.from([0.5, 2.25]), shape: [2] };
    const e = await check(stdlib('sink_calibration'), shape({ Hq: 2, Hkv: 2 }), 5, {
      params: { sinks: 4 },
      tensors: { gain } as never,
      dlse: true, // the gain's gradient through dscore′ takes lse's too
    });
    expect(Object.keys(e)).toEqual(['dq', 'dk', 'dv', 'dgain']);
    expectSmall(e, 'sink_calibration');
  }, 300_000);
});
