// The `gradient:` block of IR dumps: the score's derivatives (derive.ts), derived in a scratch
// graph so that dumping never adds nodes to the kernel's own graph. Kernels without a score
// expression (∂score′/∂score = 1, nothing else) print no block.
import { Graph, type Node } from './graph.js';
import { Op } from './ops.js';
import { deriveScore, transplant } from './derive.js';
import type { AttentionIR } from './program.js';

type Ssa = (roots: readonly [string, Node][]) => string[];

export function dumpGradient(ir: AttentionIR, ssa: Ssa): string[] {
  if (ir.score.op === Op.VAR && ir.score.arg === 'score') return [];
  const g = new Graph();
  const score = transplant(g, ir.score);
  const grad = deriveScore(g, score, ir.params);
  const roots: [string, Node][] = [
    ['score', score],
    ['d_score', grad.dScore],
    ...grad.params.map((p): [string, Node] => [`d_$${p.name}`, p.d]),
    ...grad.loads.map((l, i): [string, Node] => [`d_load${i}`, l.d]),
  ];
  // Each lookup is named too, so `d_loadN` says which tensor read (and index) it belongs to.
  roots.push(...grad.loads.map((l, i): [string, Node] => [`load${i}`, l.load]));
  return ['gradient (∂score′/∂x; masks have none):', ...ssa(roots)];
}
