// `attnc compile --quant-prefill staged|fused` (Schedule.quantPrefill): staged writes the staged
// launch, workspace size and dequant pass into the manifest; fused keeps the per-tile converter;
// bad values, a non-CUDA target and a kernel with float K/V (either mode) are refused with a message.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const attnc = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });

const compileKivi = (mode: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-qp-'));
  const r = attnc(
    'compile',
    'stdlib/kivi.attn',
    '--target',
    'cuda',
    '--dim',
    '128',
    '--quant-prefill',
    mode,
    '--out',
    dir,
  );
  return { r, manifest: () => JSON.parse(readFileSync(join(dir, 'kivi.json'), 'utf8')) };
};

describe('--quant-prefill', () => {
  it('staged: the manifest has the staged launch and its workspace; fused has none', () => {
    const staged = compileKivi('staged');
    expect(staged.r.status).toBe(0);
    const m = staged.manifest();
    expect(m.schedule.quantPrefill).toBe('staged');
    expect(m.functions.launchStaged).toBe('attnc_kivi_launch_staged');
    expect(m.functions.workspaceBytes).toBe('attnc_kivi_workspace_bytes');
    const fused = compileKivi('fused');
    expect(fused.r.status).toBe(0);
    expect(fused.manifest().functions.launchStaged).toBeUndefined();
    expect(fused.manifest().schedule.quantPrefill).toBe('fused');
  });

  it('refuses a bad value, a WGSL target and float K/V', () => {
    const bad = compileKivi('fast');
    expect(bad.r.status).toBe(1);
    expect(bad.r.stderr).toContain('--quant-prefill expects staged or fused, got `fast`');
    const wgsl = attnc('compile', 'stdlib/kivi.attn', '--quant-prefill', 'staged');
    expect(wgsl.status).toBe(1);
    expect(wgsl.stderr).toContain('--quant-prefill staged needs --target cuda');
    const float = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--quant-prefill', 'staged');
    expect(float.status).toBe(1);
    expect(float.stderr).toContain("quantPrefill (--quant-prefill) 'staged' needs a quantized K or V cache");
    // fused too: both choose how quantized K/V is read, so over float K/V either is a mistake.
    const fusedFloat = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--quant-prefill', 'fused');
    expect(fusedFloat.status).toBe(1);
    expect(fusedFloat.stderr).toContain(
      "quantPrefill (--quant-prefill) 'fused' needs a quantized K or V cache",
    );
    expect(attnc('compile', '--help').stdout).toContain('--quant-prefill staged|fused');
  });
});
