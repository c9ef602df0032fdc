// `qk int8 [smooth k]` on the CUDA SIMT engine (src/codegen/cuda/int8qk-simt.ts), executed on the
// CPU emulator (test/cuda/emu.ts) against the definition: the kernel's own mask and score over
// the reference's dequantized int8 Q and K (src/runtime/reference-int8qk.ts, blocks = the
// schedule's tiles). Tails, GQA, offsets, Nk = 0, full and causal, bf16 and f16. Also: the
// statement selects the SIMT engine, drops the decode path, and leaves other kernels unchanged.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import { quantizeInt8Blocks, smoothKeys } from '../src/runtime/reference-int8qk.js';
import type { AttentionKernel } from '../src/ir/kernel.js';
import { buildEmulation } from './cuda/emu.js';
import { runCase, type Case } from './cuda/emu-case.js';
import type { Problem } from './cuda/reference.js';
import { scratchDir } from './cuda/support.js';

const cases: readonly Case[] = [
  { label: 'tails + GQA + batch', B: 2, H: 2, Hkv: 1, Nq: 37, Nk: 53 },
  { label: 'offsets', B: 1, H: 2, Hkv: 2, Nq: 20, Nk: 41, qOffset: 5, kOffset: -3 },
  { label: 'one query', B: 1, H: 4, Hkv: 2, Nq: 1, Nk: 70 },
  { label: 'Nk = 0', B: 1, H: 2, Hkv: 2, Nq: 5, Nk: 0 },
];

/** The definition's dequantized q and k for the kernel's tiles (what the scores are made of). */
function dequantized(k: AttentionKernel): (p: Problem) => Pick<Problem, 'q' | 'k'> {
  const { blockQ, blockK, headDim: D } = k.schedule;
  return (p) => {
    const keys = k.qkInt8!.smoothK ? smoothKeys(p.k, p.B * p.Hkv, p.Nk, D) : p.k;
    return {
      q: quantizeInt8Blocks(p.q, p.B * p.H, p.Nq, D, blockQ).dequantized,
      k: quantizeInt8Blocks(keys, p.B * p.Hkv, p.Nk, D, blockK).dequantized,
    };
  };
}

const source = (name: string, qk: string, mask: string): string =>
  `attention ${name}() {\n  ${qk}\n  ${mask}\n}\n`;

describe.concurrent('qk int8 on the SIMT engine, executed on the CPU', () => {
  const dir = scratchDir('int8qk');
  const variants = [
    ['qk int8 smooth k', 'mask k <= q', 'bf16'],
    ['qk int8', 'mask k <= q', 'f16'],
    ['qk int8 smooth k', '', 'f16'],
  ] as const;
  for (const [i, [qk, mask, dtype]] of variants.entries()) {
    it(`${qk}, ${mask || 'full'}, ${dtype}`, async () => {
      const name = `int8qk_${i}`;
      const schedule = { blockQ: 16, blockK: 16, threads: 32 };
      const c = compile(source(name, qk, mask), { target: 'cuda', headDim: 32, dtype, schedule });
      expect(c.kernel.schedule.engine).toBe('simt');
      const exe = await buildEmulation(dir, c.artifact, c.kernel);
      for (const [j, cs] of cases.entries())
        await runCase(exe, join(dir, name), c.artifact, c.kernel, cs, 100 * i + j, dequantized(c.kernel));
      // The tolerances tell int8 scores from f32 ones: against dense attention the same run fails.
      if (dtype === 'f16')
        await expect(runCase(exe, join(dir, name), c.artifact, c.kernel, cases[0]!, 100 * i)).rejects.toThrow(
          'max |out - ref|',
        );
    });
  }

  it('the benchmarked SIMT kernel: D 128, bf16, causal (bench/cuda/int8qk-emit.mjs `int8`)', async () => {
    const name = 'int8qk_d128';
    const c = compile(source(name, 'qk int8 smooth k', 'mask k <= q'), {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { engine: 'simt' },
    });
    expect(c.kernel.schedule).toMatchObject({ engine: 'simt', blockQ: 64, blockK: 64 });
    const exe = await buildEmulation(dir, c.artifact, c.kernel);
    const cs = { label: 'two q tiles, GQA, tail', B: 1, H: 2, Hkv: 1, Nq: 70, Nk: 90 };
    await runCase(exe, join(dir, name), c.artifact, c.kernel, cs, 900, dequantized(c.kernel));
  });
});
