// The ranking and `from` passes of CUDA selection (select.ts has the pipeline). One block per
// (query unit, group, batch) writes the unit's row of `indices`, ascending and −1 padded:
//   sel_topk  radix select over the metrics sel_score wrote: 4 rounds of an 8-bit histogram find
//             the k-th best order-preserving key T and how many keys equal to T are taken; then
//             one ascending pass over the slots takes the forced candidates, every key above T
//             and the first keys equal to T (ties go to the lower id), with ballot/popc prefix
//             counts, so the output is written in order and needs no sort;
//   sel_from  the ids of the `from` tensor that have keys in the call (others are only
//             compared, never used as addresses), plus the forced candidates, bitonic-sorted in
//             shared memory, deduplicated, −1 padded.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { FromSource } from '../../ir/routing.js';
import type { CudaLayout } from './layout.js';
import { selName } from './select.js';

export const SEL_TOPK_THREADS = 512;
export const SEL_FROM_THREADS = 256;
/** Largest index row `from` sorts in shared memory (ids per row, k + first + local). */
export const SEL_SORT_MAX = 16384;

/** Ordered compaction of one tile: `take` flags → positions n + rank; updates n (all threads). */
const compact = (flag: string, counts: string, total: string, rank: string): string[] => [
  `    {`,
  `      const unsigned bits = __ballot_sync(0xffffffffu, ${flag});`,
  `      if (lane == 0) ${counts}[warp] = __popc(bits);`,
  '      __syncthreads();',
  '      int before = 0, all = 0;',
  `      for (int w = 0; w < nwarps; ++w) { before += w < warp ? ${counts}[w] : 0; all += ${counts}[w]; }`,
  `      ${rank} = before + __popc(bits & ((1u << lane) - 1u));`,
  `      ${total} = all;`,
  '    }',
];

/** sel_topk: the row's metrics become rank keys, a radix select finds T, the takes are written in order. */
function topkKernel(k: AttentionKernel): string[] {
  return [...topkHead(k), ...rankKeys(), ...radixRounds(), ...orderedOutput(), ...shareUnitRows()];
}

/** The kernel's shared memory and its row: a query unit's first row, its metrics, its own id. */
function topkHead(k: AttentionKernel): string[] {
  return [
    'constexpr int SEL_ILP = 8; // keys per thread per step of the top-k passes',
    `extern "C" __global__ void __launch_bounds__(${SEL_TOPK_THREADS}) ${selName(k, 'topk')}(const Args a) {`,
    '  __shared__ unsigned hist[256];',
    '  __shared__ int eqc[32], tkc[32];',
    '  __shared__ long long bc[2];',
    '  __shared__ int total;',
    '  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;',
    '  const int i = a.sel_row0 + blockIdx.x, g = blockIdx.y, b = blockIdx.z; // a row of the round',
    "  if (!sel_unit_starts(a, i)) return; // the unit's first row writes every row of it",
    '  const int cap = sel_cap(a);',
    '  float* met = sel_met_row(a, b, g, i);',
    "  // The row's metrics become rank keys in place: 0 no candidate, 1 forced candidate, else the",
    '  // order-preserving key of a ranked candidate (>= 0x7fffff, so never 0 or 1).',
    '  unsigned* key = reinterpret_cast<unsigned*>(met);',
    '  const long long own = sel_id(a, a.q_offset + i), want0 = sel_count(a, 0);',
    '  if (tid == 0) total = 0;',
    '  __syncthreads();',
  ];
}

/** Metrics to rank keys in place (0 no candidate, 1 forced, else sel_key), counting the ranked ones. */
function rankKeys(): string[] {
  return [
    '  {',
    '    int c = 0;',
    '    for (int j0 = 0; j0 < a.Nk; j0 += SEL_ILP * (int)blockDim.x) {',
    '      float m[SEL_ILP]; // SEL_ILP loads in flight per thread: one block walks the whole row',
    '#pragma unroll',
    '      for (int e = 0; e < SEL_ILP; ++e) {',
    '        const int j = j0 + e * (int)blockDim.x + tid;',
    '        m[e] = j < a.Nk ? met[j] : NAN;',
    '      }',
    '#pragma unroll',
    '      for (int e = 0; e < SEL_ILP; ++e) {',
    '        const int j = j0 + e * (int)blockDim.x + tid;',
    '        if (j >= a.Nk) continue;',
    '        const unsigned u = isnan(m[e]) ? 0u : sel_forced(a, sel_id(a, a.k_offset + j), own) ? 1u : sel_key(m[e]);',
    '        key[j] = u;',
    '        c += u > 1u;',
    '      }',
    '    }',
    '    atomicAdd(&total, c);',
    '  }',
    '  __syncthreads();',
  ];
}

/** The 4 radix rounds (8 bits each) that find the prefix of the k-th best key and how many to take. */
function radixRounds(): string[] {
  return [
    '  const bool all = total <= want0;',
    '  unsigned prefix = 0u, pmask = 0u;',
    '  long long want = want0; // keys still to take among those matching the prefix',
    '  const int step = SEL_ILP * (int)blockDim.x;',
    '  const int jend = (a.Nk + step - 1) / step * step; // warp-uniform trip counts',
    '  for (int shift = 24; shift >= 0 && !all && want0 > 0; shift -= 8) {',
    '    for (int t = tid; t < 256; t += blockDim.x) hist[t] = 0u;',
    '    __syncthreads();',
    '    for (int j0 = 0; j0 < jend; j0 += step) {',
    '      unsigned us[SEL_ILP];',
    '#pragma unroll',
    '      for (int e = 0; e < SEL_ILP; ++e) {',
    '        const int j = j0 + e * (int)blockDim.x + tid;',
    '        us[e] = j < a.Nk ? key[j] : 0u;',
    '      }',
    '#pragma unroll',
    '      for (int e = 0; e < SEL_ILP; ++e) {',
    '        const unsigned u = us[e];',
    '        const bool in = u > 1u && (u & pmask) == prefix;',
    '        // Lanes with the same digit add once (the first digits are shared by most keys).',
    '        const unsigned bin = in ? (u >> shift) & 255u : 256u + lane;',
    '        const unsigned peers = __match_any_sync(0xffffffffu, bin);',
    '        if (in && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));',
    '      }',
    '    }',
    '    __syncthreads();',
    '    if (tid == 0) {',
    '      long long above = 0;',
    '      int d = 255;',
    '      for (; d > 0 && above + hist[d] < want; --d) above += hist[d];',
    '      bc[0] = d;',
    '      bc[1] = above;',
    '    }',
    '    __syncthreads();',
    '    prefix |= (unsigned)bc[0] << shift;',
    '    pmask |= 0xffu << shift;',
    '    want -= bc[1];',
    '    __syncthreads();',
    '  }',
  ];
}

/**
 * A loop over this warp's keys [w0, w1), 32 × SEL_ILP at a time; `body` runs per e with us[e] (the
 * key, 0 past w1) in every lane, so the ballots in it see a full warp.
 */
const warpKeyLoop = (body: readonly string[]): string[] => [
  '  for (int j0 = w0; j0 < w1; j0 += 32 * SEL_ILP) {',
  '    unsigned us[SEL_ILP];',
  '#pragma unroll',
  '    for (int e = 0; e < SEL_ILP; ++e) us[e] = j0 + 32 * e + lane < w1 ? key[j0 + 32 * e + lane] : 0u;',
  '#pragma unroll',
  '    for (int e = 0; e < SEL_ILP; ++e) {',
  ...body,
  '    }',
  '  }',
];

/** The ascending output: each warp counts its takes, takes an offset, writes them in order; −1 pads. */
function orderedOutput(): string[] {
  return [
    '  // Ascending output: forced candidates, keys above T, the first `want` keys equal to T. Each',
    '  // warp owns a contiguous key range: it counts (pass 1), warps take offsets from one prefix,',
    '  // then it writes its takes in order (pass 2); ballots rank lanes, no barrier per tile.',
    '  int* out = a.indices + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * cap;',
    '  const int per = (a.Nk + nwarps - 1) / nwarps;',
    '  const int w0 = min(a.Nk, warp * per), w1 = min(a.Nk, w0 + per);',
    '  const unsigned below = (1u << lane) - 1u;',
    '  auto classify = [&](const unsigned u, bool& eq) -> bool {',
    '    const bool ranked = u > 1u && want0 > 0;',
    '    eq = ranked && !all && u == prefix;',
    '    return u == 1u || (ranked && (all || u > prefix));',
    '  };',
    '  int gt = 0, eqn = 0;',
    ...warpKeyLoop([
      '      bool eq;',
      '      const bool t = classify(us[e], eq);',
      '      gt += __popc(__ballot_sync(0xffffffffu, t));',
      '      eqn += __popc(__ballot_sync(0xffffffffu, eq));',
    ]),
    '  if (lane == 0) { tkc[warp] = gt; eqc[warp] = eqn; }',
    '  __syncthreads();',
    '  int base = 0, n = 0;',
    '  long long eqRun = 0, seen = 0;',
    '  for (int w = 0; w < nwarps; ++w) {',
    '    const int cnt = tkc[w] + (int)min(max(want - seen, 0LL), (long long)eqc[w]);',
    '    if (w < warp) base += cnt;',
    '    if (w == warp) eqRun = seen;',
    '    n += cnt;',
    '    seen += eqc[w];',
    '  }',
    '  int run = 0;',
    ...warpKeyLoop([
      '      const int j = j0 + 32 * e + lane;',
      '      bool eq;',
      '      bool t = classify(us[e], eq);',
      '      const unsigned eb = __ballot_sync(0xffffffffu, eq);',
      '      if (eq && eqRun + __popc(eb & below) < want) t = true;',
      '      eqRun += __popc(eb);',
      '      const unsigned tb = __ballot_sync(0xffffffffu, t);',
      '      const int pos = base + run + __popc(tb & below);',
      '      if (t && pos < cap) out[pos] = sel_id(a, a.k_offset + j);',
      '      run += __popc(tb);',
    ]),
    '  __syncthreads();',
    '  for (int p = n + tid; p < cap; p += blockDim.x) out[p] = -1;',
  ];
}

/** A pooled query unit: its other rows copy the selection; the kernel's closing brace. */
function shareUnitRows(): string[] {
  return [
    '  // The other rows of a pooled query unit share its selection.',
    '  const int rows = sel_unit_end(a, i) - i;',
    '  if (rows > 1) {',
    '    __syncthreads();',
    '    for (int t = tid; t < (rows - 1) * cap; t += blockDim.x) out[cap + t] = out[t % cap];',
    '  }',
    '}',
  ];
}

function fromKernel(k: AttentionKernel, from: FromSource, layout: CudaLayout): string[] {
  const src = `a.${layout.field(`tensor:${from.tensor}`)}`;
  return [
    `extern "C" __global__ void __launch_bounds__(${SEL_FROM_THREADS}) ${selName(k, 'from')}(const Args a) {`,
    '  extern __shared__ float4 smem4[];',
    '  int* ids = reinterpret_cast<int*>(smem4); // [P] P = the power of two >= cap; -1: no id',
    '  __shared__ int tkc[32];',
    '  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;',
    '  const int i = blockIdx.x, g = blockIdx.y, b = blockIdx.z;',
    '  const int cap = sel_cap(a), C = (int)sel_count(a, 0), F = (int)sel_count(a, 1);',
    '  int P = 1;',
    '  while (P < cap) P <<= 1;',
    '  const long long own = sel_id(a, a.q_offset + i);',
    '  const int nv = sel_voters(a), h0 = sel_voter0(a, g);',
    `  const int* given = ${src} + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * C;`,
    '  for (int p = tid; p < P; p += blockDim.x) {',
    '    int id = -1, lo = 0, hi = 0;',
    '    if (p < C) {',
    '      // Read ids that have keys in the call; -1 pads; any other id is only compared.',
    '      const int x = __ldg(given + p);',
    '      if (x >= 0) { sel_range(a, x, lo, hi); if (lo < hi) id = x; }',
    '    } else if (p < cap) {',
    "      // Forced ids: first(F) then local(L) ending at the query's own id; candidates only.",
    '      const long long x = p - C < F ? (long long)(p - C) : own - (cap - 1 - p);',
    '      if (x >= 0 && x <= INT_MAX && (p - C < F || x > own - sel_count(a, 2))) {',
    '        sel_range(a, (int)x, lo, hi);',
    '        bool cand = false;',
    '        for (int v = 0; v < nv && !cand; ++v) cand = sel_candidate(a, b, h0 + v, i, i + 1, lo, hi);',
    '        if (cand) id = (int)x;',
    '      }',
    '    }',
    '    ids[p] = id;',
    '  }',
    '  __syncthreads();',
    '  // Bitonic sort, ascending as unsigned: ids are >= 0 and -1 (none) sorts last (INT_MAX is a',
    "  // real id: a chunk's).",
    '  for (int size = 2; size <= P; size <<= 1)',
    '    for (int stride = size >> 1; stride > 0; stride >>= 1) {',
    '      for (int p = tid; p < P; p += blockDim.x) {',
    '        const int o = p ^ stride;',
    '        if (o > p) {',
    '          const int x = ids[p], y = ids[o];',
    '          if (((p & size) == 0) == ((unsigned)x > (unsigned)y)) { ids[p] = y; ids[o] = x; }',
    '        }',
    '      }',
    '      __syncthreads();',
    '    }',
    '  // Deduplicate in order, pad with -1.',
    '  int* out = a.indices + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * cap;',
    '  int n = 0;',
    '  for (int p0 = 0; p0 < cap; p0 += blockDim.x) {',
    '    const int p = p0 + tid;',
    '    const int id = p < cap ? ids[p] : -1;',
    '    const bool take = id >= 0 && (p == 0 || ids[p - 1] != id);',
    '    int rank = 0, tiles = 0;',
    ...compact('take', 'tkc', 'tiles', 'rank'),
    '    if (take) out[n + rank] = id;',
    '    n += tiles;',
    '    __syncthreads();',
    '  }',
    '  for (int p = n + tid; p < cap; p += blockDim.x) out[p] = -1;',
    '}',
  ];
}

/** Device code of the ranking (or `from`) pass. */
export function selectRankCode(k: AttentionKernel, layout: CudaLayout): string[] {
  const source = k.routing!.source;
  switch (source.kind) {
    case 'from':
      return fromKernel(k, source, layout);
    case 'topk':
      return topkKernel(k);
  }
}
