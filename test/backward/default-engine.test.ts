// Which CUDA backward a kernel gets when none is asked for (src/backward.ts, defaultBackwardEngines
// and cudaBackwardBeside): f32 → SIMT; f16/bf16 → wgmma on sm_90a, mma.sync on sm_80–89, each
// falling back to the next engine that takes the kernel; an engine asked for is never replaced.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cudaBackwardBeside, defaultBackwardEngines } from '../../src/backward.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');

function engineOf(
  name: string,
  headDim: number,
  choice: Parameters<typeof cudaBackwardBeside>[2],
): { engine?: string; dtype?: string; reason?: string } {
  const { manifest } = cudaBackwardBeside(stdlib(name), { file: `${name}.attn`, headDim }, choice);
  return manifest.available
    ? { engine: manifest.engine, dtype: manifest.dtype }
    : { reason: manifest.reason };
}

describe('default CUDA backward engine', () => {
  it('orders the engines by dtype and arch', () => {
    expect(defaultBackwardEngines('f32', 'sm_90a')).toEqual(['simt']);
    expect(defaultBackwardEngines('f32', 'sm_80')).toEqual(['simt']);
    expect(defaultBackwardEngines('bf16', 'sm_90a')).toEqual(['wgmma', 'mma', 'simt']);
    expect(defaultBackwardEngines('f16', 'sm_90a')).toEqual(['wgmma', 'mma', 'simt']);
    for (const arch of ['sm_80', 'sm_86', 'sm_89'])
      expect(defaultBackwardEngines('bf16', arch)).toEqual(['mma', 'simt']);
  });

  it('gives 16-bit kernels the tensor-core backward of their arch and f32 kernels SIMT', () => {
    expect(engineOf('causal', 128, { dtype: 'bf16', arch: 'sm_90a' })).toEqual({
      engine: 'wgmma',
      dtype: 'bf16',
    });
    expect(engineOf('softcap', 64, { dtype: 'f16', arch: 'sm_80' })).toEqual({ engine: 'mma', dtype: 'f16' });
    // Its two carried slots take it to 148,480 bytes of shared memory: past sm_86's 99 KiB.
    expect(engineOf('softcap', 64, { dtype: 'f16', arch: 'sm_86' })).toEqual({
      engine: 'simt',
      dtype: 'f32',
    });
    expect(engineOf('causal', 64, { dtype: 'f32', arch: 'sm_90a' })).toEqual({
      engine: 'simt',
      dtype: 'f32',
    });
    // No dtype: the f32 path (what a float64 gradcheck runs through).
    expect(engineOf('causal', 64, {})).toEqual({ engine: 'simt', dtype: 'f32' });
  });

  it('falls back to SIMT where no tensor-core engine takes the kernel, and says why an asked one cannot', () => {
    expect(engineOf('causal', 96, { dtype: 'bf16', arch: 'sm_90a' })).toEqual({
      engine: 'simt',
      dtype: 'f32',
    });
    expect(engineOf('causal', 96, { dtype: 'bf16', arch: 'sm_80' })).toEqual({
      engine: 'simt',
      dtype: 'f32',
    });
    expect(engineOf('causal', 96, { dtype: 'bf16', arch: 'sm_90a', engine: 'wgmma' }).reason).toMatch(
      /headDim/,
    );
  });

  it("falls back to SIMT where the mma.sync kernel needs more shared memory than the arch's opt-in limit", () => {
    // sm_86 / sm_89 (RTX 30xx / 40xx, L4, L40) allow 99 KiB a block; the mma.sync dK/dV kernel at
    // D = 128 asks more, and its launch would fail there. sm_80 (163 KiB) keeps it.
    for (const arch of ['sm_86', 'sm_89']) {
      expect(engineOf('causal', 128, { dtype: 'bf16', arch }), arch).toEqual({
        engine: 'simt',
        dtype: 'f32',
      });
      expect(engineOf('causal', 64, { dtype: 'bf16', arch }), arch).toEqual({ engine: 'mma', dtype: 'bf16' });
      expect(engineOf('causal', 128, { dtype: 'bf16', arch, engine: 'mma' }).reason).toMatch(
        new RegExp(`the mma backward needs \\d+ bytes of shared memory, more than ${arch}'s 101376`),
      );
    }
    expect(engineOf('causal', 128, { dtype: 'bf16', arch: 'sm_80' })).toEqual({
      engine: 'mma',
      dtype: 'bf16',
    });
  });

  it('takes SIMT for routing kernels, which the tensor-core engines refuse', () => {
    expect(engineOf('nsa_select', 64, { dtype: 'bf16', arch: 'sm_90a' })).toEqual({
      engine: 'simt',
      dtype: 'f32',
    });
    expect(engineOf('dhsa', 64, { dtype: 'f16', arch: 'sm_80' })).toEqual({ engine: 'simt', dtype: 'f32' });
    expect(engineOf('nsa_select', 64, { dtype: 'bf16', arch: 'sm_90a', engine: 'mma' }).reason).toMatch(
      /routing\/selection kernels; the SIMT backward does \(--backward-engine simt\)/,
    );
  });

  it('a paged kernel has none, and the manifest says why in words', () => {
    // The reason read "the CUDA backward pass is f32 only; paged is stored as undefined": the
    // check walked every entry of the formats, the page size among them, as a storage format.
    for (const dtype of ['f32', 'bf16'] as const)
      expect(engineOf('paged-decode', 64, { dtype })).toEqual({
        reason: 'the backward pass does not read paged K/V caches yet',
      });
  });
});
