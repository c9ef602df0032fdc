// K/V (and Q) tile loads of the cp.async engines (mma: ldmatrix-swizzled tiles; wgmma: 128B
// panels): 16-byte cp.async row gathers into a swizzled shared-memory tile, rows past the valid
// count zero-filled. One renderer makes every variant — the swizzle and whether rows are `W` or
// `stride` apart (a residue class's rows) are arguments; the head pointers and row offsets come
// from kv-rows.ts. Dequantization of a K/V format will plug in here (load, convert, st.shared in
// place of cp.async).
import { kvRowOffset } from './kv-rows.js';

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
  const stride = l.strided ? 'stride' : 'W';
  const params = l.strided
    ? 'T* dst, const T* src, size_t stride, int valid_rows, int tid'
    : 'T* dst, const T* src, int valid_rows, int tid';
  return [
    ...l.comment,
    'template <int W, int ROWS>',
    `__device__ __forceinline__ void ${l.name}(${params}) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '#pragma unroll',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % THREADS == 0 || idx < TOTAL) {',
    '      const bool ok = r < valid_rows;',
    `      cp_async16(dst + ${l.swizzle}, src + ${kvRowOffset('(ok ? r : 0)', stride)} + c * 8, ok);`,
    '    }',
    '  }',
    '}',
  ];
}

/**
 * The body of the cores' `load_kv(kt, buf)` lambda: K and V tile `kt` into buffer `buf`, all keys
 * of the head (`kg`/`vg` from kvHeadPtr) or, under residue classes, the unit's keys key0 + step·j.
 */
export function mmaLoadKv(loader: string, residue: boolean): string[] {
  if (residue) {
    const row = '((size_t)ru.key0 + (size_t)ru.step * kt * BK)';
    return [
      `  ${loader}_strided<D, BK>(Ks + buf * (BK * D), kg + ${kvRowOffset(row, 'D', true)}, (size_t)ru.step * D, ru.nk - kt * BK, tid);`,
      `  ${loader}_strided<DV, BK>(Vs + buf * (BK * DV), vg + ${kvRowOffset(row, 'DV', true)}, (size_t)ru.step * DV, ru.nk - kt * BK, tid);`,
    ];
  }
  return [
    `  ${loader}<D, BK>(Ks + buf * (BK * D), kg + ${kvRowOffset('kt * BK', 'D')}, a.Nk - kt * BK, tid);`,
    `  ${loader}<DV, BK>(Vs + buf * (BK * DV), vg + ${kvRowOffset('kt * BK', 'DV')}, a.Nk - kt * BK, tid);`,
  ];
}
