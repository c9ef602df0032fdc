// Multi-CTA top-k for few query rows (decoding): sel_topk gives each (query row, group, batch)
// one block, so a decode step with `vote heads` ranks 128K keys in ONE block (0.7 ms on an H100).
// The wide form splits a row into chunks of SEL_WIDE_CHUNK keys, one block each, and runs the
// same radix select over launches (a launch boundary is the grid-wide barrier):
//   sel_wkey     metrics → rank keys in place (as sel_topk); chunk 0 zeroes the row's histograms;
//   sel_whist<r> (r = 0..3) every block rebuilds the prefix of rounds < r from the global
//                histograms (a suffix scan, identical in every block, so deterministic), counts
//                its chunk's digit r in shared memory, then adds it to the global histogram;
//   sel_wcount   per chunk: keys above the threshold T and keys equal to T;
//   sel_wout     per chunk: offsets from the earlier chunks' counts (ties to the lowest id, as
//                sel_topk), ascending writes, −1 padding.
// Scratch per row of the round: 4 × 256 histogram counters, then (above, equal) per chunk.
// Used when the plan ranks tokens per query row (select.ts's wideTopk) and the launcher's
// sel_wide(a) says the round has few rows and many keys.
import type { AttentionKernel } from '../../ir/kernel.js';
import { pooledSides, type RoutingPlan } from '../../ir/routing.js';
import { selName } from './select.js';

export const SEL_WIDE_THREADS = 256;
export const SEL_WIDE_ROUNDS = 4;

/** Whether the plan gets the wide top-k (tokens ranked per query row; other plans unchanged). */
export const wideTopk = (r: RoutingPlan): boolean =>
  r.source.kind === 'topk' && r.unit.kind === 'tokens' && !pooledSides(r).q;

/** Helpers (host and device) of the wide form's sizes; part of select.ts's helpers. */
export function wideHelpers(): string[] {
  const HD = '__host__ __device__ __forceinline__';
  return [
    '#ifndef ATTNC_SEL_WIDE_CHUNK',
    `#define ATTNC_SEL_WIDE_CHUNK ${SEL_WIDE_THREADS * 4} // keys per block (a multiple of 8; tests use small ones)`,
    '#endif',
    '#ifndef ATTNC_SEL_WIDE_MIN_NK',
    '#define ATTNC_SEL_WIDE_MIN_NK 8192 // fewer keys: one block per row is fast enough',
    '#endif',
    'constexpr int SEL_WIDE_CHUNK = ATTNC_SEL_WIDE_CHUNK;',
    `constexpr int SEL_WIDE_ILP = (SEL_WIDE_CHUNK + ${SEL_WIDE_THREADS - 1}) / ${SEL_WIDE_THREADS}; // keys per thread`,
    `${HD} int sel_wchunks(const Args& a) { return (a.Nk + SEL_WIDE_CHUNK - 1) / SEL_WIDE_CHUNK; }`,
    '// The wide top-k when a round has few (row, group, batch) blocks and many keys.',
    `${HD} bool sel_wide(const Args& a) {`,
    '  return a.Nk >= ATTNC_SEL_WIDE_MIN_NK && (long long)a.B * sel_groups(a) * sel_rows(a) <= 64;',
    '}',
    `${HD} size_t sel_wrow_size(const Args& a) { return ${SEL_WIDE_ROUNDS * 256} + 2 * (size_t)sel_wchunks(a); }`,
    `${HD} size_t sel_wide_size(const Args& a) { return sel_wide(a) ? (size_t)a.B * sel_groups(a) * sel_rows(a) * sel_wrow_size(a) : 0; }`,
  ];
}

/** The prefix search over the global histograms of rounds < `rounds` (all threads call it). */
function stateFn(): string[] {
  return [
    '// Rebuilds the threshold prefix of the first `rounds` digits from the row`s global histograms,',
    '// as sel_topk does (the largest digit d whose keys at or above it reach `want`), with a suffix',
    '// scan in shared memory; every block of the row computes the same answer.',
    '__device__ void sel_wstate(const unsigned* hist, const int rounds, const long long want0,',
    '                           unsigned& prefix, unsigned& pmask, long long& want, bool& all) {',
    '  __shared__ long long suf[256];',
    '  __shared__ int reach;',
    '  __shared__ long long res[2];',
    '  const int t = threadIdx.x;',
    '  prefix = 0u; pmask = 0u; want = want0; all = false;',
    '  for (int r = 0; r < rounds; ++r) {',
    '    const int shift = 24 - 8 * r;',
    '    suf[t] = hist[r * 256 + t];',
    '    if (t == 0) reach = 0;',
    '    __syncthreads();',
    '    for (int s = 1; s < 256; s <<= 1) { // inclusive suffix sums: suf[d] = keys with digit >= d',
    '      const long long x = t + s < 256 ? suf[t + s] : 0;',
    '      __syncthreads();',
    '      suf[t] += x;',
    '      __syncthreads();',
    '    }',
    '    if (r == 0 && suf[0] <= want0) { all = true; return; } // every ranked key is taken',
    '    if (suf[t] >= want) atomicAdd(&reach, 1);',
    '    __syncthreads();',
    '    if (t == 0) {',
    '      const int d = max(reach - 1, 0);',
    '      res[0] = d;',
    '      res[1] = d < 255 ? suf[d + 1] : 0; // keys above digit d',
    '    }',
    '    __syncthreads();',
    '    prefix |= (unsigned)res[0] << shift;',
    '    pmask |= 0xffu << shift;',
    '    want -= res[1];',
    '    __syncthreads();',
    '  }',
    '}',
  ];
}

/** Per-block preamble: the row, chunk, its key range and the row's scratch. */
const preamble = (): string[] => [
  '  const int nch = sel_wchunks(a), c = blockIdx.x % nch, li = blockIdx.x / nch;',
  '  const int i = a.sel_row0 + li, g = blockIdx.y, b = blockIdx.z;',
  '  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;',
  '  const int j0 = c * SEL_WIDE_CHUNK, j1 = min(a.Nk, j0 + SEL_WIDE_CHUNK);',
  '  unsigned* key = reinterpret_cast<unsigned*>(sel_met_row(a, b, g, i));',
  '  unsigned* ws = reinterpret_cast<unsigned*>(a.route_scratch + sel_wide_off(a)) +',
  '                 ((size_t)(b * sel_groups(a) + g) * sel_rows(a) + li) * sel_wrow_size(a);',
  '  const long long want0 = sel_count(a, 0);',
  '  (void)lane; (void)warp; (void)j1; (void)want0;',
];

const kernelHead = (k: AttentionKernel, pass: string): string =>
  `extern "C" __global__ void __launch_bounds__(${SEL_WIDE_THREADS}) ${selName(k, pass)}(const Args a) {`;

function keyKernel(k: AttentionKernel): string[] {
  return [
    kernelHead(k, 'wkey'),
    ...preamble(),
    `  if (c == 0) for (int t = tid; t < ${SEL_WIDE_ROUNDS * 256}; t += blockDim.x) ws[t] = 0u;`,
    '  const long long own = sel_id(a, a.q_offset + i);',
    '  float* met = reinterpret_cast<float*>(key);',
    '  float m[SEL_WIDE_ILP];',
    '#pragma unroll',
    '  for (int e = 0; e < SEL_WIDE_ILP; ++e) { const int j = j0 + e * (int)blockDim.x + tid; m[e] = j < j1 ? met[j] : NAN; }',
    '#pragma unroll',
    '  for (int e = 0; e < SEL_WIDE_ILP; ++e) {',
    '    const int j = j0 + e * (int)blockDim.x + tid;',
    '    if (j < j1) key[j] = isnan(m[e]) ? 0u : sel_forced(a, sel_id(a, a.k_offset + j), own) ? 1u : sel_key(m[e]);',
    '  }',
    '}',
  ];
}

function histKernels(k: AttentionKernel): string[] {
  const out = [
    '// Round r of the wide radix select: this chunk`s digit-r counts added to the row`s histogram.',
    '__device__ __forceinline__ void sel_whist(const Args& a, const int r) {',
    ...preamble(),
    '  __shared__ unsigned hist[256];',
    '  unsigned prefix, pmask;',
    '  long long want;',
    '  bool all;',
    '  sel_wstate(ws, r, want0, prefix, pmask, want, all);',
    '  if (all || want0 <= 0) return; // block-uniform',
    '  hist[tid] = 0u;',
    '  __syncthreads();',
    '  const int shift = 24 - 8 * r;',
    '  unsigned us[SEL_WIDE_ILP];',
    '#pragma unroll',
    '  for (int e = 0; e < SEL_WIDE_ILP; ++e) { const int j = j0 + e * (int)blockDim.x + tid; us[e] = j < j1 ? key[j] : 0u; }',
    '#pragma unroll',
    '  for (int e = 0; e < SEL_WIDE_ILP; ++e) {',
    '    const unsigned u = us[e];',
    '    const bool in = u > 1u && (u & pmask) == prefix;',
    '    const unsigned bin = in ? (u >> shift) & 255u : 256u + lane;',
    '    const unsigned peers = __match_any_sync(0xffffffffu, bin);',
    '    if (in && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));',
    '  }',
    '  __syncthreads();',
    '  if (hist[tid] != 0u) atomicAdd(&ws[r * 256 + tid], hist[tid]);',
    '}',
  ];
  for (let r = 0; r < SEL_WIDE_ROUNDS; ++r)
    out.push(kernelHead(k, `whist${r}`), `  sel_whist(a, ${r});`, '}');
  return out;
}

/** Rank of keys taken: forced, above T, or (counted separately) equal to T. */
const classify = (): string[] => [
  '  auto classify = [&](const unsigned u, bool& eq) -> bool {',
  '    const bool ranked = u > 1u && want0 > 0;',
  '    eq = ranked && !all && u == prefix;',
  '    return u == 1u || (ranked && (all || u > prefix));',
  '  };',
];

const thresholdState = (): string[] => [
  '  unsigned prefix, pmask;',
  '  long long want;',
  '  bool all;',
  `  sel_wstate(ws, ${SEL_WIDE_ROUNDS}, want0, prefix, pmask, want, all);`,
  '  (void)pmask;',
  ...classify(),
];

function countKernel(k: AttentionKernel): string[] {
  return [
    kernelHead(k, 'wcount'),
    ...preamble(),
    ...thresholdState(),
    '  __shared__ int cnt[2];',
    '  if (tid == 0) { cnt[0] = 0; cnt[1] = 0; }',
    '  __syncthreads();',
    '  int gt = 0, eqn = 0;',
    '#pragma unroll',
    '  for (int e = 0; e < SEL_WIDE_ILP; ++e) {',
    '    const int j = j0 + e * (int)blockDim.x + tid;',
    '    bool eq = false;',
    '    const bool t = j < j1 && classify(key[j], eq);',
    '    gt += t;',
    '    eqn += j < j1 && eq;',
    '  }',
    '  atomicAdd(&cnt[0], gt);',
    '  atomicAdd(&cnt[1], eqn);',
    '  __syncthreads();',
    `  if (tid == 0) { ws[${SEL_WIDE_ROUNDS * 256} + 2 * c] = (unsigned)cnt[0]; ws[${SEL_WIDE_ROUNDS * 256} + 2 * c + 1] = (unsigned)cnt[1]; }`,
    '}',
  ];
}

function outKernel(k: AttentionKernel): string[] {
  return [
    kernelHead(k, 'wout'),
    ...preamble(),
    ...thresholdState(),
    '  __shared__ int tkc[32], eqc[32];',
    '  __shared__ long long pre[3]; // output base, equal keys before this chunk, row total',
    '  const int cap = sel_cap(a), nwarps = blockDim.x >> 5;',
    `  const unsigned* cc = ws + ${SEL_WIDE_ROUNDS * 256};`,
    '  if (tid == 0) {',
    '    long long base = 0, seen = 0, n = 0;',
    '    for (int x = 0; x < nch; ++x) {',
    '      const long long take = cc[2 * x] + min(max(want - seen, 0LL), (long long)cc[2 * x + 1]);',
    '      if (x == c) { pre[0] = base; pre[1] = seen; }',
    '      if (x < c) base += take;',
    '      n += take;',
    '      seen += cc[2 * x + 1];',
    '    }',
    '    pre[2] = n;',
    '  }',
    '  // Each warp owns a contiguous range of the chunk: it counts, then writes in order.',
    `  const int per = SEL_WIDE_CHUNK / ${SEL_WIDE_THREADS / 32};`,
    '  const int w0 = min(j1, j0 + warp * per), w1 = min(j1, w0 + per);',
    '  const unsigned below = (1u << lane) - 1u;',
    '  int gt = 0, eqn = 0;',
    '  for (int x0 = w0; x0 < w0 + per; x0 += 32) {',
    '    bool eq = false;',
    '    const bool t = x0 + lane < w1 && classify(key[x0 + lane], eq);',
    '    gt += __popc(__ballot_sync(0xffffffffu, t));',
    '    eqn += __popc(__ballot_sync(0xffffffffu, x0 + lane < w1 && eq));',
    '  }',
    '  if (lane == 0) { tkc[warp] = gt; eqc[warp] = eqn; }',
    '  __syncthreads();',
    '  long long base = pre[0], eqRun = 0, seen = pre[1];',
    '  for (int w = 0; w < nwarps; ++w) {',
    '    const int cnt = tkc[w] + (int)min(max(want - seen, 0LL), (long long)eqc[w]);',
    '    if (w < warp) base += cnt;',
    '    if (w == warp) eqRun = seen;',
    '    seen += eqc[w];',
    '  }',
    '  int* out = a.indices + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * cap;',
    '  int run = 0;',
    '  for (int x0 = w0; x0 < w0 + per; x0 += 32) {',
    '    const int j = x0 + lane;',
    '    bool eq = false;',
    '    bool t = j < w1 && classify(key[j], eq);',
    '    eq = eq && j < w1;',
    '    const unsigned eb = __ballot_sync(0xffffffffu, eq);',
    '    if (eq && eqRun + __popc(eb & below) < want) t = true;',
    '    eqRun += __popc(eb);',
    '    const unsigned tb = __ballot_sync(0xffffffffu, t);',
    '    const long long pos = base + run + __popc(tb & below);',
    '    if (t && pos < cap) out[pos] = sel_id(a, a.k_offset + j);',
    '    run += __popc(tb);',
    '  }',
    '  for (long long p = pre[2] + (long long)c * blockDim.x + tid; p < cap; p += (long long)nch * blockDim.x) out[p] = -1;',
    '}',
  ];
}

/** Device code of the wide top-k (select.ts emits it only for plans wideTopk accepts). */
export function wideTopkCode(k: AttentionKernel): string[] {
  return [...stateFn(), ...keyKernel(k), ...histKernels(k), ...countKernel(k), ...outKernel(k)];
}

/** The pass suffixes of the wide top-k, in launch order. */
export const WIDE_PASSES = ['wkey', 'whist0', 'whist1', 'whist2', 'whist3', 'wcount', 'wout'] as const;
