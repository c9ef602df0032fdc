// Output larger than a pipe's buffer (64 KB) reaches a reader in full: the CLI used to call
// process.exit right after writing, which dropped what the pipe had not taken yet (a CUDA
// artifact piped into `wc` or a pager came out cut at 65536 bytes).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

describe('attnc compile through a pipe', () => {
  it('writes every byte of a large artifact', () => {
    // A product of q - k terms: its tile predicates print long (up to show()'s limit), so the .cu
    // is well past 64 KB.
    const factors = Array.from({ length: 11 }, (_, i) => `(q - k + ${i})`).join(' * ');
    const source = `attention big() { mask ${factors} > 0 }`;
    const file = join(mkdtempSync(join(tmpdir(), 'attnc-pipe-')), 'big.attn');
    writeFileSync(file, source);
    const want = compile(source, { target: 'cuda', file, headDim: 128 }).artifact.code.length;
    expect(want).toBeGreaterThan(65536);
    const r = spawnSync(
      'sh',
      ['-c', `node dist/src/cli/main.js compile '${file}' --target cuda --dim 128 | wc -c`],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(want);
  });
});
