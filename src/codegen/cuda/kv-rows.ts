// Where K/V rows live, for every CUDA engine. Every K/V load of the backend (SIMT, cp.async,
// TMA, decode, selected-key attention) takes its addresses from this file.
//
// Strided (the default): key j of (batch b, kv head hkv) starts at element
//   b·k_stride_b + hkv·k_stride_h + j·k_stride_n
// of `k` (V alike with v_stride_*), the strides runtime arguments: args_init sets the packed
// [B, Hkv, Nk, D] ones, a caller may pass a preallocated cache of capacity C > Nk (stride_h =
// C·D), a BNHD view (stride_h = D, stride_n = Hkv·D) or any layout whose last dim is contiguous.
//
// Paged (`cache paged P`, formats.paged): key j of (b, hkv) is row j mod P of page
// block_table[b·max_pages + j / P], and a page holds [Hkv, P, D] rows at k + page·k_stride_b
// (stride_b is the page stride, FlashInfer's HND page layout by default; stride_h and stride_n
// also describe vLLM's NHD pages [P, Hkv, D]). P is a power of two, so / and mod are a shift and
// a mask.
//
// The emitted `KvRows` handle (kvRowsPrelude) is what the engines hold for a (batch, kv head):
// `row(j)` is the address of key j's first element. `row_addr(src, r, W)` is row r of either a
// packed pointer (rows W apart: Q tiles) or a handle, so one loader template serves both.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { pagedRows, type CachePart } from '../../quant/paged-layout.js';

/** K or V: which Args field holds it and the width of its rows. */
export interface KvTensor {
  readonly name: 'k' | 'v';
  /** Row width: the constexpr `D` or `DV`. */
  readonly width: 'D' | 'DV';
}

export const K_ROWS: KvTensor = { name: 'k', width: 'D' };
export const V_ROWS: KvTensor = { name: 'v', width: 'DV' };

/** Args fields of a tensor's strides (elements, 64-bit): batch (paged: page), kv head, row. */
export const strideFields = (t: 'k' | 'v'): readonly [string, string, string] => [
  `${t}_stride_b`,
  `${t}_stride_h`,
  `${t}_stride_n`,
];

/**
 * A paged quantized cache (docs/LANGUAGE.md, "Paged quantized caches"): its code pools and its
 * row-indexed side tensors (wide codes, per-token scales and zeros, per-channel group scales) are
 * [pages, Hkv, P, ·], addressed by the same block table as float pages; `kv_qrow` is the row of
 * token t of cache head bh (b·Hkv + h) in them, where an unpaged cache has row bh·Nk + t.
 */
const quantPagedRow: readonly string[] = [
  '// Row of token t of cache head bh (b * Hkv + h) in a paged quantized cache: [pages, Hkv, PAGE] rows.',
  '__device__ __forceinline__ size_t kv_qrow(const Args& a, size_t bh, long long t) {',
  '  const size_t b = bh / (size_t)a.Hkv, h = bh % (size_t)a.Hkv;',
  '  const size_t page = (size_t)__ldg(a.block_table + b * (size_t)a.max_pages + (size_t)(t >> LOG2_PAGE));',
  '  return (page * (size_t)a.Hkv + h) * PAGE + (size_t)(t & (PAGE - 1));',
  '}',
];

/**
 * The row of token `t` of cache head `bh` in a paged quantized cache's pools (C expressions; `a`
 * an Args value); callers keep their packed `bh·Nk + t` when unpaged.
 */
export const pagedQuantRow = (a: string, bh: string, t: string): string => `kv_qrow(${a}, ${bh}, ${t})`;

/**
 * A paged KvRows's run of rows first..last (last − first < PAGE, so at most two pages): both page
 * ids are looked up together, before any copy that uses them, so a tile fetch waits on one table
 * lookup instead of one dependent lookup per copied row (round 6: 1.23–1.33× the contiguous time).
 */
const pagedRunMembers = (E: string): string[] => [
  '  // Rows first..last (last - first < PAGE): the bases of their (at most two) pages.',
  '  struct Run {',
  '    long long first_page;',
  `    const ${E}* lo; // page of row first`,
  `    const ${E}* hi; // page of row last`,
  '  };',
  '  __device__ __forceinline__ Run run(long long first, long long last) const {',
  '    const int lo = __ldg(pages + (first >> LOG2_PAGE)), hi = __ldg(pages + (last >> LOG2_PAGE));',
  '    return Run{first >> LOG2_PAGE, p + (long long)lo * ps, p + (long long)hi * ps};',
  '  }',
  '  // Row j of a run (first <= j <= last).',
  `  __device__ __forceinline__ const ${E}* row(const Run& r, long long j) const {`,
  '    return ((j >> LOG2_PAGE) == r.first_page ? r.lo : r.hi) + (long long)(int)(j & (PAGE - 1)) * rs;',
  '  }',
];

/**
 * A paged quantized cache's code rows of one (batch, kv head) in the tensor-core decode: the
 * KvRows of bytes (pools [pages, Hkv, P, ROW bytes], so page stride Hkv·P·ROW, row stride ROW;
 * kv_qrow's addressing), so pagedTileFetch serves code rows as it serves float rows.
 */
export const codePagesStruct: readonly string[] = [
  '// Code rows of one (batch, kv head) of a paged quantized cache (kv-rows.ts): bytes.',
  'struct CodePages {',
  '  const unsigned char* p; // the kv head in page 0',
  "  const int* pages;       // this batch's row of the block table",
  '  long long ps, rs;       // page and row strides (bytes)',
  '  __device__ __forceinline__ const unsigned char* row(long long j) const {',
  '    return p + (long long)__ldg(pages + (j >> LOG2_PAGE)) * ps + (j & (PAGE - 1)) * rs;',
  '  }',
  ...pagedRunMembers('unsigned char'),
  '};',
];

/** A CodePages expression for the code pool `pool` (an Args field) of kv head `hkv` of batch `b`, `row` bytes a row. */
export const codePages = (pool: string, b: string, hkv: string, row: string): string =>
  `CodePages{static_cast<const unsigned char*>(a.${pool}) + (long long)${hkv} * PAGE * ${row}, a.block_table + (size_t)${b} * a.max_pages, (long long)a.Hkv * PAGE * ${row}, ${row}}`;

/** How a tile fetch addresses the chunks it copies (pagedTileFetch). */
export interface TileFetch {
  /** The KvRows handle. */
  readonly handle: string;
  /** constexpr keys a tile and threads a block. */
  readonly tile: string;
  readonly threads: string;
  /** constexpr chunks a row (copies of `unit` bytes). */
  readonly chunks: string;
  /** Elements a chunk (of T, or of `elem`). */
  readonly elems: string;
  /** The row element type (default T). */
  readonly elem?: string;
  /** The copy statement of chunk `c` of tile row `j` from `src` (valid when `ok`). */
  readonly copy: (j: string, src: string, ok: string) => string;
}

/**
 * The body of a paged cache's tile fetch of rows t0..t1-1 (t0, t1 in scope): each thread copies
 * chunk c of a run of N consecutive rows, so it touches one or two pages (N <= PAGE) and looks
 * them up once, before its copies (pages smaller than a run: one lookup per row, all issued before
 * the copies). A warp's copies still cover whole rows (C lanes a row): as coalesced as the strided
 * kernel's. Blocks whose threads do not divide the chunks evenly keep the per-copy lookup.
 */
export function pagedTileFetch(f: TileFetch): string[] {
  const { handle: g, tile, threads, chunks: C, elems: E, elem = 'T' } = f;
  return [
    `  if constexpr (ATTNC_KV_PAGE_RUNS && ${threads} % ${C} == 0 && (${tile} * ${C}) % ${threads} == 0) {`,
    `    constexpr int N = ${tile} * ${C} / ${threads}; // rows a thread`,
    `    const int c = threadIdx.x % ${C}, j0 = threadIdx.x / ${C} * N;`,
    "    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.",
    '    const long long first = min(t0 + j0, t1 - 1), last = min(t0 + j0 + N - 1, t1 - 1);',
    '    if constexpr (N <= PAGE) {',
    `      const auto r = ${g}.run(first, last);`,
    '#pragma unroll',
    '      for (int n = 0; n < N; ++n) {',
    '        const int kj = t0 + j0 + n;',
    '        const bool ok = kj < t1;',
    `        ${f.copy('j0 + n', `${g}.row(r, ok ? kj : first) + c * ${E}`, 'ok')}`,
    '      }',
    '    } else {',
    // N is 0 for a fetch of no rows (tile · chunks = 0, some decode tiles): this branch is then
    // discarded, but outside a template nvcc still rejects the zero-sized array in it.
    `      const ${elem}* rows[N > 0 ? N : 1];`,
    '#pragma unroll',
    `      for (int n = 0; n < N; ++n) rows[n] = ${g}.row(min(t0 + j0 + n, t1 - 1));`,
    '#pragma unroll',
    `      for (int n = 0; n < N; ++n) ${f.copy('j0 + n', `rows[n] + c * ${E}`, 't0 + j0 + n < t1')}`,
    '    }',
    '  } else {',
    '#pragma unroll',
    `    for (int n = 0; n < (${tile} * ${C} + ${threads} - 1) / ${threads}; ++n) {`,
    `      const int i = threadIdx.x + n * ${threads}, j = i / ${C}, c = i % ${C}, kj = t0 + j;`,
    '      const bool ok = kj < t1;',
    `      if (i < ${tile} * ${C}) ${f.copy('j', kvAt(g, '(ok ? kj : t0)', `c * ${E}`), 'ok')}`,
    '    }',
    '  }',
  ];
}

/** The device code every CUDA kernel gets after its prelude: the KvRows handle and row_addr. */
export function kvRowsPrelude(formats: TensorFormats): string[] {
  const p = formats.paged;
  const handle = p
    ? [
        `// K/V rows of one (batch, kv head) of a paged cache: pages of ${p.pageSize} rows (kv-rows.ts).`,
        `constexpr int PAGE = ${p.pageSize}, LOG2_PAGE = ${Math.log2(p.pageSize)};`,
        "// 1: a tile fetch looks a thread's pages up once per run of rows; 0: once per copied row (the",
        '// round-6 fetch, kept so one bench run compares both: bench/cuda/paged-decode.py).',
        '#ifndef ATTNC_KV_PAGE_RUNS',
        '#define ATTNC_KV_PAGE_RUNS 1',
        '#endif',
        '// 1: a decode tile reads its K, V (and scale) page ids in one pass (kv-pages-once.ts); 0: each',
        '// fetch looks its own up (before round 31; kept for the same comparison).',
        '#ifndef ATTNC_KV_PAGE_ONCE',
        '#define ATTNC_KV_PAGE_ONCE 1',
        '#endif',
        '// 1: there, a run of rows inside one page is addressed from one base (int8 pages 6-8% faster on',
        '// an H100, round 32 call 65); 0: every row through row(), as in round 31.',
        '#ifndef ATTNC_KV_PAGE_BASE',
        '#define ATTNC_KV_PAGE_BASE 1',
        '#endif',
        'struct KvRows {',
        '  const T* p;         // the kv head in page 0',
        "  const int* pages;   // this batch's row of the block table",
        '  long long ps, rs;   // page and row strides (elements)',
        '  __device__ __forceinline__ const T* row(long long j) const {',
        '    return p + (long long)__ldg(pages + (j >> LOG2_PAGE)) * ps + (j & (PAGE - 1)) * rs;',
        '  }',
        ...pagedRunMembers('T'),
        '};',
      ]
    : [
        '// K/V rows of one (batch, kv head): rows rs elements apart (kv-rows.ts).',
        'struct KvRows {',
        '  const T* p;',
        '  long long rs;',
        '  __device__ __forceinline__ const T* row(long long j) const { return p + j * rs; }',
        '};',
      ];
  return [
    ...handle,
    ...(p && (formats.k.kind === 'quant' || formats.v.kind === 'quant') ? quantPagedRow : []),
    "// Rows first + step·r of a KvRows (a tile of keys, or a residue class's keys).",
    'struct KvFrom {',
    '  KvRows h;',
    '  long long first, step;',
    '};',
    '// Row r of a packed matrix (rows w apart), of a KvRows, or of a KvFrom.',
    '__device__ __forceinline__ const T* row_addr(const T* p, long long r, int w) { return p + r * w; }',
    '__device__ __forceinline__ const T* row_addr(const KvRows& h, long long r, int) { return h.row(r); }',
    '__device__ __forceinline__ const T* row_addr(const KvFrom& f, long long r, int) { return f.h.row(f.first + f.step * r); }',
    '// The rows of a tile: a KvFrom over a KvRows (quantized caches have their own: dequant-tile.ts).',
    '__device__ __forceinline__ KvFrom kv_from(const KvRows& h, long long first, long long step) { return KvFrom{h, first, step}; }',
  ];
}

/** A KvRows expression for K or V of kv head `hkv` of batch `b` (ints), inside a kernel (`a`: Args). */
export function kvHead(t: KvTensor, b: string, hkv: string, paged: boolean): string {
  const [sb, sh, sn] = strideFields(t.name).map((f) => `a.${f}`);
  const base = `static_cast<const T*>(a.${t.name})`;
  return paged
    ? `KvRows{${base} + (long long)${hkv} * ${sh}, a.block_table + (size_t)${b} * a.max_pages, ${sb}, ${sn}}`
    : `KvRows{${base} + (long long)${b} * ${sb} + (long long)${hkv} * ${sh}, ${sn}}`;
}

/** Declarations of the K and V handles (names.k, names.v) of kv head `hkv` of batch `b`. */
export function kvHeadPtrDecls(
  names: { k: string; v: string },
  b: string,
  hkv: string,
  paged: boolean,
): string[] {
  return [
    `const KvRows ${names.k} = ${kvHead(K_ROWS, b, hkv, paged)};`,
    `const KvRows ${names.v} = ${kvHead(V_ROWS, b, hkv, paged)};`,
  ];
}

/** A KvFrom over `handle`: rows first + step·r (both long long expressions). */
export const kvFrom = (handle: string, first: string, step = '1'): string =>
  `kv_from(${handle}, ${first}, ${step})`;

/** Address of element `col` of key `key` of a handle. */
export const kvAt = (handle: string, key: string, col: string): string => `${handle}.row(${key}) + ${col}`;

/**
 * TMA (strided caches only: a paged cache takes a cp.async engine): coordinates (row, kv head,
 * batch) of key `row` of kv head `hkv` of batch `b` in the 4-D map of kvTmaShape.
 */
export function kvTmaCoords(row: string, b: string, hkv: string): string {
  return `${row}, ${hkv}, ${b}`;
}

/** encode_kv_panels's arguments for K or V: base, width, rows, heads, batches and the strides. */
export function kvTmaShape(t: KvTensor): string {
  const [sb, sh, sn] = strideFields(t.name).map((f) => `a.${f}`);
  return `a.${t.name}, ${t.width}, a.Nk, a.Hkv, a.B, ${sn}, ${sh}, ${sb}`;
}

/**
 * The header's note on tensor `part` of a paged quantized cache of row width `width`
 * (quant/paged-layout.ts): pool rows through the block table, or a per-sequence tensor.
 */
export function pagedQuantDoc(f: TensorFormat, part: CachePart, width: number, P: number): string {
  if (f.kind !== 'quant') return '';
  const rows = pagedRows(f.format, part, width, P);
  if (!rows) return 'per sequence, not paged (docs/LANGUAGE.md, K/V storage formats: Layout)';
  const what = part === 'codes' || part === 'codesHi' ? 'u32 words' : 'scale groups';
  return `pages [pages, Hkv, ${P / rows.tokensPerRow}, ${rows.rowLen}] (${what}) through block_table (docs/LANGUAGE.md, Paged quantized caches)`;
}
