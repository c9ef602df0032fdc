// residue-classes: finds a dilation conjunct `q % d == k % d` in the mask (the simplifier turns
// `(q - k) % d == 0` into it) and records how a backend may run the attention one residue class
// at a time. Under floor modulo, q % d == k % d ⟺ q ≡ k (mod |d|) (and both sides are 0 when
// d = 0), so a class r holds the queries and keys whose absolute positions are ≡ r (mod |d|):
// inside a class the conjunct is always true and only the rest of the mask is evaluated. A class's
// tile covers positions p0, p0 + m, …, p0 + (n-1)·m (m = |d| or 1); its bounding interval
// [p0, p0 + (n-1)·m] contains every such position, so the interval classifier of the reduced mask
// stays sound there: "cannot be true on the box" ⇒ empty, "cannot be false on the box" ⇒ full.
// The kernel's own mask and classifier are unchanged; a backend without the permuted mapping
// (SIMT, WGSL) ignores the record.
import { toposort, type Graph, type Node } from '../graph.js';
import type { ResidueClasses } from '../kernel.js';
import { Op } from '../ops.js';
import type { AttentionIR } from '../program.js';
import { analyzeTiles } from './analyze-tiles.js';
import { simplifyExpr } from './simplify.js';

const isVar = (n: Node | undefined, name: string): boolean => n?.op === Op.VAR && n.arg === name;

/** The modulus of a conjunct `q % d == k % d` (either side order), if `n` is one. */
export function dilationModulus(n: Node): Node | undefined {
  if (n.op !== Op.EQ) return undefined;
  const [x, y] = n.src;
  if (x?.op !== Op.MOD || y?.op !== Op.MOD) return undefined;
  const d = x.src[1];
  if (d === undefined || d !== y.src[1] || d.dtype !== 'i32') return undefined;
  if (d.op !== Op.CONST && d.op !== Op.PARAM) return undefined;
  // A literal |d| ≤ 1 makes the conjunct always true: one class, nothing to gain.
  if (d.op === Op.CONST && Math.abs(Number(d.arg)) <= 1) return undefined;
  const qk = isVar(x.src[0], 'q') && isVar(y.src[0], 'k');
  const kq = isVar(x.src[0], 'k') && isVar(y.src[0], 'q');
  return qk || kq ? d : undefined;
}

function conjuncts(n: Node): Node[] {
  return n.op === Op.AND ? n.src.flatMap(conjuncts) : [n];
}

function andAll(g: Graph, nodes: readonly Node[]): Node {
  return nodes.reduce((acc, n) => g.node(Op.AND, 'bool', [acc, n]), g.const(true));
}

export function residueClasses(ir: AttentionIR): AttentionIR {
  const all = conjuncts(ir.mask);
  const at = all.findIndex((c) => dilationModulus(c) !== undefined);
  // Routing kernels visit selected blocks by id: a permuted key order would not match them.
  if (at < 0 || ir.routing) return ir;
  const modulus = dilationModulus(all[at]!)!;
  const mask = simplifyExpr(
    ir.graph,
    andAll(
      ir.graph,
      all.filter((_, i) => i !== at),
    ),
  );
  const reduced = analyzeTiles({ ...ir, mask });
  const tiles = reduced.tiles!;
  // Both classifiers may read tensor summaries; the kernel computes the union.
  const names = new Set([...(ir.summaries ?? []), ...(reduced.summaries ?? [])].map((s) => s.tensor));
  const residue: ResidueClasses = { modulus, mask, tiles };
  return { ...ir, residue, summaries: [...names].map((tensor) => ({ tensor })) };
}

/** Structural checks for `verify`: the record must describe a conjunct of the kernel's mask. */
export function verifyResidue(ir: AttentionIR): string[] {
  const r = ir.residue;
  if (!r) return [];
  const errs: string[] = [];
  if (!conjuncts(ir.mask).some((c) => dilationModulus(c) === r.modulus))
    errs.push('residue: the mask has no conjunct q % d == k % d with the recorded modulus');
  if (r.mask.dtype !== 'bool') errs.push('residue: the reduced mask is not bool');
  const reads = (n: Node): string[] =>
    toposort([n])
      .filter((m) => m.op === Op.RANGE_MIN || m.op === Op.RANGE_MAX)
      .map((m) => String(m.arg));
  if (r.tiles.kind === 'dynamic')
    for (const t of [...reads(r.tiles.canBeTrue), ...reads(r.tiles.canBeFalse)])
      if (!ir.summaries?.some((s) => s.tensor === t))
        errs.push(`residue: classifier reads ${t} with no summary`);
  return errs;
}
