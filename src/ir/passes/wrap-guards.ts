// Guards for interval analysis under int32 wrap and IEEE f32: IR predicates that say whether an
// operation on given operands can leave the range the analysis assumes — an i32 result that wraps,
// or an f32 value that is NaN (NaN compares false both ways, so no interval holds it). The analysis
// answers "partial" wherever a guard may fail; everything here is built so that the decision itself
// never depends on a wrapped value: `MAX - b` is only consulted when b > 0, and so on (the unused
// side of an `&&` may wrap on a backend, harmlessly — every backend wraps the same way).
import type { Graph, Node } from '../graph.js';
import { Op } from '../ops.js';

export const I32_MAX = 2147483647;
export const I32_MIN = -2147483648;

export interface WrapGuards {
  /** a + b leaves the i32 range (as integers). */
  addOverflows(a: Node, b: Node): Node;
  /** a - b leaves the i32 range. */
  subOverflows(a: Node, b: Node): Node;
  /** a · b leaves the i32 range. */
  mulOverflows(a: Node, b: Node): Node;
  /** a == i32 min: −a, |a| and a / −1 wrap. */
  isMin(a: Node): Node;
  /** An f32 that is neither NaN nor ±inf. */
  finite(x: Node): Node;
  and(a: Node, b: Node): Node;
  or(a: Node, b: Node): Node;
  not(a: Node): Node;
}

export function wrapGuards(g: Graph): WrapGuards {
  const i = (v: number): Node => g.const(v, 'i32');
  const arith = (op: Op, a: Node, b: Node): Node => g.node(op, 'i32', [a, b]);
  const cmp = (op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
  const and = (a: Node, b: Node): Node => g.node(Op.AND, 'bool', [a, b]);
  const or = (a: Node, b: Node): Node => g.node(Op.OR, 'bool', [a, b]);
  const not = (a: Node): Node => g.node(Op.NOT, 'bool', [a]);
  const div = (a: Node, b: Node): Node => arith(Op.DIV, a, b); // floor division
  const neg = (a: Node): Node => g.node(Op.NEG, 'i32', [a]);
  const gt = (a: Node, b: Node): Node => cmp(Op.GT, a, b);
  const lt = (a: Node, b: Node): Node => cmp(Op.LT, a, b);
  const any = (...xs: Node[]): Node => xs.reduce((acc, x) => or(acc, x));
  const all = (...xs: Node[]): Node => xs.reduce((acc, x) => and(acc, x));

  return {
    // a + b > MAX ⟺ a > MAX − b (b > 0);  a + b < MIN ⟺ a < MIN − b (b < 0).
    addOverflows: (a, b) =>
      any(
        all(gt(b, i(0)), gt(a, arith(Op.SUB, i(I32_MAX), b))),
        all(lt(b, i(0)), lt(a, arith(Op.SUB, i(I32_MIN), b))),
      ),
    // a − b > MAX ⟺ a > MAX + b (b < 0);  a − b < MIN ⟺ a < MIN + b (b > 0).
    subOverflows: (a, b) =>
      any(
        all(lt(b, i(0)), gt(a, arith(Op.ADD, i(I32_MAX), b))),
        all(gt(b, i(0)), lt(a, arith(Op.ADD, i(I32_MIN), b))),
      ),
    // By signs, with floor division and, for an integer a and a real r, a > r ⟺ a > ⌊r⌋ and
    // a < r ⟺ a < ⌈r⌉ = −⌊−r⌋. The divisor is b wherever it can be, so a constant b folds each
    // case to one comparison of a. Factors ±1 never overflow except −1 · MIN (last case).
    mulOverflows: (a, b) =>
      any(
        // a, b > 0: ab > MAX ⟺ a > ⌊MAX / b⌋.
        all(gt(a, i(0)), gt(b, i(0)), gt(a, div(i(I32_MAX), b))),
        // a > 0, b < −1: ab < MIN ⟺ a > MIN / b ⟺ a > ⌊MIN / b⌋ (≤ 2^30, no wrap).
        all(gt(a, i(0)), lt(b, i(-1)), gt(a, div(i(I32_MIN), b))),
        // a < 0, b > 1: ab < MIN ⟺ a < MIN / b ⟺ a < −⌊MIN / −b⌋.
        all(lt(a, i(0)), gt(b, i(1)), lt(a, neg(div(i(I32_MIN), neg(b))))),
        // a, b < 0: ab > MAX ⟺ a < MAX / b ⟺ a < −⌊−MAX / b⌋ (−MAX = MIN + 1, no wrap).
        all(lt(a, i(0)), lt(b, i(0)), lt(a, neg(div(i(-I32_MAX), b)))),
      ),
    isMin: (a) => cmp(Op.EQ, a, i(I32_MIN)),
    finite: (x) => g.node(Op.IS_FINITE, 'bool', [x]),
    and,
    or,
    not,
  };
}
