// WGSL names of the IR's variables (the forward, backward and importance passes share them) and
// the bindings an IR expression reads.
import { toposort, type Node } from '../../ir/graph.js';
import { classMode } from '../../ir/tile-mode.js';
import { Op, type VarName } from '../../ir/ops.js';
import { summaryBinding } from './layout.js';

/** WGSL names of the IR's variables: sizes, per element, per tile (the backward pass shares them). */
export const sizeVars = {
  B: 'u.B',
  H: 'u.H',
  Hkv: 'u.Hkv',
  Nq: 'u.Nq',
  Nk: 'u.Nk',
  D: 'i32(HEAD_DIM)',
} as const;
export const elementVars: Partial<Record<VarName, string>> = {
  ...sizeVars,
  b: 'b',
  h: 'h',
  q: 'q',
  k: 'k',
  score: 'score',
};
export const tileVars: Partial<Record<VarName, string>> = {
  ...sizeVars,
  b: 'b',
  h: 'h',
  q_lo: 'q_lo',
  q_hi: 'q_hi',
  k_lo: 'k_lo',
  k_hi: 'k_hi',
};

/** Tensors read (LOAD or RANGE) by the given expressions. */
export function tensorsRead(roots: readonly Node[], ops: ReadonlySet<Op>): Set<string> {
  const out = new Set<string>();
  for (const n of toposort(roots)) if (ops.has(n.op)) out.add(String(n.arg));
  return out;
}

/** The bindings a pass evaluating `roots` reads: tensors it loads, then summaries of those it ranges over. */
export function bindingsRead(roots: readonly Node[]): string[] {
  return [
    ...tensorsRead(roots, new Set([Op.LOAD])),
    ...[...tensorsRead(roots, new Set([Op.RANGE_MIN, Op.RANGE_MAX]))].map(summaryBinding),
  ];
}

export { classMode };
