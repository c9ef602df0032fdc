// `attnc compile --target cuda --backward` (issue 14 item 4): the f32 SIMT backward beside the
// forward, listed in the manifest for attnc.torch's autograd; a kernel without one says why, and
// the flag is refused where it means nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const attnc = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });
const manifestOf = (dir: string, name: string) =>
  JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { backward?: Record<string, unknown> };

describe('attnc compile --backward', () => {
  it('writes NAME_backward.cu and lists its functions, fields and gradient slots', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-'));
    const r = attnc(
      'compile',
      'stdlib/softcap.attn',
      '--target',
      'cuda',
      '--dtype',
      'bf16',
      '--backward',
      '--out',
      dir,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('softcap_backward.cu');
    const b = manifestOf(dir, 'softcap').backward!;
    expect(b).toMatchObject({
      available: true,
      code: 'softcap_backward.cu',
      launch: 'attnc_softcap_backward_launch',
      slots: 'attnc_softcap_backward_slots',
      gradParams: ['cap'],
      gradTensors: [],
      headDim: 64,
    });
    const code = readFileSync(join(dir, 'softcap_backward.cu'), 'utf8');
    expect(code).toContain('extern "C" cudaError_t attnc_softcap_backward_launch(');
    expect(code).toContain('extern "C" int attnc_softcap_backward_slots(');
    expect((b.fields as { name: string }[]).map((f) => f.name)).toContain('p_cap');
  });

  it('routing kernels get the SIMT backward; says why a kernel has none, and writes the forward anyway', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-'));
    expect(
      attnc('compile', 'stdlib/nsa_select.attn', '--target', 'cuda', '--backward', '--out', dir).status,
    ).toBe(0);
    const routed = manifestOf(dir, 'nsa_select').backward;
    expect(routed).toMatchObject({ available: true, engine: 'simt', dtype: 'f32' });
    expect((routed?.fields as { name: string }[]).map((f) => f.name)).toContain('indices');
    expect(existsSync(join(dir, 'nsa_select_backward.cu'))).toBe(true);
    const nolse = mkdtempSync(join(tmpdir(), 'attnc-bwd-'));
    expect(
      attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--no-lse', '--backward', '--out', nolse)
        .status,
    ).toBe(0);
    expect(manifestOf(nolse, 'causal').backward).toMatchObject({
      available: false,
      reason: expect.stringContaining('lse'),
    });
  });

  it('on wgsl needs --emit (the module then exports backward())', () => {
    const r = attnc('compile', 'stdlib/causal.attn', '--target', 'wgsl', '--backward');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--backward on wgsl needs --emit ts|js');
  });
});
