// Interval arithmetic for intervals.ts: the bounds of a numeric op from its operands' bounds, and
// `ok` — when those bounds hold. i32 ops are exact integer bounds as long as no corner of the box
// overflows (each op here is monotone in each operand, or bilinear for ×, so its extremes are at
// corners: no overflowing corner means no overflowing value). f32 ops are monotone under IEEE
// rounding; they stay NaN-free when the operands are finite (+, −, ×) or in the domain (log, sqrt).
import type { Graph, Node } from '../graph.js';
import { Op } from '../ops.js';
import type { DType } from '../ops.js';
import type { NumRange, Range } from './intervals.js';
import { wrapGuards } from './wrap-guards.js';
import type { WrapGuards } from './wrap-guards.js';

const isPos = (n: Node | undefined, v: 'q' | 'k'): boolean => n?.op === Op.VAR && n.arg === v;

/** `q - k` or `k - q`: a difference of two positions. */
function isPositionDifference(n: Node): boolean {
  const [a, b] = n.src;
  return (isPos(a, 'q') && isPos(b, 'k')) || (isPos(a, 'k') && isPos(b, 'q'));
}

/** One op's operands and the graph helpers that every bound below is built with. */
interface Operands {
  readonly g: Graph;
  readonly T: DType;
  readonly w: WrapGuards;
  readonly x: NumRange;
  /** The second operand; present for every binary op. */
  readonly y: NumRange | undefined;
  readonly isInt: boolean;
  readonly zero: Node;
  /** Both operands' own bounds hold. */
  readonly okXY: Node;
}

export function numericRange(n: Node, src: readonly NumRange[], g: Graph): Range {
  const T = n.dtype;
  const w = wrapGuards(g);
  // Made before anything else, whatever the op: the graph numbers nodes in creation order, and
  // emitted code follows that numbering.
  const zero = g.const(0, T);
  const [x, y] = src;
  if (!x) return 'top';
  const o: Operands = { g, T, w, x, y, isInt: T === 'i32', zero, okXY: y ? w.and(x.ok, y.ok) : x.ok };
  switch (n.op) {
    case Op.ADD:
      return addRange(o);
    case Op.SUB:
      return subRange(o, isPositionDifference(n));
    case Op.NEG:
      return negRange(o);
    case Op.MUL:
      return mulRange(o);
    case Op.MIN:
    case Op.MAX:
      return { lo: op2(o, n.op, x.lo, y!.lo), hi: op2(o, n.op, x.hi, y!.hi), ok: o.okXY };
    case Op.ABS:
      return absRange(o);
    case Op.DIV:
    case Op.MOD:
      return o.isInt ? divModRange(n.op, g, x, y!, o.okXY) : 'top';
    case Op.CAST:
      if (n.src[0]?.dtype === 'bool') return 'top';
      // int → f32 rounds monotonically; f32 → int truncates and saturates monotonically, and `ok`
      // already excludes NaN (which converts to 0).
      return monotoneRange(o, Op.CAST);
    case Op.EXP:
    case Op.EXP2:
    case Op.TANH:
    case Op.FLOOR:
      return monotoneRange(o, n.op);
    case Op.LOG:
    case Op.LOG2:
    case Op.SQRT:
      return nonNegativeDomainRange(o, n.op);
  }
  return 'top';
}

const op2 = (o: Operands, op: Op, a: Node, b: Node): Node => o.g.node(op, o.T, [a, b]);

/** f32 bounds need finite operands: inf − inf and 0 · inf are NaN. */
function bothFinite({ w, x, y }: Operands): Node {
  return w.and(w.and(w.finite(x.lo), w.finite(x.hi)), w.and(w.finite(y!.lo), w.finite(y!.hi)));
}

/** Bounds that hold when `okInt` (i32) or when both operands are finite (f32). */
function guarded(o: Operands, lo: Node, hi: Node, okInt: () => Node): NumRange {
  return { lo, hi, ok: o.w.and(o.okXY, o.isInt ? okInt() : bothFinite(o)) };
}

function addRange(o: Operands): NumRange {
  const { w, x } = o;
  const y = o.y!;
  return guarded(o, op2(o, Op.ADD, x.lo, y.lo), op2(o, Op.ADD, x.hi, y.hi), () =>
    w.not(w.or(w.addOverflows(x.lo, y.lo), w.addOverflows(x.hi, y.hi))),
  );
}

function subRange(o: Operands, positionDifference: boolean): NumRange {
  const { w, x } = o;
  const y = o.y!;
  // q − k and k − q never wrap: the runtime, emitted modules and CUDA launcher refuse offsets
  // that put two positions 2^31 or more apart (docs/LANGUAGE.md, "Int arithmetic"), so the
  // windows of sliding-window masks classify with no guard on the hot path.
  if (positionDifference)
    return { lo: op2(o, Op.SUB, x.lo, y.hi), hi: op2(o, Op.SUB, x.hi, y.lo), ok: o.okXY };
  return guarded(o, op2(o, Op.SUB, x.lo, y.hi), op2(o, Op.SUB, x.hi, y.lo), () =>
    w.not(w.or(w.subOverflows(x.lo, y.hi), w.subOverflows(x.hi, y.lo))),
  );
}

/** −MIN and |MIN| wrap to MIN, so an i32 range that reaches MIN has no bounds. */
function noMinOk({ w, x, isInt }: Operands): Node {
  return isInt ? w.and(x.ok, w.not(w.isMin(x.lo))) : x.ok;
}

function negRange(o: Operands): NumRange {
  const { g, T, x } = o;
  return { lo: g.node(Op.NEG, T, [x.hi]), hi: g.node(Op.NEG, T, [x.lo]), ok: noMinOk(o) };
}

/** |x|: [lo, hi] when x ≥ 0, [−hi, −lo] when x ≤ 0, else [0, max(−lo, hi)]. */
function absRange(o: Operands): NumRange {
  const { g, T, x, zero } = o;
  const cmp = (op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, a.dtype, [c, a, b]);
  const nonneg = cmp(Op.GE, x.lo, zero);
  const nonpos = cmp(Op.LE, x.hi, zero);
  const negLo = g.node(Op.NEG, T, [x.lo]);
  const negHi = g.node(Op.NEG, T, [x.hi]);
  return {
    lo: sel(nonneg, x.lo, sel(nonpos, negHi, zero)),
    hi: sel(nonneg, x.hi, sel(nonpos, negLo, op2(o, Op.MAX, negLo, x.hi))),
    ok: noMinOk(o),
  };
}

/** A monotone op maps the ends of the range to the ends of its image. */
function monotoneRange({ g, T, x }: Operands, op: Op): NumRange {
  return { lo: g.node(op, T, [x.lo]), hi: g.node(op, T, [x.hi]), ok: x.ok };
}

/** log, log2, sqrt: monotone on [0, inf]; NaN below 0, so the range must start at 0 or above. */
function nonNegativeDomainRange(o: Operands, op: Op): NumRange {
  const { g, T, x } = o;
  return {
    lo: g.node(op, T, [x.lo]),
    hi: g.node(op, T, [x.hi]),
    ok: o.w.and(x.ok, g.node(Op.GE, 'bool', [x.lo, g.const(0, 'f32')])),
  };
}

/** x · y: the extremes of a bilinear function on a box are at its four corners. */
function mulRange(o: Operands): NumRange {
  const { g, w, x } = o;
  const y = o.y!;
  const T = x.lo.dtype;
  const corners: [Node, Node][] = [
    [x.lo, y.lo],
    [x.lo, y.hi],
    [x.hi, y.lo],
    [x.hi, y.hi],
  ];
  const p = corners.map(([a, b]) => g.node(Op.MUL, T, [a, b]));
  const fold = (op: Op): Node => p.slice(1).reduce((acc, v) => g.node(op, T, [acc, v]), p[0]!);
  let ok: Node;
  if (T === 'i32') {
    // A constant factor goes second: the guard divides by it, so it folds to one comparison.
    const overflows = corners.map(([a, b]) =>
      a.op === Op.CONST ? w.mulOverflows(b, a) : w.mulOverflows(a, b),
    );
    ok = w.and(o.okXY, w.not(overflows.reduce((acc, ov) => w.or(acc, ov))));
  } else ok = w.and(o.okXY, bothFinite(o));
  return { lo: fold(Op.MIN), hi: fold(Op.MAX), ok };
}

/** Floor division / modulo by a divisor that is one value per tile (const, param, size, b, h). */
function divModRange(op: Op, g: Graph, x: NumRange, y: NumRange, okXY: Node): Range {
  if (y.lo !== y.hi) return 'top';
  const w = wrapGuards(g);
  const op2 = (o: Op, a: Node, b: Node): Node => g.node(o, 'i32', [a, b]);
  const cmp = (o: Op, a: Node, b: Node): Node => g.node(o, 'bool', [a, b]);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, 'i32', [c, a, b]);
  const zero = g.const(0, 'i32');
  const d = y.lo;
  const pos = cmp(Op.GT, d, zero);
  const neg = cmp(Op.LT, d, zero);
  if (op === Op.DIV) {
    // Floor division is monotone in x; only MIN / −1 wraps (to MIN).
    const [dl, dh] = [op2(Op.DIV, x.lo, d), op2(Op.DIV, x.hi, d)];
    const wraps = w.and(cmp(Op.EQ, d, g.const(-1, 'i32')), w.isMin(x.lo));
    return {
      lo: sel(pos, dl, sel(neg, dh, zero)),
      hi: sel(pos, dh, sel(neg, dl, zero)),
      ok: w.and(okXY, w.not(wraps)),
    };
  }
  // Floor mod: if lo and hi fall in the same period the range is [lo mod d, hi mod d]; else it
  // is the whole period: [0, d-1] for d > 0, [d+1, 0] for d < 0; x % 0 = 0. Nothing wraps: the
  // result lies between 0 and d (and x % −1 is 0 whatever the periods say).
  const one = g.const(1, 'i32');
  const samePeriod = cmp(Op.EQ, op2(Op.DIV, x.lo, d), op2(Op.DIV, x.hi, d));
  const [ml, mh] = [op2(Op.MOD, x.lo, d), op2(Op.MOD, x.hi, d)];
  return {
    lo: sel(samePeriod, ml, sel(pos, zero, sel(neg, op2(Op.ADD, d, one), zero))),
    hi: sel(samePeriod, mh, sel(pos, op2(Op.SUB, d, one), zero)),
    ok: okXY,
  };
}
