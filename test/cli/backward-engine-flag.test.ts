// `attnc compile --backward --backward-engine simt|mma|wgmma`: which CUDA backward the manifest
// lists (its engine, dtype and the tensor-core engines' partials function), the default (SIMT for
// f32; f16/bf16: wgmma on sm_90a, else mma.sync; SIMT where neither takes the head dims), and the
// refusals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const attnc = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });

/** Compiles stdlib/causal.attn for CUDA with --backward and `extra`; the manifest's backward entry and the .cu. */
function backwardOf(...extra: string[]): { b: Record<string, unknown>; code: string } {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-engine-'));
  const r = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--backward', '--out', dir, ...extra);
  expect(r.status, r.stderr).toBe(0);
  const m = JSON.parse(readFileSync(join(dir, 'causal.json'), 'utf8')) as {
    backward: Record<string, unknown>;
  };
  const cu = join(dir, 'causal_backward.cu');
  return { b: m.backward, code: existsSync(cu) ? readFileSync(cu, 'utf8') : '' };
}

describe('attnc compile --backward-engine', () => {
  it('defaults to wgmma on sm_90a, mma.sync on sm_80 for 16-bit kernels, and SIMT for f32', () => {
    const hopper = backwardOf('--dim', '128');
    expect(hopper.b).toMatchObject({ engine: 'wgmma', dtype: 'bf16' });
    expect(hopper.code).toContain('wgmma.mma_async');
    expect(backwardOf('--dim', '128', '--backward-engine', 'wgmma').b).toMatchObject({ engine: 'wgmma' });
    expect(backwardOf('--dtype', 'f16', '--arch', 'sm_86').b).toMatchObject({ engine: 'mma', dtype: 'f16' });
    const bf16 = backwardOf('--dim', '128', '--arch', 'sm_80');
    expect(bf16.b).toMatchObject({
      engine: 'mma',
      dtype: 'bf16',
      partials: 'attnc_causal_backward_partials',
    });
    expect(bf16.code).toContain('mma.sync');
    expect((bf16.b.fields as { name: string }[]).map((f) => f.name)).toContain('dq_acc');
    const f32 = backwardOf('--dtype', 'f32');
    expect(f32.b).toMatchObject({ engine: 'simt', dtype: 'f32' });
    expect(f32.b.partials).toBeUndefined();
  });

  it('falls back to SIMT when the tensor-core backward cannot take the head dim, unless one was asked for', () => {
    expect(backwardOf('--dim', '96').b).toMatchObject({ engine: 'simt', dtype: 'f32' });
    const asked = backwardOf('--dim', '96', '--backward-engine', 'mma').b;
    expect(asked.available).toBe(false);
    expect(asked.reason).toMatch(/schedule|headDim/);
  });

  it('gives mma and simt when asked', () => {
    const m = backwardOf('--dtype', 'f16', '--backward-engine', 'mma');
    expect(m.b).toMatchObject({ engine: 'mma', dtype: 'f16' });
    expect(m.code).not.toContain('wgmma.mma_async');
    expect(backwardOf('--backward-engine', 'simt').b).toMatchObject({ engine: 'simt', dtype: 'f32' });
  });

  it('refuses an engine the dtype or arch cannot have, an unknown one, and one without --backward', () => {
    const fail = (...args: string[]) => {
      const r = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', ...args);
      expect(r.status).not.toBe(0);
      return r.stderr;
    };
    expect(fail('--backward', '--dtype', 'f32', '--backward-engine', 'mma')).toContain(
      'the mma backward needs --dtype f16 or bf16',
    );
    expect(fail('--backward', '--arch', 'sm_80', '--backward-engine', 'wgmma')).toContain(
      'the wgmma backward needs --arch sm_90a (got sm_80)',
    );
    expect(fail('--backward', '--backward-engine', 'tc')).toContain(
      '--backward-engine expects simt, mma or wgmma, got `tc`',
    );
    expect(fail('--backward-engine', 'mma')).toContain(
      '--backward-engine mma needs --backward and --target cuda',
    );
  });
});
