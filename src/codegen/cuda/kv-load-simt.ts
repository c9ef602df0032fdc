// K/V loads of the SIMT engines (the FMA core, decode mode, selected-key attention): plain vector
// loads from global memory in the storage type T, widened to f32 by to_f32/store_f32. What varies
// is an argument: the tensor (K or V: Args field and row width), the vector width, and the row
// (a tile of the head, decode's split range as global rows, or a gathered selected key); the
// addresses come from kv-rows.ts. Dequantization of a K/V format will plug in at these loads.
import { kvAt, type KvTensor } from './kv-rows.js';

/**
 * `load_tile<W>(dst, src, kt, Nk, tid)`: stages rows [kt·BK, kt·BK + BK) of a head's K or V (src
 * a KvRows handle, kv-rows.ts) as f32, GV-element vectors; rows past Nk read 0.
 */
export function simtLoadTile(): string[] {
  return [
    '// Stages rows [kt*BK, kt*BK + BK) of a [Nk, W] matrix as f32; rows past Nk read 0. Fully',
    '// unrolled so every thread has all its loads in flight before the first store.',
    'template <int W>',
    '__device__ __forceinline__ void load_tile(float* dst, const KvRows& src, int kt, int Nk, int tid) {',
    '  constexpr int PER_ROW = W / GV, TOTAL = BK * PER_ROW, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '  VecT<GV> x[ITERS];',
    '#pragma unroll',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, j = idx / PER_ROW, c = idx % PER_ROW, key = kt * BK + j;',
    `    if (idx < TOTAL && key < Nk) x[it] = *reinterpret_cast<const VecT<GV>*>(${kvAt('src', 'key', 'c * GV')});`,
    '    else x[it] = VecT<GV>::zero();',
    '  }',
    '#pragma unroll',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS;',
    '    if (idx < TOTAL) store_f32(dst + idx * GV, x[it]);',
    '  }',
    '}',
  ];
}

/** The SIMT core's stage of K and V tile `kt` into Ks and Vs. */
export const simtLoadKv: readonly string[] = [
  'load_tile<D>(Ks, kg, kt, a.Nk, tid);',
  'load_tile<DV>(Vs, vg, kt, a.Nk, tid);',
];

/**
 * Decode: chunk c (VW elements at lane·VW + 8·c·VW) of key `kj` of tensor `t` (`handle`: its
 * KvRows for the split's (batch, kv head), kvHeadPtrDecls), or zero when `valid` fails.
 */
export function decodeKvVector(_t: KvTensor, handle: string, valid: string): string {
  const at = kvAt(handle, 'kj', '(lane + 8 * c) * VW');
  return `${valid} ? *reinterpret_cast<const VecT<VW>*>(${at}) : VecT<VW>::zero()`;
}

/** Selected-key attention: the SEL_VW-vector at column d of key j of a KvRows handle. */
export function selectKvVector(_t: KvTensor, handle: string): string {
  return `*reinterpret_cast<const VecT<SEL_VW>*>(${kvAt(handle, 'j', 'd')})`;
}
