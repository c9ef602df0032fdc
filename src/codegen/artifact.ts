// What a backend produces: code plus everything an engine needs to launch it.
import type { AttentionKernel, ParamSlot, Schedule, StorageDType } from '../ir/kernel.js';
import type { CoopDecodeRendering } from './wgsl/decode-coop-tuning.js';

/**
 * A shape/launch expression over runtime sizes, as a string in a tiny grammar evaluated by
 * runtime/shape-expr.ts: integers, the symbols B H Hkv Nq Nk D Dv, int param names, + - *, and
 * cdiv(a, b) (ceiling division). Example: "cdiv(Nq, 64)".
 */
export type ShapeExpr = string;

/**
 * `scratch`: a buffer one pass writes and a later pass reads (routing's pooled blocks); `indices`:
 * the selected block ids of a routing kernel, an output (`[B, H, Nq, K]` i32, −1 padded);
 * `importance`: the importance output (`[B, H, Nk]` f32, kernel.outputs.importance).
 */
export type BindingRole =
  | 'q'
  | 'k'
  | 'v'
  | 'out'
  | 'lse'
  | 'tensor'
  | 'summary'
  | 'uniforms'
  | 'scratch'
  | 'indices'
  | 'importance'
  // A paged K/V cache's block table ([B, max_pages] i32 page ids, `cache paged N`).
  | 'block_table';

export interface Binding {
  readonly name: string;
  readonly role: BindingRole;
  /** WGSL: @group(0) @binding(index). CUDA: position in the launcher's pointer arguments. */
  readonly index: number;
  readonly dtype: 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';
  readonly shape: readonly ShapeExpr[];
  readonly access: 'read' | 'read_write';
  /**
   * Roles k and v of a quantized cache (a `store` statement): which of its tensors this binding
   * holds (src/quant QuantCache: `codes` is the k/v binding itself, u32 words); the run's data
   * is `inputs.caches[role][part]`. f16/bf16 parts are bound as packed u32 words in WGSL.
   */
  readonly part?: 'codes' | 'codesHi' | 'scale' | 'zero' | 'norm' | 'recent';
}

export interface EntryPoint {
  readonly name: string;
  /**
   * Launch order matters: summaries, then routing (pool, top-k), then attention, then importance
   * (a pass over the keys that reads the attention's final lse).
   */
  readonly role: 'summary' | 'routing' | 'attention' | 'importance';
  /**
   * For summary entry points, the tensor summarized; for chunk routing's pool pass, the chunk-id
   * tensor (the runtime validates it: ≥ 0, non-decreasing, covering the call's positions).
   */
  readonly tensor?: string;
  readonly workgroupSize: readonly [number, number, number];
  /** Number of workgroups / blocks per dimension. */
  readonly grid: readonly [ShapeExpr, ShapeExpr, ShapeExpr];
  /** Names of the bindings this entry point uses. */
  readonly bindings: readonly string[];
}

/** A 4-byte field of the uniform struct, in declaration order. */
export interface UniformField {
  readonly name: string;
  readonly dtype: 'i32' | 'u32' | 'f32';
  readonly offset: number;
}

/**
 * The schedule as an artifact records it: the schedule's choices plus the storage dtype of q, k,
 * v and out (codegen/common.ts artifactSchedule), for the runtime, emitted modules and manifests.
 */
export type ArtifactSchedule = Schedule & { readonly dtype: StorageDType };

export interface Artifact {
  readonly target: 'wgsl' | 'cuda';
  readonly name: string;
  readonly code: string;
  readonly entryPoints: readonly EntryPoint[];
  readonly bindings: readonly Binding[];
  readonly uniforms: readonly UniformField[];
  readonly params: readonly ParamSlot[];
  readonly schedule: ArtifactSchedule;
  /** Hash of the source text; with the schedule hash, the cache key of compiled artifacts. */
  readonly sourceHash: string;
  readonly scheduleHash: string;
  /**
   * WGSL: how float K/V rows are addressed (codegen/wgsl/kv-load.ts): by element strides (the
   * `k_stride_*` / `v_stride_*` uniforms) that are multiples of `align` (the coop engines load
   * vec4s: 4), and for `cache paged N` through the block table, in pages of `pageSize` rows.
   */
  readonly kvRows?: { readonly align: number; readonly pageSize?: number };
  /** Extra files (CUDA: the .h and the manifest JSON). */
  readonly files?: Readonly<Record<string, string>>;
  /**
   * WGSL decode mode (split-KV with an lse merge) for few queries over a long KV. Optional for
   * engines: `entryPoints` alone is correct for every shape; this is faster when Nq ≤ maxNq.
   */
  readonly decode?: DecodeVariant;
  /**
   * WGSL: the `quantize` module of each quantized cache (codegen/wgsl/quantize.ts), which fills it
   * from f32/f16 rows on the device (docs/LANGUAGE.md, "Quantizing a range of rows").
   */
  readonly quantize?: Readonly<Partial<Record<'k' | 'v', QuantizeModule>>>;
}

/** A WGSL module with its own bindings: run `entryPoints` in order, one bind group for all. */
export interface QuantizeModule {
  readonly code: string;
  readonly entryPoints: readonly string[];
  readonly workgroupSize: number;
  /** Binding `index` of each buffer; f16/bf16 tensors are packed in u32 words. */
  readonly bindings: readonly {
    readonly name: string;
    readonly index: number;
    readonly dtype: 'u32' | 'i32' | 'f32' | 'f16' | 'bf16';
    readonly access: 'uniform' | 'read' | 'read_write';
  }[];
  /** The uniform struct's u32 fields, in order. */
  readonly uniforms: readonly string[];
  /** Channels per row, and the element type of the source rows `x`. */
  readonly dim: number;
  readonly input: 'f32' | 'f16';
  /**
   * A paged cache's page size: the module writes pools of pages through the `blockTable` binding
   * (docs/LANGUAGE.md, "Quantizing into a paged cache"); absent for a contiguous cache.
   */
  readonly pageSize?: number;
}

/**
 * A second module with the same inputs and outputs plus a scratch binding: run its entry points
 * (summaries, attention_split, attention_merge) instead of the main ones.
 */
export interface DecodeVariant {
  /** Use it for Nq ≤ maxNq (correct for any Nq, but only meant for few rows). */
  readonly maxNq: number;
  /** Keys per split (the split count is cdiv(Nk, splitKeys)). */
  readonly splitKeys: number;
  readonly artifact: Artifact;
  /** The coop engine's module: the knobs it was rendered with (absent for the row engine's). */
  readonly coop?: CoopDecodeRendering;
}

/** Backend renderers implement this. */
export type Backend = (
  kernel: AttentionKernel,
  meta: { sourceHash: string; scheduleHash: string },
) => Artifact;
