// K/V tile loads of the TMA engine (wgmma-ws): the producer warp asks the TMA unit for a tile of
// 64-column panels (128B swizzle) per K and V, completing on the stage's mbarrier; the launcher
// describes K and V as 4-D tensor maps (columns, rows, kv heads, batches) carrying the caller's
// strides (kv-rows.ts), so a preallocated cache or a BNHD view is read in place. Rows past Nk
// arrive as zeros. A paged cache does not come here: its last page's rows past Nk hold whatever
// the pool holds, which the TMA unit cannot zero, so the schedule gives it a cp.async engine.
// A quantized K or V is not a TMA tensor: the producer warpgroup converts it into the stage
// instead (wgmma-ws-dq.ts), and it gets no tensor map.
import type { TensorFormats } from '../../ir/formats.js';
import { K_ROWS, V_ROWS, kvTmaCoords, kvTmaShape, type KvTensor } from './kv-rows.js';

const tile = (t: KvTensor): string => (t.name === 'k' ? 'Ks' : 'Vs');
const map = (t: KvTensor): string => (t.name === 'k' ? 'tmk' : 'tmv');

const request = (t: KvTensor): string =>
  `    tma_kv_panels<${t.width}, BK>(${tile(t)} + st * (BK * ${t.width}), ${map(t)}, ${kvTmaCoords('kt * BK', 'b', 'hkv')}, &full_bar[st]);`;

/** The producer's requests for K/V tile `kt` of kv head `hkv` into stage `st`. */
export const tmaLoadKv: readonly string[] = [K_ROWS, V_ROWS].map(request);

/** The requests for those of K and V in `which` alone. */
export const tmaLoadKvOf = (which: readonly ('k' | 'v')[]): string[] =>
  [K_ROWS, V_ROWS].filter((t) => which.includes(t.name)).map(request);

/** Device: the 4-D bulk tensor copy and the panel loop over it (after tma_load's definitions). */
export const tmaKvDevice: readonly string[] = [
  '// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of kv head c2 of batch c3 → dst',
  '// (the K/V maps are 4-D: kv-load-tma.ts); completes on `bar` like tma_load.',
  '__device__ __forceinline__ void tma_load4(T* dst, const TmaMap& map, int c0, int c1, int c2, int c3, uint64_t* bar) {',
  '  asm volatile(',
  '      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\\n"',
  '      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(bar))',
  '      : "memory");',
  '}',
  '',
  '// A [ROWS][W] K/V tile (rows row.., kv head hkv, batch b) as W/64 panels of [ROWS][64].',
  'template <int W, int ROWS>',
  '__device__ __forceinline__ void tma_kv_panels(T* dst, const TmaMap& map, int row, int hkv, int b, uint64_t* bar) {',
  '#pragma unroll',
  '  for (int p = 0; p < W / 64; ++p) tma_load4(dst + p * (ROWS * 64), map, p * 64, row, hkv, b, bar);',
  '}',
];

/** Host: encode_kv_panels, the 4-D K/V map with the caller's strides (elements). */
export function tmaKvHost(dataType: number, swizzle: number, l2: number): string[] {
  return [
    '[[maybe_unused]] static int encode_kv_panels(EncodeTiledFn fn, TmaMap* map, const void* base, int width, int rows, int heads,',
    '                            int batches, long long sn, long long sh, long long sb, int box_rows) {',
    '  const unsigned long long dims[4] = {(unsigned long long)width, (unsigned long long)rows, (unsigned long long)heads,',
    '                                      (unsigned long long)batches};',
    '  const unsigned long long strides[3] = {(unsigned long long)sn * sizeof(T), (unsigned long long)sh * sizeof(T),',
    '                                         (unsigned long long)sb * sizeof(T)};',
    '  const unsigned box[4] = {64u, (unsigned)box_rows, 1u, 1u};',
    '  const unsigned elem_strides[4] = {1u, 1u, 1u, 1u};',
    `  return fn(map, ${dataType}, 4, const_cast<void*>(base), dims, strides, box, elem_strides, 0,`,
    `            ${swizzle} /* 128B swizzle */, ${l2} /* L2 256B promotion */, 0 /* zero fill */);`,
    '}',
  ];
}

/** Host: tensor maps 1 and 2 (K and V) of make_tma_maps, boxes of BK rows. */
export const tmaKvMaps: readonly string[] = [K_ROWS, V_ROWS].map(
  (t, i) =>
    `  if (encode_kv_panels(encode, &maps[${i + 1}], ${kvTmaShape(t)}, BK) != 0) return "cannot describe ${t.name} to the TMA unit (its strides must be multiples of 16 bytes)";`,
);

/** The K/V tensor maps of make_tma_maps for `formats`: none for a quantized cache (left zero). */
export const tmaKvMapsOf = (formats: TensorFormats): string[] =>
  tmaKvMaps.filter((_, i) => formats[i === 0 ? 'k' : 'v'].kind !== 'quant');
