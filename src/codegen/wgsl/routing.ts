// WGSL entry points of block routing (ir/routing.ts RoutingPlan), run before the attention:
//   route_pool_k  one workgroup per (key block, kv head, batch): pools the block's keys into the
//                 `route_pool` scratch buffer;
//   route_pool_q  the same for query blocks (pooled query sides only);
//   route_topk    one invocation per (query unit, selection group, batch): forced blocks, then
//                 a deterministic top-k of the other candidates (routing-topk.ts), written to
//                 the unit's rows of `indices` in ascending order, padded with -1.
// Candidacy (some pair of the unit and the block allowed by the static mask) goes through the
// tile classifier on the (unit rows x block keys) ranges, and pair by pair only where the
// classifier says partial (route_candidate). The passes index blocks — or chunks, `chunks(t)`,
// by the row where each starts — through "slots" (route_slot_range, route_id). Token selection
// (routing-select.ts) and `from` (routing-sort.ts) replace pool + top-k with their own passes
// but share the helpers here; the attention reads `indices` the same way for all of them.
import type { TensorFormats } from '../../ir/formats.js';
import {
  isPoolRank,
  pooledQuery,
  routingGroups,
  routingPasses,
  unitBlockSize,
  type PoolRankPlan,
  type RoutingPlan,
} from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import type { Linearized } from '../linearize.js';
import type { ClassMode } from './attention.js';
import { POOL_THREADS, poolEntry } from './routing-pool.js';
import { selectEntries, selectSource } from './routing-select.js';
import { sortEntry, sortSource } from './routing-sort.js';
import { topkSource } from './routing-topk.js';
import { tensorVar } from './rules.js';

const TOPK_THREADS = 64;

/**
 * Scratch words: pooled keys [B, Hkv, KB, D], then pooled queries [B, H, QB, D] (pooled query
 * sides), then (vote) each head's softmax (max, sum) per query unit [B, H, units, 2].
 */
export function routingScratchShape(r: PoolRankPlan): string {
  const [kslots, qslots] = slotShapes(r);
  const { q, vote } = r.source;
  const parts = [`B * Hkv * ${kslots} * D`];
  if (q !== 'raw') parts.push(`B * H * ${qslots} * D`);
  if (vote) parts.push(`B * H * ${q === 'raw' ? 'Nq' : qslots} * 2`);
  return parts.join(' + ');
}

/**
 * Slots of the key and query sides (shape expressions): the blocks a call can touch (one more
 * than cdiv: an offset can split a block at each end), or one per row for chunks, where slot s
 * is used only if row s starts a chunk.
 */
function slotShapes(r: PoolRankPlan): [string, string] {
  if (r.unit.kind === 'chunks') return ['Nk', 'Nq'];
  return [`(cdiv(Nk, ${r.unit.size}) + 1)`, `(cdiv(Nq, ${r.unit.size}) + 1)`];
}

/** WGSL: ids of positions, slot counts and the positions of a slot (blocks or chunks). */
function slotHelpers(r: RoutingPlan): string[] {
  if (r.unit.kind === 'chunks') {
    const t = tensorVar(r.unit.tensor);
    return [
      `// Chunk id of position p: ${r.unit.tensor}[p] (runtime/validate.ts checks it is non-decreasing, >= 0).`,
      `fn route_id(p: i32) -> i32 { return ${t}[u32(clamp(p, 0i, i32(arrayLength(&${t})) - 1i))]; }`,
      'fn route_kslots() -> u32 { return u32(u.Nk); }',
      'fn route_qslots() -> u32 { return u32(u.Nq); }',
      '',
      '// The first position and the length of the chunk that starts at row s of a side (rows at',
      '// positions off ... off + N - 1); length 0 unless row s starts a chunk.',
      'fn route_slot_range(s: i32, off: i32, N: i32) -> vec2<i32> {',
      '  if (s < 0i || s >= N) { return vec2<i32>(0i, 0i); }',
      '  let id = route_id(off + s);',
      '  if (s > 0i && route_id(off + s - 1i) == id) { return vec2<i32>(0i, 0i); }',
      '  var e = s + 1i;',
      '  while (e < N && route_id(off + e) == id) { e++; }',
      '  return vec2<i32>(off + s, e - s);',
      '}',
    ];
  }
  return [
    'fn route_id(p: i32) -> i32 { return route_floor_div(p, ROUTE_BLOCK); }',
    'fn route_kslots() -> u32 { return u32((u.Nk + ROUTE_BLOCK - 1i) / ROUTE_BLOCK) + 1u; }',
    'fn route_qslots() -> u32 { return u32((u.Nq + ROUTE_BLOCK - 1i) / ROUTE_BLOCK) + 1u; }',
    '',
    '// The first position and the length (0: none) of the s-th block a side (rows at positions',
    '// off ... off + N - 1) touches. Relative to off, as a start and a length: a block end or',
    '// off + N may be 2^31 when the last position is 2^31 - 1 (it would wrap negative).',
    'fn route_slot_range(s: i32, off: i32, N: i32) -> vec2<i32> {',
    '  let rel = s * ROUTE_BLOCK - (off - route_floor_div(off, ROUTE_BLOCK) * ROUTE_BLOCK);',
    '  let lo = max(rel, 0i);',
    '  let len = max(min(rel + ROUTE_BLOCK, N) - lo, 0i);',
    '  return vec2<i32>(select(off, off + lo, len > 0i), len);',
    '}',
  ];
}

/** `fn route_candidate`: whether the static mask allows some pair of the unit and block `id`. */
function candidateFn(mode: ClassMode, mask: Linearized | undefined): string {
  const byClass =
    mode === 'dynamic'
      ? [
          '  let cls = tile_class(b, h, q_lo, q_hi, k_lo, k_hi);',
          '  if (cls == TILE_EMPTY) { return false; }',
          '  if (cls == TILE_FULL) { return true; }',
        ]
      : mode === 'full'
        ? ['  return true;']
        : mode === 'empty'
          ? ['  return false;']
          : [];
  const pairs =
    mode === 'dynamic' || mode === 'partial'
      ? [
          '  // Partial: find one allowed pair (at most BLOCK x unit rows of them). The loops count',
          '  // offsets: q_hi or k_hi may be I32_MAX, where q++ would wrap and scan other positions.',
          '  for (var i = 0i; i <= q_hi - q_lo; i++) {',
          '    for (var j = 0i; j <= k_hi - k_lo; j++) {',
          '      if (route_mask(b, h, q_lo + i, k_lo + j)) { return true; }',
          '    }',
          '  }',
          '  return false;',
        ]
      : [];
  const maskFn = mask
    ? [
        'fn route_mask(b: i32, h: i32, q: i32, k: i32) -> bool {',
        ...mask.stmts.map((l) => `  ${l}`),
        `  return ${mask.roots[0]};`,
        '}',
        '',
      ]
    : [];
  return [
    ...maskFn,
    'fn route_candidate(b: i32, h: i32, q_lo: i32, q_hi: i32, id: i32) -> bool {',
    '  let k_lo = max(id * ROUTE_BLOCK, u.k_offset);',
    "  // The block's last key, without forming (id + 1) * ROUTE_BLOCK or k_offset + Nk (2^31 at the top).",
    '  let k_hi = id * ROUTE_BLOCK + min(ROUTE_BLOCK - 1i, u.k_offset + (u.Nk - 1i) - id * ROUTE_BLOCK);',
    '  return route_candidate_keys(b, h, q_lo, q_hi, k_lo, k_hi);',
    '}',
    '',
    '// The same for the keys at positions k_lo ..= k_hi (a block or a chunk).',
    'fn route_candidate_keys(b: i32, h: i32, q_lo: i32, q_hi: i32, k_lo: i32, k_hi: i32) -> bool {',
    '  if (k_lo > k_hi) { return false; }',
    ...byClass,
    ...pairs,
    '}',
  ].join('\n');
}

export interface RoutingParts {
  /** The counts (k, first, local) as a linearized i32 triple over sizes and params. */
  readonly counts: Linearized;
  /** The static mask over b h q k, for pair-by-pair candidacy (partial/dynamic modes). */
  readonly mask: Linearized | undefined;
  readonly mode: ClassMode;
}

/** Constants and helpers shared by the routing passes and the attention. */
export function routingHelpers(f: TensorFormats, r: RoutingPlan, p: RoutingParts): string {
  const kb = 'route_kslots()';
  return [
    `const ROUTE_BLOCK: i32 = ${unitBlockSize(r)}i;`,
    '',
    'fn route_floor_div(a: i32, b: i32) -> i32 {',
    '  let q = a / b;',
    '  return select(q, q - 1i, a % b != 0i && (a < 0i) != (b < 0i));',
    '}',
    '',
    ...slotHelpers(r),
    '',
    '// (topk, force first, force local), each clamped to >= 0.',
    'fn route_counts() -> vec3<i32> {',
    ...p.counts.stmts.map((l) => `  ${l}`),
    `  return max(vec3<i32>(${p.counts.roots.join(', ')}), vec3<i32>(0i));`,
    '}',
    '',
    '// Ids per row of `indices`: topk + first + local.',
    'fn route_cap() -> u32 {',
    '  let c = route_counts();',
    '  return u32(c.x + c.y + c.z);',
    '}',
    '',
    '// Where the pooled queries start in route_pool (after the pooled keys).',
    'fn route_q_base() -> u32 {',
    `  return u32(u.B) * u32(u.Hkv) * ${kb} * HEAD_DIM;`,
    '}',
    '',
    "// Where the voters' softmax statistics start in route_pool (after the pooled queries).",
    'fn route_vote_base() -> u32 {',
    !pooledQuery(r)
      ? '  return route_q_base();'
      : '  return route_q_base() + u32(u.B) * u32(u.H) * route_qslots() * HEAD_DIM;',
    '}',
    '',
    '// G, the selection groups of `indices` [B, G, Nq, K].',
    'fn route_groups() -> u32 {',
    `  return ${{ H: 'u32(u.H)', Hkv: 'u32(u.Hkv)', '1': '1u' }[routingGroups(r)]};`,
    '}',
    '',
    '// b * G + (the selection group of head h): the row block of `indices` that head h reads.',
    'fn route_group_row(b: u32, h: u32) -> u32 {',
    `  return ${groupRow(r)};`,
    '}',
    '',
    'fn route_forced(id: i32, own: i32, c: vec3<i32>) -> bool {',
    '  return id < c.y || (id > own - c.z && id <= own);',
    '}',
    '',
    // Ids are >= 0 (routing refuses negative key positions), so as u32 they sort as they do as
    // i32, and ROUTE_END sorts above them all: I32_MAX is a real id (the key at 2^31 - 1).
    '// Past the end of an index row: above every id as u32.',
    'const ROUTE_END: u32 = 0xffffffffu;',
    '',
    '// Selected id p of an index row (ascending) as u32, or ROUTE_END past its end.',
    'fn route_sel(base: u32, p: u32, cap: u32) -> u32 {',
    '  if (p >= cap) { return ROUTE_END; }',
    '  let v = route_indices[base + p];',
    '  return select(u32(v), ROUTE_END, v < 0i);',
    '}',
    '',
    candidateFn(p.mode, p.mask),
    '',
    ...passSources(f, r, p),
  ].join('\n');
}

/** The passes that fill `indices`: pooled block top-k, token radix select, or `from` + sort. */
function passSources(f: TensorFormats, r: RoutingPlan, p: RoutingParts): string[] {
  switch (routingPasses(r)) {
    case 'read-from':
      return [sortSource(r, p.mode)];
    case 'token-select':
      return [selectSource(f, r, p.mode), '', sortSource(r, p.mode)];
    case 'pool-rank': {
      const pr = poolRankOf(r);
      const q = pr.source.q === 'raw' ? [] : ['', poolEntry(f, pr, 'q')];
      return [poolEntry(f, pr, 'k'), ...q, '', topkSource(f, pr)];
    }
  }
}

function poolRankOf(r: RoutingPlan): PoolRankPlan {
  if (!isPoolRank(r)) throw new Error('internal: WGSL pooling of a plan that ranks no pooled units');
  return r;
}

function groupRow(r: RoutingPlan): string {
  const groups = routingGroups(r);
  if (groups === '1') return 'b';
  if (groups === 'Hkv') return 'b * u32(u.Hkv) + h / (u32(u.H) / u32(u.Hkv))';
  return 'b * u32(u.H) + h';
}

/** Slot-count shape expressions of the key and query sides of a pooled plan. */
function slotCounts(r: PoolRankPlan): [string, string] {
  return r.unit.kind === 'chunks'
    ? ['Nk', 'Nq']
    : [`cdiv(Nk, ${r.unit.size}) + 1`, `cdiv(Nq, ${r.unit.size}) + 1`];
}

/** The launch record of the `pool` stage of `side` (ir/stages.ts). */
export function routingPoolEntry(plan: RoutingPlan, side: 'k' | 'q'): EntryPoint {
  const r = poolRankOf(plan);
  const chunkIds = r.unit.kind === 'chunks' ? r.unit.tensor : undefined;
  const [kb, qb] = slotCounts(r);
  return {
    name: `route_pool_${side}`,
    role: 'routing',
    // The chunk-id tensor rides on the pool entry, so the runtime knows which tensor to validate.
    ...(chunkIds ? { tensor: chunkIds } : {}),
    workgroupSize: [POOL_THREADS, 1, 1],
    grid: side === 'k' ? [kb, 'Hkv', 'B'] : [qb, 'H', 'B'],
    bindings: [side, 'route_pool', ...(chunkIds ? [chunkIds] : []), 'uniforms'],
  };
}

/** Launch records of the `rank` stage: they fill `indices` (after pooling, before the attention). */
export function routingRankEntries(r: RoutingPlan, maskBindings: readonly string[]): EntryPoint[] {
  switch (routingPasses(r)) {
    case 'read-from':
      return [sortEntry(r, maskBindings)];
    case 'token-select':
      return [...selectEntries(r, maskBindings), sortEntry(r, maskBindings)];
    case 'pool-rank':
      return [topkEntry(poolRankOf(r), maskBindings)];
  }
}

function topkEntry(r: PoolRankPlan, maskBindings: readonly string[]): EntryPoint {
  const chunkIds = r.unit.kind === 'chunks' ? r.unit.tensor : undefined;
  const raw = r.source.q === 'raw';
  const units = raw ? 'Nq' : slotCounts(r)[1];
  return {
    name: 'route_topk',
    role: 'routing',
    workgroupSize: [TOPK_THREADS, 1, 1],
    grid: [`cdiv(${units}, ${TOPK_THREADS})`, routingGroups(r), 'B'],
    bindings: [
      ...(raw ? ['q'] : []),
      'route_pool',
      'indices',
      ...(chunkIds ? [chunkIds] : []),
      ...maskBindings,
      'uniforms',
    ],
  };
}
