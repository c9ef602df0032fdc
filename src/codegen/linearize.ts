// Turns expression DAGs into straight-line SSA statements, shared by every backend: each node
// that is used more than once, or is not a trivial leaf, gets a temporary; leaves and
// single-use nodes inline. A backend supplies only a rule per op (see */rules.ts).
import { toposort, type Node } from '../ir/graph.js';
import { Op, type DType } from '../ir/ops.js';

export interface Renderer {
  /** Renders one op given its operands' rendered text. */
  op(n: Node, args: readonly string[]): string;
  /** Type name in the target language. */
  type(t: DType): string;
  /** A statement declaring a temporary. */
  declare(name: string, t: DType, value: string): string;
}

export interface Linearized {
  readonly stmts: string[];
  /** Rendered text of each root, in order. */
  readonly roots: string[];
}

const leaf = (n: Node): boolean => n.op === Op.CONST || n.op === Op.VAR || n.op === Op.PARAM;

/**
 * Linearizes `roots` together (so shared subexpressions are computed once). `prefix` names the
 * temporaries; `bound` maps node ids already available under a name (hoisted values).
 */
export function linearize(
  roots: readonly Node[],
  r: Renderer,
  prefix: string,
  bound: ReadonlyMap<number, string> = new Map(),
): Linearized {
  const order = toposort(roots).filter((n) => !bound.has(n.id));
  const uses = new Map<number, number>();
  for (const n of order) for (const s of n.src) uses.set(s.id, (uses.get(s.id) ?? 0) + 1);
  const text = new Map<number, string>(bound);
  const stmts: string[] = [];
  let next = 0;
  const rootIds = new Set(roots.map((n) => n.id));
  for (const n of order) {
    const expr = r.op(
      n,
      n.src.map((s) => text.get(s.id)!),
    );
    // Temporaries for shared or root nodes keep the text small and evaluate once.
    if (!leaf(n) && ((uses.get(n.id) ?? 0) > 1 || rootIds.has(n.id))) {
      const name = `${prefix}${next++}`;
      stmts.push(r.declare(name, n.dtype, expr));
      text.set(n.id, name);
    } else {
      text.set(n.id, leaf(n) ? expr : `(${expr})`);
    }
  }
  return { stmts, roots: roots.map((n) => text.get(n.id)!) };
}
