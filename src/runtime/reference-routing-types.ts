// Types of the routing oracle (reference-routing.ts): the spec a declaration's route/select/emit
// statement evaluates to, and the selection it produces.
export type PoolReducer = 'mean' | 'max' | 'lnmean' | 'first';

/** What one id stands for. Ids are absolute: block floor(p / size), chunk ids[p], or position p. */
export type RoutingUnit =
  | { readonly kind: 'blocks'; readonly size: number }
  /** Chunk id per position p (the `i32[kv]` tensor): integers ≥ 0, non-decreasing. */
  | { readonly kind: 'chunks'; readonly ids: ArrayLike<number> }
  | { readonly kind: 'tokens' };

export type RoutingSource =
  | {
      readonly kind: 'topk';
      readonly k: number;
      readonly q: PoolReducer | 'raw';
      readonly key: PoolReducer | 'raw';
    }
  /** Ids per query row, `[B, groups, Nq, capacity]`; negative entries are padding. */
  | {
      readonly kind: 'from';
      readonly indices: ArrayLike<number>;
      readonly groups: number;
      readonly capacity: number;
    };

export interface RoutingSpec {
  readonly unit: RoutingUnit;
  readonly source: RoutingSource;
  readonly vote?: 'heads' | 'groups';
  /** `force first(n)`: ids 0 … n−1. */
  readonly first?: number;
  /** `force local(n)`: the n ids ending at the query's own id. */
  readonly local?: number;
  /** False for `emit`: the selection is computed and written, attention is not restricted. */
  readonly restrict?: boolean;
}

/** The selection of one (batch, selection group, query unit). */
export interface UnitSelection {
  /** Query rows that share it: one row, or the rows of a pooled query block. */
  readonly rows: readonly number[];
  /** The id of the query's own position (what `local` counts back from). */
  readonly anchor: number;
  /** Ids with at least one pair the static mask allows, for at least one voting head; ascending. */
  readonly candidates: readonly number[];
  /** The ranking value of each candidate: the affinity, or the vote (empty for `from`). */
  readonly metric: ReadonlyMap<number, number>;
  /** Forced ids that are candidates; ascending. */
  readonly forced: readonly number[];
  /** The other candidates, best first (ties → lower id). The top-k is its prefix. */
  readonly ranked: readonly number[];
  /** Forced ∪ top-k (or the ids read `from` the tensor ∪ forced); ascending. */
  readonly selected: readonly number[];
}

export interface RoutingResult {
  readonly spec: RoutingSpec;
  readonly B: number;
  readonly Nq: number;
  /** Selection groups: Hq (per head), Hkv (`vote groups`), 1 (`vote heads`), or the tensor's. */
  readonly G: number;
  /** Capacity per query row: k (or the tensor's) + first + local. */
  readonly K: number;
  /** `[B, G, Nq, K]` selected ids per query row, ascending, padded with −1: the emitted layout. */
  readonly indices: Int32Array;
  /** Selection group of query head h. */
  group(h: number): number;
  /** The selection of query row i (not position) of batch b, group g. */
  unitOf(b: number, g: number, i: number): UnitSelection;
  /** Whether key position k's unit is selected for query position q (positions, as masks see them). */
  selected(b: number, h: number, q: number, k: number): boolean;
  /** The attention mask: static AND selected (static only when the spec does not restrict). */
  mask(b: number, h: number, q: number, k: number): boolean;
  /** Σ |selected| over (b, h, query row) / (B·Hq·Nq·number of ids present in the call). */
  readonly density: number;
  /** Allowed pairs of `mask` / (B·Hq·Nq·Nk). */
  readonly pairDensity: number;
}
