// Where K/V rows live, for every CUDA engine: K is [B, Hkv, Nk, D] and V [B, Hkv, Nk, DV], so key
// j of (batch b, kv head hkv) is row (b·Hkv + hkv)·Nk + j. Every K/V load of the backend (SIMT,
// cp.async, TMA, decode, selected-key attention) takes its addresses from this file: a paged
// cache (a block table) or a cache whose capacity differs from Nk changes these functions, not
// the engines. The forms differ only in where the head's offset is folded in (a head pointer, a
// global row, TMA coordinates), because each engine's emitted code is pinned as it is.

/** K or V: which Args field holds it and the width of its rows. */
export interface KvTensor {
  readonly name: 'k' | 'v';
  /** Row width: the constexpr `D` or `DV`. */
  readonly width: 'D' | 'DV';
}

export const K_ROWS: KvTensor = { name: 'k', width: 'D' };
export const V_ROWS: KvTensor = { name: 'v', width: 'DV' };

/** Pointer (const T*) to key 0 of kv head `hkv` of batch `b`. */
export function kvHeadPtr(t: KvTensor, b: string, hkv: string): string {
  return `static_cast<const T*>(a.${t.name}) + (size_t)(${b} * a.Hkv + ${hkv}) * a.Nk * ${t.width}`;
}

/** Declarations of K and V head pointers (names.k, names.v) of kv head `hkv` of batch `b`. */
export function kvHeadPtrDecls(names: { k: string; v: string }, b: string, hkv: string): string[] {
  return [
    `const T* ${names.k} = ${kvHeadPtr(K_ROWS, b, hkv)};`,
    `const T* ${names.v} = ${kvHeadPtr(V_ROWS, b, hkv)};`,
  ];
}

/** Pointer (const T*) to the whole K or V tensor (`field`: its Args member), for global rows. */
export function kvTensorPtr(field: string): string {
  return `static_cast<const T*>(${field})`;
}

/** Global row (size_t) of key 0 of kv head `hkv` of batch `b`, for engines that index whole tensors. */
export function kvHeadRow(b: string, hkv: string): string {
  return `((size_t)${b} * a.Hkv + ${hkv}) * a.Nk`;
}

/**
 * Element offset of row `row` (an int, or a size_t expression when `sized`) of rows `width`
 * elements wide, from a head pointer (or from the tensor start, for a global row).
 */
export function kvRowOffset(row: string, width: string, sized = false): string {
  return sized ? `${row} * ${width}` : `(size_t)${row} * ${width}`;
}

/** TMA coordinates (row, slice) of key `row` of kv head `hkv` of batch `b`: K/V are 3-D maps. */
export function kvTmaCoords(row: string, b: string, hkv: string): string {
  return `${row}, ${b} * a.Hkv + ${hkv}`;
}

/** The 3-D TMA shape of K or V (width, rows per slice, slices): the launcher's tensor maps. */
export function kvTmaShape(t: KvTensor): string {
  return `a.${t.name}, ${t.width}, a.Nk, a.B * a.Hkv`;
}
