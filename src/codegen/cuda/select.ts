// Token selection, `emit`, `from` and chunk routing on CUDA (ir/routing.ts RoutingPlan; semantics
// in docs/LANGUAGE.md "Pooling, routing and selection", oracle runtime/reference-routing.ts).
// Block routing ranked by top-k (routing.ts) keeps its own passes; every other plan runs here.
// Ids are "slots": key row j starts a slot when its id (the position for tokens, floor(p / n) for
// blocks, chunk[p] for chunks) differs from row j − 1's; the slot's keys run to the next start.
// The launcher runs, before the attention (select-host.ts; the first three in select-score.ts):
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
// Memory: the metric is a float per (query unit, key), so score and topk run in rounds of
// `sel_rows` query rows (the launcher sets `sel_row0` per round): a round's metrics fit in
// max(ATTNC_SEL_ROUND_FLOATS = 2^24, 8 × the indices) floats, so the scratch is O(Nq·k + Nk),
// never O(Nq·Nk); decoding (few rows) runs in one round. The WGSL path keeps O(Nq·k) with 8 radix
// rounds over recomputed scores; here a round's scores are computed once.
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  attendsSelected,
  pooledSides,
  routingFrom,
  routingGroups,
  routingVote,
  type FromSource,
  type RoutingPlan,
} from '../../ir/routing.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { countC } from './routing.js';
import type { CudaLayout } from './layout.js';
import { ARGS, cudaRenderer, type CudaContext } from './rules.js';
import { selSlots } from './select-slots.js';
import { wideHelpers, wideTopk } from './select-wide.js';

/** Threads (and key slots) of a scoring block. */
export const SEL_SPAN = 256;
export const SEL_POOL_THREADS = 128;

export const selName = (k: AttentionKernel, pass: string): string => `attnc_${k.name}_sel_${pass}`;

/** The `from` capacity (a literal or an int param) as C. */
function capacityC(from: FromSource, layout: Pick<CudaLayout, 'field'>): string {
  const c = from.capacity;
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
  return [
    ...selConstants(k),
    ...selCounts(k, layout),
    ...selScratch(r),
    ...selSlots(k, layout),
    ...selMask(k, cx),
    ...selRanking(),
  ];
}

/** The span, the vector loads of keys and queries, and whether the attention is restricted. */
function selConstants(k: AttentionKernel): string[] {
  const from = routingFrom(k.routing!);
  const restrict = attendsSelected(k.routing!);
  return [
    `constexpr int SEL_SPAN = ${SEL_SPAN}; // key slots per scoring block`,
    ...(from ? [] : ['constexpr int SEL_VPC = 8; // voters scored together (they share a kv head)']),
    '__device__ __forceinline__ float4 sel_ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }',
    ...(sharedStorage(k.formats) === 'f32'
      ? []
      : [
          '__device__ __forceinline__ float4 sel_ld4(const T* p) {',
          '  const VecT<4> x = *reinterpret_cast<const VecT<4>*>(p);',
          '  return make_float4(to_f32(x.v[0]), to_f32(x.v[1]), to_f32(x.v[2]), to_f32(x.v[3]));',
          '}',
        ]),
    `constexpr bool SEL_RESTRICT = ${restrict}; // false for \`emit\`: the attention is not restricted`,
  ];
}

/**
 * sel_count, sel_cap (K of `indices` [B, G, Nq, K]), sel_groups (G) and sel_group (the group query
 * head h reads): what reading a row of `indices` needs, the backward's membership test too.
 */
export function selIndexRows(k: AttentionKernel, layout: Pick<CudaLayout, 'field'>): string[] {
  const r = k.routing!;
  const from = routingFrom(r);
  const G = routingGroups(r);
  const groups = { H: 'a.H', Hkv: 'a.Hkv', '1': '1' }[G];
  const groupOf = { H: 'h', Hkv: 'h / (a.H / a.Hkv)', '1': '0' }[G];
  const kcount = from ? capacityC(from, layout) : countC(r.source.count, layout);
  return [
    '// The counts: k (or the `from` capacity), first, local (64-bit; the launcher checks their range).',
    `${HD} long long sel_count(const Args& a, const int which) {`,
    `  return which == 0 ? ${kcount} : which == 1 ? ${countC(r.first, layout)} : ${countC(r.local, layout)};`,
    '}',
    `${HD} int sel_cap(const Args& a) { return (int)(sel_count(a, 0) + sel_count(a, 1) + sel_count(a, 2)); }`,
    `// G of indices [B, G, Nq, K]; the group of query head h; the heads (voters) of group g.`,
    `${HD} int sel_groups(const Args& a) { (void)a; return ${groups}; }`,
    `${HD} int sel_group(const Args& a, const int h) { (void)a; (void)h; return ${groupOf}; }`,
  ];
}

/** The counts (k, first, local), groups and voters, spans and attention splits. */
function selCounts(k: AttentionKernel, layout: CudaLayout): string[] {
  const r = k.routing!;
  const unit = r.unit;
  const G = routingGroups(r);
  const voter0 = { H: 'g', Hkv: 'g * (a.H / a.Hkv)', '1': '0' }[G];
  const voters = { H: '1', Hkv: 'a.H / a.Hkv', '1': 'a.H' }[G];
  return [
    ...selIndexRows(k, layout),
    `${HD} int sel_voter0(const Args& a, const int g) { (void)a; (void)g; return ${voter0}; }`,
    `${HD} int sel_voters(const Args& a) { (void)a; return ${voters}; }`,
    `${HD} int sel_nspan(const Args& a) { return (a.Nk + SEL_SPAN - 1) / SEL_SPAN; }`,
    "// Attention splits of a row's selection (partials merged by sel_merge): enough blocks for few rows.",
    `${HD} int sel_splits(const Args& a) {`,
    `  if (!SEL_RESTRICT || (long long)a.B * a.H * a.Nq >= 1024) return 1;`,
    `  const int per = ${unit.kind === 'tokens' ? 128 : 2}; // ids per split`,
    '  return max(1, min(16, sel_cap(a) / per));',
    '}',
  ];
}

/** Scoring rounds and route_scratch's layout: each region's size and offset, the metric rows. */
function selScratch(r: RoutingPlan): string[] {
  const from = routingFrom(r);
  const pooled = pooledSides(r);
  const vote = routingVote(r);
  const wide = wideTopk(r);
  return [
    '#ifndef ATTNC_SEL_ROUND_FLOATS',
    "#define ATTNC_SEL_ROUND_FLOATS (1LL << 24) // floor of a scoring round's scratch (64 MiB)",
    '#endif',
    "// Floats a scoring round may use for its metrics (and the vote's partials): a fixed floor or",
    '// 8 × the indices, whichever is larger, so the scratch stays O(Nq·k + Nk).',
    `${HD} long long sel_round_budget(const Args& a) {`,
    '  return max((long long)ATTNC_SEL_ROUND_FLOATS, 8LL * a.B * sel_groups(a) * a.Nq * sel_cap(a));',
    '}',
    '// Query rows per scoring round (score + topk); rounds start at multiples of it.',
    `${HD} int sel_rows(const Args& a) {`,
    `  const long long per = (long long)a.B * ((long long)sel_groups(a) * a.Nk${vote ? ' + (long long)a.H * sel_nspan(a) * 2' : ''});`,
    '  const long long nq = max(a.Nq, 1);',
    '  return (int)max(1LL, min(nq, per > 0 ? sel_round_budget(a) / per : nq));',
    '}',
    '// route_scratch (floats): pooled keys, pooled queries, metrics, vote partials, attention partials.',
    `${HD} size_t sel_pk_size(const Args& a) { return ${pooled.k ? '(size_t)a.B * a.Hkv * a.Nk * D' : '0'}; }`,
    `${HD} size_t sel_pq_size(const Args& a) { return ${pooled.q ? '(size_t)a.B * a.H * a.Nq * D' : '0'}; }`,
    `${HD} size_t sel_met_size(const Args& a) { return ${from ? '0' : '(size_t)a.B * sel_groups(a) * sel_rows(a) * a.Nk'}; }`,
    `${HD} size_t sel_vst_size(const Args& a) { return ${vote ? '(size_t)a.B * a.H * sel_rows(a) * sel_nspan(a) * 2' : '0'}; }`,
    "// Vote: the voters' affinities of a round are kept for the scoring pass when they fit the round",
    '// budget (decoding), so it reads them instead of the keys; otherwise it recomputes them.',
    `${HD} bool sel_keep_aff(const Args& a) { return ${vote ? '(long long)a.B * a.H * sel_rows(a) * a.Nk <= sel_round_budget(a)' : '(void)a, false'}; }`,
    `${HD} size_t sel_aff_size(const Args& a) { return sel_keep_aff(a) ? (size_t)a.B * a.H * sel_rows(a) * a.Nk : 0; }`,
    `${HD} size_t sel_part_size(const Args& a) { return sel_splits(a) > 1 ? (size_t)a.B * a.H * a.Nq * sel_splits(a) * (DV + 2) : 0; }`,
    `${HD} size_t sel_pq_off(const Args& a) { return sel_pk_size(a); }`,
    `${HD} size_t sel_met_off(const Args& a) { return sel_pq_off(a) + sel_pq_size(a); }`,
    `${HD} size_t sel_vst_off(const Args& a) { return sel_met_off(a) + sel_met_size(a); }`,
    `${HD} size_t sel_aff_off(const Args& a) { return sel_vst_off(a) + sel_vst_size(a); }`,
    `${HD} size_t sel_part_off(const Args& a) { return sel_aff_off(a) + sel_aff_size(a); }`,
    ...(wide
      ? [
          ...wideHelpers(),
          `${HD} size_t sel_wide_off(const Args& a) { return sel_part_off(a) + sel_part_size(a); }`,
          `${HD} size_t sel_scratch_size(const Args& a) { return sel_wide_off(a) + sel_wide_size(a); }`,
        ]
      : [`${HD} size_t sel_scratch_size(const Args& a) { return sel_part_off(a) + sel_part_size(a); }`]),
    ...(from
      ? []
      : [
          '// The metric row of query row i (of the current round) for group g: [B, G, rows, Nk].',
          '__device__ __forceinline__ float* sel_met_row(const Args& a, const int b, const int g, const int i) {',
          '  return a.route_scratch + sel_met_off(a) + ((size_t)(b * sel_groups(a) + g) * sel_rows(a) + (i - a.sel_row0)) * a.Nk;',
          '}',
        ]),
  ];
}

/** `sel_allowed` (the static mask at a pair) and `sel_candidate` (some pair of two ranges allowed). */
function selMask(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string[] {
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
  ];
}

/** The ranking's order-preserving key of a metric and the forced ids. */
function selRanking(): string[] {
  return [
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
