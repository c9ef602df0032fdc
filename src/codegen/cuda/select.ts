// Token selection, `emit`, `from` and chunk routing on CUDA (ir/routing.ts RoutingPlan; semantics
// in docs/LANGUAGE.md "Pooling, routing and selection", oracle runtime/reference-routing.ts).
// Block routing ranked by top-k (routing.ts) keeps its own passes; every other plan runs here.
// Ids are "slots": key row j starts a slot when its id (the position for tokens, floor(p / n) for
// blocks, chunk[p] for chunks) differs from row j − 1's; the slot's keys run to the next start.
// The launcher runs, before the attention (select-host.ts):
//   sel_pool_k / sel_pool_q  (pooled sides of blocks and chunks) the pooled rows, f32, stored at
//                 the slot's start row in `route_scratch`;
//   sel_vote_stats  (vote) per (key span, query unit, group): each voter's max and Σ exp of its
//                 affinities over the span's candidates; the scoring pass merges them in span
//                 order, so the vote is deterministic;
//   sel_score     per (key span, query unit, group): the ranking metric of every slot — the
//                 affinity, or the vote — or NaN for a slot that is no candidate (no allowed pair);
//   sel_topk      (select-topk.ts) per query unit: a 4-round radix select of the k-th best metric
//                 (8 bits a round), then one ascending pass writes forced ∪ (metric > T) ∪ the
//                 lowest-id (metric == T) to `indices`, −1 padded; or sel_from for `from`;
//   sel_attn      (select-attn.ts, not for `emit`) attention over each row's selected keys.
// Memory: the metric is a float per (query unit, key): O(Nq·Nk) scratch (the WGSL path keeps
// O(Nq·k) with 8 radix rounds over recomputed scores; here the scores are computed once).
import type { AttentionKernel } from '../../ir/kernel.js';
import { routingGroups, type RoutingPlan } from '../../ir/routing.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { countC, reducers } from './routing.js';
import type { CudaLayout } from './layout.js';
import { ARGS, cudaRenderer, dimText, type CudaContext } from './rules.js';

/** Threads (and key slots) of a scoring block. */
export const SEL_SPAN = 256;
export const SEL_POOL_THREADS = 128;

/** Whether this file (not routing.ts's ranked block routing) runs `k`'s routing. */
export function selectHandles(k: AttentionKernel): boolean {
  const r = k.routing;
  return (
    r !== undefined &&
    (r.unit === 'tokens' || r.from !== undefined || r.chunks !== undefined || r.restrict === false)
  );
}

export const selName = (k: AttentionKernel, pass: string): string => `attnc_${k.name}_sel_${pass}`;

/** What an id stands for. */
export const selUnit = (r: RoutingPlan): 'tokens' | 'blocks' | 'chunks' =>
  r.unit === 'tokens' ? 'tokens' : r.chunks ? 'chunks' : 'blocks';
export const pooledK = (r: RoutingPlan): boolean => !r.from && selUnit(r) !== 'tokens';
export const pooledQ = (r: RoutingPlan): boolean => !r.from && selUnit(r) !== 'tokens' && r.q !== 'raw';

/** The `from` capacity (a literal or an int param) as C. */
function capacityC(r: RoutingPlan, layout: CudaLayout): string {
  const c = r.from!.capacity;
  return /^\d+$/.test(c) ? `${c}LL` : `(long long)${ARGS}.${layout.field(`param:${c}`)}`;
}

const HD = '__host__ __device__ __forceinline__';

/** Constants, counts, groups, scratch offsets (host and device), ids and slots (device). */
export function selectHelpers(
  k: AttentionKernel,
  layout: CudaLayout,
  cx: Omit<CudaContext, 'vars'>,
): string[] {
  const r = k.routing!;
  const unit = selUnit(r);
  const G = routingGroups(r);
  const groups = { H: 'a.H', Hkv: 'a.Hkv', '1': '1' }[G];
  const groupOf = { H: 'h', Hkv: 'h / (a.H / a.Hkv)', '1': '0' }[G];
  const voter0 = { H: 'g', Hkv: 'g * (a.H / a.Hkv)', '1': '0' }[G];
  const voters = { H: '1', Hkv: 'a.H / a.Hkv', '1': 'a.H' }[G];
  const kcount = r.from ? capacityC(r, layout) : countC(r.topk, layout);
  const restrict = r.restrict !== false;
  const chunkLen = r.chunks
    ? dimText(k.tensors.find((t) => t.name === r.chunks)!.dims[0]!, layout.field)
    : '';
  const idOf =
    unit === 'tokens'
      ? ['  return p;']
      : unit === 'blocks'
        ? [`  const int t = p / ${r.blockSize};`, `  return (t * ${r.blockSize} != p && p < 0) ? t - 1 : t;`]
        : [
            `  // Chunk id of position p (the launcher checks the call's positions lie in [0, ${chunkLen})).`,
            `  const int n = ${chunkLen};`,
            `  return n > 0 ? __ldg(a.${layout.field(`tensor:${r.chunks}`)} + min(max(p, 0), n - 1)) : 0;`,
          ];
  const mode = classMode(k);
  const m = linearize(
    [k.mask],
    cudaRenderer({
      ...cx,
      vars: {
        B: 'a.B',
        H: 'a.H',
        Hkv: 'a.Hkv',
        Nq: 'a.Nq',
        Nk: 'a.Nk',
        D: 'D',
        b: 'b',
        h: 'h',
        q: 'q',
        k: 'kp',
      },
    }),
    'sm',
  );
  const allowed =
    mode === 'full'
      ? ['  (void)a; (void)b; (void)h; (void)q; (void)kp;', '  return true;']
      : mode === 'empty'
        ? ['  (void)a; (void)b; (void)h; (void)q; (void)kp;', '  return false;']
        : [
            '  (void)b; (void)h; (void)q; (void)kp;',
            ...m.stmts.map((s) => `  ${s}`),
            `  return ${m.roots[0]};`,
          ];
  return [
    `constexpr int SEL_SPAN = ${SEL_SPAN}; // key slots per scoring block`,
    ...(r.from ? [] : ['constexpr int SEL_VPC = 8; // voters scored together (they share a kv head)']),
    '__device__ __forceinline__ float4 sel_ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }',
    ...(k.schedule.dtype === 'f32'
      ? []
      : [
          '__device__ __forceinline__ float4 sel_ld4(const T* p) {',
          '  const VecT<4> x = *reinterpret_cast<const VecT<4>*>(p);',
          '  return make_float4(to_f32(x.v[0]), to_f32(x.v[1]), to_f32(x.v[2]), to_f32(x.v[3]));',
          '}',
        ]),
    `constexpr bool SEL_RESTRICT = ${restrict}; // false for \`emit\`: the attention is not restricted`,
    '// The counts: k (or the `from` capacity), first, local (64-bit; the launcher checks their range).',
    `${HD} long long sel_count(const Args& a, const int which) {`,
    `  return which == 0 ? ${kcount} : which == 1 ? ${countC(r.first, layout)} : ${countC(r.local, layout)};`,
    '}',
    `${HD} int sel_cap(const Args& a) { return (int)(sel_count(a, 0) + sel_count(a, 1) + sel_count(a, 2)); }`,
    `// G of indices [B, G, Nq, K]; the group of query head h; the heads (voters) of group g.`,
    `${HD} int sel_groups(const Args& a) { (void)a; return ${groups}; }`,
    `${HD} int sel_group(const Args& a, const int h) { (void)a; (void)h; return ${groupOf}; }`,
    `${HD} int sel_voter0(const Args& a, const int g) { (void)a; (void)g; return ${voter0}; }`,
    `${HD} int sel_voters(const Args& a) { (void)a; return ${voters}; }`,
    `${HD} int sel_nspan(const Args& a) { return (a.Nk + SEL_SPAN - 1) / SEL_SPAN; }`,
    "// Attention splits of a row's selection (partials merged by sel_merge): enough blocks for few rows.",
    `${HD} int sel_splits(const Args& a) {`,
    `  if (!SEL_RESTRICT || (long long)a.B * a.H * a.Nq >= 1024) return 1;`,
    `  const int per = ${unit === 'tokens' ? 128 : 2}; // ids per split`,
    '  return max(1, min(16, sel_cap(a) / per));',
    '}',
    '// route_scratch (floats): pooled keys, pooled queries, metrics, vote partials, attention partials.',
    `${HD} size_t sel_pk_size(const Args& a) { return ${pooledK(r) ? '(size_t)a.B * a.Hkv * a.Nk * D' : '0'}; }`,
    `${HD} size_t sel_pq_size(const Args& a) { return ${pooledQ(r) ? '(size_t)a.B * a.H * a.Nq * D' : '0'}; }`,
    `${HD} size_t sel_met_size(const Args& a) { return ${r.from ? '0' : '(size_t)a.B * sel_groups(a) * a.Nq * a.Nk'}; }`,
    `${HD} size_t sel_vst_size(const Args& a) { return ${r.vote ? '(size_t)a.B * a.H * a.Nq * sel_nspan(a) * 2' : '0'}; }`,
    "// Vote: the voters' affinities are kept for the scoring pass when they fit (decoding), so it",
    '// reads them instead of the keys; otherwise it recomputes them.',
    `${HD} bool sel_keep_aff(const Args& a) { return ${r.vote ? '(long long)a.B * a.H * a.Nq * a.Nk <= (1LL << 26)' : '(void)a, false'}; }`,
    `${HD} size_t sel_aff_size(const Args& a) { return sel_keep_aff(a) ? (size_t)a.B * a.H * a.Nq * a.Nk : 0; }`,
    `${HD} size_t sel_part_size(const Args& a) { return sel_splits(a) > 1 ? (size_t)a.B * a.H * a.Nq * sel_splits(a) * (DV + 2) : 0; }`,
    `${HD} size_t sel_pq_off(const Args& a) { return sel_pk_size(a); }`,
    `${HD} size_t sel_met_off(const Args& a) { return sel_pq_off(a) + sel_pq_size(a); }`,
    `${HD} size_t sel_vst_off(const Args& a) { return sel_met_off(a) + sel_met_size(a); }`,
    `${HD} size_t sel_aff_off(const Args& a) { return sel_vst_off(a) + sel_vst_size(a); }`,
    `${HD} size_t sel_part_off(const Args& a) { return sel_aff_off(a) + sel_aff_size(a); }`,
    `${HD} size_t sel_scratch_size(const Args& a) { return sel_part_off(a) + sel_part_size(a); }`,
    '',
    '// The id of position p.',
    '__device__ __forceinline__ int sel_id(const Args& a, const int p) {',
    ...(unit === 'chunks' ? [] : ['  (void)a;']),
    ...idOf,
    '}',
    '// Whether row i of a side (positions off + i) starts a slot, and the end of the slot it starts.',
    '__device__ __forceinline__ bool sel_starts(const Args& a, const int off, const int i) {',
    `  return ${unit === 'tokens' ? '(void)a, (void)off, (void)i, true' : 'i == 0 || sel_id(a, off + i) != sel_id(a, off + i - 1)'};`,
    '}',
    '__device__ __forceinline__ int sel_end(const Args& a, const int off, const int N, const int i) {',
    unit === 'tokens' ? '  (void)a; (void)off; (void)N;' : '',
    unit === 'tokens'
      ? '  return i + 1;'
      : '  const int id = sel_id(a, off + i);\n  int e = i + 1;\n  while (e < N && sel_id(a, off + e) == id) ++e;\n  return e;',
    '}',
    '// Query units: the rows of a slot for a pooled query side, else each row alone.',
    '__device__ __forceinline__ bool sel_unit_starts(const Args& a, const int i) {',
    `  return ${pooledQ(r) ? 'sel_starts(a, a.q_offset, i)' : '(void)a, (void)i, true'};`,
    '}',
    '__device__ __forceinline__ int sel_unit_end(const Args& a, const int i) {',
    `  return ${pooledQ(r) ? 'sel_end(a, a.q_offset, a.Nq, i)' : '(void)a, i + 1'};`,
    '}',
    '// Key rows [lo, hi) of id in this call (empty when no key of the call has it).',
    '__device__ __forceinline__ void sel_range(const Args& a, const int id, int& lo, int& hi) {',
    ...(unit === 'tokens'
      ? ['  lo = id - a.k_offset;', '  hi = (lo >= 0 && lo < a.Nk) ? lo + 1 : lo;']
      : unit === 'blocks'
        ? [
            `  const long long p0 = (long long)id * ${r.blockSize}, p1 = p0 + ${r.blockSize};`,
            '  lo = (int)max(0LL, min((long long)a.Nk, p0 - a.k_offset));',
            '  hi = (int)max((long long)lo, min((long long)a.Nk, p1 - a.k_offset));',
          ]
        : [
            '  // Binary searches: the chunk ids of the keys are non-decreasing.',
            '  int x = 0, y = a.Nk;',
            '  while (x < y) { const int m = (x + y) >> 1; if (sel_id(a, a.k_offset + m) < id) x = m + 1; else y = m; }',
            '  lo = x; y = a.Nk;',
            '  while (x < y) { const int m = (x + y) >> 1; if (sel_id(a, a.k_offset + m) <= id) x = m + 1; else y = m; }',
            '  hi = x;',
          ]),
    '}',
    '// The static mask at positions (q, kp).',
    '__device__ __forceinline__ bool sel_allowed(const Args& a, const int b, const int h, const int q, const int kp) {',
    ...allowed,
    '}',
    '// Whether some (query row in [i0, i1), key row in [j0, j1)) pair is allowed for head h.',
    '__device__ bool sel_candidate(const Args& a, const int b, const int h, const int i0, const int i1, const int j0, const int j1) {',
    '  for (int i = i0; i < i1; ++i)',
    '    for (int j = j0; j < j1; ++j)',
    '      if (sel_allowed(a, b, h, i + a.q_offset, j + a.k_offset)) return true;',
    '  return false;',
    '}',
    '// Order-preserving u32 of a float metric (larger float, larger key).',
    '__device__ __forceinline__ unsigned sel_key(const float m) {',
    '  const unsigned u = __float_as_uint(m);',
    '  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);',
    '}',
    '// Whether id is forced for a query whose own id is `own`.',
    '__device__ __forceinline__ bool sel_forced(const Args& a, const long long id, const long long own) {',
    '  return id < sel_count(a, 1) || (id > own - sel_count(a, 2) && id <= own);',
    '}',
  ];
}

/** Pools the rows of each slot of one side (one block per row; rows not starting a slot return). */
function poolKernel(k: AttentionKernel, side: 'k' | 'q'): string[] {
  const r = k.routing!;
  const red = reducers[side === 'k' ? r.k : (r.q as RoutingPlan['k'])];
  const [N, off, heads, src, base] =
    side === 'k'
      ? ['a.Nk', 'a.k_offset', 'a.Hkv', 'a.k', '0']
      : ['a.Nq', 'a.q_offset', 'a.H', 'a.q', 'sel_pq_off(a)'];
  return [
    `extern "C" __global__ void __launch_bounds__(${SEL_POOL_THREADS}) ${selName(k, `pool_${side}`)}(const Args a) {`,
    '  const int i = blockIdx.x;',
    `  if (i >= ${N} || !sel_starts(a, ${off}, i)) return;`,
    `  const int len = sel_end(a, ${off}, ${N}, i) - i;`,
    `  const size_t bh = (size_t)blockIdx.z * ${heads} + blockIdx.y;`,
    `  const T* rows = static_cast<const T*>(${src}) + (bh * ${N} + i) * D;`,
    `  float* dst = a.route_scratch + ${base} + (bh * ${N} + i) * D;`,
    `  for (int d = threadIdx.x; d < D; d += ${SEL_POOL_THREADS}) {`,
    `    float acc = ${red.init};`,
    '    for (int p = 0; p < len; ++p) {',
    '      const float x = to_f32(rows[(size_t)p * D + d]);',
    `      ${red.fold};`,
    '    }',
    `    dst[d] = ${red.finish};`,
    '  }',
    '}',
  ];
}

/**
 * The scoring passes. Block (span, query unit i, group g, batch b); thread t scores slot
 * span·SEL_SPAN + t for each voter. `stats`: write the voters' (max, Σ exp) over the span;
 * otherwise: write the metric (the vote, from the merged statistics, or the one affinity).
 */
function scoreKernel(k: AttentionKernel, pass: 'vote_stats' | 'score'): string[] {
  const r = k.routing!;
  const vote = r.vote !== undefined;
  const qSrc = pooledQ(r)
    ? 'a.route_scratch[sel_pq_off(a) + ((size_t)(b * a.H + h) * a.Nq + i) * D + d]'
    : 'to_f32(static_cast<const T*>(a.q)[((size_t)(b * a.H + h) * a.Nq + i) * D + d])';
  const kRow = pooledK(r)
    ? 'const float* kr = a.route_scratch + ((size_t)(b * a.Hkv + kvh) * a.Nk + j) * D;'
    : 'const T* kr = static_cast<const T*>(a.k) + ((size_t)(b * a.Hkv + kvh) * a.Nk + j) * D;';
  const kx = pooledK(r) ? 'kr[d]' : 'to_f32(kr[d])';
  const head = [
    `extern "C" __global__ void __launch_bounds__(SEL_SPAN) ${selName(k, pass)}(const Args a) {`,
    '  extern __shared__ float4 smem4[];',
    "  float* qs = reinterpret_cast<float*>(smem4); // [voters][D] the unit's query side per voter",
    '  float* vs = qs + (size_t)sel_voters(a) * D;  // [voters][2] merged vote statistics',
    '  const int nspan = sel_nspan(a), tid = threadIdx.x;',
    '  const int i = blockIdx.x / nspan, span = blockIdx.x % nspan, g = blockIdx.y, b = blockIdx.z;',
    `  if (i >= a.Nq || !sel_unit_starts(a, i)) return; // a whole block`,
    '  const int i1 = sel_unit_end(a, i), nv = sel_voters(a), h0 = sel_voter0(a, g);',
    '  for (int t = tid; t < nv * D; t += blockDim.x) {',
    '    const int h = h0 + t / D, d = t % D;',
    `    qs[t] = ${qSrc};`,
    '  }',
    '  const int j = span * SEL_SPAN + tid;',
    '  const bool slot = j < a.Nk && sel_starts(a, a.k_offset, j);',
    '  const int j1 = slot ? sel_end(a, a.k_offset, a.Nk, j) : j;',
    `  float* vst = a.route_scratch + sel_vst_off(a) + ((size_t)(b * a.H + h0) * a.Nq + i) * nspan * 2;`,
    '  (void)vst; (void)vs;',
  ];
  // Block-wide max / sum over the 32-float `red` array (all threads call it).
  // Affinities of up to SEL_VPC voters that share a kv head at once (one key read serves them),
  // then `body` per voter with `v`, `x` (the affinity, NaN unless a candidate) and `cand`.
  const voters = (body: string[]): string[] => [
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
    `      ${kRow}`,
    ...(pooledK(r) || k.schedule.dtype === 'f32'
      ? []
      : [
          '      if constexpr (D % 8 == 0) {',
          '        // 16-byte key loads: each lane reads its own row, so wider loads waste less of a sector.',
          '        for (int d = 0; d < D; d += 8) {',
          '          const VecT<8> k8 = *reinterpret_cast<const VecT<8>*>(kr + d);',
          '          float kf[8];',
          '#pragma unroll',
          '          for (int e = 0; e < 8; ++e) kf[e] = to_f32(k8.v[e]);',
          '#pragma unroll',
          '          for (int u = 0; u < SEL_VPC; ++u)',
          '            if (u < nu) {',
          '              const float4 q0 = *reinterpret_cast<const float4*>(qs + (v0 + u) * D + d);',
          '              const float4 q1 = *reinterpret_cast<const float4*>(qs + (v0 + u) * D + d + 4);',
          '              xs[u] = fmaf(q0.x, kf[0], fmaf(q0.y, kf[1], fmaf(q0.z, kf[2], fmaf(q0.w, kf[3], xs[u]))));',
          '              xs[u] = fmaf(q1.x, kf[4], fmaf(q1.y, kf[5], fmaf(q1.z, kf[6], fmaf(q1.w, kf[7], xs[u]))));',
          '            }',
          '        }',
          '      } else',
        ]),
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
    '        for (int d = 0; d < D; ++d) {',
    `          const float kx = ${kx};`,
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
  if (pass === 'vote_stats')
    return [
      ...head,
      '  __shared__ float red[32];',
      '  const bool keep = sel_keep_aff(a);',
      '  float* aff = a.route_scratch + sel_aff_off(a) + ((size_t)(b * a.H + h0) * a.Nq + i) * a.Nk + j;',
      '  __syncthreads();',
      ...voters([
        '  const float mx = sel_block_max(cand ? x : -INFINITY, red);',
        '  const float z = sel_block_sum(cand && mx > -INFINITY ? expf(x - mx) : 0.f, red);',
        '  if (tid == 0) { vst[((size_t)v * a.Nq * nspan + span) * 2] = mx; vst[((size_t)v * a.Nq * nspan + span) * 2 + 1] = z; }',
        '  if (keep && j < a.Nk) aff[(size_t)v * a.Nq * a.Nk] = x;',
      ]),
      '}',
    ];
  return [
    ...head,
    ...(vote
      ? [
          "  // Each voter's softmax statistics, merged over the spans in order (deterministic).",
          '  // A warp per voter, lanes over the spans, then a fixed shuffle tree (deterministic).',
          '  for (int v = tid >> 5; v < nv; v += (int)(blockDim.x >> 5)) {',
          '    const int lane = tid & 31;',
          '    const float* p = vst + (size_t)v * a.Nq * nspan * 2;',
          '    float mx = -INFINITY, z = 0.f;',
          '    for (int s = lane; s < nspan; s += 32) mx = fmaxf(mx, p[2 * s]);',
          '    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));',
          '    if (mx > -INFINITY)',
          '      for (int s = lane; s < nspan; s += 32) if (p[2 * s] > -INFINITY) z += p[2 * s + 1] * expf(p[2 * s] - mx);',
          '    for (int o = 16; o > 0; o >>= 1) z += __shfl_xor_sync(0xffffffffu, z, o);',
          '    if (lane == 0) { vs[2 * v] = mx; vs[2 * v + 1] = z; }',
          '  }',
        ]
      : []),
    '  __syncthreads();',
    '  if (j >= a.Nk) return;',
    '  float metric = 0.f;',
    '  bool any = false;',
    ...(vote
      ? [
          '  if (sel_keep_aff(a)) {',
          "    // The voters' affinities from sel_vote_stats (NaN: not a candidate for that voter).",
          '    const float* aff = a.route_scratch + sel_aff_off(a) + ((size_t)(b * a.H + h0) * a.Nq + i) * a.Nk + j;',
          '    for (int v = 0; v < nv; ++v) {',
          '      const float x = aff[(size_t)v * a.Nq * a.Nk];',
          '      if (isnan(x)) continue;',
          '      any = true;',
          '      if (vs[2 * v] > -INFINITY) metric += expf(x - vs[2 * v]) / vs[2 * v + 1];',
          '    }',
          '    a.route_scratch[sel_met_off(a) + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * a.Nk + j] = any ? metric : NAN;',
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
    '  a.route_scratch[sel_met_off(a) + ((size_t)(b * sel_groups(a) + g) * a.Nq + i) * a.Nk + j] = any ? metric : NAN;',
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
  if (r.from) return [];
  return [
    ...(pooledK(r) ? ['', ...poolKernel(k, 'k')] : []),
    ...(pooledQ(r) ? ['', ...poolKernel(k, 'q')] : []),
    '',
    ...blockReductions,
    ...(r.vote ? ['', ...scoreKernel(k, 'vote_stats')] : []),
    '',
    ...scoreKernel(k, 'score'),
  ];
}
