// The schedule pass asks the CUDA renderer's own fit rule (codegen/cuda/schedule-rules.ts): at
// D = 96 the wide SIMT candidates get 192 or 96 threads, which no power-of-two lane split maps,
// so the pass used to pick one and the renderer refused it ("threads must be blockQ·tpr/rows").
// Now the pass moves on to a candidate the core maps, and that kernel agrees with the reference
// on the CPU emulator.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { buildEmulation } from './emu.js';
import { runCase } from './emu-case.js';
import { scratchDir } from './support.js';

it('D = 96 compiles for SIMT with a schedule its core maps, and runs right', async () => {
  const dir = scratchDir('schedule-fit');
  for (const file of ['causal.attn', 'softcap.attn']) {
    const source = readFileSync(`stdlib/${file}`, 'utf8');
    const { artifact, kernel } = compile(source, { target: 'cuda', file, headDim: 96, dtype: 'f32' });
    expect(artifact.schedule).toMatchObject({ engine: 'simt', blockQ: 16, blockK: 16, threads: 64 });
    const exe = await buildEmulation(dir, artifact, kernel);
    const shape = { label: 'tails + GQA', B: 1, H: 2, Hkv: 1, Nq: 37, Nk: 45 };
    await runCase(exe, join(dir, kernel.name), artifact, kernel, shape, 7);
  }
}, 300_000);

it('odd head dims (D = 3, Dv = 7) compile for SIMT by default, and run right', async () => {
  // Every SIMT candidate had 2 or more threads per query row, which must divide D: "no cuda
  // schedule fits" for `attnc compile --target cuda --dim 3`, while a schedule with one thread a
  // row (the random-program tests' D = 3) runs fine.
  const dir = scratchDir('schedule-fit-odd');
  const source = readFileSync('stdlib/causal.attn', 'utf8');
  for (const dtype of ['f32', 'bf16'] as const) {
    const { artifact, kernel } = compile(source, { target: 'cuda', headDim: 3, valueDim: 7, dtype });
    expect(artifact.schedule).toMatchObject({ engine: 'simt', blockQ: 64, blockK: 64, threads: 64 });
    const exe = await buildEmulation(dir, artifact, kernel);
    const shape = { label: 'tails + GQA', B: 1, H: 2, Hkv: 1, Nq: 37, Nk: 45 };
    await runCase(exe, join(dir, kernel.name), artifact, kernel, shape, 11);
  }
}, 300_000);
