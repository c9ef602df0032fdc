// Symbolic derivatives of the score expression on the graph IR, for the backward pass (issue 14).
// Forward mode, one seed at a time: ∂score′/∂score (the raw scaled score), ∂score′/∂param for every
// f32 scalar param, and ∂score′/∂load for every f32 tensor lookup node the score reads (a tensor's
// gradient is the sum of its lookups' derivatives scattered at their indices). Derivatives are
// built in the same hash-consed graph, so they share the forward's subexpressions (tanh(x) of
// softcap is one node in both), then simplified. Masks have no gradient: they are piecewise
// constant. Int and bool subexpressions have derivative 0.
import { toposort, type Graph, type Node } from './graph.js';
import type { ParamSlot } from './kernel.js';
import { Op } from './ops.js';
import { simplifyExpr } from './passes/simplify.js';

/** ∂score′/∂(one f32 tensor lookup): the lookup node (its indices are its sources) and the derivative. */
export interface LoadGradient {
  readonly tensor: string;
  readonly load: Node;
  readonly d: Node;
}

export interface ScoreGradient {
  /** ∂score′/∂score. */
  readonly dScore: Node;
  /** ∂score′/∂p for each f32 scalar param p, in declaration order (0 where the score ignores p). */
  readonly params: readonly { readonly name: string; readonly d: Node }[];
  /** One entry per distinct f32 LOAD node in the score, in topological order. */
  readonly loads: readonly LoadGradient[];
}

/**
 * What a backward kernel evaluates per (query, key): the score, ∂score′/∂score, each param's and
 * each lookup's derivative, then the lookups' index expressions (for the scatter). Both backends
 * linearize these roots in this order and read the results back by position.
 */
export function gradientRoots(score: Node, grad: ScoreGradient): Node[] {
  return [
    score,
    grad.dScore,
    ...grad.params.map((p) => p.d),
    ...grad.loads.map((l) => l.d),
    ...grad.loads.flatMap((l) => l.load.src),
  ];
}

/** A derivative that is identically 0 is `undefined`, so zeros never build nodes. */
type D = Node | undefined;

const LN2 = Math.LN2;

/** Builders that drop symbolic zeros and ones (the derivative's own algebra, not the forward's). */
function algebra(g: Graph) {
  const f = (v: number): Node => g.const(v, 'f32');
  const add = (a: D, b: D): D => (a === undefined ? b : b === undefined ? a : g.node(Op.ADD, 'f32', [a, b]));
  const neg = (a: D): D => (a === undefined ? undefined : g.node(Op.NEG, 'f32', [a]));
  const sub = (a: D, b: D): D => add(a, neg(b));
  const mul = (a: D, b: Node): D => (a === undefined ? undefined : g.node(Op.MUL, 'f32', [a, b]));
  const div = (a: D, b: Node): D => (a === undefined ? undefined : g.node(Op.DIV, 'f32', [a, b]));
  const select = (c: Node, a: D, b: D): D =>
    a === undefined && b === undefined ? undefined : g.node(Op.SELECT, 'f32', [c, a ?? f(0), b ?? f(0)]);
  return { f, add, neg, sub, mul, div, select };
}

/** d(n)/d(seed) by the chain rule, for every f32 node of `root`, memoised by node id. */
function forwardDerivative(g: Graph, root: Node, isSeed: (n: Node) => boolean): D {
  const A = algebra(g);
  const memo = new Map<number, D>();
  const d = (n: Node): D => memo.get(n.id);
  for (const n of toposort([root])) {
    memo.set(n.id, n.dtype === 'f32' ? (isSeed(n) ? A.f(1) : rule(g, A, n, d)) : undefined);
  }
  return memo.get(root.id);
}

function rule(g: Graph, A: ReturnType<typeof algebra>, n: Node, d: (n: Node) => D): D {
  const [a, b, c] = n.src;
  switch (n.op) {
    case Op.ADD:
      return A.add(d(a!), d(b!));
    case Op.SUB:
      return A.sub(d(a!), d(b!));
    case Op.NEG:
      return A.neg(d(a!));
    case Op.MUL:
      return A.add(A.mul(d(a!), b!), A.mul(d(b!), a!));
    case Op.DIV: // (da − (a/b)·db) / b, reusing the forward's quotient n
      return A.div(A.sub(d(a!), A.mul(d(b!), n)), b!);
    case Op.MOD: // a − b·floor(a/b): floor is piecewise constant
      return A.sub(d(a!), A.mul(d(b!), g.node(Op.FLOOR, 'f32', [g.node(Op.DIV, 'f32', [a!, b!])])));
    case Op.MIN:
      return A.select(g.node(Op.LE, 'bool', [a!, b!]), d(a!), d(b!));
    case Op.MAX:
      return A.select(g.node(Op.GE, 'bool', [a!, b!]), d(a!), d(b!));
    case Op.ABS:
      return A.select(g.node(Op.LT, 'bool', [a!, A.f(0)]), A.neg(d(a!)), d(a!));
    case Op.SELECT:
      return A.select(a!, d(b!), d(c!));
    case Op.EXP:
      return A.mul(d(a!), n);
    case Op.EXP2:
      return A.mul(A.mul(d(a!), n), A.f(LN2));
    case Op.LOG:
      return A.div(d(a!), a!);
    case Op.LOG2:
      return A.div(d(a!), g.node(Op.MUL, 'f32', [a!, A.f(LN2)]));
    case Op.SQRT:
      return A.div(A.mul(d(a!), A.f(0.5)), n);
    case Op.TANH: // 1 − tanh²
      return A.mul(d(a!), g.node(Op.SUB, 'f32', [A.f(1), g.node(Op.MUL, 'f32', [n, n])]));
    case Op.CAST: // int → f32 has derivative 0; f32 → f32 passes it on
      return a!.dtype === 'f32' ? d(a!) : undefined;
    default:
      // Leaves (const, var, param, load) that are not the seed, floor: 0.
      return undefined;
  }
}

const zeroOr = (g: Graph, x: D): Node => simplifyExpr(g, x ?? g.const(0, 'f32'));

/** The f32 tensor lookups of `score`, each once (hash-consing: one node per index expression). */
export function f32Loads(score: Node): Node[] {
  return toposort([score]).filter((n) => n.op === Op.LOAD && n.dtype === 'f32');
}

/** Every derivative of `score` the backward pass needs, simplified, in `g`. */
export function deriveScore(g: Graph, score: Node, params: readonly ParamSlot[]): ScoreGradient {
  const dScore = zeroOr(
    g,
    forwardDerivative(g, score, (n) => n.op === Op.VAR && n.arg === 'score'),
  );
  const f32Params = params.filter((p) => p.dtype === 'f32');
  return {
    dScore,
    params: f32Params.map((p) => ({
      name: p.name,
      d: zeroOr(
        g,
        forwardDerivative(g, score, (n) => n.op === Op.PARAM && n.arg === p.name),
      ),
    })),
    loads: f32Loads(score).map((load) => ({
      tensor: String(load.arg),
      load,
      d: zeroOr(
        g,
        forwardDerivative(g, score, (n) => n === load),
      ),
    })),
  };
}

/** `root` rebuilt in another graph (dumps derive in a scratch graph, leaving the kernel's as it was). */
export function transplant(into: Graph, root: Node): Node {
  const memo = new Map<number, Node>();
  for (const n of toposort([root]))
    memo.set(
      n.id,
      into.node(
        n.op,
        n.dtype,
        n.src.map((s) => memo.get(s.id)!),
        n.arg,
        n.span,
      ),
    );
  return memo.get(root.id)!;
}
