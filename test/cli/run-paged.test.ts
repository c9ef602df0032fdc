// `attnc run` on a paged-cache kernel (`cache paged N`) on WGSL: it reads K/V from a pool of HND
// pages through a shuffled block table, agrees with the reference, and says which layout it used.
import { describe, expect, it, vi } from 'vitest';

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

describe('attnc run stdlib/paged-decode.attn', () => {
  it('agrees with the reference over a shuffled pool of pages and prints the layout', async () => {
    const r = await capture(['run', 'stdlib/paged-decode.attn', '--nq', '1', '--nk', '100', '--batch', '2']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('paged_decode: agrees with the reference');
    // 100 keys in pages of 16: 7 pages a sequence, 2 sequences, one spare page.
    expect(r.out).toContain('  K/V cache: paged: 15 HND pages [Hkv, 16, D] in a shuffled block table [2, 7]');
  }, 120_000);

  it('--json carries the layout', async () => {
    const r = await capture(['run', 'stdlib/paged-decode.attn', '--nq', '3', '--nk', '40', '--json']);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.out).cacheLayout).toMatch(/^paged: \d+ HND pages \[Hkv, 16, D\]/);
  }, 120_000);
});
