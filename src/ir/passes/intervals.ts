// Symbolic interval analysis over one (q-tile, k-tile). Each numeric node gets bounds [lo, hi] as
// IR expressions of the tile-bound vars (q_lo q_hi k_lo k_hi), so one classifier serves every
// tile, offset and param value at run time; each bool node gets (canBeTrue, canBeFalse). b and h
// are single values per tile. Anything the analysis cannot bound is `top` — sound, just partial.
import type { Graph, Node } from '../graph.js';
import { Op } from '../ops.js';

export interface NumRange {
  readonly lo: Node;
  readonly hi: Node;
}
export interface BoolRange {
  readonly t: Node; // can be true somewhere in the tile
  readonly f: Node; // can be false somewhere in the tile
}
export type Range = NumRange | BoolRange | 'top';

export interface IntervalContext {
  readonly g: Graph;
  /** 1-D i32 tensors that may be summarised (RANGE_MIN / RANGE_MAX). */
  readonly summarizable: (tensor: string) => boolean;
  /** Records that a tensor's summary is used. */
  readonly useSummary: (tensor: string) => void;
}

const isNum = (r: Range): r is NumRange => r !== 'top' && 'lo' in r;
const isBool = (r: Range): r is BoolRange => r !== 'top' && 't' in r;

export function analyzeIntervals(root: Node, ctx: IntervalContext): Range {
  const memo = new Map<number, Range>();
  const visit = (n: Node): Range => {
    const hit = memo.get(n.id);
    if (hit) return hit;
    const r = rangeOf(n, n.src.map(visit), ctx);
    memo.set(n.id, r);
    return r;
  };
  return visit(root);
}

/** The bool range of a possibly-top bool: top means "could be either". */
export function boolOf(g: Graph, r: Range): BoolRange {
  return isBool(r) ? r : { t: g.const(true), f: g.const(true) };
}

function rangeOf(n: Node, src: readonly Range[], ctx: IntervalContext): Range {
  const g = ctx.g;
  const T = n.dtype;
  const cmp = (op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
  const and = (a: Node, b: Node): Node => g.node(Op.AND, 'bool', [a, b]);
  const or = (a: Node, b: Node): Node => g.node(Op.OR, 'bool', [a, b]);
  const not = (a: Node): Node => g.node(Op.NOT, 'bool', [a]);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, a.dtype, [c, a, b]);
  const point = (x: Node): NumRange => ({ lo: x, hi: x });
  const [a, b, c] = src;

  switch (n.op) {
    case Op.CONST:
      return T === 'bool' ? { t: g.const(n.arg === true), f: g.const(n.arg !== true) } : point(n);
    case Op.PARAM:
      return T === 'bool' ? { t: n, f: not(n) } : point(n);
    case Op.VAR:
      if (n.arg === 'q') return { lo: g.var('q_lo'), hi: g.var('q_hi') };
      if (n.arg === 'k') return { lo: g.var('k_lo'), hi: g.var('k_hi') };
      if (n.arg === 'score') return 'top';
      return point(n); // b, h and sizes are single values per tile
    case Op.LOAD: {
      const idx = a;
      if (n.src.length !== 1 || !ctx.summarizable(String(n.arg)) || !idx || !isNum(idx)) return 'top';
      ctx.useSummary(String(n.arg));
      return {
        lo: g.node(Op.RANGE_MIN, 'i32', [idx.lo, idx.hi], n.arg),
        hi: g.node(Op.RANGE_MAX, 'i32', [idx.lo, idx.hi], n.arg),
      };
    }
    case Op.NOT:
      return a && isBool(a) ? { t: a.f, f: a.t } : 'top';
    case Op.AND:
      if (!a || !b) return 'top';
      return { t: and(boolOf(g, a).t, boolOf(g, b).t), f: or(boolOf(g, a).f, boolOf(g, b).f) };
    case Op.OR:
      if (!a || !b) return 'top';
      return { t: or(boolOf(g, a).t, boolOf(g, b).t), f: and(boolOf(g, a).f, boolOf(g, b).f) };
  }

  if (n.op === Op.SELECT) {
    if (!a || !b || !c) return 'top';
    const cc = boolOf(g, a);
    if (T === 'bool') {
      const [x, y] = [boolOf(g, b), boolOf(g, c)];
      return { t: or(and(cc.t, x.t), and(cc.f, y.t)), f: or(and(cc.t, x.f), and(cc.f, y.f)) };
    }
    if (!isNum(b) || !isNum(c)) return 'top';
    // The hull of the branches the condition can take.
    const hull = (x: Node, y: Node, op: Op): Node =>
      sel(not(cc.f), x, sel(not(cc.t), y, g.node(op, T, [x, y])));
    return { lo: hull(b.lo, c.lo, Op.MIN), hi: hull(b.hi, c.hi, Op.MAX) };
  }

  if ((n.op === Op.EQ || n.op === Op.NE) && n.src[0]?.dtype === 'bool') {
    if (!a || !b) return 'top';
    const [x, y] = [boolOf(g, a), boolOf(g, b)];
    const eq = { t: or(and(x.t, y.t), and(x.f, y.f)), f: or(and(x.t, y.f), and(x.f, y.t)) };
    return n.op === Op.EQ ? eq : { t: eq.f, f: eq.t };
  }

  // Everything below needs bounded numeric operands.
  if (!src.every((s) => s !== 'top')) return 'top';

  if (T === 'bool') {
    const [x, y] = src as NumRange[];
    if (!x || !y) return 'top';
    switch (n.op) {
      case Op.LT:
        return { t: cmp(Op.LT, x.lo, y.hi), f: cmp(Op.GE, x.hi, y.lo) };
      case Op.LE:
        return { t: cmp(Op.LE, x.lo, y.hi), f: cmp(Op.GT, x.hi, y.lo) };
      case Op.GT:
        return { t: cmp(Op.GT, x.hi, y.lo), f: cmp(Op.LE, x.lo, y.hi) };
      case Op.GE:
        return { t: cmp(Op.GE, x.hi, y.lo), f: cmp(Op.LT, x.lo, y.hi) };
      case Op.EQ:
      case Op.NE: {
        const overlap = and(cmp(Op.LE, x.lo, y.hi), cmp(Op.LE, y.lo, x.hi));
        const sameSingleton = and(
          and(cmp(Op.EQ, x.lo, x.hi), cmp(Op.EQ, y.lo, y.hi)),
          cmp(Op.EQ, x.lo, y.lo),
        );
        const eq = { t: overlap, f: not(sameSingleton) };
        return n.op === Op.EQ ? eq : { t: eq.f, f: eq.t };
      }
    }
    return 'top';
  }
  return numericRange(n, src as NumRange[], g);
}

function numericRange(n: Node, src: readonly NumRange[], g: Graph): Range {
  const T = n.dtype;
  const op2 = (op: Op, a: Node, b: Node): Node => g.node(op, T, [a, b]);
  const cmp = (op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, a.dtype, [c, a, b]);
  const zero = g.const(0, T);
  const [x, y] = src;
  if (!x) return 'top';
  switch (n.op) {
    case Op.ADD:
      return { lo: op2(Op.ADD, x.lo, y!.lo), hi: op2(Op.ADD, x.hi, y!.hi) };
    case Op.SUB:
      return { lo: op2(Op.SUB, x.lo, y!.hi), hi: op2(Op.SUB, x.hi, y!.lo) };
    case Op.NEG:
      return { lo: g.node(Op.NEG, T, [x.hi]), hi: g.node(Op.NEG, T, [x.lo]) };
    case Op.MUL: {
      const p = [
        op2(Op.MUL, x.lo, y!.lo),
        op2(Op.MUL, x.lo, y!.hi),
        op2(Op.MUL, x.hi, y!.lo),
        op2(Op.MUL, x.hi, y!.hi),
      ];
      const fold = (op: Op): Node => p.slice(1).reduce((acc, v) => op2(op, acc, v), p[0]!);
      return { lo: fold(Op.MIN), hi: fold(Op.MAX) };
    }
    case Op.MIN:
    case Op.MAX:
      return { lo: op2(n.op, x.lo, y!.lo), hi: op2(n.op, x.hi, y!.hi) };
    case Op.ABS: {
      const nonneg = cmp(Op.GE, x.lo, zero);
      const nonpos = cmp(Op.LE, x.hi, zero);
      const negLo = g.node(Op.NEG, T, [x.lo]);
      const negHi = g.node(Op.NEG, T, [x.hi]);
      return {
        lo: sel(nonneg, x.lo, sel(nonpos, negHi, zero)),
        hi: sel(nonneg, x.hi, sel(nonpos, negLo, op2(Op.MAX, negLo, x.hi))),
      };
    }
    case Op.DIV:
    case Op.MOD: {
      // Only a divisor that is one value per tile (const, param, size, b, h) is bounded.
      if (y!.lo !== y!.hi) return 'top';
      const d = y!.lo;
      const pos = cmp(Op.GT, d, zero);
      const neg = cmp(Op.LT, d, zero);
      if (n.op === Op.DIV) {
        if (T !== 'i32') return 'top';
        const [dl, dh] = [op2(Op.DIV, x.lo, d), op2(Op.DIV, x.hi, d)]; // floor division is monotone in x
        return { lo: sel(pos, dl, sel(neg, dh, zero)), hi: sel(pos, dh, sel(neg, dl, zero)) };
      }
      if (T !== 'i32') return 'top';
      // Floor mod: if lo and hi fall in the same period the range is [lo mod d, hi mod d]; else it
      // is the whole period: [0, d-1] for d > 0, [d+1, 0] for d < 0; x % 0 = 0.
      const one = g.const(1, 'i32');
      const samePeriod = cmp(Op.EQ, op2(Op.DIV, x.lo, d), op2(Op.DIV, x.hi, d));
      const [ml, mh] = [op2(Op.MOD, x.lo, d), op2(Op.MOD, x.hi, d)];
      return {
        lo: sel(samePeriod, ml, sel(pos, zero, sel(neg, op2(Op.ADD, d, one), zero))),
        hi: sel(samePeriod, mh, sel(pos, op2(Op.SUB, d, one), zero)),
      };
    }
    case Op.CAST:
      if (n.src[0]?.dtype === 'bool') return 'top';
      return { lo: g.node(Op.CAST, T, [x.lo]), hi: g.node(Op.CAST, T, [x.hi]) }; // monotone
    case Op.EXP:
    case Op.EXP2:
    case Op.LOG:
    case Op.LOG2:
    case Op.SQRT:
    case Op.TANH:
    case Op.FLOOR:
      return { lo: g.node(n.op, T, [x.lo]), hi: g.node(n.op, T, [x.hi]) }; // monotone increasing
  }
  return 'top';
}
