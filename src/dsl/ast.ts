// The typed AST the parser produces (via a CST visitor) and the checker validates.
// Every node carries the Span of the source text it came from.
import type { Span } from '../diagnostics.js';

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

export interface AttentionDecl {
  readonly kind: 'attention';
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: readonly ParamDecl[];
  readonly body: readonly Stmt[];
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
