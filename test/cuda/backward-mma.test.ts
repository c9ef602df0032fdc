// The tensor-core CUDA backward (codegen/cuda/backward-mma.ts): the CPU emulator runs only SIMT
// code, so here nvcc builds every stdlib kernel with a backward (static masks and score
// modifiers) × D 64/128 × bf16/f16 for sm_80 and sm_90a with warnings as errors, and ptxas
// reports no spills; the refusals name the reason. The GPU check is bench/cuda/backward.py.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCudaBackwardMma } from '../../src/backward.js';
import { CompileError } from '../../src/diagnostics.js';
import { expectNoSpills, expectOk, run, scratchDir } from './support.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');

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

function translationUnit(): { code: string; kernels: number } {
  const parts: string[] = [];
  for (const dtype of ['bf16', 'f16'] as const)
    for (const headDim of [64, 128])
      for (const name of backwardPatterns) {
        const c = compileCudaBackwardMma(stdlib(name), { file: `${name}.attn`, headDim, dtype });
        // One namespace and extern "C" prefix per variant, so all share one translation unit.
        parts.push(
          c.backward.code.replaceAll(c.backward.namespace, `${c.backward.namespace}_${dtype}_d${headDim}`),
        );
      }
  return { code: parts.join('\n'), kernels: parts.length };
}

describe('tensor-core CUDA backward: nvcc', () => {
  for (const arch of ['sm_80', 'sm_90a']) {
    it(`builds every stdlib pattern × D 64/128 × bf16/f16 for ${arch}, warnings as errors, no spills`, async () => {
      const dir = scratchDir(`bwd-mma-${arch}`);
      const { code, kernels } = translationUnit();
      const cu = join(dir, 'backward.cu');
      writeFileSync(cu, code);
      const r = await run('nvcc', [
        `-arch=${arch}`,
        '-O3',
        '-c',
        '-Werror',
        'all-warnings',
        '-Xptxas',
        '-v',
        cu,
        '-o',
        join(dir, 'b.o'),
      ]);
      expectOk(r, `nvcc ${arch}`);
      // bwd_pre, bwd_dkdv and bwd_dq_out per variant (plus summaries).
      expectNoSpills(r.stderr, 3 * kernels);
    }, 900_000);
  }
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
  });
});
