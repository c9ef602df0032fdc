// How decode mode's lane groups get their K/V chunks (decode.ts): a storage-type vector from
// global memory or from the cp.async stages (decode-pipe.ts) for a float cache, an f32 chunk
// dequantized in the load for a quantized one (decode-quant.ts); and the key loop that loads
// chunks straight into registers, which quantized caches take.
import type { AttentionKernel } from '../../ir/kernel.js';
import { isQuantChunk, quantChunkAlign } from './decode-quant.js';
import { decodeKvVector } from './kv-load-simt.js';
import { K_ROWS, V_ROWS, type KvTensor } from './kv-rows.js';

/** K or V chunk c of key kj: a storage-type vector, or an f32 chunk of a quantized cache. */
export function kvChunk(k: AttentionKernel, t: KvTensor, ptr: string, valid: string): string {
  if (!isQuantChunk(k.formats[t.name])) return decodeKvVector(t, ptr, valid);
  return `${valid} ? ${t.name}_chunk(a, kv0 + kj, kj, (lane + 8 * c) * VW, bh) : FChunk{}`;
}

/** Element e of chunk `x` (an expression) of tensor t as f32. */
export function chunkElem(k: AttentionKernel, t: KvTensor, x: string): string {
  return isQuantChunk(k.formats[t.name]) ? `${x}.v[e]` : `to_f32(${x}.v[e])`;
}

/** Declared type of a K or V chunk. */
export const chunkType = (k: AttentionKernel, t: KvTensor): string =>
  isQuantChunk(k.formats[t.name]) ? 'FChunk' : 'VecT<VW>';

/** Host alignment (bytes) of the k and v pointers the chunk loads need, for quantized kernels. */
export function kvAlignment(
  k: AttentionKernel,
  vw: number,
  field: (key: string) => string,
): { k: string; v: string; more: string[] } {
  const one = (t: KvTensor): string =>
    isQuantChunk(k.formats[t.name]) ? String(quantChunkAlign(k.formats[t.name], vw)) : 'VW * sizeof(T)';
  // A salient cache's wide codes are loaded the same way.
  const more = (['k', 'v'] as const).flatMap((w) => {
    const f = k.formats[w];
    const wide = f.kind === 'quant' && f.format.kind === 'int' && f.format.salient !== undefined;
    return wide ? [`ptr_ok(a.${field(`cache:${w}_codesHi`)}, ${quantChunkAlign(f, vw)})`] : [];
  });
  return { k: one(K_ROWS), v: one(V_ROWS), more };
}

/**
 * The split kernel's key loop loading K/V chunks straight from global memory into registers, V
 * with K (one memory round trip per tile): quantized caches, whose chunks dequantize in the load.
 */
export function registerLoop(
  k: AttentionKernel,
  classify: readonly string[],
  tile: (load: { k: string; v: string }) => string[],
): string[] {
  return [
    '  for (int t0 = k_begin; t0 < k_end; t0 += TILE) {',
    '    const int t1 = min(t0 + TILE, k_end);',
    ...classify,
    '    if (!any) continue; // the same for every thread of the block: no K/V read',
    ...tile({ k: kvChunk(k, K_ROWS, 'kg', 'valid'), v: kvChunk(k, V_ROWS, 'vg', 'kj < t1') }),
    '  }',
  ];
}
