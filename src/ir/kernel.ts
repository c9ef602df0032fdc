// The kernel IR: what the pass pipeline hands to a backend. The algorithm (expressions over the
// graph IR) is separate from the storage formats of q, k, v and out (ir/formats.ts) and from the
// Schedule (tile sizes, threads, engine; ir/schedule.ts), which is a frozen, hashable value:
// changing the schedule never changes the algorithm.
import type { Schedule } from './schedule.js';
import type { Stage } from './stages.js';
import type { TensorFormats } from './formats.js';
import type { Graph, Node } from './graph.js';
import type { RoutingPlan } from './routing.js';
import type { QkInt8 } from './int8qk.js';
import type { PvE4m3 } from './pv-e4m3.js';

export type { StorageDType, TensorFormat, TensorFormats } from './formats.js';
export type { DecodeLean, Engine, PatchTweak, Schedule, WsTweak } from './schedule.js';
export { DECODE_LEAN_MODES } from './schedule.js';

export type TileClass = 'empty' | 'full' | 'partial';

/**
 * How a (q-tile, k-tile) is classified. `static`: the same class for every tile (e.g. no mask →
 * full). `dynamic`: two bool expressions over the tile-bound vars q_lo q_hi k_lo k_hi (inclusive
 * positions), b, h, params and RANGE_MIN/RANGE_MAX of tensors: if `canBeTrue` is false the tile
 * is empty (skip it); else if `canBeFalse` is false the tile is full (no predicate evaluated);
 * otherwise partial (predicate per element). Both are sound over-approximations.
 */
export type TileClassifier =
  | { readonly kind: 'static'; readonly value: TileClass }
  | { readonly kind: 'dynamic'; readonly canBeTrue: Node; readonly canBeFalse: Node };

/**
 * Residue classes of a dilation conjunct `q % d == k % d` of the mask (pass residue-classes): a
 * backend may run each class r (positions ≡ r mod |d|; one class when d = 0) on its own, with
 * `mask` (the kernel's mask with that conjunct replaced by true) and `tiles` (its classifier,
 * sound for a class tile's bounding position interval).
 */
export interface ResidueClasses {
  /** d: an i32 literal (|d| ≥ 2) or an int param. */
  readonly modulus: Node;
  readonly mask: Node;
  readonly tiles: TileClassifier;
  /** The hoisting plan of the per-class mask (set by fuse). */
  readonly hoists?: Hoists;
}

/**
 * The hoisting plan of the element expressions (pass fuse), which every backend renders: `row`
 * holds the maximal subexpressions that do not depend on the key (k, score), computed once per
 * query row; `key` those that do not depend on the query (q, score), read k and cost memory or
 * transcendental work, computed once per key of a tile (a backend may also evaluate them inline).
 */
export interface Hoists {
  readonly row: readonly Node[];
  readonly key: readonly Node[];
}

/**
 * A 2-D neighbourhood in the mask (pass neighbourhood-patches): conjuncts
 * `abs(q / W - k / W) <= rowRadius` and `abs(q % W - k % W) <= colRadius`. A backend may run
 * query tiles as 2-D patches of the W-wide image and visit only their neighbourhood's keys; the
 * whole mask is still evaluated on them.
 */
export interface NeighbourhoodPatches {
  /** W, the image width in positions: an i32 literal or an int param. */
  readonly width: Node;
  readonly rowRadius: Node;
  readonly colRadius: Node;
}

export interface ParamSlot {
  readonly name: string;
  readonly dtype: 'i32' | 'f32' | 'bool';
  /** undefined = required at run time. */
  readonly default: number | undefined;
}

/** A tensor dimension: a named runtime size, a literal, or an int param's value. */
export type ShapeDim =
  | { readonly kind: 'size'; readonly name: 'Nk' | 'Nq' | 'H' | 'Hkv' | 'B' }
  | { readonly kind: 'literal'; readonly value: number }
  | { readonly kind: 'param'; readonly name: string };

export interface TensorSlot {
  readonly name: string;
  readonly dtype: 'i32' | 'f32';
  readonly dims: readonly ShapeDim[];
}

/** A 1-D tensor that tile classification reads through RANGE_MIN/RANGE_MAX. */
export interface SummarySlot {
  readonly tensor: string;
}

/**
 * The importance side output (what H2O / SpAtten / ZipCache-style pruning consumes): per batch,
 * query head and key, 'sum' = Σ_i p_ij over the call's query rows; 'normalized' = that sum
 * divided by the number of query rows whose mask allows the key (0 for a key no row sees).
 * Backends compute it in a pass after the attention from the final lse, never storing N×N.
 */
export type ImportanceMode = 'sum' | 'normalized';

export interface KernelOutputs {
  readonly lse: boolean;
  /** Absent: no importance output. Present: `importance` [B, H, Nk] f32 (lse is then true too). */
  readonly importance?: ImportanceMode;
}

export interface AttentionKernel {
  readonly kind: 'attention';
  readonly name: string;
  readonly graph: Graph;
  /** f32 expression of VAR score, b, h, q, k, params, loads. `VAR score` itself = no modifier. */
  readonly score: Node;
  /** bool expression of b, h, q, k, params, loads. `CONST true` = no mask. */
  readonly mask: Node;
  readonly tiles: TileClassifier;
  readonly params: readonly ParamSlot[];
  readonly tensors: readonly TensorSlot[];
  readonly summaries: readonly SummarySlot[];
  readonly outputs: KernelOutputs;
  /**
   * false: the artifact leaves out its split-KV decode variant (CompileOptions.decode; CUDA's decode
   * path and launcher branch, WGSL's decode module), so few-query launches run the prefill kernel.
   * Absent: the variant is there wherever the kernel has one.
   */
  readonly decodeVariant?: false;
  /** How q, k, v and out are stored (a load widens to f32, a store narrows). */
  readonly formats: TensorFormats;
  readonly schedule: Schedule;
  /** What a backend launches, in order (ir/stages.ts); its artifact's entry points follow it. */
  readonly stages: readonly Stage[];
  /** What the element expressions hoist out of the key loop (pass fuse). */
  readonly hoists: Hoists;
  /**
   * Block routing: the backend runs pool → affinity/top-k passes before the attention, writes the
   * selected block ids to an `indices` output, and the attention visits only selected blocks.
   */
  readonly routing?: RoutingPlan;
  /** Dilated masks: the residue-class decomposition a tensor-core CUDA engine runs. Optional. */
  readonly residue?: ResidueClasses;
  /** 2-D neighbourhood masks: the patch layout a tensor-core CUDA engine runs. Optional. */
  readonly neighbourhood?: NeighbourhoodPatches;
  /**
   * `qk int8 [smooth k]`: scores from int8 Q and K quantized per tile (ir/int8qk.ts); absent:
   * Q·Kᵀ in f32 from the stored elements. Optional.
   */
  readonly qkInt8?: QkInt8;
  /**
   * `pv e4m3 [smooth v]`: P·V from e4m3 P (static scale) and V quantized per channel
   * (ir/pv-e4m3.ts); absent: P·V in f32 from P and the stored elements. Optional.
   */
  readonly pvE4m3?: PvE4m3;
}
