// WGSL tanh to f32 accuracy (rules.ts tanh_f32). Drivers' tanh, often (e^2x - 1) / (e^2x + 1),
// lost every digit near 0: softcap with cap = 1e5 disagreed with the reference by 1.35e-3, and
// by 0.12 at cap = 1e7. Through the CLI, on the WebGPU device, against the float64 reference.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const run = (cap: string) =>
  spawnSync(
    process.execPath,
    [
      'dist/src/cli/main.js',
      'run',
      'stdlib/softcap.attn',
      '--nq',
      '16',
      '--nk',
      '16',
      '--param',
      `cap=${cap}`,
    ],
    { encoding: 'utf8' },
  );

describe('softcap agrees with the reference for any cap', () => {
  it.each(['1e7', '1e5', '1e3', '30', '0.01'])('cap=%s', (cap) => {
    const r = run(cap);
    expect(r.stdout + r.stderr).toMatch(/agrees with the reference/);
    expect(r.status).toBe(0);
  });
});
