// The CLI as a user meets it: exit codes, diagnostics with carets (no stack traces), files written.
// Runs the built CLI (`npm test` builds first).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stdlibPath } from '../support/stdlib.js';

const cli = 'dist/src/cli/main.js';
const attnc = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('attnc CLI', () => {
  it('is built', () => expect(existsSync(cli), 'run `npm run build` first').toBe(true));

  it('check: a typo gets file:line:col, the line and a caret with a hint; exit 1, no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-cli-'));
    const file = join(dir, 'typo.attn');
    writeFileSync(file, 'attention w(window: int = 8) {\n  mask causal && q - k < windw\n}\n');
    const r = attnc('check', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}:2:26`);
    expect(r.err).toContain('2 |   mask causal && q - k < windw');
    expect(r.err).toMatch(/\|\s{26}\^{5} did you mean `window`\?/);
    expect(r.err).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('check: the summary counts the errors left out of the list too', () => {
    // It said "101 errors": the 100 shown and the note saying how many more there were.
    const dir = mkdtempSync(join(tmpdir(), 'attnc-cli-'));
    const file = join(dir, 'many.attn');
    writeFileSync(
      file,
      Array.from({ length: 150 }, (_, i) => `attention a${i}() { mask q < k &&& }\n`).join(''),
    );
    const r = attnc('check', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain('50 more errors after this one are not shown');
    expect(r.err.trimEnd().split('\n').at(-1)).toBe(`${file}: 150 errors (the first 100 shown)`);
  });

  it('run: a program with errors gets its diagnostics, with or without a GPU', () => {
    // Without an adapter it said only "no WebGPU adapter: run `npx attnc doctor` …": the
    // device was requested before the source was read.
    const dir = mkdtempSync(join(tmpdir(), 'attnc-cli-'));
    const file = join(dir, 'typo.attn');
    writeFileSync(file, 'attention a() {\n  mask q > kk\n}\n');
    const r = attnc('run', file, '--nq', '4', '--nk', '4');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: unknown name \`kk\`\n --> ${file}:2:12`);
    expect(r.err).not.toContain('adapter');
  });

  it('check: a clean file exits 0', () => {
    const r = attnc('check', 'stdlib/document.attn');
    expect(r.code).toBe(0);
    expect(r.out).toContain('ok (1 attention: document)');
  });

  it('compile --out writes the CUDA .cu, .h and manifest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-cli-'));
    const r = attnc('compile', 'stdlib/softcap.attn', '--target', 'cuda', '--out', dir);
    expect(r.code, r.err).toBe(0);
    for (const f of ['softcap.cu', 'softcap.h', 'softcap.json'])
      expect(existsSync(join(dir, f)), f).toBe(true);
    expect(readFileSync(join(dir, 'softcap.cu'), 'utf8')).toContain('extern "C"');
    const manifest = JSON.parse(readFileSync(join(dir, 'softcap.json'), 'utf8'));
    expect(JSON.stringify(manifest)).toContain('cap');
  });

  it('compile --dump-ir prints the IR after the named pass', () => {
    const r = attnc('compile', 'stdlib/document.attn', '--dump-ir=analyze-tiles');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('; document after analyze-tiles');
    expect(r.out).toContain('range_min doc');
  });

  it('every routing and selection stdlib file checks and compiles for both targets', () => {
    const files = [
      'biformer',
      'landmark',
      'nsa_select',
      'cca',
      'dhsa',
      'tokenselect',
      'tidaldecode',
      'recycled',
    ];
    for (const f of files) {
      const path = stdlibPath(`${f}.attn`);
      expect(attnc('check', path).code, path).toBe(0);
      for (const target of ['wgsl', 'cuda']) {
        const r = attnc('compile', path, '--target', target);
        expect(r.code, `${path} ${target}: ${r.err}`).toBe(0);
        expect(r.out.length, `${path} ${target}`).toBeGreaterThan(1000);
      }
    }
    // The routing entry points are in the emitted code, not just the attention.
    expect(attnc('compile', 'stdlib/biformer.attn', '--target', 'cuda').out).toContain('route_topk');
  });

  it('bad flags are one-line errors with exit 1', () => {
    expect(attnc('compile', 'stdlib/causal.attn', '--target', 'metal').err).toMatch(
      /^attnc: --target expects wgsl or cuda/,
    );
    expect(attnc('compile', 'stdlib/causal.attn', '--dump-ir=nope').code).toBe(1);
    expect(attnc('run', 'missing.attn').err).toMatch(/^attnc: cannot read missing.attn/);
  });

  it('a missing file is a one-line error naming its path, exit 1', () => {
    const r = attnc('run', 'stdlib/no_such_kernel.attn');
    expect(r.code).toBe(1);
    expect(r.err).toBe('attnc: cannot read stdlib/no_such_kernel.attn: no such file (ENOENT)\n');
  });
});
