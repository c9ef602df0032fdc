// The pooling and scoring passes of CUDA selection (select.ts has the pipeline and the helpers
// they call): sel_pool_k / sel_pool_q pool each slot's rows (select-pool.ts); sel_vote_stats and
// sel_score score one round of query rows against every key slot (the round's metrics in
// route_scratch).
import type { AttentionKernel } from '../../ir/kernel.js';
import { pooledSides, routingVote } from '../../ir/routing.js';
import { K_ROWS } from './kv-rows.js';
import { selName } from './select.js';
import { poolKernel } from './select-pool.js';
import { selDequantizes, selectKvHead } from './select-kv.js';
import { keyRowFma8, voteKvCode } from './select-vote.js';

/** How the scoring passes read key row j of kv head kvh into `kr`, and channel d of it. */
interface ScoreKeys {
  /** Raw keys of a quantized cache: element by element through its handle (select-kv.ts). */
  readonly dequant: boolean;
  /**
   * Raw keys of a paged cache: row j through the block table (kv-rows.ts), read element by
   * element (a page's rows are aligned to the core's vector width only, not to 16 bytes).
   */
  readonly paged: boolean;
  /** 16-byte loads: 16-bit keys read in place (not pooled, quantized, paged or f32). */
  readonly wide: boolean;
  /** The statement that declares `kr`. */
  readonly row: string;
  /** Channel d of the row, as f32. */
  readonly at: string;
}

function scoreKeys(k: AttentionKernel): ScoreKeys {
  const pooled = pooledSides(k.routing!).k;
  const dequant = !pooled && selDequantizes(k.formats.k);
  const paged = !pooled && !dequant && k.formats.paged !== undefined;
  const row = pooled
    ? 'const float* kr = a.route_scratch + ((size_t)(b * a.Hkv + kvh) * a.Nk + j) * D;'
    : dequant
      ? `const SelDqK kr = ${selectKvHead(k.formats, K_ROWS, 'b', 'kvh')};`
      : paged
        ? `const T* kr = ${selectKvHead(k.formats, K_ROWS, 'b', 'kvh')}.row(j);`
        : 'const T* kr = static_cast<const T*>(a.k) + ((size_t)(b * a.Hkv + kvh) * a.Nk + j) * D;';
  const at = pooled ? 'kr[d]' : dequant ? 'kr.at(j, d)' : 'to_f32(kr[d])';
  const wide = !(pooled || dequant || paged || k.formats.k.dtype === 'f32');
  return { dequant, paged, wide, row, at };
}

/** The round's kept affinities [B, H, rows, Nk]: this thread's slot j of voter h0's row li. */
const AFF_AT = 'a.route_scratch + sel_aff_off(a) + ((size_t)(b * a.H + h0) * rows + li) * a.Nk + j';

/** A scoring pass's opening: the unit's query side into shared memory, this thread's slot j. */
function scoreHead(k: AttentionKernel, pass: 'vote_stats' | 'score'): string[] {
  const qSrc = pooledSides(k.routing!).q
    ? 'a.route_scratch[sel_pq_off(a) + ((size_t)(b * a.H + h) * a.Nq + i) * D + d]'
    : 'to_f32(q_row(a, b, h, i)[d])';
  return [
    `extern "C" __global__ void __launch_bounds__(SEL_SPAN) ${selName(k, pass)}(const Args a) {`,
    '  extern __shared__ float4 smem4[];',
    "  float* qs = reinterpret_cast<float*>(smem4); // [voters][D] the unit's query side per voter",
    '  float* vs = qs + (size_t)sel_voters(a) * D;  // [voters][2] merged vote statistics',
    '  const int nspan = sel_nspan(a), tid = threadIdx.x;',
    '  const int rows = sel_rows(a), li = blockIdx.x / nspan; // li: the row within the round',
    '  const int i = a.sel_row0 + li, span = blockIdx.x % nspan, g = blockIdx.y, b = blockIdx.z;',
    `  if (i >= a.Nq || !sel_unit_starts(a, i)) return; // a whole block`,
    '  const int i1 = sel_unit_end(a, i), nv = sel_voters(a), h0 = sel_voter0(a, g);',
    '  for (int t = tid; t < nv * D; t += blockDim.x) {',
    '    const int h = h0 + t / D, d = t % D;',
    `    qs[t] = ${qSrc};`,
    '  }',
    '  const int j = span * SEL_SPAN + tid;',
    '  const bool slot = j < a.Nk && sel_starts(a, a.k_offset, j);',
    '  const int j1 = slot ? sel_end(a, a.k_offset, a.Nk, j) : j;',
    "  // The round's vote partials [B, H, rows, nspan, 2] and kept affinities [B, H, rows, Nk].",
    `  float* vst = a.route_scratch + sel_vst_off(a) + ((size_t)(b * a.H + h0) * rows + li) * nspan * 2;`,
    '  (void)vst; (void)vs;',
  ];
}

/**
 * Affinities of up to SEL_VPC voters that share a kv head at once (one key read serves them),
 * then `body` per voter with `v`, `x` (the affinity, NaN unless a candidate) and `cand`.
 */
function votersCode(keys: ScoreKeys, body: string[]): string[] {
  return [
    '  for (int v0 = 0; v0 < nv;) {',
    '    const int per = a.H / a.Hkv, kvh = (h0 + v0) / per;',
    '    const int nu = min(min(SEL_VPC, nv - v0), (kvh + 1) * per - (h0 + v0));',
    '    float xs[SEL_VPC];',
    '    bool cs[SEL_VPC], anyc = false;',
    '#pragma unroll',
    '    for (int u = 0; u < SEL_VPC; ++u) {',
    '      cs[u] = u < nu && slot && sel_candidate(a, b, h0 + v0 + u, i, i1, j, j1);',
    '      xs[u] = 0.f;',
    '      anyc = anyc || cs[u];',
    '    }',
    '    if (anyc) {',
    `      ${keys.row}`,
    ...(!keys.wide
      ? []
      : [
          '      if constexpr (D % 8 == 0) {',
          '        // 16-byte key loads: each lane reads its own row, so wider loads waste less of a sector.',
          '        for (int d = 0; d < D; d += 8) {',
          '          const VecT<8> k8 = *reinterpret_cast<const VecT<8>*>(kr + d);',
          ...keyRowFma8('k8', '          '),
          '        }',
          '      } else',
        ]),
    // The vector paths read the row as aligned memory; quantized and paged rows take the scalar one.
    ...(keys.dequant || keys.paged
      ? ['      {']
      : [
          '      if constexpr (D % 4 == 0) {',
          '        for (int d = 0; d < D; d += 4) {',
          '          const float4 kx = sel_ld4(kr + d);',
          '#pragma unroll',
          '          for (int u = 0; u < SEL_VPC; ++u)',
          '            if (u < nu) {',
          '              const float4 qx = *reinterpret_cast<const float4*>(qs + (v0 + u) * D + d);',
          '              xs[u] = fmaf(qx.x, kx.x, fmaf(qx.y, kx.y, fmaf(qx.z, kx.z, fmaf(qx.w, kx.w, xs[u]))));',
          '            }',
          '        }',
          '      } else {',
        ]),
    '        for (int d = 0; d < D; ++d) {',
    `          const float kx = ${keys.at};`,
    '#pragma unroll',
    '          for (int u = 0; u < SEL_VPC; ++u)',
    '            if (u < nu) xs[u] = fmaf(qs[(v0 + u) * D + d], kx, xs[u]);',
    '        }',
    '      }',
    '    }',
    '#pragma unroll',
    '    for (int u = 0; u < SEL_VPC; ++u) {',
    '      if (u >= nu) break; // block-uniform',
    '      const int v = v0 + u;',
    '      (void)v;',
    '      const bool cand = cs[u];',
    '      float x = NAN;',
    '      if (cand) {',
    '        x = a.scale * xs[u];',
    '        if (isnan(x)) x = -INFINITY; // NaN ranks as -inf',
    '      }',
    ...body.map((l) => `    ${l}`),
    '    }',
    '    v0 += nu;',
    '  }',
  ];
}

/** Each voter's softmax statistics, merged over the spans into vs (vote_stats wrote them). */
const mergeVoteStats = [
  "  // Each voter's softmax statistics, merged over the spans in order (deterministic).",
  '  // A warp per voter, lanes over the spans, then a fixed shuffle tree (deterministic).',
  '  for (int v = tid >> 5; v < nv; v += (int)(blockDim.x >> 5)) {',
  '    const int lane = tid & 31;',
  '    const float* p = vst + (size_t)v * rows * nspan * 2;',
  '    float mx = -INFINITY, z = 0.f;',
  '    for (int s = lane; s < nspan; s += 32) mx = fmaxf(mx, p[2 * s]);',
  '    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));',
  '    if (mx > -INFINITY)',
  '      for (int s = lane; s < nspan; s += 32) if (p[2 * s] > -INFINITY) z += p[2 * s + 1] * expf(p[2 * s] - mx);',
  '    for (int o = 16; o > 0; o >>= 1) z += __shfl_xor_sync(0xffffffffu, z, o);',
  '    if (lane == 0) { vs[2 * v] = mx; vs[2 * v + 1] = z; }',
  '  }',
];

/**
 * The scoring passes. Block (span, query unit i, group g, batch b); thread t scores slot
 * span·SEL_SPAN + t for each voter. `stats`: write the voters' (max, Σ exp) over the span;
 * otherwise: write the metric (the vote, from the merged statistics, or the one affinity).
 */
function scoreKernel(k: AttentionKernel, pass: 'vote_stats' | 'score'): string[] {
  const vote = routingVote(k.routing!) !== undefined;
  const keys = scoreKeys(k);
  const voters = (body: string[]): string[] => votersCode(keys, body);
  const head = scoreHead(k, pass);
  if (pass === 'vote_stats')
    return [
      ...head,
      '  __shared__ float red[32];',
      '  const bool keep = sel_keep_aff(a);',
      `  float* aff = ${AFF_AT};`,
      '  __syncthreads();',
      ...voters([
        '  const float mx = sel_block_max(cand ? x : -INFINITY, red);',
        '  const float z = sel_block_sum(cand && mx > -INFINITY ? expf(x - mx) : 0.f, red);',
        '  if (tid == 0) { vst[((size_t)v * rows * nspan + span) * 2] = mx; vst[((size_t)v * rows * nspan + span) * 2 + 1] = z; }',
        '  if (keep && j < a.Nk) aff[(size_t)v * rows * a.Nk] = x;',
      ]),
      '}',
    ];
  return [
    ...head,
    ...(vote ? mergeVoteStats : []),
    '  __syncthreads();',
    '  if (j >= a.Nk) return;',
    '  float metric = 0.f;',
    '  bool any = false;',
    ...(vote
      ? [
          '  if (sel_keep_aff(a)) {',
          "    // The voters' affinities from sel_vote_stats (NaN: not a candidate for that voter).",
          `    const float* aff = ${AFF_AT};`,
          '    for (int v = 0; v < nv; ++v) {',
          '      const float x = aff[(size_t)v * rows * a.Nk];',
          '      if (isnan(x)) continue;',
          '      any = true;',
          '      if (vs[2 * v] > -INFINITY) metric += expf(x - vs[2 * v]) / vs[2 * v + 1];',
          '    }',
          '    sel_met_row(a, b, g, i)[j] = any ? metric : NAN;',
          '    return;',
          '  }',
        ]
      : []),
    ...voters([
      ...(vote
        ? ['  if (cand && vs[2 * v] > -INFINITY) metric += expf(x - vs[2 * v]) / vs[2 * v + 1];']
        : ['  if (cand) metric = x;']),
      '  any = any || cand;',
    ]),
    '  sel_met_row(a, b, g, i)[j] = any ? metric : NAN;',
    '}',
  ];
}

const blockReductions = [
  '// Block-wide reductions through `red` (32 floats); every thread of the block calls them.',
  '__device__ float sel_block_max(float x, float* red) {',
  '  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));',
  '  __syncthreads();',
  '  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;',
  '  __syncthreads();',
  '  x = -INFINITY;',
  '  for (int w = 0; w < (int)(blockDim.x >> 5); ++w) x = fmaxf(x, red[w]);',
  '  return x;',
  '}',
  '__device__ float sel_block_sum(float x, float* red) {',
  '  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);',
  '  __syncthreads();',
  '  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;',
  '  __syncthreads();',
  '  x = 0.f;',
  '  for (int w = 0; w < (int)(blockDim.x >> 5); ++w) x += red[w];',
  '  return x;',
  '}',
];

/** Device code of the pooling and scoring passes (after selectHelpers). */
export function selectScoreCode(k: AttentionKernel): string[] {
  const r = k.routing!;
  if (r.source.kind === 'from') return [];
  const pooled = pooledSides(r);
  return [
    ...(pooled.k ? ['', ...poolKernel(k, 'k')] : []),
    ...(pooled.q ? ['', ...poolKernel(k, 'q')] : []),
    '',
    ...blockReductions,
    ...(r.source.vote ? ['', ...scoreKernel(k, 'vote_stats')] : []),
    ...voteKvCode(k),
    '',
    ...scoreKernel(k, 'score'),
  ];
}
