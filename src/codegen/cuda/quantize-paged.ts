// The paged variant of the CUDA quantize kernels (quantize.ts; docs/LANGUAGE.md, "Quantizing into
// a paged cache"): where a token's rows and scale groups are in the pools, and the launcher's
// checks of the block-table arguments. Only a `cache paged P` kernel's code uses them, so unpaged
// kernels' code does not change.

/**
 * Where the rows of a paged cache are (quant/paged-layout.ts; the attention's kv_qrow): token t
 * of (b, h) is row t mod PAGE of page block_table[b][t / PAGE] in [pages, Hkv, PAGE] rows, and a
 * per-channel scale of GROUP tokens is that row / GROUP (GROUP divides PAGE: the checker); the
 * per-sequence scales (per tensor, per channel without a group) are unpaged. -1 for a page id
 * outside the pools: the passes skip its writes, so a bad table never writes outside the pools.
 */
export const pagedRows = String.raw`__device__ __forceinline__ long code_row(const Args& a, int bh, int t) {
  const int id = a.block_table[(long)(bh / a.Hkv) * a.max_pages + t / PAGE];
  return id >= 0 && id < a.pages ? ((long)id * a.Hkv + bh % a.Hkv) * PAGE + t % PAGE : -1;
}
__device__ __forceinline__ long scale_index(const Args& a, int bh, int t, int c) {
  if (GRAN <= 1) return 0;
  if (GRAN == 3 && !GROUP) return (long)bh * D + c;
  const long row = code_row(a, bh, t);
  if (row < 0) return -1;
  return GRAN == 2 ? row * CHANNEL_GROUPS + (GROUP ? c / GDIV : 0) : row / GDIV * D + c;
}`;

/**
 * A paged cache's launcher checks: the block table's capacity covers Nk (so no rewritten row is
 * past it) and the pool has pages. Page ids are in device memory, which a launch cannot read
 * first: the kernels skip rows whose page id is outside [0, pages), writing nothing outside the
 * pools (docs/LANGUAGE.md, "Quantizing into a paged cache").
 */
export function pagedChecks(cache: 'k' | 'v', P: number, ns: string): string[] {
  const fail = (msg: string, args: string) =>
    `return ${ns}::fail(ATTNC_ERR_ARGS, "quantize ${cache}: ${msg}", ${args});`;
  return [
    `  if (a.max_pages < 0 || (long)a.max_pages * ${P} < a.Nk) ${fail(`the block table's max_pages=%d pages of ${P} rows hold fewer than Nk=%d tokens`, 'a.max_pages, a.Nk')}`,
    `  if (a.pages < 0 || (a.Nk > 0 && a.pages == 0)) ${fail('pages=%d: the pools hold no page', 'a.pages')}`,
  ];
}
