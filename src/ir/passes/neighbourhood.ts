// neighbourhood-patches: finds a 2-D neighbourhood in the mask — the conjuncts
// `abs(q / W - k / W) <= ry` and `abs(q % W - k % W) <= rx` of an image stored row-major, W
// positions a row (stdlib/neighbourhood.attn) — and records it, so that a backend may make its
// query tiles 2-D patches of the image (a q-tile of 128 = 8 image rows × 16 columns) and visit only
// the keys of the patch's neighbourhood: image rows y0 - ry .. y1 + ry, columns x0 - rx .. x1 + rx,
// instead of every key of whole image rows. Under floor division and modulo with W ≥ 1, position p
// is pixel (p / W, p % W) with 0 ≤ p % W < W, so every key a query of the patch may see lies in that
// box: the layout visits a superset of the allowed keys and the kernel's own mask (all of it, other
// conjuncts too) is still evaluated on them. The kernel's mask and classifier are unchanged; W < 1,
// a negative radius, or positions whose differences could wrap are for the backend to send back to
// the plain layout at run time. A backend without the layout (SIMT, WGSL) ignores the record.
import { toposort, type Node } from '../graph.js';
import type { NeighbourhoodPatches } from '../kernel.js';
import { Op } from '../ops.js';
import type { AttentionIR } from '../program.js';

const isVar = (n: Node | undefined, name: string): boolean => n?.op === Op.VAR && n.arg === name;
/** A run-time constant int: a literal or an int param. */
const isUniformInt = (n: Node | undefined): n is Node =>
  n !== undefined && n.dtype === 'i32' && (n.op === Op.CONST || n.op === Op.PARAM);

export function conjuncts(n: Node): Node[] {
  return n.op === Op.AND ? n.src.flatMap(conjuncts) : [n];
}

/** `abs(x) <= r` (or `r >= abs(x)`) as [x, r]. */
function boundedAbs(n: Node): [Node, Node] | undefined {
  const [a, b] = n.src;
  const [abs, r] = n.op === Op.LE ? [a, b] : n.op === Op.GE ? [b, a] : [undefined, undefined];
  if (abs?.op !== Op.ABS || !isUniformInt(r)) return undefined;
  return [abs.src[0]!, r];
}

/** `f(q, W) - f(k, W)` or `f(k, W) - f(q, W)` for f = `op`: W. */
function coordinateDiff(n: Node, op: Op): Node | undefined {
  if (n.op !== Op.SUB) return undefined;
  const [x, y] = n.src;
  if (x === undefined || y === undefined || x.op !== op || y.op !== op) return undefined;
  const w = x.src[1];
  if (!isUniformInt(w) || w !== y.src[1]) return undefined;
  const qk = isVar(x.src[0], 'q') && isVar(y.src[0], 'k');
  const kq = isVar(x.src[0], 'k') && isVar(y.src[0], 'q');
  return qk || kq ? w : undefined;
}

/** The image-row and image-column conjuncts of the mask, if it has both with the same W. */
export function findNeighbourhood(mask: Node): NeighbourhoodPatches | undefined {
  const rows = new Map<Node, Node>();
  const cols = new Map<Node, Node>();
  for (const c of conjuncts(mask)) {
    const bounded = boundedAbs(c);
    if (!bounded) continue;
    const [diff, radius] = bounded;
    const wRow = coordinateDiff(diff, Op.DIV);
    if (wRow) rows.set(wRow, radius);
    const wCol = coordinateDiff(diff, Op.MOD);
    if (wCol) cols.set(wCol, radius);
  }
  for (const [width, rowRadius] of rows) {
    const colRadius = cols.get(width);
    // A literal W ≤ 1 makes every position its own column or row: nothing to gain.
    if (colRadius && !(width.op === Op.CONST && Number(width.arg) <= 1))
      return { width, rowRadius, colRadius };
  }
  return undefined;
}

export function neighbourhoodPatches(ir: AttentionIR): AttentionIR {
  // Routing visits selected blocks by id and the residue classes permute rows their own way.
  if (ir.routing || ir.residue) return ir;
  const neighbourhood = findNeighbourhood(ir.mask);
  return neighbourhood ? { ...ir, neighbourhood } : ir;
}

/** Structural checks for `verify`: the record must describe conjuncts of the kernel's mask. */
export function verifyNeighbourhood(ir: AttentionIR): string[] {
  const n = ir.neighbourhood;
  if (!n) return [];
  const found = findNeighbourhood(ir.mask);
  const same =
    found !== undefined &&
    found.width === n.width &&
    found.rowRadius === n.rowRadius &&
    found.colRadius === n.colRadius;
  const errs = same
    ? []
    : ['neighbourhood: the mask has no such pair of image-row and image-column conjuncts'];
  if (ir.residue) errs.push('neighbourhood: a kernel with residue classes cannot also be patched');
  for (const v of [n.width, n.rowRadius, n.colRadius])
    if (toposort([v]).some((m) => m.op !== Op.CONST && m.op !== Op.PARAM))
      errs.push('neighbourhood: W and the radii must be literals or params');
  return errs;
}
