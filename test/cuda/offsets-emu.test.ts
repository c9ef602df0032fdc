// Positions at both ends of int32 on the CUDA CPU emulator: the launcher accepts a call whose last
// query and key positions are exactly 2^31 − 1 (or whose first are −2^31), and the device code
// must agree with the reference there — tile boxes, per-key positions and the tail tile's padding
// lanes included (issue #9 item 3; the launcher's limits: launcher-checks.ts).
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { buildEmulation } from './emu.js';
import { runCase, type Case } from './emu-case.js';
import { handKernels, render, renamed, scratchDir, testScheduleWith } from './support.js';

const I32_MAX = 2147483647;
const I32_MIN = -2147483648;
const cases: readonly Case[] = [
  {
    label: 'last positions at 2^31 - 1',
    B: 1,
    H: 2,
    Hkv: 1,
    Nq: 37,
    Nk: 53,
    qOffset: I32_MAX - 36,
    kOffset: I32_MAX - 52,
  },
  {
    label: 'first positions at -2^31',
    B: 1,
    H: 2,
    Hkv: 1,
    Nq: 29,
    Nk: 40,
    qOffset: I32_MIN,
    kOffset: I32_MIN + 3,
  },
];

describe.concurrent('cuda device code at the int32 position limits (CPU emulation)', () => {
  const dir = scratchDir('emu-limits');
  for (const name of ['full', 'sliding_window'] as const) {
    it(
      name,
      async () => {
        const k = renamed(handKernels[name]!(testScheduleWith({ dtype: 'f32' })), `${name}_limits`);
        const a = render(k);
        const exe = await buildEmulation(dir, a, k);
        for (const [i, c] of cases.entries()) await runCase(exe, join(dir, k.name), a, k, c, 31 * i + 5);
      },
      600_000,
    );
  }
});
