// `attnc compile --decode-lean off|knob|on` (Schedule.decodeLean): the CUDA tensor-core decode's
// lean per-step code (decode-mma-lean.ts) reaches the emitted `#define ATTNC_DEC_MMA_LEAN` and the
// manifest; without the flag the manifest records the default; bad values and non-CUDA targets are
// refused with a message naming the flag.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const attnc = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });

const compileCausal = (...flags: string[]) => {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-dl-'));
  const r = attnc(
    'compile',
    'stdlib/causal.attn',
    '--target',
    'cuda',
    '--dim',
    '128',
    ...flags,
    '--out',
    dir,
  );
  return {
    r,
    code: () => readFileSync(join(dir, 'causal.cu'), 'utf8'),
    manifest: () => JSON.parse(readFileSync(join(dir, 'causal.json'), 'utf8')),
  };
};

describe('--decode-lean', () => {
  it('reaches the emitted knob and the manifest; absent, the manifest records the default', () => {
    const plain = compileCausal();
    expect(plain.r.status).toBe(0);
    expect(plain.code()).not.toContain('#define ATTNC_DEC_MMA_LEAN');
    expect(plain.manifest().decodeLean).toBe('off');
    for (const [mode, define] of [
      ['knob', '0'],
      ['on', '3'],
    ] as const) {
      const c = compileCausal('--decode-lean', mode);
      expect(c.r.status).toBe(0);
      expect(c.code()).toContain(`#define ATTNC_DEC_MMA_LEAN ${define} `);
      expect(c.manifest().decodeLean).toBe(mode);
      expect(c.manifest().schedule.decodeLean).toBe(mode);
    }
  });

  it('refuses a bad value and a WGSL target', () => {
    const bad = compileCausal('--decode-lean', 'fast');
    expect(bad.r.status).toBe(1);
    expect(bad.r.stderr).toContain('--decode-lean expects off, knob, on, got `fast`');
    const wgsl = attnc('compile', 'stdlib/causal.attn', '--decode-lean', 'on');
    expect(wgsl.status).toBe(1);
    expect(wgsl.stderr).toContain('--decode-lean on needs --target cuda');
    expect(attnc('compile', '--help').stdout).toContain('--decode-lean off|knob|on');
  });
});
