// AST of the K/V storage statements (docs/LANGUAGE.md, "K/V storage formats"): `store` declares
// how the key and/or value cache is quantized, `importance` requests the per-key attention-mass
// output. Like routing they live beside `AttentionDecl.body`, not in it, so code that walks the
// body (lowering, the oracle's interpreter) sees only the statements it understands.
import type { Span } from '../diagnostics.js';
import type { Expr } from './ast.js';

/** Code element types (src/quant/elem-registry.ts): ints packed in 32-bit words, 8-bit floats. */
export { isIntElem, storageElems, type IntStorageElem, type StorageElem } from '../quant/elem-registry.js';
import type { StorageElem } from '../quant/elem-registry.js';

/** Dtypes of scales, zero points and normalizers. */
export const floatDTypes = ['f16', 'f32'] as const;
export type FloatDType = (typeof floatDTypes)[number];
/** Dtypes of the recent-token buffer: 16 bits. */
export const halfDTypes = ['f16', 'bf16'] as const;
export type HalfDType = (typeof halfDTypes)[number];

/** Which cache a `store` statement formats: `kv` is both, with one format. */
export type StoredTensor = 'k' | 'v' | 'kv';

/**
 * What one scale covers. `token`: one scale per token row (all channels), or per `group`
 * channels of it; `channel`: one scale per channel over all tokens, or per `group` tokens of it.
 */
export type ScaleGranularity =
  | { readonly kind: 'tensor'; readonly span: Span }
  | { readonly kind: 'token' | 'channel'; readonly group?: Expr; readonly span: Span };

export interface ScaleClause {
  readonly dtype: FloatDType;
  readonly per: ScaleGranularity;
  readonly span: Span;
}

/** A clause naming one float dtype: `zero f16`, `norm f32`. */
export interface DTypeClause {
  readonly dtype: FloatDType;
  readonly span: Span;
}

/** `recent r f16`: the last r tokens are kept unquantized, in 16 bits (KIVI). */
export interface RecentClause {
  readonly count: Expr;
  readonly dtype: HalfDType;
  readonly span: Span;
}

/**
 * `salient int4 from t`: the tokens `t` marks are stored with the wider element type (ZipCache).
 * `t: i32[batch, kv_heads, kv]` is a flag per token (non-zero = salient); `t: i32[batch,
 * kv_heads, N]` lists salient token indices (negative = padding).
 */
export interface SalientClause {
  readonly elem: StorageElem;
  readonly elemSpan: Span;
  readonly tensor: string;
  readonly tensorSpan: Span;
  readonly span: Span;
}

/** `store k|v|kv ELEM clause*`. Clauses appear at most once each, in any order. */
export interface StorageDecl {
  readonly kind: 'store';
  readonly keywordSpan: Span;
  readonly target: StoredTensor;
  readonly targetSpan: Span;
  readonly elem: StorageElem;
  readonly elemSpan: Span;
  readonly scale?: ScaleClause;
  /** Asymmetric codes: `(code − zero) · scale`, the zero point in code units. */
  readonly zero?: DTypeClause;
  /** A per-channel normalizer multiplied after the scale (ZipCache's channel-separable layout). */
  readonly norm?: DTypeClause;
  readonly recent?: RecentClause;
  readonly salient?: SalientClause;
  readonly span: Span;
}

/** `importance sum|normalized`: the kernel also writes per-key attention mass [B, H, Nk]. */
export interface ImportanceRequest {
  readonly kind: 'importance';
  readonly keywordSpan: Span;
  /** `sum`: Σ_i p_ij; `normalized`: that sum divided by the number of queries that may see key j. */
  readonly variant: 'sum' | 'normalized';
  readonly span: Span;
}

/**
 * `cache paged N`: K and V rows are addressed through a block table of pages of N rows (N a power
 * of two), docs/LANGUAGE.md "Paged and strided caches".
 */
export interface CacheDecl {
  readonly kind: 'cache';
  readonly keywordSpan: Span;
  readonly layout: 'paged';
  readonly pageSize: number;
  readonly pageSizeSpan: Span;
  readonly span: Span;
}
