// `attnc compile --emit ts|js` through the built CLI (`npm test` builds first): files written,
// prettier-clean, and usage errors for what cannot be emitted.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const cli = 'dist/src/cli/main.js';
const attnc = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const style = { singleQuote: true, printWidth: 110, trailingComma: 'all', parser: 'typescript' } as const;

describe('attnc compile --emit', () => {
  it('is built', () => expect(existsSync(cli), 'run `npm run build` first').toBe(true));

  it('--emit ts --out DIR writes one formatted module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-emit-'));
    const r = attnc('compile', 'stdlib/document.attn', '--target', 'wgsl', '--emit', 'ts', '--out', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`wrote ${join(dir, 'document.ts')}\n`);
    const text = readFileSync(join(dir, 'document.ts'), 'utf8');
    expect(await prettier.check(text, style)).toBe(true);
    // Both WGSL engines, picked by the device (emit-ts-engines.ts) unless createKernel's option says.
    expect(text).toContain('export async function createKernel(');
    expect(text).toContain('options: CreateKernelOptions = {}');
    expect(text).toContain("export const engines: readonly WgslEngine[] = ['row', 'coop'];");
    expect(text).not.toMatch(/^import /m);
  });

  it('--wgsl-engine pins the module to one engine', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-emit-'));
    const r = attnc('compile', 'stdlib/document.attn', '--emit', 'ts', '--wgsl-engine', 'coop', '--out', dir);
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(join(dir, 'document.ts'), 'utf8');
    // One engine: its createKernel's options may name only that one.
    expect(text).toMatch(
      /export async function createKernel\(\s*device: GPUDevice,\s*options: \{ readonly engine\?: 'coop' \} = \{\},?\s*\): Promise<Kernel>/,
    );
    expect(text).not.toContain('engineFor');
    expect(text).toContain("wgslEngine: 'coop'");
  });

  it('--emit js writes the module and its .d.ts; without --out the module goes to stdout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-emit-'));
    const r = attnc('compile', 'stdlib/softcap.attn', '--emit', 'js', '--out', dir, '--dim', '16');
    expect(r.code, r.err).toBe(0);
    for (const f of ['softcap.js', 'softcap.d.ts']) {
      expect(await prettier.check(readFileSync(join(dir, f), 'utf8'), style), f).toBe(true);
    }
    const stdout = attnc('compile', 'stdlib/softcap.attn', '--emit', 'js', '--dim', '16');
    expect(stdout.code, stdout.err).toBe(0);
    expect(stdout.out).toBe(readFileSync(join(dir, 'softcap.js'), 'utf8'));
  });

  it('--no-decode leaves the decode variant out (smaller), emitted or not, on both targets', () => {
    const full = attnc('compile', 'stdlib/causal.attn', '--emit', 'js', '--dim', '16');
    const lean = attnc('compile', 'stdlib/causal.attn', '--emit', 'js', '--dim', '16', '--no-decode');
    expect([full.code, lean.code], full.err + lean.err).toEqual([0, 0]);
    expect(full.out).toContain('const decodeWgsl = `');
    expect(lean.out).not.toContain('decodeWgsl');
    expect(lean.out.length).toBeLessThan(full.out.length);
    // A plain WGSL compile: the manifest beside the .wgsl carries the decode module, or not.
    const dir = mkdtempSync(join(tmpdir(), 'attnc-nodecode-'));
    for (const [sub, extra] of [
      ['lean', ['--no-decode']],
      ['full', []],
    ] as const) {
      const r = attnc('compile', 'stdlib/causal.attn', '--out', join(dir, sub), ...extra);
      expect(r.code, r.err).toBe(0);
    }
    const manifest = (sub: string): Record<string, unknown> =>
      JSON.parse(readFileSync(join(dir, sub, 'causal.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest('lean').decode).toBeUndefined();
    expect(manifest('full').decode).toBeDefined();
    const cuda = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--no-decode', '--json');
    expect(cuda.code, cuda.err).toBe(0);
    const code = (JSON.parse(cuda.out) as { code: string }).code;
    expect(code).toContain('attnc_causal_launch');
    expect(code).not.toMatch(/::dec::|split_kernel/);
  });

  it('usage errors: --emit with --target cuda, an unknown language', () => {
    const cuda = attnc('compile', 'stdlib/softcap.attn', '--target', 'cuda', '--emit', 'ts');
    expect(cuda.code).toBe(1);
    expect(cuda.err).toContain('--emit ts needs --target wgsl');
    const bad = attnc('compile', 'stdlib/softcap.attn', '--emit', 'py');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--emit expects ts or js, got `py`');
    const routing = attnc('compile', 'stdlib/biformer.attn', '--emit', 'ts');
    expect(routing.code).toBe(1);
    expect(routing.err).toMatch(/^attnc: emit ts: "biformer" routes .* do not support routing kernels yet/);
  });
});
