// Lowering of the routing statement (`route` / `select` / `emit`) to the IR's RoutingPlan: counts
// as constant-folded i32 nodes, the unit, and the ranked or `from` source (lower.ts lowers the rest).
import type { AttentionDecl, Expr, SelectionUnit } from '../dsl/ast.js';
import type { Node } from './graph.js';
import type { Lowerer } from './lower.js';
import { Op } from './ops.js';
import type { FromSource, RoutingPlan, RoutingUnit } from './routing.js';
import { simplifyExpr } from './passes/simplify.js';

/** The routing plan of a `route` / `select` / `emit` statement, a union mirroring the AST's. */
export function lowerRouting(decl: AttentionDecl, L: Lowerer): RoutingPlan | undefined {
  const s = decl.sparsity?.[0];
  if (!s) return undefined;
  const src = s.source;
  // A token is a one-key block: its `first` pooling is the key itself.
  const k = src.kind === 'topk' && s.unit ? src.by.k.reducer : 'first';
  if (k === 'raw') return undefined;
  // Counts are constant-folded so `8` and `4 + 4` give the same plan.
  const count = (e: Expr | undefined): Node =>
    e ? simplifyExpr(L.g, L.cast(L.expr(e, false), 'i32')) : L.g.const(0, 'i32');
  const forced = (kind: 'first' | 'local'): Node => count(s.force.find((f) => f.kind === kind)?.count);
  return {
    unit: lowerUnit(s.unit, count, L),
    source:
      src.kind === 'topk'
        ? {
            kind: 'topk',
            count: count(src.count),
            q: src.by.q.reducer,
            k,
            ...(s.vote ? { vote: s.vote.over } : {}),
          }
        : lowerFrom(src.tensor, L),
    first: forced('first'),
    local: forced('local'),
    attention: s.kind === 'emit' ? 'static-mask' : 'selected',
  };
}

function lowerUnit(u: SelectionUnit | undefined, count: (e: Expr) => Node, L: Lowerer): RoutingUnit {
  // Tokens and chunks position ids in one-position steps: the i32 1 they step by is interned
  // here, where a block size is, so graph node ids (in the CUDA manifest) do not depend on the unit.
  const size = u?.kind === 'blocks' ? count(u.size) : L.g.const(1, 'i32');
  if (u === undefined) return { kind: 'tokens' };
  if (u.kind === 'chunks') return { kind: 'chunks', tensor: u.tensor };
  if (size.op !== Op.CONST) throw new Error('internal: the routing block size is not a constant');
  return { kind: 'blocks', size: Number(size.arg) };
}

/** The capacity K of `from t`'s [batch, G, queries, K] as an i32 node (literal, int param or size). */
function fromCapacity(tensor: string, L: Lowerer): Node {
  const cap = L.tensors.get(tensor)?.dims[3];
  if (!cap) throw new Error(`internal: the index tensor "${tensor}" has no capacity dim`);
  if (cap.kind === 'literal') return L.g.const(cap.value, 'i32');
  if (cap.kind === 'size') return L.g.var(cap.name);
  const p = L.scope.get(cap.name);
  if (!p || p.dtype !== 'i32') throw new Error(`internal: "${cap.name}" is not an int param`);
  return p;
}

/** `from t`: the selection groups and capacity of t's declared [batch, G, queries, K] shape. */
function lowerFrom(tensor: string, L: Lowerer): FromSource {
  const t = L.tensors.get(tensor);
  const [g, cap] = [t?.dims[1], t?.dims[3]];
  if (!t || t.dims.length !== 4 || !g || !cap)
    throw new Error(`internal: the index tensor "${tensor}" is not [batch, G, queries, K]`);
  const groups =
    g.kind === 'size' && (g.name === 'H' || g.name === 'Hkv')
      ? g.name
      : g.kind === 'literal' && g.value === 1
        ? '1'
        : undefined;
  if (groups === undefined) throw new Error(`internal: the index tensor "${tensor}" has no selection groups`);
  const capacity = cap.kind === 'literal' ? String(cap.value) : cap.name;
  // The row capacity stands where a ranked source has its top-k count (it sizes `indices`).
  return { kind: 'from', tensor, groups, capacity, count: fromCapacity(tensor, L) };
}
