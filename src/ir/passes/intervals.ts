// Symbolic interval analysis over one (q-tile, k-tile). Each numeric node gets bounds [lo, hi] as
// IR expressions of the tile-bound vars (q_lo q_hi k_lo k_hi), so one classifier serves every
// tile, offset and param value at run time; each bool node gets (canBeTrue, canBeFalse). b and h
// are single values per tile. Anything the analysis cannot bound is `top` — sound, just partial.
//
// Index arithmetic wraps at 32 bits and f32 has NaN, so bounds computed from the operands' bounds
// hold only if no value on the box wraps or is NaN. Each numeric range therefore carries `ok`, an
// IR predicate over the same tile vars that is true only when that holds (interval-arith.ts builds
// it from wrap-guards.ts); a bool derived from a range whose `ok` fails is "can be either" — the
// tile is partial, which is always sound. Offsets, params and tile corners are run-time values, so
// `ok` is decided per tile at run time, like the bounds themselves.
import type { Graph, Node } from '../graph.js';
import { Op } from '../ops.js';
import { numericRange } from './interval-arith.js';
import { wrapGuards } from './wrap-guards.js';

export interface NumRange {
  readonly lo: Node;
  readonly hi: Node;
  /** Every value of the expression on the box lies in [lo, hi] (no wrap, no NaN on the way). */
  readonly ok: Node;
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
  const w = wrapGuards(g);
  const { and, or, not } = w;
  const yes = g.const(true);
  const sel = (c: Node, a: Node, b: Node): Node => g.node(Op.SELECT, a.dtype, [c, a, b]);
  const point = (x: Node, ok: Node = yes): NumRange => ({ lo: x, hi: x, ok });
  const [a, b, c] = src;

  switch (n.op) {
    case Op.CONST:
      if (T === 'bool') return { t: g.const(n.arg === true), f: g.const(n.arg !== true) };
      return point(n, g.const(!Number.isNaN(Number(n.arg))));
    case Op.PARAM:
      if (T === 'bool') return { t: n, f: not(n) };
      // A NaN f32 param would make every comparison false; ±inf is excluded too, conservatively.
      return point(n, T === 'f32' ? w.finite(n) : yes);
    case Op.VAR:
      // Positions are inside int32 (validated at run time), so the tile corners are exact.
      if (n.arg === 'q') return { lo: g.var('q_lo'), hi: g.var('q_hi'), ok: yes };
      if (n.arg === 'k') return { lo: g.var('k_lo'), hi: g.var('k_hi'), ok: yes };
      if (n.arg === 'score') return 'top';
      return point(n); // b, h and sizes are single values per tile
    case Op.LOAD: {
      const idx = a;
      if (n.src.length !== 1 || !ctx.summarizable(String(n.arg)) || !idx || !isNum(idx)) return 'top';
      ctx.useSummary(String(n.arg));
      return {
        lo: g.node(Op.RANGE_MIN, 'i32', [idx.lo, idx.hi], n.arg),
        hi: g.node(Op.RANGE_MAX, 'i32', [idx.lo, idx.hi], n.arg),
        ok: idx.ok, // the summary covers the index range only if the index did not wrap
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
    // The hull of the branches the condition can take; a branch it cannot take need not be ok.
    const hull = (x: Node, y: Node, op: Op): Node =>
      sel(not(cc.f), x, sel(not(cc.t), y, g.node(op, T, [x, y])));
    return {
      lo: hull(b.lo, c.lo, Op.MIN),
      hi: hull(b.hi, c.hi, Op.MAX),
      ok: and(or(not(cc.t), b.ok), or(not(cc.f), c.ok)),
    };
  }

  if ((n.op === Op.EQ || n.op === Op.NE) && n.src[0]?.dtype === 'bool') {
    if (!a || !b) return 'top';
    const [x, y] = [boolOf(g, a), boolOf(g, b)];
    const eq = { t: or(and(x.t, y.t), and(x.f, y.f)), f: or(and(x.t, y.f), and(x.f, y.t)) };
    return n.op === Op.EQ ? eq : { t: eq.f, f: eq.t };
  }

  // Everything below needs bounded numeric operands.
  if (!src.every(isNum)) return 'top';
  if (T !== 'bool') return numericRange(n, src as NumRange[], g);
  const [x, y] = src as NumRange[];
  if (!x || !y) return 'top';
  const r = compareRange(g, n.op, x, y);
  if (!r) return 'top';
  // Where an operand may have wrapped (or be NaN), the comparison can come out either way.
  const unsure = not(and(x.ok, y.ok));
  return { t: or(unsure, r.t), f: or(unsure, r.f) };
}

/** Can `x op y` be true / false somewhere, for x in [x.lo, x.hi] and y in [y.lo, y.hi]. */
function compareRange(g: Graph, op: Op, x: NumRange, y: NumRange): BoolRange | undefined {
  const cmp = (o: Op, a: Node, b: Node): Node => g.node(o, 'bool', [a, b]);
  const { and, not } = wrapGuards(g);
  switch (op) {
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
      const sameSingleton = and(and(cmp(Op.EQ, x.lo, x.hi), cmp(Op.EQ, y.lo, y.hi)), cmp(Op.EQ, x.lo, y.lo));
      return op === Op.EQ ? { t: overlap, f: not(sameSingleton) } : { t: not(sameSingleton), f: overlap };
    }
  }
  return undefined;
}
