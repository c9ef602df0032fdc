// The bundled executable (dist/cli/attnc.js, the package's bin; scripts/build-cli.mjs, run by
// `npm run build`) behaves as the tsc output does: same stdout, stderr and exit status for each
// command group it splits into — check, compile (CUDA and --emit, prettier external), viz
// (pngjs external), --json, --version — and the REPL's user errors.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bundled = 'dist/cli/attnc.js';
const unbundled = 'dist/src/cli/main.js';

function both(args: string[], input?: string) {
  const run = (entry: string) => {
    const r = spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8', input: input ?? '' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  return [run(bundled), run(unbundled)] as const;
}

describe('the bundled attnc', () => {
  it('is built and is the package bin', () => {
    expect(existsSync(bundled), 'run `npm run build` first').toBe(true);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: { attnc: string } };
    expect(pkg.bin.attnc).toBe(`./${bundled}`);
    expect(readFileSync(bundled, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('answers as the unbundled CLI does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-bundle-'));
    const typo = join(dir, 'typo.attn');
    writeFileSync(typo, 'attention w(window: int = 8) {\n  mask causal && q - k < windw\n}\n');
    const cases = [
      ['--version'],
      ['check', 'stdlib/document.attn'],
      ['check', typo],
      ['check', typo, '--json'],
      ['compile', 'stdlib/softcap.attn', '--target', 'cuda', '--arch', 'sm_80'],
      ['compile', 'stdlib/causal.attn', '--emit', 'js'],
      ['compile', 'stdlib/causal.attn', '--json'],
      ['compile', 'stdlib/causal.attn', '--target', 'metal'],
      ['viz', 'stdlib/causal.attn', '--out', join(dir, 'm.png'), '--nq', '64', '--nk', '64'],
      ['frob'],
    ];
    for (const args of cases) {
      const [b, u] = both(args);
      expect(b, args.join(' ')).toEqual(u);
    }
  });

  it('the REPL: a viz error (GridError, registered lazily) is one user-error line', () => {
    const input = 'attention w(window: int) { mask q - k < window }\n:mask\n:quit\n';
    const [b, u] = both(['repl'], input);
    expect(b.out).toEqual(u.out);
    expect(b.out).toMatch(/error: param `window` has no default/);
    expect(b.code).toBe(0);
  });
});
