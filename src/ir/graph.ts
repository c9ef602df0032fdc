// The graph IR: small immutable nodes {op, dtype, src, arg, span}, hash-consed per Graph so that
// structurally equal subexpressions are the same object (common subexpressions shared for free,
// and `a === b` is structural equality).
import type { Span } from '../diagnostics.js';
import { Op, type DType, type VarName } from './ops.js';

export type Arg = number | boolean | string | null;

export interface Node {
  readonly id: number;
  readonly op: Op;
  readonly dtype: DType;
  readonly src: readonly Node[];
  readonly arg: Arg;
  /** Where it came from in the source (the first occurrence wins when nodes are shared). */
  readonly span: Span | undefined;
}

export class Graph {
  private readonly table = new Map<string, Node>();
  private nextId = 0;

  /** Returns the unique node for (op, dtype, src, arg). */
  node(op: Op, dtype: DType, src: readonly Node[], arg: Arg = null, span?: Span): Node {
    // String(-0) is '0': without its own spelling, -0.0 would be handed back as the +0.0 node
    // (1.0 / -0.0 folding to +inf).
    const argText = Object.is(arg, -0) ? '-0' : String(arg);
    const key = `${op}|${dtype}|${src.map((s) => s.id).join(',')}|${typeof arg}:${argText}`;
    const hit = this.table.get(key);
    if (hit) return hit;
    const n: Node = Object.freeze({ id: this.nextId++, op, dtype, src: Object.freeze([...src]), arg, span });
    this.table.set(key, n);
    return n;
  }

  get size(): number {
    return this.table.size;
  }

  // Convenience constructors.
  const(value: number | boolean, dtype?: DType): Node {
    const t: DType = dtype ?? (typeof value === 'boolean' ? 'bool' : Number.isInteger(value) ? 'i32' : 'f32');
    const v = t === 'i32' && typeof value === 'number' ? Math.trunc(value) | 0 : value;
    return this.node(Op.CONST, t, [], v);
  }
  var(name: VarName): Node {
    return this.node(Op.VAR, name === 'score' ? 'f32' : 'i32', [], name);
  }
}

/** Nodes reachable from `roots`, each after its sources (a topological order). */
export function toposort(roots: readonly Node[]): Node[] {
  const seen = new Set<number>();
  const out: Node[] = [];
  const visit = (n: Node): void => {
    if (seen.has(n.id)) return;
    seen.add(n.id);
    for (const s of n.src) visit(s);
    out.push(n);
  };
  for (const r of roots) visit(r);
  return out;
}

/** Rebuilds `root` bottom-up through `f` (which sees already-rewritten sources), memoised by id. */
export function rewrite(root: Node, f: (n: Node, src: readonly Node[]) => Node): Node {
  const memo = new Map<number, Node>();
  for (const n of toposort([root])) {
    const src = n.src.map((s) => memo.get(s.id)!);
    memo.set(n.id, f(n, src));
  }
  return memo.get(root.id)!;
}

/** One-line s-expression, for dumps and test messages: (and (ge q k) (lt (sub q k) (param window))). */
/** Characters `show` writes at most: the IR is a DAG, and its tree can be exponentially larger. */
export const SHOW_LIMIT = 4000;

/** A constant as dumps and `show` print it: f32 integers with `.0`, -0.0 with its sign. */
export function constText(n: Node): string {
  if (n.dtype === 'f32' && Object.is(n.arg, -0)) return '-0.0';
  return String(n.arg) + (n.dtype === 'f32' && Number.isInteger(n.arg) ? '.0' : '');
}

/**
 * The node as an s-expression, cut with `…` past SHOW_LIMIT characters: headers and diagnostics
 * print predicates whose trees can grow exponentially (x · (x + 1) · … shares subterms), so the
 * walk stops when the text is long enough instead of visiting the whole tree.
 */
export function show(n: Node): string {
  return showAtMost(n, SHOW_LIMIT);
}

/** show with another limit (a separate function: `nodes.map(show)` passes an index). */
export function showAtMost(n: Node, limit: number): string {
  const out: string[] = [];
  let left = limit;
  const put = (s: string): void => {
    out.push(s);
    left -= s.length;
  };
  const walk = (m: Node): void => {
    if (left <= 0) return;
    if (m.op === Op.CONST) return put(constText(m));
    if (m.op === Op.VAR) return put(String(m.arg));
    if (m.op === Op.PARAM) return put(`$${String(m.arg)}`);
    const head =
      m.op === Op.LOAD || m.op === Op.RANGE_MIN || m.op === Op.RANGE_MAX ? `${m.op}:${String(m.arg)}` : m.op;
    put(`(${head}${m.op === Op.CAST ? `:${m.dtype}` : ''}`);
    for (const s of m.src) {
      if (left <= 0) break;
      put(' ');
      walk(s);
    }
    put(')');
  };
  walk(n);
  const text = out.join('');
  return left < 0 || text.length > limit ? `${text.slice(0, limit)} …` : text;
}
