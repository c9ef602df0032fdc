// Types of the AST interpreter (ast-eval.ts): values, the evaluation environment, and the compiled
// closure tree (nodes over frames) that ast-eval-compile.ts builds.
import type { Expr } from '../dsl/ast.js';

export type ValueType = 'int' | 'f32' | 'bool';
export type Value = number | boolean;

export interface EvalEnv {
  params: Record<string, number | boolean>;
  /** May hold tensors the decl does not declare (a test harness shares one set of buffers). */
  tensors: Record<string, { data: ArrayLike<number>; shape: number[] }>;
  sizes: { B: number; H: number; Hkv: number; Nq: number; Nk: number; D: number };
}

export interface EvalOptions {
  /** The checker's types; when given, every expression's inferred type is checked against it. */
  types?: ReadonlyMap<Expr, ValueType>;
}

/** A point of the iteration space: positions, not row indices. `score` only inside `score`. */
export interface EvalPoint {
  b: number;
  h: number;
  q: number;
  k: number;
  score?: number;
}

export interface Frame {
  b: number;
  h: number;
  q: number;
  k: number;
  score: number;
  /** Bumped per predicate call; `let` values are memoized per generation. */
  gen: number;
}

export type Fn = (f: Frame) => Value;
export type NumFn = (f: Frame) => number;
export interface Node {
  readonly type: ValueType;
  readonly fn: Fn;
  readonly usesScore: boolean;
}

export interface TensorBinding {
  readonly dims: readonly number[];
  readonly read: (flat: number) => number;
  readonly type: 'int' | 'f32';
}

export interface Ctx {
  readonly sizes: ReadonlyMap<string, number>;
  readonly scalars: Map<string, { type: ValueType; value: Value }>;
  readonly tensors: Map<string, TensorBinding>;
  readonly lets: Map<string, Node>;
  /** True while evaluating param defaults, where b/h/q/k/score do not exist. */
  readonly constOnly: boolean;
  readonly types: ReadonlyMap<Expr, ValueType> | undefined;
}
