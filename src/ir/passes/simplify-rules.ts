// Algebraic simplification rules for the graph IR, as data. Order matters only for speed: the
// constant folder runs first so later rules see folded operands.
import type { Node } from '../graph.js';
import { applyOp } from '../interp.js';
import { Op } from '../ops.js';
import { C, P, X, rule, type Rule } from '../pattern.js';

const foldable = (n: Node): boolean =>
  n.src.length > 0 &&
  n.src.every((s) => s.op === Op.CONST) &&
  n.op !== Op.LOAD &&
  n.op !== Op.RANGE_MIN &&
  n.op !== Op.RANGE_MAX;

const isInt = (n: Node): boolean => n.dtype === 'i32';
const isNegZero = (n: Node): boolean => Object.is(n.arg, -0);
const isPosition = (n: Node): boolean => n.op === Op.VAR && (n.arg === 'q' || n.arg === 'k');

export const simplifyRules: readonly Rule[] = [
  rule('constant fold', X('x', foldable), ({ x }, g) => {
    const v = applyOp(
      x!,
      x!.src.map((s) => s.arg as number | boolean),
    );
    // Non-finite f32 results fold too: the renderers spell them as bit patterns (a WGSL
    // const-expression that overflows or divides by zero is a shader-creation error).
    return g.const(v, x!.dtype);
  }),
  // Identities. In f32, x + 0.0 is +0.0 for x = -0.0, so only x + -0.0 and x - 0.0 are x.
  rule('x + 0', P(Op.ADD, X('x'), C('c', 0)), ({ x, c }) => (isInt(x!) || isNegZero(c!) ? x : undefined)),
  rule('0 + x', P(Op.ADD, C('c', 0), X('x')), ({ x, c }) => (isInt(x!) || isNegZero(c!) ? x : undefined)),
  rule('x - 0', P(Op.SUB, X('x'), C('c', 0)), ({ x, c }) => (isInt(x!) || !isNegZero(c!) ? x : undefined)),
  rule('x - x (int)', P(Op.SUB, X('x', isInt), X('x')), (_, g) => g.const(0, 'i32')),
  rule('x * 1', P(Op.MUL, X('x'), C('c', 1)), ({ x }) => x),
  rule('1 * x', P(Op.MUL, C('c', 1), X('x')), ({ x }) => x),
  rule('x * 0 (int)', P(Op.MUL, X('x', isInt), C('c', 0)), (_, g) => g.const(0, 'i32')),
  rule('x / 1', P(Op.DIV, X('x'), C('c', 1)), ({ x }) => x),
  rule('--x', P(Op.NEG, P(Op.NEG, X('x'))), ({ x }) => x),
  rule('min(x, x)', P([Op.MIN, Op.MAX], X('x'), X('x')), ({ x }) => x),
  // Reassociate constants so interval analysis sees `x + c` with a single c. Ints only: wrapping
  // addition is associative, f32 addition is not ((score + 1e8) - 1e8 rounds score to a multiple
  // of 8; score + (1e8 - 1e8) does not).
  rule('(x + c1) + c2', P(Op.ADD, P(Op.ADD, X('x', isInt), C('a')), C('b')), ({ x, a, b }, g, n) =>
    g.node(Op.ADD, n.dtype, [x!, g.node(Op.ADD, n.dtype, [a!, b!])]),
  ),
  rule(
    'c + x → x + c',
    P(
      Op.ADD,
      C('c'),
      X('x', (n) => n.op !== Op.CONST),
    ),
    ({ c, x }, g, n) => g.node(Op.ADD, n.dtype, [x!, c!]),
  ),
  // Dilation: (q - k) % d == 0  ⟺  q % d == k % d for floor modulo (and both are true for d = 0),
  // as long as q - k does not wrap — which is why only the positions themselves qualify: q - k
  // fits in int32 by the position contract (docs/LANGUAGE.md), an arbitrary a - b need not. The right side
  // splits into a per-row and a per-key value that `fuse` hoists out of the inner loop, instead of
  // a floor modulo per (row, key) pair.
  rule(
    '(q - k) % d == 0 → q % d == k % d',
    P([Op.EQ, Op.NE], P(Op.MOD, P(Op.SUB, X('a', isPosition), X('b', isPosition)), X('d')), C('z', 0)),
    ({ a, b, d }, g, n) =>
      g.node(n.op, 'bool', [g.node(Op.MOD, 'i32', [a!, d!]), g.node(Op.MOD, 'i32', [b!, d!])]),
  ),
  // An int converted to f32 is at most 2^31 in magnitude: finite (interval guards ask).
  rule('is_finite(float(int))', P(Op.IS_FINITE, P(Op.CAST, X('x', isInt))), (_, g) => g.const(true)),
  // Logic.
  rule('!!x', P(Op.NOT, P(Op.NOT, X('x'))), ({ x }) => x),
  rule('true && x', P(Op.AND, C('c', true), X('x')), ({ x }) => x),
  rule('x && true', P(Op.AND, X('x'), C('c', true)), ({ x }) => x),
  rule('false && x', P(Op.AND, C('c', false), X('x')), ({ c }) => c),
  rule('x && false', P(Op.AND, X('x'), C('c', false)), ({ c }) => c),
  rule('x && x', P([Op.AND, Op.OR], X('x'), X('x')), ({ x }) => x),
  rule('false || x', P(Op.OR, C('c', false), X('x')), ({ x }) => x),
  rule('x || false', P(Op.OR, X('x'), C('c', false)), ({ x }) => x),
  rule('true || x', P(Op.OR, C('c', true), X('x')), ({ c }) => c),
  rule('x || true', P(Op.OR, X('x'), C('c', true)), ({ c }) => c),
  rule('!(a < b) → a >= b (int)', P(Op.NOT, P(Op.LT, X('a', isInt), X('b'))), ({ a, b }, g) =>
    g.node(Op.GE, 'bool', [a!, b!]),
  ),
  rule('!(a >= b) → a < b (int)', P(Op.NOT, P(Op.GE, X('a', isInt), X('b'))), ({ a, b }, g) =>
    g.node(Op.LT, 'bool', [a!, b!]),
  ),
  rule('x == x (int)', P([Op.EQ, Op.LE, Op.GE], X('x', isInt), X('x')), (_, g) => g.const(true)),
  rule('x < x (int)', P([Op.NE, Op.LT, Op.GT], X('x', isInt), X('x')), (_, g) => g.const(false)),
  // Select.
  rule('select(true, a, b)', P(Op.SELECT, C('c', true), X('a'), X('b')), ({ a }) => a),
  rule('select(false, a, b)', P(Op.SELECT, C('c', false), X('a'), X('b')), ({ b }) => b),
  rule('select(c, a, a)', P(Op.SELECT, X('c'), X('a'), X('a')), ({ a }) => a),
  rule('select(c, true, false)', P(Op.SELECT, X('c'), C('t', true), C('f', false)), ({ c }) => c),
];
