// The tensor-core decode over quantized caches (decode-mma-quant.ts) takes paged ones too: code rows
// through the block table (kv-rows.ts CodePages, decode-mma-paged.ts) and scales by kv_qrow. Their
// execution is test/cuda/decode-mma-paged-quant-emu.test.ts.
import { describe, expect, it } from 'vitest';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { mmaQuantOf } from '../../src/codegen/cuda/decode-mma-quant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';

const decodeOf = (cache: string) => {
  const source = `attention pq() {\n  ${cache}\n  store kv int8 scale f16 per token\n  mask causal\n}`;
  const kernel = compile(source, { target: 'cuda', headDim: 128, valueDim: 128, dtype: 'bf16' }).kernel;
  return {
    kernel,
    code: decodeSource(kernel, cudaLayout(kernel), `attnc_${kernel.name}`).split(DEVICE_END)[0]!,
  };
};

describe('tensor-core decode over quantized caches', () => {
  it('takes packed int8 caches with per-token f16 scales', () => {
    const { kernel, code } = decodeOf('');
    expect(mmaQuantOf(kernel)).toBeDefined();
    expect(code).toContain('dmq_k(');
    expect(code).not.toContain('CodePages');
  });

  it('takes paged ones, reading code rows and scales through the block table', () => {
    const { kernel, code } = decodeOf('cache paged 16');
    expect(mmaQuantOf(kernel)).toBeDefined();
    expect(code).toContain('dmq_k(');
    // One pass over the block table a tile (K, V and scale page ids before any copy); the separate
    // fetches stay for shapes it does not cover.
    expect(code).toContain('dm_fetch_tile_pages<D, KPB, DV, VPB>(kcp, vcp,');
    expect(code).toContain('dm_fetch_code_pages<KW, KP>(kg,');
    expect(code).toContain('dm_fetch_scale_pages(');
    expect(code).not.toContain('dm_fetch_codes<D, KPB>(kc,');
  });
});
