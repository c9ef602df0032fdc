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
  const isInt = n.dtype === 'i32';
  const wrap = (v: number): number => (isInt ? i32(v) : f32(v));
  const operandInt = n.src[0]?.dtype === 'i32';
  switch (n.op) {
    case Op.ADD:
      return wrap(num(x) + num(y));
    case Op.SUB:
      return wrap(num(x) - num(y));
    case Op.MUL:
      return isInt ? Math.imul(num(x), num(y)) : f32(num(x) * num(y));
    case Op.DIV:
      return isInt ? floorDiv(num(x), num(y)) : f32(num(x) / num(y));
    case Op.MOD:
      return isInt ? floorMod(num(x), num(y)) : f32(num(x) - f32(num(y) * Math.floor(f32(num(x) / num(y)))));
    case Op.NEG:
      return wrap(-num(x));
    case Op.MIN:
      return Math.min(num(x), num(y));
    case Op.MAX:
      return Math.max(num(x), num(y));
    case Op.ABS:
      return wrap(Math.abs(num(x)));
    case Op.LT:
      return num(x) < num(y);
    case Op.LE:
      return num(x) <= num(y);
    case Op.GT:
      return num(x) > num(y);
    case Op.GE:
      return num(x) >= num(y);
    case Op.EQ:
      return operandInt || n.src[0]?.dtype === 'f32' ? num(x) === num(y) : x === y;
    case Op.NE:
      return operandInt || n.src[0]?.dtype === 'f32' ? num(x) !== num(y) : x !== y;
    case Op.AND:
      return Boolean(x) && Boolean(y);
    case Op.OR:
      return Boolean(x) || Boolean(y);
    case Op.NOT:
      return !x;
    case Op.SELECT:
      return x ? y : z;
    case Op.EXP:
      return f32(Math.exp(num(x)));
    case Op.LOG:
      return f32(Math.log(num(x)));
    case Op.EXP2:
      return f32(2 ** num(x));
    case Op.LOG2:
      return f32(Math.log2(num(x)));
    case Op.SQRT:
      return f32(Math.sqrt(num(x)));
    case Op.TANH:
      return f32(Math.tanh(num(x)));
    case Op.FLOOR:
      return f32(Math.floor(num(x)));
    case Op.IS_FINITE:
      return Number.isFinite(num(x));
    case Op.CAST:
      if (n.dtype === 'i32') return n.src[0]?.dtype === 'bool' ? num(x) : truncToI32(num(x));
      if (n.dtype === 'f32') return f32(num(x));
      return Boolean(x);
    default:
      throw new Error(`applyOp: ${n.op} is not a pure scalar op`);
  }
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
