// An interpreter of graph-IR expressions: constant folding, tile-classification tests and the
// `verify` pass's spot checks use it. It implements the same i32/f32 semantics the backends emit.
import type { Node } from './graph.js';
import { Op } from './ops.js';
import { f32, floorDiv, floorMod, i32, truncToI32 } from './semantics.js';

export type Value = number | boolean;

export interface InterpEnv {
  vars?: Readonly<Record<string, number>>;
  params?: Readonly<Record<string, Value>>;
  /** 1-D view of each tensor: the flat data plus its shape. */
  tensors?: Readonly<Record<string, { data: ArrayLike<number>; shape: readonly number[] }>>;
}

const num = (v: Value): number => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

function load(env: InterpEnv, name: string, idx: readonly number[]): number {
  const t = env.tensors?.[name];
  if (!t) throw new Error(`interp: no tensor "${name}"`);
  let flat = 0;
  for (let d = 0; d < t.shape.length; d++) {
    const i = idx[d] ?? 0;
    const n = t.shape[d] ?? 0;
    if (i < 0 || i >= n) return 0; // out-of-range lookups read 0
    flat = flat * n + i;
  }
  return t.data[flat] ?? 0;
}

function rangeReduce(env: InterpEnv, name: string, lo: number, hi: number, pick: typeof Math.min): number {
  const t = env.tensors?.[name];
  if (!t) throw new Error(`interp: no tensor "${name}"`);
  const n = t.shape[0] ?? 0;
  let acc = pick(Infinity, -Infinity) === Infinity ? -Infinity : Infinity;
  if (lo < 0 || hi >= n) acc = pick(acc, 0);
  for (let i = Math.max(lo, 0); i <= Math.min(hi, n - 1); i++) acc = pick(acc, t.data[i] ?? 0);
  return acc;
}

/** Evaluates a single op on already-evaluated operands. Exported for constant folding. */
export function applyOp(n: Node, a: readonly Value[]): Value {
  const [x = 0, y = 0, z = 0] = a;
  // Each family answers undefined for ops outside it; false is a value, so `??` is safe here.
  const v = arithmetic(n, num(x), num(y)) ?? comparison(n, x, y) ?? logic(n.op, x, y, z) ?? elementary(n, x);
  if (v === undefined) throw new Error(`applyOp: ${n.op} is not a pure scalar op`);
  return v;
}

/** + − × ÷ mod, negation, min, max, |x|: i32 results wrap as int32, f32 results round to f32. */
function arithmetic(n: Node, x: number, y: number): number | undefined {
  const isInt = n.dtype === 'i32';
  const wrap = (v: number): number => (isInt ? i32(v) : f32(v));
  switch (n.op) {
    case Op.ADD:
      return wrap(x + y);
    case Op.SUB:
      return wrap(x - y);
    case Op.MUL:
      return isInt ? Math.imul(x, y) : f32(x * y);
    case Op.DIV:
      return isInt ? floorDiv(x, y) : f32(x / y);
    case Op.MOD:
      return isInt ? floorMod(x, y) : f32(x - f32(y * Math.floor(f32(x / y))));
    case Op.NEG:
      return wrap(-x);
    case Op.MIN:
      return Math.min(x, y);
    case Op.MAX:
      return Math.max(x, y);
    case Op.ABS:
      return wrap(Math.abs(x));
  }
  return undefined;
}

/** Orderings compare as numbers; == and != compare bools as bools. */
function comparison(n: Node, x: Value, y: Value): boolean | undefined {
  const numeric = n.src[0]?.dtype === 'i32' || n.src[0]?.dtype === 'f32';
  switch (n.op) {
    case Op.LT:
      return num(x) < num(y);
    case Op.LE:
      return num(x) <= num(y);
    case Op.GT:
      return num(x) > num(y);
    case Op.GE:
      return num(x) >= num(y);
    case Op.EQ:
      return numeric ? num(x) === num(y) : x === y;
    case Op.NE:
      return numeric ? num(x) !== num(y) : x !== y;
  }
  return undefined;
}

function logic(op: Op, x: Value, y: Value, z: Value): Value | undefined {
  switch (op) {
    case Op.AND:
      return Boolean(x) && Boolean(y);
    case Op.OR:
      return Boolean(x) || Boolean(y);
    case Op.NOT:
      return !x;
    case Op.SELECT:
      return x ? y : z;
  }
  return undefined;
}

/** f32 functions of one operand, rounded to f32 as the backends' f32 math is. */
const F32_FUNCTIONS: ReadonlyMap<Op, (x: number) => number> = new Map<Op, (x: number) => number>([
  [Op.EXP, Math.exp],
  [Op.LOG, Math.log],
  [Op.EXP2, (x) => 2 ** x],
  [Op.LOG2, Math.log2],
  [Op.SQRT, Math.sqrt],
  [Op.TANH, Math.tanh],
  [Op.FLOOR, Math.floor],
]);

/** Elementary f32 functions, the finiteness test and casts. */
function elementary(n: Node, x: Value): Value | undefined {
  const f = F32_FUNCTIONS.get(n.op);
  if (f) return f32(f(num(x)));
  if (n.op === Op.IS_FINITE) return Number.isFinite(num(x));
  if (n.op !== Op.CAST) return undefined;
  // bool → int is 0/1; f32 → int truncates and saturates as the backends do.
  if (n.dtype === 'i32') return n.src[0]?.dtype === 'bool' ? num(x) : truncToI32(num(x));
  if (n.dtype === 'f32') return f32(num(x));
  return Boolean(x);
}

/** Evaluates `root` in `env`. Memoised per call, so shared subexpressions evaluate once. */
export function evaluate(root: Node, env: InterpEnv, memo = new Map<number, Value>()): Value {
  const hit = memo.get(root.id);
  if (hit !== undefined) return hit;
  let v: Value;
  switch (root.op) {
    case Op.CONST:
      v = root.arg as Value;
      break;
    case Op.VAR: {
      const x = env.vars?.[root.arg as string];
      if (x === undefined) throw new Error(`interp: unbound var ${String(root.arg)}`);
      v = x;
      break;
    }
    case Op.PARAM: {
      const x = env.params?.[root.arg as string];
      if (x === undefined) throw new Error(`interp: unbound param ${String(root.arg)}`);
      v = root.dtype === 'i32' ? i32(num(x)) : root.dtype === 'f32' ? f32(num(x)) : Boolean(x);
      break;
    }
    case Op.LOAD:
      v = load(
        env,
        root.arg as string,
        root.src.map((s) => num(evaluate(s, env, memo))),
      );
      break;
    case Op.RANGE_MIN:
    case Op.RANGE_MAX: {
      const [lo, hi] = root.src.map((s) => num(evaluate(s, env, memo)));
      v = rangeReduce(
        env,
        root.arg as string,
        lo ?? 0,
        hi ?? 0,
        root.op === Op.RANGE_MIN ? Math.min : Math.max,
      );
      break;
    }
    default:
      v = applyOp(
        root,
        root.src.map((s) => evaluate(s, env, memo)),
      );
  }
  memo.set(root.id, v);
  return v;
}
