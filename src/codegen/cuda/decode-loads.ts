// What decode mode's lane groups hold of a K/V chunk (decode.ts): a storage-type vector from the
// cp.async stages (decode-pipe.ts) for a float cache, an f32 chunk dequantized from the staged
// code words for a quantized one (decode-quant.ts); and the pointer alignment the loads need.
import type { AttentionKernel } from '../../ir/kernel.js';
import { isQuantChunk, quantChunkAlign } from './decode-quant.js';
import { streamRow } from './decode-pipe.js';
import { K_ROWS, V_ROWS, type KvTensor } from './kv-rows.js';

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
    isQuantChunk(k.formats[t.name]) ? String(streamRow(k, t).unit) : 'VW * sizeof(T)';
  // Code rows stream in copies of `unit` bytes; a salient cache's wide codes load as chunk words.
  const more = (['k', 'v'] as const).flatMap((w) => {
    const f = k.formats[w];
    const wide = f.kind === 'quant' && f.format.kind === 'int' && f.format.salient !== undefined;
    return wide ? [`ptr_ok(a.${field(`cache:${w}_codesHi`)}, ${quantChunkAlign(f, vw)})`] : [];
  });
  return { k: one(K_ROWS), v: one(V_ROWS), more };
}
