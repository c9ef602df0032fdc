// Routing and selection in the kernel IR (docs/LANGUAGE.md, "Pooling, routing and selection"):
// a `route blocks(n)|chunks(t) …`, `select …` or `emit …` statement becomes a RoutingPlan, a
// tagged union mirroring the AST: what an id stands for (`unit`), where the selection comes from
// (`source`: ranked here by top-k, or read `from` an index tensor) and what the attention then
// visits (`attention`). A backend expands it into passes before the attention — pool(k) →
// pool(q) → affinity + top-k for blocks and chunks, a parallel radix select for tokens, a sort of
// the given rows for `from` (docs/DESIGN-NOTES.md). The selection is an [B, G, Nq, K] index
// output (K = k + f + l): O(N·k) memory, never an N×N mask. The case analysis the backends share
// (groups, pooled sides, the pass family) lives here as small functions on the union; checks,
// dumps and the unsupported-construct errors are in routing-check.ts.
import type { PoolReducer } from '../dsl/ast.js';
import type { Node } from './graph.js';
import { Op } from './ops.js';

export type { PoolReducer } from '../dsl/ast.js';

/** What one selected id stands for. */
export type RoutingUnit =
  /** `blocks(n)`: key position p (and query position q) belongs to block floor(p / size). */
  | { readonly kind: 'blocks'; readonly size: number }
  /** `chunks(t)`: the id of position p is t[p] (an `i32[kv]` tensor, non-decreasing, >= 0). */
  | { readonly kind: 'chunks'; readonly tensor: string }
  /** `select` / token-level `emit`: an id is a key position. */
  | { readonly kind: 'tokens' };

/** Ranked here: the `count` best ids by the affinity `q . k` (optionally voted over heads). */
export interface RankedSource {
  readonly kind: 'topk';
  /** i32 expression of params and sizes only: the top-k count. */
  readonly count: Node;
  /** Query side of the affinity: pooled per query unit (one selection per unit) or raw rows. */
  readonly q: PoolReducer | 'raw';
  /**
   * Key side: pooled per key unit. For tokens it is `first`: a one-key block pools to the key
   * itself, so the plan also reads as blocks(1) by q . first(k).
   */
  readonly k: PoolReducer;
  /**
   * Soft voting (TokenSelect): one selection per kv head's group of query heads (`groups`) or for
   * all heads (`heads`), ranked by the sum over voters of each head's softmax of affinities.
   */
  readonly vote?: 'heads' | 'groups';
}

/** `… from t`: the selection is read from the index tensor `t` ([B, groups, Nq, capacity]). */
export interface FromSource {
  readonly kind: 'from';
  readonly tensor: string;
  /** The selection groups of the tensor's dim 1 (heads, kv_heads or 1). */
  readonly groups: 'H' | 'Hkv' | '1';
  /** The tensor's dim 3 as a shape expression (a literal or an int param). */
  readonly capacity: string;
  /** `capacity` as an i32 node: the ids a row reads, where a ranked source has its top-k count. */
  readonly count: Node;
}

export type RoutingSource = RankedSource | FromSource;

/**
 * What the attention visits: only each row's selected ids, or (`emit`) everything the static
 * mask allows — the selection is then only written to `indices`.
 */
export type RoutingAttention = 'selected' | 'static-mask';

export interface RoutingPlan {
  readonly unit: RoutingUnit;
  readonly source: RoutingSource;
  /** i32 expressions of params and sizes only: the forced counts `force first(n) local(n)`. */
  readonly first: Node;
  readonly local: Node;
  readonly attention: RoutingAttention;
}

/**
 * The family of passes that produce the selection, which both backends expand: pooled units
 * ranked by top-k (pool k → pool q → rank), keys ranked one by one (a radix select), or a
 * selection read from a tensor (sort, dedupe, forced ids).
 */
export type RoutingPasses = 'pool-rank' | 'token-select' | 'read-from';

export function routingPasses(r: RoutingPlan): RoutingPasses {
  if (r.source.kind === 'from') return 'read-from';
  return r.unit.kind === 'tokens' ? 'token-select' : 'pool-rank';
}

/** The voting of a ranked source (a `from` selection was voted where it was computed). */
export const routingVote = (r: RoutingPlan): 'heads' | 'groups' | undefined =>
  r.source.kind === 'topk' ? r.source.vote : undefined;

/** The `from` source, or undefined for a ranked one. */
export const routingFrom = (r: RoutingPlan): FromSource | undefined =>
  r.source.kind === 'from' ? r.source : undefined;

/** The ranked source, or undefined for `from`. */
export const rankedSource = (r: RoutingPlan): RankedSource | undefined =>
  r.source.kind === 'topk' ? r.source : undefined;

/** The chunk-id tensor of `chunks(t)`, or undefined for other units. */
export const chunkTensor = (r: RoutingPlan): string | undefined =>
  r.unit.kind === 'chunks' ? r.unit.tensor : undefined;

/** Positions per id for position arithmetic: the block size, or 1 (tokens; chunks never use it). */
export const unitBlockSize = (r: RoutingPlan): number => (r.unit.kind === 'blocks' ? r.unit.size : 1);

/** Whether the attention visits only the selected ids (false for `emit`). */
export const attendsSelected = (r: RoutingPlan): boolean => r.attention === 'selected';

/**
 * Which affinity sides are pooled per unit before ranking: keys for every ranked block or chunk
 * plan, queries when the query side names a reducer too. Tokens and `from` pool nothing.
 */
export function pooledSides(r: RoutingPlan): { readonly q: boolean; readonly k: boolean } {
  if (routingPasses(r) !== 'pool-rank') return { q: false, k: false };
  return { q: r.source.kind === 'topk' && r.source.q !== 'raw', k: true };
}

/** Whether the query side ranks per unit (pooled) rather than per row: `q` is not raw. */
export const pooledQuery = (r: RoutingPlan): boolean => r.source.kind === 'topk' && r.source.q !== 'raw';

/**
 * The block size of a pooled-query block routing that attends its selected keys (BiFormer-style:
 * a q-tile within one query unit shares one selection), else undefined. The schedule's tile
 * choices for routing key off it.
 */
export const pooledBlocks = (r: RoutingPlan): number | undefined =>
  r.unit.kind === 'blocks' && pooledQuery(r) && r.attention === 'selected' ? r.unit.size : undefined;

/** The selection groups G of the `indices` output [B, G, Nq, K], as a shape symbol. */
export function routingGroups(r: RoutingPlan): 'H' | 'Hkv' | '1' {
  if (r.source.kind === 'from') return r.source.groups;
  return r.source.vote === 'heads' ? '1' : r.source.vote === 'groups' ? 'Hkv' : 'H';
}

/** Vars a routing count may read: sizes only (no b h q k), as LANGUAGE.md's COUNT allows. */
export const routingCountVars: ReadonlySet<string> = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);

/**
 * A shape expression (codegen/artifact.ts ShapeExpr) of an i32 count, or undefined when the
 * count uses an op the shape grammar lacks (division, min, …).
 */
export function countShapeExpr(n: Node): string | undefined {
  if (n.op === Op.CONST && typeof n.arg === 'number') return String(n.arg);
  if (n.op === Op.PARAM) return String(n.arg);
  if (n.op === Op.VAR && routingCountVars.has(String(n.arg))) return String(n.arg);
  const sym = n.op === Op.ADD ? '+' : n.op === Op.SUB ? '-' : n.op === Op.MUL ? '*' : undefined;
  if (sym === undefined || n.src.length !== 2) return undefined;
  const [a, b] = [countShapeExpr(n.src[0]!), countShapeExpr(n.src[1]!)];
  return a === undefined || b === undefined ? undefined : `(${a} ${sym} ${b})`;
}

/** K of the index output, `k + first + local`, as a shape expression (undefined: see above). */
export function capacityShapeExpr(r: RoutingPlan): string | undefined {
  const head = r.source.kind === 'from' ? r.source.capacity : countShapeExpr(r.source.count);
  const parts = [head, countShapeExpr(r.first), countShapeExpr(r.local)];
  return parts.every((p) => p !== undefined) ? parts.join(' + ') : undefined;
}

/** Pooled units (blocks or chunks) ranked by top-k: routingPasses' 'pool-rank' case, typed. */
export type PoolRankPlan = RoutingPlan & {
  readonly unit: Exclude<RoutingUnit, { kind: 'tokens' }>;
  readonly source: RankedSource;
};

export const isPoolRank = (r: RoutingPlan): r is PoolRankPlan => routingPasses(r) === 'pool-rank';

/** Pooled blocks ranked by top-k: the plan whose ids are position blocks and whose sides pool. */
export type RankedBlocksPlan = RoutingPlan & {
  readonly unit: Extract<RoutingUnit, { kind: 'blocks' }>;
  readonly source: RankedSource;
};

export const isRankedBlocks = (r: RoutingPlan): r is RankedBlocksPlan =>
  r.unit.kind === 'blocks' && r.source.kind === 'topk';
