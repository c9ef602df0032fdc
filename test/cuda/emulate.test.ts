// Executes the generated CUDA device code on the CPU (emu.ts) and compares it with the dense
// float64 reference: tails (lengths not multiples of any tile), GQA, offsets that empty whole
// rows, Nk = 0, every tile class, summaries, hoisting, and all three storage dtypes.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestSchedule } from '../support/hand-kernels.js';
import { buildEmulation } from './emu.js';
import { runCase, type Case } from './emu-case.js';
import { handKernels, render, renamed, scratchDir, testScheduleWith } from './support.js';

const cases: readonly Case[] = [
  { label: 'tails + GQA + batch', B: 2, H: 2, Hkv: 1, Nq: 37, Nk: 53 },
  { label: 'negative q_offset empties rows', B: 1, H: 2, Hkv: 1, Nq: 29, Nk: 40, qOffset: -6, kOffset: 3 },
  { label: 'decode', B: 1, H: 4, Hkv: 4, Nq: 1, Nk: 70 },
  { label: 'Nk = 0', B: 1, H: 2, Hkv: 2, Nq: 5, Nk: 0 },
  { label: 'small window', B: 1, H: 2, Hkv: 1, Nq: 40, Nk: 40, params: { window: 5, cap: 0.75 } },
];

const schedules: readonly [string, TestSchedule][] = [
  ['f32 rows4 tpr4', testScheduleWith({ dtype: 'f32' })],
  ['bf16 rows2 tpr8 vw2 64 threads', testScheduleWith({ dtype: 'bf16', threads: 64 })],
  [
    'f16 D24 Dv8 vw1',
    testScheduleWith({ dtype: 'f16', blockQ: 8, blockK: 8, threads: 32, headDim: 24, valueDim: 8 }),
  ],
];

describe.concurrent('cuda backend: device code executed on the CPU', () => {
  const dir = scratchDir('emu');
  for (const [label, schedule] of schedules) {
    for (const [name, make] of Object.entries(handKernels)) {
      it(`${name}, ${label}`, async () => {
        const k = renamed(make(schedule), `${name}_${schedule.dtype}`);
        const a = render(k);
        const exe = await buildEmulation(dir, a, k);
        let empties = 0;
        for (const [i, c] of cases.entries())
          empties += await runCase(exe, join(dir, k.name), a, k, c, 1000 * i + 7);
        // The offset case must really exercise empty rows for masked kernels.
        if (name !== 'full') expect(empties).toBeGreaterThan(0);
      });
    }
  }
});
