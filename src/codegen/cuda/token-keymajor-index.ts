// Key-major token attention (Schedule.tokenOrder 'key'), part 1: the inverted selection. After the
// top-k has written `indices` ([B, G, Nq, cap], ascending block ids, -1 padded), three passes build
// per (batch, kv head, key block) the list of the rows that selected the block, a row being query
// token i × head hh of the kv head's GQA group (R = i·Gq + hh), stored as the entry R·cap + p
// (p: the slot of the selection, which names the row's partial record):
//   tkm_count   a block per (chunk of TKM_CHUNK tokens, kv head, batch): per key block, how many
//               rows of the chunk selected it (shared-memory counters, written as a
//               [chunk][key block] matrix);
//   tkm_scan    a block per (kv head, batch): per key block, the exclusive prefix over chunks,
//               then over key blocks (the list's start), and the work units of TKM_ROWS rows;
//   tkm_scatter one warp per chunk: walks its tokens in order (lanes over slots: a row's ids are
//               distinct, so no two lanes share a cursor) and writes the entries.
// Every list is in ascending R order whatever the scheduling: the passes are deterministic.
// The scratch (after the pooled keys in `route_scratch`) is laid out by tkm_layout below.
import type { AttentionKernel } from '../../ir/kernel.js';
import { rankedBlocksOf } from './routing-case.js';

export const tkmName = (k: AttentionKernel, pass: string): string => `attnc_${k.name}_tkm_${pass}`;

/** Query tokens per counting / scatter block. */
export const TKM_CHUNK = 256;
/** Threads of the counting pass and of the scan. */
export const TKM_COUNT_THREADS = 128;
export const TKM_SCAN_THREADS = 1024;
/** Warps of the key-major attention block and 16-row tiles per warp in one work unit. */
export const TKM_WARPS = 4;
export const TKM_TILES = 4;
export const TKM_ROWS = 16 * TKM_WARPS * TKM_TILES;

/**
 * Host/device helpers: the constants, the groups a kv head reads, and the scratch layout (in
 * floats from the start of route_scratch; inserted before route_scratch_size, which ends at it).
 */
export function keyMajorLayoutHelpers(k: AttentionKernel): string[] {
  const vote = rankedBlocksOf(k).source.vote;
  const HD = '__host__ __device__ __forceinline__';
  // Per-head selections (no vote): the group's heads each have their own row of `indices`.
  const groups =
    vote === 'groups'
      ? ['  g0 = hkv;', '  ng = 1;', '  per = a.H / a.Hkv;']
      : vote === 'heads'
        ? ['  g0 = 0;', '  ng = 1;', '  per = a.H / a.Hkv;']
        : ['  g0 = hkv * (a.H / a.Hkv);', '  ng = a.H / a.Hkv;', '  per = 1;'];
  return [
    '// ---- key-major token attention: constants and scratch layout (token-keymajor*.ts) ----',
    `constexpr int TKM_CHUNK = ${TKM_CHUNK}; // query tokens per counting / scatter block`,
    `constexpr int TKM_WARPS = ${TKM_WARPS}; // warps of the attention block, each on 16 rows at a time`,
    `constexpr int TKM_TILES = ${TKM_TILES}; // 16-row tiles per warp in one work unit`,
    'constexpr int TKM_ROWS = 16 * TKM_WARPS * TKM_TILES; // rows of one key block per work unit',
    `// The selection groups kv head hkv reads (g0 .. g0 + ng - 1), and the query heads of that kv`,
    '// head each group serves (row R = i * Gq + (g - g0) + hh, hh < per).',
    `${HD} void tkm_groups_of(const Args& a, const int hkv, int& g0, int& ng, int& per) {`,
    '  (void)a;',
    '  (void)hkv;',
    ...groups,
    '}',
    `${HD} int tkm_chunks(const Args& a) { return (a.Nq + TKM_CHUNK - 1) / TKM_CHUNK; }`,
    '// Entries of one (batch, kv head) list at most: every row selecting cap blocks.',
    `${HD} long long tkm_list_cap(const Args& a) { return (long long)a.Nq * (a.H / a.Hkv) * route_cap(a); }`,
    '// Partial records: one per (row b, h, i; slot p), O normalised (T[DV]) and its log2-sum-exp.',
    `${HD} size_t tkm_parts(const Args& a) { return (size_t)a.B * a.H * a.Nq * route_cap(a); }`,
    `${HD} size_t tkm_align(const size_t floats) { return (floats + 3) & ~(size_t)3; }`,
    '// Offsets (floats) in route_scratch: counts/offsets [B·Hkv][chunks][key blocks], list starts and',
    '// work-unit prefix [B·Hkv][key blocks + 1], lists [B·Hkv][list cap], lse and O of the partials.',
    'struct TkmLayout { size_t counts, start, units, list, lse, o, end; };',
    `${HD} TkmLayout tkm_layout(const Args& a) {`,
    '  const size_t bh = (size_t)a.B * a.Hkv, nkb1 = (size_t)route_nk_stride(a) + 1;',
    '  TkmLayout L;',
    '  L.counts = tkm_align(route_q_base(a));',
    '  L.start = tkm_align(L.counts + bh * tkm_chunks(a) * route_nk_stride(a));',
    '  L.units = tkm_align(L.start + bh * nkb1);',
    '  L.list = tkm_align(L.units + bh * nkb1);',
    '  L.lse = tkm_align(L.list + bh * (size_t)tkm_list_cap(a));',
    '  L.o = tkm_align(L.lse + tkm_parts(a));',
    '  L.end = L.o + (tkm_parts(a) * DV * sizeof(T) + 3) / 4;',
    '  return L;',
    '}',
    `${HD} int* tkm_ints(const Args& a, const size_t off) { return reinterpret_cast<int*>(a.route_scratch + off); }`,
  ];
}

/** The selection row of group g0 + gg for token i, and whether id is a key block of the call. */
const passHelpers = [
  '__device__ __forceinline__ const int* tkm_sel(const Args& a, const int b, const int g, const int i) {',
  '  return a.indices + ((size_t)(b * route_groups(a) + g) * a.Nq + i) * route_cap(a);',
  '}',
  '__device__ __forceinline__ bool tkm_in_call(const Args& a, const int id) {',
  '  return id >= route_kb0(a) && id < route_kb0(a) + route_nkb(a);',
  '}',
];

function countKernel(k: AttentionKernel): string[] {
  return [
    '// Per key block, the rows of this chunk of tokens that selected it (a counter per key block).',
    `extern "C" __global__ void __launch_bounds__(${TKM_COUNT_THREADS}) ${tkmName(k, 'count')}(const Args a) {`,
    '  extern __shared__ __align__(16) unsigned char tok_smem[];',
    '  int* cnt = reinterpret_cast<int*>(tok_smem);',
    '  const int c = blockIdx.x, hkv = blockIdx.y, b = blockIdx.z, nkbs = route_nk_stride(a), cap = route_cap(a);',
    `  for (int j = threadIdx.x; j < nkbs; j += ${TKM_COUNT_THREADS}) cnt[j] = 0;`,
    '  __syncthreads();',
    '  int g0, ng, per;',
    '  tkm_groups_of(a, hkv, g0, ng, per);',
    '  const int i0 = c * TKM_CHUNK, n = min(TKM_CHUNK, a.Nq - i0);',
    `  for (int e = threadIdx.x; e < n * ng * cap; e += ${TKM_COUNT_THREADS}) {`,
    '    const int p = e % cap, t = e / cap;',
    '    const int id = tkm_sel(a, b, g0 + t % ng, i0 + t / ng)[p];',
    '    if (tkm_in_call(a, id)) atomicAdd(&cnt[id - route_kb0(a)], per);',
    '  }',
    '  __syncthreads();',
    '  int* out = tkm_ints(a, tkm_layout(a).counts) + ((size_t)(b * a.Hkv + hkv) * tkm_chunks(a) + c) * nkbs;',
    `  for (int j = threadIdx.x; j < nkbs; j += ${TKM_COUNT_THREADS}) out[j] = cnt[j];`,
    '}',
  ];
}

function scanKernel(k: AttentionKernel): string[] {
  const N = TKM_SCAN_THREADS;
  return [
    '// Per (kv head, batch): counts -> list positions (chunk by chunk within a key block, key blocks',
    '// one after another), list starts, and the prefix of work units (ceil(rows / TKM_ROWS) a block).',
    '// The rows (low 32 bits, < 2^31: the launcher checks) and units of a key block scan as one sum.',
    `extern "C" __global__ void __launch_bounds__(${N}) ${tkmName(k, 'scan')}(const Args a) {`,
    `  __shared__ long long part[${N}];`,
    '  const int hkv = blockIdx.y, b = blockIdx.z, nkbs = route_nk_stride(a), nch = tkm_chunks(a);',
    '  const TkmLayout L = tkm_layout(a);',
    '  const size_t bh = (size_t)b * a.Hkv + hkv;',
    '  int* counts = tkm_ints(a, L.counts) + bh * nch * nkbs;',
    '  int* start = tkm_ints(a, L.start) + bh * (nkbs + 1);',
    '  int* units = tkm_ints(a, L.units) + bh * (nkbs + 1);',
    '  long long carry = 0;',
    `  for (int j0 = 0; j0 < nkbs; j0 += ${N}) {`,
    '    const int j = j0 + threadIdx.x;',
    '    long long rows = 0;',
    '    if (j < nkbs) {',
    '#pragma unroll 8',
    '      for (int c = 0; c < nch; ++c) rows += counts[(size_t)c * nkbs + j];',
    '    }',
    `    const long long mine = ((rows + TKM_ROWS - 1) / TKM_ROWS << 32) + rows;`,
    '    part[threadIdx.x] = mine;',
    '    __syncthreads();',
    `    for (int off = 1; off < ${N}; off <<= 1) {`,
    '      const long long add = threadIdx.x >= off ? part[threadIdx.x - off] : 0;',
    '      __syncthreads();',
    '      part[threadIdx.x] += add;',
    '      __syncthreads();',
    '    }',
    '    const long long before = carry + part[threadIdx.x] - mine;',
    '    if (j < nkbs) {',
    '      start[j] = (int)(before & 0xffffffffLL);',
    '      units[j] = (int)(before >> 32);',
    '      int at = start[j];',
    '#pragma unroll 8',
    '      for (int c = 0; c < nch; ++c) {',
    '        const int x = counts[(size_t)c * nkbs + j];',
    '        counts[(size_t)c * nkbs + j] = at;',
    '        at += x;',
    '      }',
    '    }',
    `    carry += part[${N - 1}];`,
    '    __syncthreads();',
    '  }',
    '  if (threadIdx.x == 0) {',
    '    start[nkbs] = (int)(carry & 0xffffffffLL);',
    '    units[nkbs] = (int)(carry >> 32);',
    '  }',
    '}',
  ];
}

function scatterKernel(k: AttentionKernel): string[] {
  return [
    "// One warp per chunk: the chunk's tokens in order, each token's slots across the lanes, a",
    '// cursor per key block from the scan: every list comes out in ascending row order.',
    `extern "C" __global__ void __launch_bounds__(32) ${tkmName(k, 'scatter')}(const Args a) {`,
    '  extern __shared__ __align__(16) unsigned char tok_smem[];',
    '  int* cur = reinterpret_cast<int*>(tok_smem);',
    '  const int c = blockIdx.x, hkv = blockIdx.y, b = blockIdx.z, lane = threadIdx.x;',
    '  const int nkbs = route_nk_stride(a), cap = route_cap(a), kb0 = route_kb0(a), Gq = a.H / a.Hkv;',
    '  const TkmLayout L = tkm_layout(a);',
    '  const size_t bh = (size_t)b * a.Hkv + hkv;',
    '  const int* from = tkm_ints(a, L.counts) + (bh * tkm_chunks(a) + c) * nkbs;',
    '  for (int j = lane; j < nkbs; j += 32) cur[j] = from[j];',
    '  __syncwarp();',
    '  int* list = tkm_ints(a, L.list) + bh * (size_t)tkm_list_cap(a);',
    '  int g0, ng, per;',
    '  tkm_groups_of(a, hkv, g0, ng, per);',
    '  const int i0 = c * TKM_CHUNK, n = min(TKM_CHUNK, a.Nq - i0);',
    '  // Step s: token s / (ng · pc), group (s / pc) % ng, slots 32 · (s % pc) + lane; the next',
    "  // step's id is loaded before this one's cursor update (the walk is latency-bound).",
    '  const int pc = (cap + 31) / 32, steps = n * ng * pc;',
    '  auto id_at = [&](const int s) {',
    '    if (s >= steps) return -1; // also keeps pc = 0 (no slots) out of the divisions',
    '    const int p = (s % pc) * 32 + lane, t = s / pc / ng, gg = s / pc % ng;',
    '    return p < cap ? tkm_sel(a, b, g0 + gg, i0 + t)[p] : -1;',
    '  };',
    '  int next = id_at(0);',
    '  for (int s = 0; s < steps; ++s) {',
    '    const int id = next;',
    '    next = id_at(s + 1);',
    '    if (tkm_in_call(a, id)) {',
    '      const int at = cur[id - kb0], p = (s % pc) * 32 + lane;',
    '      cur[id - kb0] = at + per;',
    '      const int R = (i0 + s / pc / ng) * Gq + s / pc % ng;',
    '      for (int hh = 0; hh < per; ++hh) list[at + hh] = (R + hh) * cap + p;',
    '    }',
    '    __syncwarp();',
    '  }',
    '}',
  ];
}

/** Device code of the three inversion passes. */
export function keyMajorIndexCode(k: AttentionKernel): string[] {
  return [...passHelpers, ...countKernel(k), ...scanKernel(k), ...scatterKernel(k)];
}
