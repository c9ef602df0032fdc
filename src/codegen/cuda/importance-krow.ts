// The key row of the importance pass (importance.ts): how a thread loads its k row into
// registers — vector loads of a float cache, k_dequant per element of a quantized one.
import { elementBytes } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { K_ROWS, kvHead, pagedQuantRow } from './kv-rows.js';
import { ARGS } from './rules.js';

/**
 * The statements that fill `krow` with key `col` of kv head `kvh` (`kRef`: the k Args field):
 * vector loads of a float cache's packed row, or, for a quantized cache, each element through
 * `k_dequant` (dequant.ts; every engine's core defines it) — the values the attention reads.
 */
export function keyRowLoad(
  k: AttentionKernel,
  alignBytes: number,
): { what: string; lines: (kRef: string) => string[] } {
  if (k.formats.k.kind === 'quant')
    return {
      what: 'dequantized',
      lines: () => [
        `const size_t kbh = (size_t)b * ${ARGS}.Hkv + kvh;`,
        '#pragma unroll',
        `for (int c = 0; c < D; ++c) krow[c] = k_dequant(${ARGS}, ${k.formats.paged ? pagedQuantRow(ARGS, 'kbh', 'col') : `kbh * (size_t)${ARGS}.Nk + col`}, col, c, kbh);`,
      ],
    };
  const kv = keyVector(k, alignBytes);
  // A paged cache's row comes through its block table (kv-rows.ts); the launcher keeps its
  // strides multiples of the core's vector width, which alignBytes is.
  const row = (kRef: string): string =>
    k.formats.paged
      ? `${kvHead(K_ROWS, 'b', 'kvh', true)}.row(col)`
      : `static_cast<const T*>(${kRef}) + ((size_t)(b * ${ARGS}.Hkv + kvh) * ${ARGS}.Nk + col) * D`;
  return {
    what: `${kv}-element vectors`,
    lines: (kRef) => [
      `const VecT<${kv}>* kg = reinterpret_cast<const VecT<${kv}>*>(${row(kRef)});`,
      '#pragma unroll',
      `for (int c = 0; c < D / ${kv}; ++c) {`,
      `  const VecT<${kv}> x = kg[c];`,
      '#pragma unroll',
      `  for (int e = 0; e < ${kv}; ++e) krow[c * ${kv} + e] = to_f32(x.v[e]);`,
      '}',
    ],
  };
}

/**
 * Elements per vector load of a k row: the widest of 16 bytes, 8, 4, … that divides D and that
 * the launcher's alignment of k (`alignBytes`) allows.
 */
function keyVector(k: AttentionKernel, alignBytes: number): number {
  const size = elementBytes(k.formats.k);
  for (let n = 16 / size; n > 1; n /= 2) if (k.schedule.headDim % n === 0 && n * size <= alignBytes) return n;
  return 1;
}
