// The routing spec of a declaration for the reference (reference-routing.ts): the AST interpreter
// (ast-eval.ts) evaluates its counts like params and takes chunk ids and index tensors from the env.
import type { AttentionDecl, Expr } from '../dsl/ast.js';
import { compile, fail } from './ast-eval-compile.js';
import { compileBody } from './ast-eval.js';
import type { EvalEnv, Frame } from './ast-eval-types.js';
import type { RoutingSpec } from './reference-routing.js';

/**
 * The routing spec of `decl`'s `route`/`select`/`emit` statement under `env` (undefined when it
 * has none): counts evaluated like params, chunk ids and index tensors taken from `env.tensors`
 * (an index tensor's shape `[B, G, Nq, K]` gives its groups and capacity).
 */
export function declRouting(decl: AttentionDecl, env: EvalEnv): RoutingSpec | undefined {
  const s = decl.sparsity?.[0];
  if (s === undefined) return undefined;
  const { ctx } = compileBody(decl, env, {});
  const frame: Frame = { b: 0, h: 0, q: 0, k: 0, score: Number.NaN, gen: 1 };
  const int = (e: Expr): number => {
    const n = compile(e, ctx);
    if (n.type !== 'int') fail(e, `expected an int, got ${n.type}`);
    return n.fn(frame) as number;
  };
  const tensor = (name: string): { data: ArrayLike<number>; shape: number[] } => {
    const t = Object.hasOwn(env.tensors, name) ? env.tensors[name] : undefined;
    if (!t) throw new Error(`ast-eval: tensor '${name}' was not given`);
    return t;
  };
  const u = s.unit;
  const unit: RoutingSpec['unit'] =
    u?.kind === 'blocks'
      ? { kind: 'blocks', size: int(u.size) }
      : u?.kind === 'chunks'
        ? { kind: 'chunks', ids: tensor(u.tensor).data }
        : { kind: 'tokens' };
  const src = s.source;
  let source: RoutingSpec['source'];
  if (src.kind === 'topk') {
    source = { kind: 'topk', k: int(src.count), q: src.by.q.reducer, key: src.by.k.reducer };
  } else {
    const t = tensor(src.tensor);
    const [groups, capacity] = [t.shape[1], t.shape[3]];
    if (t.shape.length !== 4 || groups === undefined || capacity === undefined) {
      throw new Error(
        `ast-eval: index tensor '${src.tensor}' must be [B, G, Nq, K], got [${t.shape.join(', ')}]`,
      );
    }
    source = { kind: 'from', indices: t.data, groups, capacity };
  }
  const force = (kind: 'first' | 'local'): number => {
    const f = s.force.find((x) => x.kind === kind);
    return f ? int(f.count) : 0;
  };
  return {
    unit,
    source,
    ...(s.vote ? { vote: s.vote.over } : {}),
    first: force('first'),
    local: force('local'),
    restrict: s.kind !== 'emit',
  };
}
