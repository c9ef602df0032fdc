// The typed AST the parser produces (via a CST visitor) and the checker validates.
// Every node carries the Span of the source text it came from.
import type { Span } from '../diagnostics.js';
import type { CacheDecl, ImportanceRequest, StorageDecl } from './ast-storage.js';
import type { PvDecl } from './pv-stmt.js';
import type { QkDecl } from './qk-stmt.js';

export type * from './ast-storage.js';
export { floatDTypes, halfDTypes, isIntElem, storageElems } from './ast-storage.js';

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '<' | '<=' | '>' | '>=' | '==' | '!=' | '&&' | '||';
export type UnaryOp = '-' | '!';

export type Expr =
  | { readonly kind: 'num'; readonly value: number; readonly isFloat: boolean; readonly span: Span }
  | { readonly kind: 'bool'; readonly value: boolean; readonly span: Span }
  /** A bare identifier: index vars (b h q k), `score`, `causal`, size builtins, params, lets. */
  | { readonly kind: 'name'; readonly name: string; readonly span: Span }
  | { readonly kind: 'unary'; readonly op: UnaryOp; readonly operand: Expr; readonly span: Span }
  | {
      readonly kind: 'binary';
      readonly op: BinaryOp;
      readonly left: Expr;
      readonly right: Expr;
      readonly span: Span;
    }
  | {
      readonly kind: 'ternary';
      readonly cond: Expr;
      readonly then: Expr;
      readonly otherwise: Expr;
      readonly span: Span;
    }
  | {
      readonly kind: 'call';
      readonly callee: string;
      readonly calleeSpan: Span;
      readonly args: readonly Expr[];
      readonly span: Span;
    }
  /** A tensor lookup `doc[k]` or `bias[h, q - k + 64]`. */
  | {
      readonly kind: 'index';
      readonly tensor: string;
      readonly tensorSpan: Span;
      readonly indices: readonly Expr[];
      readonly span: Span;
    };

export type ScalarTypeName = 'int' | 'f32' | 'bool';
export type ElemTypeName = 'i32' | 'f32';

/** A tensor dimension: a named size (`kv`, `heads`, …), an int literal, or an int param. */
export type DimRef =
  | { readonly kind: 'size'; readonly name: TensorDimName; readonly span: Span }
  | { readonly kind: 'literal'; readonly value: number; readonly span: Span }
  | { readonly kind: 'param'; readonly name: string; readonly span: Span };

/**
 * Named tensor dimensions. `kv` has length Nk and is indexed by *position* (doc[q] and doc[k]
 * both work because query positions live in key coordinates); `heads` = Hq; `kv_heads` = Hkv;
 * `batch` = B; `queries` = Nq.
 */
export const tensorDimNames = ['kv', 'queries', 'heads', 'kv_heads', 'batch'] as const;
export type TensorDimName = (typeof tensorDimNames)[number];

export type ParamType =
  | { readonly kind: 'scalar'; readonly name: ScalarTypeName; readonly span: Span }
  | {
      readonly kind: 'tensor';
      readonly elem: ElemTypeName;
      readonly dims: readonly DimRef[];
      readonly span: Span;
    };

export interface ParamDecl {
  readonly name: string;
  readonly nameSpan: Span;
  readonly type: ParamType;
  /** Scalars may have a default (a constant expression); tensors never do. */
  readonly default?: Expr;
  readonly span: Span;
}

export type Stmt =
  | { readonly kind: 'mask'; readonly expr: Expr; readonly span: Span }
  | { readonly kind: 'score'; readonly expr: Expr; readonly span: Span }
  | {
      readonly kind: 'let';
      readonly name: string;
      readonly nameSpan: Span;
      readonly expr: Expr;
      readonly span: Span;
    };

// ---- data-dependent sparsity: `route`, `select`, `emit` (docs/LANGUAGE.md, "Pooling, routing
// and selection"). They live in `AttentionDecl.sparsity`, not in `body`: code that walks the
// body (lowering, the oracle's interpreter) sees only the static statements it understands.

/** How the rows of one block are pooled into one vector: `mean(k)`, `max(q)`, … */
export const poolReducers = ['mean', 'max', 'lnmean', 'first'] as const;
export type PoolReducer = (typeof poolReducers)[number];

/** One side of an affinity `A . B`: the raw `q`/`k`, or a reducer applied to it. */
export interface AffinitySide {
  /** `'raw'` for a bare `q` / `k`. */
  readonly reducer: PoolReducer | 'raw';
  readonly span: Span;
}

/** `by QSIDE . KSIDE`: the affinity `scale · <pooled q, pooled k>` that ranks candidates (q first). */
export interface Affinity {
  readonly q: AffinitySide;
  readonly k: AffinitySide;
  readonly span: Span;
}

/** What one selected id stands for: a fixed-size block, a variable chunk, or (`select`) a key. */
export type SelectionUnit =
  /** `blocks(n)`: key position p is in block floor(p / n); `n` is a constant int. */
  | { readonly kind: 'blocks'; readonly size: Expr; readonly span: Span }
  /** `chunks(ids)`: position p is in chunk ids[p], an `i32[kv]` tensor (non-decreasing, ≥ 0). */
  | { readonly kind: 'chunks'; readonly tensor: string; readonly tensorSpan: Span; readonly span: Span };

/** Where the selection comes from: ranked here, or read from an index tensor (`from idx`). */
export type SelectionSource =
  | { readonly kind: 'topk'; readonly count: Expr; readonly by: Affinity; readonly span: Span }
  | { readonly kind: 'from'; readonly tensor: string; readonly tensorSpan: Span; readonly span: Span };

/** `force first(n)` / `force local(n)`: ids always selected, on top of the top-k. */
export interface ForcedUnits {
  readonly kind: 'first' | 'local';
  readonly count: Expr;
  readonly span: Span;
}

/**
 * `route UNIT SOURCE …` (blocks or chunks), `select SOURCE …` (single keys), or `emit [UNIT]
 * topk(…) by …` (compute and write the selection, but attend as if there were none).
 * Clauses: `vote heads|groups`, `force first(n) local(n)`, `emit indices`.
 */
export interface SparsityStmt {
  readonly kind: 'route' | 'select' | 'emit';
  readonly keywordSpan: Span;
  /** Absent for `select` (the unit is one key) and for a token-level `emit`. */
  readonly unit?: SelectionUnit;
  readonly source: SelectionSource;
  /** Soft voting: one selection shared by all query heads, or by each kv head's group. */
  readonly vote?: { readonly over: 'heads' | 'groups'; readonly span: Span };
  readonly force: readonly ForcedUnits[];
  /** `emit indices` on `route`/`select`: the selection is also a kernel output. */
  readonly emitIndices?: Span;
  readonly span: Span;
}

export interface AttentionDecl {
  readonly kind: 'attention';
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: readonly ParamDecl[];
  readonly body: readonly Stmt[];
  /**
   * The `route`/`select`/`emit` statements in source order (the checker allows one); absent
   * when there are none, so declarations built without them compare equal.
   */
  readonly sparsity?: readonly SparsityStmt[];
  /** The `store` statements in source order (K/V storage formats); absent when there are none. */
  readonly storage?: readonly StorageDecl[];
  /** The `importance` statements in source order (the checker allows one); absent when none. */
  readonly importance?: readonly ImportanceRequest[];
  /** The `cache paged N` statements in source order (the checker allows one); absent when none. */
  readonly cache?: readonly CacheDecl[];
  /** The `qk int8 [smooth k]` statements in source order (the checker allows one); absent when none. */
  readonly qk?: readonly QkDecl[];
  /**
   * A `qk` statement was written but did not build (its error is reported): the rules that need
   * a `qk int8` (`pv e4m3` runs after it) stay quiet rather than repeat that error. Absent otherwise.
   */
  readonly qkUnbuilt?: true;
  /** The `pv e4m3 [smooth v]` statements in source order (the checker allows one); absent when none. */
  readonly pv?: readonly PvDecl[];
  /** The `//` comment lines directly above the declaration (the method it implements). */
  readonly doc: string;
  readonly span: Span;
}

export interface Program {
  readonly kind: 'program';
  readonly file: string;
  readonly decls: readonly AttentionDecl[];
  /** Comment lines at the top of the file (a stdlib file's header). */
  readonly header: string;
}
