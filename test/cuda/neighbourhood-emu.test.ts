// stdlib/neighbourhood.attn on the SIMT engine, executed by the CUDA CPU emulator against the
// float64 reference: image widths that do not divide the lengths, offsets (negative positions are
// pixels of negative image rows under floor division), GQA, and a negative radius (nothing
// allowed). The tensor-core cores' patch layout is checked in patch.test.ts (the emulator cannot
// run them); the mask itself, hoisted per row and per key, is checked here.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { buildEmulation } from './emu.js';
import { runCase, type Case } from './emu-case.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';
import { render, renamed, scratchDir, testScheduleWith } from './support.js';

const cases: readonly Case[] = [
  { label: '7-wide image, r = 2', B: 1, H: 2, Hkv: 1, Nq: 37, Nk: 53, params: { W: 7, r: 2 } },
  {
    label: '5-wide, r = 1, offsets',
    B: 2,
    H: 2,
    Hkv: 2,
    Nq: 29,
    Nk: 40,
    qOffset: -6,
    kOffset: 3,
    params: { W: 5, r: 1 },
  },
  { label: 'radius -1: nothing allowed', B: 1, H: 1, Hkv: 1, Nq: 9, Nk: 12, params: { W: 4, r: -1 } },
];

describe('neighbourhood mask on the CUDA SIMT engine (CPU emulation)', () => {
  it('agrees with the reference', async () => {
    const { kernel } = compile(readStdlib('neighbourhood.attn'), {
      target: 'cuda',
      file: stdlibPath('neighbourhood.attn'),
      headDim: 64,
      dtype: 'f32',
      schedule: { engine: 'simt' },
    });
    expect(kernel.neighbourhood).toBeDefined(); // recorded, and ignored by SIMT
    const k = renamed({ ...kernel, schedule: testScheduleWith({ dtype: 'f32' }) }, 'neighbourhood_emu');
    const a = render(k);
    expect(a.code).not.toContain('patch_unit');
    const dir = scratchDir('emu-neighbourhood');
    const exe = await buildEmulation(dir, a, k);
    let empties = 0;
    for (const [i, c] of cases.entries())
      empties += await runCase(exe, join(dir, k.name), a, k, c, 17 * i + 3);
    expect(empties).toBeGreaterThan(0);
  }, 600_000);
});
