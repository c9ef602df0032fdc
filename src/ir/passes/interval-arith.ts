// Interval arithmetic for intervals.ts: the bounds of a numeric op from its operands' bounds, and
// `ok` — when those bounds hold. i32 ops are exact integer bounds as long as no corner of the box
// overflows (each op here is monotone in each operand, or bilinear for ×, so its extremes are at
// corners: no overflowing corner means no overflowing value). f32 ops are monotone under IEEE
// rounding; they stay NaN-free when the operands are finite (+, −, ×) or in the domain (log, sqrt).
import type { Graph, Node } from '../graph.js';
import { Op } from '../ops.js';
import type { NumRange, Range } from './intervals.js';
import { wrapGuards } from './wrap-guards.js';

const isPos = (n: Node | undefined, v: 'q' | 'k'): boolean => n?.op === Op.VAR && n.arg === v;

/** `q - k` or `k - q`: a difference of two positions. */
function isPositionDifference(n: Node): boolean {
  const [a, b] = n.src;
  return (isPos(a, 'q') && isPos(b, 'k')) || (isPos(a, 'k') && isPos(b, 'q'));
}

export function numericRange(n: Node, src: readonly NumRange[], g: Graph): Range {
  const T = n.dtype;
  const w = wrapGuards(g);
  const { and, not } = w;
  const op2 = (op: Op, a: Node, b: Node): Node => g.node(op, T, [a, b]);
  const cmp = (op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, a.dtype, [c, a, b]);
  const zero = g.const(0, T);
  const isInt = T === 'i32';
  const [x, y] = src;
  if (!x) return 'top';
  const okXY = y ? and(x.ok, y.ok) : x.ok;
  const bothFinite = (): Node =>
    and(and(w.finite(x.lo), w.finite(x.hi)), and(w.finite(y!.lo), w.finite(y!.hi)));
  // Bounds that hold when `okInt` (i32) or when both operands are finite (f32: no inf − inf, 0 · inf).
  const guarded = (lo: Node, hi: Node, okInt: () => Node): NumRange => ({
    lo,
    hi,
    ok: and(okXY, isInt ? okInt() : bothFinite()),
  });
  switch (n.op) {
    case Op.ADD:
      return guarded(op2(Op.ADD, x.lo, y!.lo), op2(Op.ADD, x.hi, y!.hi), () =>
        not(w.or(w.addOverflows(x.lo, y!.lo), w.addOverflows(x.hi, y!.hi))),
      );
    case Op.SUB:
      // q − k and k − q never wrap: the runtime, emitted modules and CUDA launcher refuse offsets
      // that put two positions 2^31 or more apart (docs/LANGUAGE.md, "Int arithmetic"), so the
      // windows of sliding-window masks classify with no guard on the hot path.
      if (isPositionDifference(n))
        return { lo: op2(Op.SUB, x.lo, y!.hi), hi: op2(Op.SUB, x.hi, y!.lo), ok: okXY };
      return guarded(op2(Op.SUB, x.lo, y!.hi), op2(Op.SUB, x.hi, y!.lo), () =>
        not(w.or(w.subOverflows(x.lo, y!.hi), w.subOverflows(x.hi, y!.lo))),
      );
    case Op.NEG:
      return {
        lo: g.node(Op.NEG, T, [x.hi]),
        hi: g.node(Op.NEG, T, [x.lo]),
        ok: isInt ? and(x.ok, not(w.isMin(x.lo))) : x.ok,
      };
    case Op.MUL:
      return mulRange(g, x, y!, okXY, bothFinite);
    case Op.MIN:
    case Op.MAX:
      return { lo: op2(n.op, x.lo, y!.lo), hi: op2(n.op, x.hi, y!.hi), ok: okXY };
    case Op.ABS: {
      const nonneg = cmp(Op.GE, x.lo, zero);
      const nonpos = cmp(Op.LE, x.hi, zero);
      const negLo = g.node(Op.NEG, T, [x.lo]);
      const negHi = g.node(Op.NEG, T, [x.hi]);
      return {
        lo: sel(nonneg, x.lo, sel(nonpos, negHi, zero)),
        hi: sel(nonneg, x.hi, sel(nonpos, negLo, op2(Op.MAX, negLo, x.hi))),
        ok: isInt ? and(x.ok, not(w.isMin(x.lo))) : x.ok, // |MIN| wraps to MIN
      };
    }
    case Op.DIV:
    case Op.MOD:
      return isInt ? divModRange(n.op, g, x, y!, okXY) : 'top';
    case Op.CAST:
      if (n.src[0]?.dtype === 'bool') return 'top';
      // int → f32 rounds monotonically; f32 → int truncates and saturates monotonically, and `ok`
      // already excludes NaN (which converts to 0).
      return { lo: g.node(Op.CAST, T, [x.lo]), hi: g.node(Op.CAST, T, [x.hi]), ok: x.ok };
    case Op.EXP:
    case Op.EXP2:
    case Op.TANH:
    case Op.FLOOR:
      return { lo: g.node(n.op, T, [x.lo]), hi: g.node(n.op, T, [x.hi]), ok: x.ok }; // monotone
    case Op.LOG:
    case Op.LOG2:
    case Op.SQRT:
      // Monotone on [0, inf]; NaN below 0.
      return {
        lo: g.node(n.op, T, [x.lo]),
        hi: g.node(n.op, T, [x.hi]),
        ok: and(x.ok, cmp(Op.GE, x.lo, g.const(0, 'f32'))),
      };
  }
  return 'top';
}

/** x · y: the extremes of a bilinear function on a box are at its four corners. */
function mulRange(g: Graph, x: NumRange, y: NumRange, okXY: Node, bothFinite: () => Node): NumRange {
  const T = x.lo.dtype;
  const w = wrapGuards(g);
  const op2 = (op: Op, a: Node, b: Node): Node => g.node(op, T, [a, b]);
  const corners: [Node, Node][] = [
    [x.lo, y.lo],
    [x.lo, y.hi],
    [x.hi, y.lo],
    [x.hi, y.hi],
  ];
  const p = corners.map(([a, b]) => op2(Op.MUL, a, b));
  const fold = (op: Op): Node => p.slice(1).reduce((acc, v) => op2(op, acc, v), p[0]!);
  let ok: Node;
  if (T === 'i32') {
    // A constant factor goes second: the guard divides by it, so it folds to one comparison.
    const overflows = corners.map(([a, b]) =>
      a.op === Op.CONST ? w.mulOverflows(b, a) : w.mulOverflows(a, b),
    );
    ok = w.and(okXY, w.not(overflows.reduce((acc, o) => w.or(acc, o))));
  } else ok = w.and(okXY, bothFinite());
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
