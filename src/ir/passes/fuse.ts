// fuse: the score and mask expressions are fused into the attention kernel's inner loop (they are
// already one expression DAG each, shared through hash-consing). What this pass adds is the
// hoisting plan: the maximal subexpressions that do not depend on the key (k, score, k-indexed
// loads) are marked row-invariant, so a backend computes them once per query row instead of once
// per (row, key) — e.g. `doc[q]` in a document mask becomes one load per row.
import { toposort, type Node } from '../graph.js';
import { Op } from '../ops.js';
import type { AttentionIR } from '../program.js';

const keyVars = new Set(['k', 'score', 'k_lo', 'k_hi']);

export function fuse(ir: AttentionIR): AttentionIR {
  const roots = [ir.mask, ir.score];
  const dependsOnKey = new Map<number, boolean>();
  for (const n of toposort(roots)) {
    const own = n.op === Op.VAR && keyVars.has(String(n.arg));
    dependsOnKey.set(n.id, own || n.src.some((s) => dependsOnKey.get(s.id)!));
  }
  const cheap = (n: Node): boolean => n.op === Op.CONST || n.op === Op.VAR || n.op === Op.PARAM;
  // Maximal row-invariant nodes: invariant, not trivially cheap, used by a key-dependent parent.
  const hoisted = new Map<number, Node>();
  for (const n of toposort(roots)) {
    if (!dependsOnKey.get(n.id)) continue;
    for (const s of n.src) if (!dependsOnKey.get(s.id) && !cheap(s)) hoisted.set(s.id, s);
  }
  for (const r of roots) if (!dependsOnKey.get(r.id) && !cheap(r)) hoisted.set(r.id, r);
  return { ...ir, rowInvariants: [...hoisted.values()] };
}
