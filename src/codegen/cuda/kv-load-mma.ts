// K/V (and Q) tile loads of the cp.async engines (mma: ldmatrix-swizzled tiles; wgmma: 128B
// panels): 16-byte cp.async row gathers into a swizzled shared-memory tile, rows past the valid
// count zero-filled. One renderer makes every variant — the swizzle and whether rows are `W` or
// `stride` apart (a residue class's rows) are arguments; the head pointers and row offsets come
// from kv-rows.ts. Dequantization of a K/V format will plug in here (load, convert, st.shared in
// place of cp.async).
import { kvFrom } from './kv-rows.js';

export interface CpAsyncLoader {
  /** Template name: `NAME<W, ROWS>(dst, src, valid_rows, tid)` (strided: `…, stride, …`). */
  readonly name: string;
  /** Shared-memory element offset of (r, c * 8) in the tile. */
  readonly swizzle: string;
  /** Rows `stride` elements apart (a residue class's rows or keys), else W apart. */
  readonly strided: boolean;
  readonly comment: readonly string[];
}

export function cpAsyncLoader(l: CpAsyncLoader): string[] {
  // Packed rows `stride` apart (a residue class's Q rows), or row_addr's rows of a pointer (rows
  // W apart: Q) or a KvFrom (K/V rows: kv-rows.ts).
  const src = l.strided ? 'src + (size_t)(ok ? r : 0) * stride' : 'row_addr(src, ok ? r : 0, W)';
  const params = l.strided
    ? 'T* dst, const T* src, size_t stride, int valid_rows, int tid'
    : 'T* dst, const Src& src, int valid_rows, int tid';
  return [
    ...l.comment,
    l.strided ? 'template <int W, int ROWS>' : 'template <int W, int ROWS, class Src>',
    `__device__ __forceinline__ void ${l.name}(${params}) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '#pragma unroll',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % THREADS == 0 || idx < TOTAL) {',
    '      const bool ok = r < valid_rows;',
    `      cp_async16(dst + ${l.swizzle}, ${src} + c * 8, ok);`,
    '    }',
    '  }',
    '}',
  ];
}

/**
 * The body of the cores' `load_kv(kt, buf)` lambda: K and V tile `kt` into buffer `buf`, all keys
 * of the head (`kg`/`vg`: KvRows handles, kv-rows.ts) or, under residue classes, the unit's keys
 * key0 + step·j.
 */
export function mmaLoadKv(loader: string, residue: boolean): string[] {
  const [first, step, valid] = residue
    ? ['(long long)ru.key0 + (long long)ru.step * kt * BK', '(long long)ru.step', 'ru.nk - kt * BK']
    : ['(long long)kt * BK', '1', 'a.Nk - kt * BK'];
  return [
    `  ${loader}<D, BK>(Ks + buf * (BK * D), ${kvFrom('kg', first, step)}, ${valid}, tid);`,
    `  ${loader}<DV, BK>(Vs + buf * (BK * DV), ${kvFrom('vg', first, step)}, ${valid}, tid);`,
  ];
}
