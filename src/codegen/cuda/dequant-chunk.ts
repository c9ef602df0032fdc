// `<k|v>_chunk8(a, wrow, row, t, c0, bh, v)`: channels c0 .. c0 + 7 (c0 a multiple of 8, the head
// dim too) of one token of a quantized cache, its code words at `wrow` (global, or staged in
// shared memory by the wgmma-ws producer), for the tensor-core engines' tile converter
// (dequant-tile.ts). The same f32 operations in the same order as `<k|v>_dequant` (dequant.ts),
// so the values are identical, but the chunk's code words are loaded once (8 codes are 2 words
// of int8 or fp8, 1 of int4, half of int2) and a per-token scale once: the converter runs in
// the wgmma-ws producer warpgroup beside the consumers, and element-wise decoding would make it
// the bottleneck. Recent-window and salient tokens (rare) go element by element.
import type { TensorFormat } from '../../ir/formats.js';
import { codesPerWord, elemBits } from '../../quant/elem.js';
import type { QuantFormat } from '../../quant/format.js';
import {
  fp8,
  readFloat,
  salientFlagIndex,
  salientFlagRef,
  scaleIndex,
  type CudaCachePart,
} from './dequant.js';

type Which = 'k' | 'v';

/** Statements turning `raw` (one code's bits) into `v`, as dequant.ts's rawLines do. */
function decodeRaw(q: QuantFormat): string[] {
  if (q.kind === 'fp8') return fp8(q.elem);
  const bits = elemBits(q.elem);
  return [`v = ${q.zero ? '(float)raw' : `(float)((int)(raw << ${32 - bits}) >> ${32 - bits})`};`];
}

/** Zero point, scale and normalizer, in the language's order (dequant.ts's dequantFunction). */
function affine(q: QuantFormat, W: string, p: (part: CudaCachePart) => string, paged: boolean): string[] {
  const lines: string[] = [];
  if (q.scale) {
    lines.push(`const size_t g = ${scaleIndex(q.scale.per, W, paged)};`);
    if (q.kind === 'int' && q.zero) lines.push(`v = v - ${readFloat(p('zero'), q.zero, 'g')};`);
    lines.push(`v = v * ${readFloat(p('scale'), q.scale.dtype, 'g')};`);
  }
  if (q.norm) lines.push(`v = v * ${readFloat(p('norm'), q.norm, `bh * ${W} + c`)};`);
  return lines;
}

/** The chunk function of cache `which` (none for a float cache). */
export function chunkFunction(
  which: Which,
  f: TensorFormat,
  field: (key: string) => string,
  paged = false,
): string[] {
  if (f.kind !== 'quant') return [];
  const q = f.format;
  const W = which === 'k' ? 'D' : 'DV';
  const p = (part: CudaCachePart): string => `a.${field(`cache:${which}_${part}`)}`;
  const bits = elemBits(q.elem);
  const per = codesPerWord(q.elem);
  const words = Math.ceil((8 * bits) / 32);
  const rare: string[] = [];
  if (q.recent) rare.push(`t >= a.Nk - min(${q.recent.tokens}, a.Nk)`);
  if (q.kind === 'int' && q.salient && f.salient !== undefined)
    rare.push(`${salientFlagRef(f, field)}[${salientFlagIndex(paged)}] != 0`);
  const body = [
    ...(rare.length
      ? [
          `if (${rare.join(' || ')}) { // recent or salient: element by element`,
          '#pragma unroll',
          `  for (int u = 0; u < 8; ++u) out[u] = ${which}_dequant(a, row, t, c0 + u, bh);`,
          '  return;',
          '}',
        ]
      : []),
    `const unsigned* wp = wrow + c0 / ${per};`,
    `unsigned w[${words}];`,
    '#pragma unroll',
    `for (int i = 0; i < ${words}; ++i) w[i] = wp[i];`,
    // int2: 8 codes are half a word, the upper half when c0 % 16 == 8.
    ...(per > 8 ? [`w[0] >>= (c0 % ${per}) * ${bits};`] : []),
    '#pragma unroll',
    'for (int u = 0; u < 8; ++u) {',
    '  const int c = c0 + u;',
    '  (void)c;',
    `  const unsigned raw = (w[(u * ${bits}) / 32] >> ((u * ${bits}) % 32)) & ${(1 << bits) - 1}u;`,
    '  float v;',
    ...decodeRaw(q).map((l) => `  ${l}`),
    ...affine(q, W, p, paged).map((l) => `  ${l}`),
    '  out[u] = v;',
    '}',
  ];
  return [
    `__device__ __forceinline__ void ${which}_chunk8(const Args& a, const unsigned* wrow, size_t row, int t, int c0, size_t bh, float (&out)[8]) {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ];
}
