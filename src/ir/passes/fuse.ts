// fuse: the score and mask expressions are fused into the attention kernel's inner loop (they are
// already one expression DAG each, shared through hash-consing). What this pass adds is the
// hoisting plan every backend renders (ir/kernel.ts Hoists): the maximal subexpressions of the
// element expressions that do not depend on the key (k, score) are row-invariant, computed once
// per query row instead of once per (row, key) — `doc[q]` of a document mask becomes one load per
// row; those that do not depend on the query (q, score), read k and cost memory or transcendental
// work are key-invariant, computed once per key of a tile (`doc[k]`). The element expressions are
// those a tile evaluates: the mask only where a tile can be partial, the score unless it is the
// bare `score`. Dilated masks get a second plan for their per-class mask (residue-classes).
import { toposort, type Node } from '../graph.js';
import type { Hoists, TileClassifier } from '../kernel.js';
import { Op, unaryFloat } from '../ops.js';
import type { AttentionIR } from '../program.js';

const isLeaf = (n: Node): boolean => n.op === Op.CONST || n.op === Op.VAR || n.op === Op.PARAM;

/** Whether `n` reads any of the variables `names` (q, k, b, h, score). */
export const usesVar = (n: Node, names: readonly string[]): boolean =>
  toposort([n]).some((m) => m.op === Op.VAR && names.includes(String(m.arg)));

/** Worth a per-key slot (shared memory on CUDA): memory reads, transcendental or division work. */
const costly = (n: Node): boolean =>
  toposort([n]).some((m) => m.op === Op.LOAD || unaryFloat.has(m.op) || m.op === Op.DIV || m.op === Op.MOD);

/**
 * Maximal subexpressions of `roots` that do not depend on `variant` vars (so they are invariant
 * over the loop those vars index) and satisfy `pick`, in the order a walk of `roots` meets them.
 */
function invariants(roots: readonly Node[], variant: readonly string[], pick: (n: Node) => boolean): Node[] {
  const varies = new Set<number>();
  const order = toposort(roots);
  for (const n of order)
    if ((n.op === Op.VAR && variant.includes(String(n.arg))) || n.src.some((s) => varies.has(s.id)))
      varies.add(n.id);
  const out = new Map<number, Node>();
  const consider = (s: Node): void => {
    if (!varies.has(s.id) && !isLeaf(s) && pick(s)) out.set(s.id, s);
  };
  for (const n of order) if (varies.has(n.id)) n.src.forEach(consider);
  roots.forEach(consider);
  return [...out.values()];
}

/** The element expressions a tile of class `tiles` evaluates: the partial-tile mask, the score. */
export function elementRoots(mask: Node, score: Node, tiles: TileClassifier | undefined): Node[] {
  const mode = tiles?.kind === 'dynamic' ? 'dynamic' : (tiles?.value ?? 'partial');
  if (mode === 'empty') return [];
  const identity = score.op === Op.VAR && score.arg === 'score';
  return [...(mode === 'full' ? [] : [mask]), ...(identity ? [] : [score])];
}

/** The hoisting plan of the element expressions `roots`. */
export function hoistPlan(roots: readonly Node[]): Hoists {
  return {
    row: invariants(roots, ['k', 'score'], () => true),
    key: invariants(roots, ['q', 'score'], (n) => usesVar(n, ['k']) && costly(n)),
  };
}

export function fuse(ir: AttentionIR): AttentionIR {
  const hoists = hoistPlan(elementRoots(ir.mask, ir.score, ir.tiles));
  const residue = ir.residue && {
    ...ir.residue,
    hoists: hoistPlan(elementRoots(ir.residue.mask, ir.score, ir.residue.tiles)),
  };
  return { ...ir, hoists, ...(residue ? { residue } : {}) };
}
