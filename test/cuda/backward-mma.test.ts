// The tensor-core CUDA backward (codegen/cuda/backward-mma.ts): the CPU emulator runs only SIMT
// code, so here nvcc builds every stdlib kernel with a backward (static masks and score
// modifiers) × D 64/128 × bf16/f16 for sm_80 and sm_90a with warnings as errors, and ptxas
// reports no spills; the refusals name the reason. The GPU check is bench/cuda/backward.py.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCudaBackwardMma } from '../../src/backward.js';
import { CompileError } from '../../src/diagnostics.js';
import { expectNoSpills, expectOk, run, scratchDir, sassOnly } from './support.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');

/**
 * Measured exceptions (each at most expectNoSpills' 128 bytes). At D = 128 the dK and dV
 * accumulators hold 128 registers a thread; masks that read a tensor per element (document,
 * modality: two loads each, 64-bit addresses) and softcap on sm_80 (tanh and its two carried
 * derivatives; its deterministic bwd_dq in f16) go 8–40 bytes past the 255-register file (CUDA 13).
 */
const wide = [/attnc_(document|modality|softcap)_backward\w*bwd_(dkdv|dq)E/];
const KNOWN_SPILLS: Readonly<Record<string, readonly RegExp[]>> = {
  'sm_80 bf16 128': wide,
  'sm_80 f16 128': wide,
  'sm_90a bf16 64': wide, // document: 8 bytes
  'sm_90a f16 64': wide,
  'sm_90a bf16 128': wide,
  'sm_90a f16 128': wide,
};

/** Every stdlib kernel the backward covers: static masks, score modifiers, learnable gains. */
export const backwardPatterns = [
  'full',
  'causal',
  'sliding_window',
  'sink_window',
  'prefix_lm',
  'document',
  'dilated',
  'alibi',
  'softcap',
  'neighbourhood',
  'modality',
  'sink_calibration',
  'heavy_hitter',
] as const;

function translationUnit(dtype: 'bf16' | 'f16', headDim: number): { code: string; kernels: number } {
  const parts = backwardPatterns.map((name) => {
    const c = compileCudaBackwardMma(stdlib(name), { file: `${name}.attn`, headDim, dtype });
    return c.backward.code;
  });
  return { code: parts.join('\n'), kernels: parts.length };
}

describe('tensor-core CUDA backward: nvcc', () => {
  for (const arch of ['sm_80', 'sm_90a'])
    for (const dtype of ['bf16', 'f16'] as const)
      for (const headDim of [64, 128]) {
        it(`builds every stdlib pattern for ${arch}, ${dtype}, D = ${headDim}: warnings as errors, no spills`, async () => {
          const dir = scratchDir(`bwd-mma-${arch}`);
          const { code, kernels } = translationUnit(dtype, headDim);
          const cu = join(dir, 'backward.cu');
          writeFileSync(cu, code);
          const flags = [...sassOnly(arch), '-O3', '-cubin', '-Werror', 'all-warnings', '-Xptxas', '-v'];
          const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.cubin')], undefined, 600_000);
          expectOk(r, `nvcc ${arch}`);
          // bwd_pre, bwd_dkdv and bwd_dq_out per pattern (plus summaries).
          expectNoSpills(r.stderr, 3 * kernels, KNOWN_SPILLS[`${arch} ${dtype} ${headDim}`] ?? []);
        }, 900_000);
      }
});

describe('tensor-core CUDA backward, deterministic mode (bwd_dq, ordered param sums): nvcc', () => {
  for (const arch of ['sm_80', 'sm_90a'])
    it(`builds for ${arch} (bf16 and f16, D 64 and 128): warnings as errors, no spills`, async () => {
      const dir = scratchDir(`bwd-mma-det-${arch}`);
      const parts: string[] = [];
      for (const dtype of ['bf16', 'f16'] as const)
        for (const headDim of [64, 128])
          for (const name of ['causal', 'softcap', 'document', 'alibi', 'full']) {
            const c = compileCudaBackwardMma(stdlib(name), {
              file: name,
              headDim,
              dtype,
              deterministic: true,
            });
            parts.push(
              c.backward.code.replaceAll(c.backward.namespace, `${c.backward.namespace}_${dtype}_${headDim}`),
            );
          }
      const cu = join(dir, 'backward.cu');
      writeFileSync(cu, parts.join('\n'));
      const flags = [...sassOnly(arch), '-O3', '-cubin', '-Werror', 'all-warnings', '-Xptxas', '-v'];
      const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.cubin')], undefined, 600_000);
      expectOk(r, `nvcc ${arch}`);
      expectNoSpills(r.stderr, 3 * parts.length, wide);
    }, 900_000);
});

describe('tensor-core CUDA backward: refusals', () => {
  const refused = (source: string, opts: Partial<Parameters<typeof compileCudaBackwardMma>[1]>): string => {
    try {
      compileCudaBackwardMma(source, { file: 'x.attn', headDim: 64, dtype: 'bf16', ...opts });
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      return (e as Error).message;
    }
    throw new Error('compiled');
  };
  it('refuses routing kernels, quantized and paged caches, and head dims it has no tiling for', () => {
    expect(refused(stdlib('nsa_select'), {})).toMatch(/routing\/selection/);
    expect(refused(stdlib('kivi'), {})).toMatch(/quantized caches/);
    expect(refused(stdlib('paged-decode'), {})).toMatch(/paged caches/);
    expect(refused(stdlib('causal'), { headDim: 64, valueDim: 128 })).toMatch(/valueDim = headDim/);
    expect(refused(stdlib('sink_calibration'), { deterministic: true })).toMatch(/tensor gradients \(gain\)/);
  });
});
