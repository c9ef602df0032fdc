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
import type { DType } from '../ops.js';
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
  // Made first whatever the op: the graph numbers nodes in creation order, and emitted code
  // follows that numbering.
  const yes = g.const(true);
  switch (n.op) {
    case Op.CONST:
    case Op.PARAM:
    case Op.VAR:
      return leafRange(n, g, yes);
    case Op.LOAD:
      return loadRange(n, src, ctx);
    case Op.NOT:
    case Op.AND:
    case Op.OR:
      return logicRange(n.op, src, g);
    case Op.SELECT:
      return selectRange(n.dtype, src, g);
  }
  if ((n.op === Op.EQ || n.op === Op.NE) && n.src[0]?.dtype === 'bool')
    return boolEqualityRange(n.op, src, g);
  return numericOrComparisonRange(n, src, g);
}

/** Constants, params and vars: one value per tile, except q and k, which span the tile. */
function leafRange(n: Node, g: Graph, yes: Node): Range {
  const T = n.dtype;
  const point = (x: Node, ok: Node = yes): NumRange => ({ lo: x, hi: x, ok });
  if (n.op === Op.CONST) {
    if (T === 'bool') return { t: g.const(n.arg === true), f: g.const(n.arg !== true) };
    return point(n, g.const(!Number.isNaN(Number(n.arg))));
  }
  if (n.op === Op.PARAM) {
    if (T === 'bool') return { t: n, f: wrapGuards(g).not(n) };
    // A NaN f32 param would make every comparison false; ±inf is excluded too, conservatively.
    return point(n, T === 'f32' ? wrapGuards(g).finite(n) : yes);
  }
  // Positions are inside int32 (validated at run time), so the tile corners are exact.
  if (n.arg === 'q') return { lo: g.var('q_lo'), hi: g.var('q_hi'), ok: yes };
  if (n.arg === 'k') return { lo: g.var('k_lo'), hi: g.var('k_hi'), ok: yes };
  if (n.arg === 'score') return 'top';
  return point(n); // b, h and sizes are single values per tile
}

/** A load from a summarisable 1-D tensor lies between the min and max over the index range. */
function loadRange(n: Node, src: readonly Range[], ctx: IntervalContext): Range {
  const [idx] = src;
  if (n.src.length !== 1 || !ctx.summarizable(String(n.arg)) || !idx || !isNum(idx)) return 'top';
  ctx.useSummary(String(n.arg));
  return {
    lo: ctx.g.node(Op.RANGE_MIN, 'i32', [idx.lo, idx.hi], n.arg),
    hi: ctx.g.node(Op.RANGE_MAX, 'i32', [idx.lo, idx.hi], n.arg),
    ok: idx.ok, // the summary covers the index range only if the index did not wrap
  };
}

/** not / and / or of (canBeTrue, canBeFalse) pairs; a top operand can be either. */
function logicRange(op: Op, src: readonly Range[], g: Graph): Range {
  const { and, or } = wrapGuards(g);
  const [a, b] = src;
  if (op === Op.NOT) return a && isBool(a) ? { t: a.f, f: a.t } : 'top';
  if (!a || !b) return 'top';
  if (op === Op.AND) return { t: and(boolOf(g, a).t, boolOf(g, b).t), f: or(boolOf(g, a).f, boolOf(g, b).f) };
  return { t: or(boolOf(g, a).t, boolOf(g, b).t), f: and(boolOf(g, a).f, boolOf(g, b).f) };
}

/** select(c, b, c'): the hull of the branches the condition can take. */
function selectRange(T: DType, src: readonly Range[], g: Graph): Range {
  const { and, or, not } = wrapGuards(g);
  const [a, b, c] = src;
  if (!a || !b || !c) return 'top';
  const cc = boolOf(g, a);
  if (T === 'bool') {
    const [x, y] = [boolOf(g, b), boolOf(g, c)];
    return { t: or(and(cc.t, x.t), and(cc.f, y.t)), f: or(and(cc.t, x.f), and(cc.f, y.f)) };
  }
  if (!isNum(b) || !isNum(c)) return 'top';
  const sel = (k: Node, x: Node, y: Node): Node => g.node(Op.SELECT, x.dtype, [k, x, y]);
  const hull = (x: Node, y: Node, op: Op): Node =>
    sel(not(cc.f), x, sel(not(cc.t), y, g.node(op, T, [x, y])));
  return {
    lo: hull(b.lo, c.lo, Op.MIN),
    hi: hull(b.hi, c.hi, Op.MAX),
    // A branch the condition cannot take need not be ok.
    ok: and(or(not(cc.t), b.ok), or(not(cc.f), c.ok)),
  };
}

/** bool == bool and bool != bool. */
function boolEqualityRange(op: Op, src: readonly Range[], g: Graph): Range {
  const { and, or } = wrapGuards(g);
  const [a, b] = src;
  if (!a || !b) return 'top';
  const [x, y] = [boolOf(g, a), boolOf(g, b)];
  const eq = { t: or(and(x.t, y.t), and(x.f, y.f)), f: or(and(x.t, y.f), and(x.f, y.t)) };
  return op === Op.EQ ? eq : { t: eq.f, f: eq.t };
}

/** Arithmetic on bounded operands (interval-arith.ts), or a comparison of two bounded operands. */
function numericOrComparisonRange(n: Node, src: readonly Range[], g: Graph): Range {
  if (!src.every(isNum)) return 'top';
  if (n.dtype !== 'bool') return numericRange(n, src as NumRange[], g);
  const [x, y] = src as NumRange[];
  if (!x || !y) return 'top';
  const r = compareRange(g, n.op, x, y);
  if (!r) return 'top';
  // Where an operand may have wrapped (or be NaN), the comparison can come out either way.
  const { and, or, not } = wrapGuards(g);
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
