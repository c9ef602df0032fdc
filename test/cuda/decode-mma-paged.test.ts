// The tensor-core decode's quantized path fetches packed code rows, so a paged quantized cache (its
// pools addressed through the block table) must take the SIMT split kernel, which reads kv_qrow.
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
  });

  it('leaves paged ones to the SIMT kernel, which reads the pools through the block table', () => {
    const { kernel, code } = decodeOf('cache paged 16');
    expect(mmaQuantOf(kernel)).toBeUndefined();
    expect(code).not.toContain('dmq_k(');
    expect(code).toContain('kv_qrow');
  });
});
