// Paged quantized K/V caches with nvcc (no GPU needed): the tensor-core engines (wgmma on sm_90a,
// mma on sm_80), decode mode, the importance pass and selection passes read codes and side tensors
// through the block table (kv-rows.ts's kv_qrow) and build with warnings as errors. Execution:
// test/cuda/paged-quant-emu.test.ts (SIMT, decode), decode-mma-paged-quant-emu.test.ts (the
// tensor-core decode) and test/quant/tc-dequant-emu (the converter).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const dir = scratchDir('paged-quant-nvcc');

const sources: readonly string[] = [
  `attention pqn0() {\n  cache paged 64\n  store k int2 scale f16 per channel group 32 zero f16 recent 128 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 128 f16\n  mask causal\n}`,
  `attention pqn1(sal: i32[batch, kv_heads, kv]) {\n  cache paged 16\n  store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal\n  importance normalized\n  mask causal\n}`,
  `attention pqn2() {\n  cache paged 32\n  store k e4m3 scale f32 per tensor\n  store v int8 scale f16 per token\n  select topk(16) by q . k vote heads\n}`,
  // The tensor-core decode's paged code and scale fetch (decode-mma-paged.ts).
  `attention pqn3() {\n  cache paged 16\n  store kv int8 scale f16 per token\n  mask causal\n}`,
];

describe('the header types a paged quantized cache', () => {
  it('codes and row-indexed side tensors as pool pages, per-sequence tensors unpaged', () => {
    const h = compile(sources[0]!, { target: 'cuda', headDim: 64, dtype: 'f16' }).artifact.files!['pqn0.h']!;
    expect(h).toContain(
      'const void* k; /* pages [pages, Hkv, 64, 4] u32: int2 codes of a paged quantized cache',
    );
    // Per channel group 32 of 64-row pages: 2 scale rows per page; per token group 32: 2 groups a row.
    expect(h).toMatch(/k_scale; \/\* pages \[pages, Hkv, 2, 64\] \(scale groups\) through block_table/);
    expect(h).toMatch(/v_zero; \/\* pages \[pages, Hkv, 64, 2\] \(scale groups\) through block_table/);
    expect(h).toMatch(/k_recent; \/\* per sequence, not paged/);
    expect(h).toContain('const int* block_table;');
  });
});

describe('paged quantized K/V caches (nvcc, warnings as errors)', () => {
  for (const [arch, engine] of [
    ['sm_90a', 'wgmma'],
    ['sm_80', 'mma'],
  ] as const)
    it(`build for ${engine} (${arch}) at D = 64 and 128, with decode, importance and selection`, async () => {
      const parts: string[] = [];
      for (const [i, source] of sources.entries())
        for (const headDim of [64, 128]) {
          const a = compile(source, { target: 'cuda', headDim, dtype: 'bf16', arch }).artifact;
          if (i === 0) expect(a.schedule.engine).toBe(engine);
          expect(a.code).toContain('kv_qrow(');
          parts.push(a.code.replaceAll(`attnc_${a.name}`, `attnc_${a.name}_d${headDim}`));
        }
      const tu = join(dir, `paged-quant-${arch}.cu`);
      writeFileSync(tu, parts.join('\n'));
      const flags = quickCheckFlags(arch);
      expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
    }, 600_000);
});
