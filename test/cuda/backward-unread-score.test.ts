// A score expression that ignores `score` (`score exp(min(c0, 2.0))`: a per-head temperature
// that overrides q·k) left the CUDA backward kernels' `score` / `x` declared and never read:
// nvcc's warning #177, an error under -Werror; so did the SIMT dK/dV pass's `q` under a mask that
// never reads it (stdlib/full.attn's backward: no mask). Found by scripts/fuzz-campaign.mjs (round 14).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCudaBackward, compileCudaBackwardMma, compileCudaBackwardWgmma } from '../../src/backward.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const source = (name: string): string =>
  `attention ${name}(c0: f32 = 1.5) {\n  score exp(min(c0 * 0.5, 2.0))\n  mask causal\n}`;

/** A mask that never reads q (nor the score q·k): the dK/dV pass's query position goes unread. */
const noQ = 'attention unread_q(c0: f32 = 1.5) {\n  score exp(min(c0, 2.0))\n  mask k % 2 == 0\n}';

const codes = (): string[] => [
  compileCudaBackward(noQ, { headDim: 64 }).backward.code,
  // stdlib/full.attn: no mask, so neither pass reads its position.
  compileCudaBackward('attention full_bwd() {\n}', { headDim: 64 }).backward.code,
  compileCudaBackward(source('unread_simt'), { headDim: 64 }).backward.code,
  compileCudaBackwardMma(source('unread_mma'), { headDim: 64, dtype: 'bf16' }).backward.code,
  compileCudaBackwardWgmma(source('unread_wgmma'), { headDim: 64, dtype: 'f16' }).backward.code,
];

describe('CUDA backward of a score that ignores q·k', () => {
  it('casts the unread scaled q·k to void, and only then', () => {
    const [noQCode, full, simt, mma, wgmma] = codes();
    expect(full).toContain('(void)k;');
    expect(noQCode).toMatch(/const int q = a\.q_offset \+ i;\n\s*\(void\)q;/);
    expect(simt).toContain('(void)score;');
    expect(mma).toMatch(/const float x = s\[j\]\[e\] \* a\.scale;\n\s*\(void\)x;/);
    expect(wgmma).toMatch(/const float x = s\[j\]\[e\] \* a\.scale;\n\s*\(void\)x;/);
    const reads = compileCudaBackward('attention r() {\n  score score * 0.5\n}', { headDim: 64 });
    expect(reads.backward.code).not.toContain('(void)score;');
  });

  it('nvcc -arch=sm_90a -Werror accepts the simt, mma and wgmma backward', async () => {
    const dir = scratchDir('bwd-unread');
    const tu = join(dir, 'unread.cu');
    writeFileSync(tu, codes().join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
  }, 600_000);
});
