// `attnc run` on the stdlib's quantized-cache kernels: agrees with the reference and reports the
// bytes its K/V caches read per token (in the text report and in --json), on lavapipe.
import { describe, expect, it, vi } from 'vitest';
import { cacheBytes } from '../../src/quant/layout.js';
import { checkSource } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { readFileSync } from 'node:fs';

const { runCli } = await import('../../src/cli/cli.js');

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await runCli(argv), out };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('attnc run stdlib/kivi.attn', () => {
  it('agrees with the reference and prints the bytes read per token', async () => {
    const r = await capture(['run', 'stdlib/kivi.attn', '--nq', '1', '--nk', '1024']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('kivi: agrees with the reference');
    // D = 64: int2 codes 16 B, f16 scale + zero per 32 tokens (k) or 32 channels (v) 8 B, and the
    // 128-token f16 window spread over 1024 rows (16 B per row).
    expect(r.out).toContain(
      '  K/V cache: 80.00 bytes read per token per kv head (k 40.00, v 40.00; 512 unquantized, 6.40x less)',
    );
  }, 120_000);

  it('--json carries the same numbers', async () => {
    const r = await capture(['run', 'stdlib/kivi.attn', '--nq', '1', '--nk', '256', '--json']);
    const j = JSON.parse(r.out);
    const f = checkedFormats(checkSource(readFileSync('stdlib/kivi.attn', 'utf8')).decl);
    const rows = j.sizes.B * j.sizes.Hkv * 256;
    const s = { B: j.sizes.B, Hkv: j.sizes.Hkv, Nk: 256, D: 64 };
    expect(j.cacheBytesPerToken).toEqual({
      k: cacheBytes(f.k!, s) / rows,
      v: cacheBytes(f.v!, s) / rows,
      total: (cacheBytes(f.k!, s) + cacheBytes(f.v!, s)) / rows,
      plain: 512,
    });
  }, 120_000);
});
