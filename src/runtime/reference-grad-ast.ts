// The score expression of a declaration evaluated in float64 with dual numbers: its value and its
// partial derivatives with respect to the raw score, every f32 scalar param and every f32 tensor
// element it reads, by the chain rule applied to the AST. This is the gradient reference's half
// of the language: like ast-eval.ts it shares no code with src/ir, so the compiler's symbolic
// derivative (ir/derive.ts) is checked against an independent one. Ints follow the kernels'
// i32 semantics exactly (wrap, floor division/modulo, x/0 = 0, out-of-range lookups read 0);
// f32 arithmetic runs in float64 (smooth: finite differences of it stay meaningful), except
// where float64 would pick a different piece of a discontinuous function than f32 does: an int
// converted to f32 is rounded (float(q - k) near 2^31 is a multiple of 128), and f32 `%` rounds
// step by step as the kernels and the dense forward reference (ast-eval-compile.ts) compute it.
import type { AttentionDecl, Expr } from '../dsl/ast.js';
import { compareNumbers, isComparison } from '../dsl/builtins.js';
import type { EvalEnv } from './ast-eval.js';

/** Sparse partials: 'score', '$<param>', '<tensor>#<flat index>'. */
export type Partials = ReadonlyMap<string, number>;

type Val =
  | { readonly t: 'int'; readonly v: number }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'f32'; readonly v: number; readonly d: Partials };

export interface ScoreDual {
  readonly value: number;
  readonly partials: Partials;
}

const NONE: Partials = new Map();

function combine(a: Partials, ca: number, b: Partials, cb: number): Partials {
  if (a.size === 0 && b.size === 0) return NONE;
  const out = new Map<string, number>();
  for (const [k, x] of a) out.set(k, x * ca);
  for (const [k, x] of b) out.set(k, (out.get(k) ?? 0) + x * cb);
  return out;
}
const scaled = (a: Partials, c: number): Partials => combine(a, c, NONE, 0);
const f = (v: number, d: Partials = NONE): Val => ({ t: 'f32', v, d });
const int = (v: number): Val => ({ t: 'int', v: v | 0 });

function asF32(x: Val): { v: number; d: Partials } {
  if (x.t === 'f32') return x;
  if (x.t === 'int') return { v: Math.fround(x.v), d: NONE };
  throw new Error('reference-grad: a bool used as a number');
}
const asInt = (x: Val): number => {
  if (x.t !== 'int') throw new Error('reference-grad: expected an int');
  return x.v;
};
const asBool = (x: Val): boolean => {
  if (x.t !== 'bool') throw new Error('reference-grad: expected a bool');
  return x.v;
};

/** f32 → i32 as the kernels convert: toward zero, saturating, NaN → 0. */
function truncI32(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x) | 0;
}

const floorDiv = (a: number, b: number): number => (b === 0 ? 0 : Math.floor(a / b) | 0);
const floorMod = (a: number, b: number): number => (b === 0 || b === -1 ? 0 : a - Math.floor(a / b) * b) | 0;

function intArith(op: string, a: number, b: number): number {
  switch (op) {
    case '+':
      return (a + b) | 0;
    case '-':
      return (a - b) | 0;
    case '*':
      return Math.imul(a, b);
    case '/':
      return floorDiv(a, b);
    default:
      return floorMod(a, b);
  }
}

function f32Arith(op: string, a: { v: number; d: Partials }, b: { v: number; d: Partials }): Val {
  switch (op) {
    case '+':
      return f(a.v + b.v, combine(a.d, 1, b.d, 1));
    case '-':
      return f(a.v - b.v, combine(a.d, 1, b.d, -1));
    case '*':
      return f(a.v * b.v, combine(a.d, b.v, b.d, a.v));
    case '/':
      return f(a.v / b.v, combine(a.d, 1 / b.v, b.d, -a.v / (b.v * b.v)));
    default: {
      // Floor modulo as f32 steps (a − b·floor(a / b), each rounded): in float64 a large `a`
      // gives the true remainder, the kernels a value off by up to b·ulp(a / b).
      const fl = Math.floor(Math.fround(a.v / b.v));
      return f(Math.fround(a.v - Math.fround(b.v * fl)), combine(a.d, 1, b.d, -fl));
    }
  }
}

/** The point and bindings one evaluation sees. */
interface Scope {
  readonly env: EvalEnv;
  readonly names: Map<string, Val>;
  /** Element type of each tensor the decl declares. */
  readonly elems: ReadonlyMap<string, 'i32' | 'f32'>;
}

function binary(op: string, l: Val, r: Val): Val {
  if (op === '&&') return { t: 'bool', v: asBool(l) && asBool(r) };
  if (op === '||') return { t: 'bool', v: asBool(l) || asBool(r) };
  if (l.t === 'bool' || r.t === 'bool') {
    if (op === '==' || op === '!=') return { t: 'bool', v: compareNumbers(op, Number(l.v), Number(r.v)) };
    throw new Error(`reference-grad: \`${op}\` on a bool`);
  }
  const ints = l.t === 'int' && r.t === 'int';
  if (isComparison(op)) return { t: 'bool', v: compareNumbers(op, l.v, r.v) };
  return ints ? int(intArith(op, l.v, r.v)) : f32Arith(op, asF32(l), asF32(r));
}

function pick(cond: boolean, a: Val, b: Val): Val {
  if (a.t === 'f32' || b.t === 'f32') {
    const x = asF32(cond ? a : b);
    return f(x.v, x.d);
  }
  return cond ? a : b;
}

function minMax(isMin: boolean, a: Val, b: Val): Val {
  if (a.t === 'int' && b.t === 'int') return int(isMin ? Math.min(a.v, b.v) : Math.max(a.v, b.v));
  const x = asF32(a);
  const y = asF32(b);
  // Ties take the first operand (as ir/derive.ts's select(a <= b, ...) does; a measure-zero choice).
  return pick(isMin ? x.v <= y.v : x.v >= y.v, f(x.v, x.d), f(y.v, y.d));
}

const unaryMath: Record<string, (v: number) => [number, number]> = {
  exp: (v) => [Math.exp(v), Math.exp(v)],
  exp2: (v) => [2 ** v, 2 ** v * Math.LN2],
  log: (v) => [Math.log(v), 1 / v],
  log2: (v) => [Math.log2(v), 1 / (v * Math.LN2)],
  sqrt: (v) => [Math.sqrt(v), 0.5 / Math.sqrt(v)],
  tanh: (v) => [Math.tanh(v), 1 - Math.tanh(v) ** 2],
  floor: (v) => [Math.floor(v), 0],
};

function call(name: string, args: readonly Val[]): Val {
  const [a, b, c] = args as [Val, Val, Val];
  const math = unaryMath[name];
  if (math) {
    const x = asF32(a);
    const [v, slope] = math(x.v);
    return f(v, scaled(x.d, slope));
  }
  switch (name) {
    case 'float': {
      const x = asF32(a);
      return f(x.v, x.d);
    }
    case 'int':
      return a.t === 'f32' ? int(truncI32(a.v)) : int(Number(a.v));
    case 'abs':
      if (a.t === 'int') return int(Math.abs(a.v));
      return f(Math.abs(asF32(a).v), scaled(asF32(a).d, asF32(a).v < 0 ? -1 : 1));
    case 'min':
    case 'max':
      return minMax(name === 'min', a, b);
    case 'clamp':
      return minMax(true, minMax(false, a, b), c);
  }
  throw new Error(`reference-grad: unknown function ${name}`);
}

function lookup(s: Scope, e: Extract<Expr, { kind: 'index' }>): Val {
  const t = s.env.tensors[e.tensor];
  if (!t) throw new Error(`reference-grad: tensor '${e.tensor}' was not given`);
  const isInt = s.elems.get(e.tensor) !== 'f32';
  let flat = 0;
  for (let i = 0; i < t.shape.length; i++) {
    const x = asInt(evalExpr(s, e.indices[i]!));
    const n = t.shape[i]!;
    if (x < 0 || x >= n) return isInt ? int(0) : f(0); // reads 0, no gradient
    flat = flat * n + x;
  }
  if (isInt) return int(Number(t.data[flat]));
  return f(Number(t.data[flat]), new Map([[`${e.tensor}#${flat}`, 1]]));
}

function evalExpr(s: Scope, e: Expr): Val {
  switch (e.kind) {
    case 'num':
      return e.isFloat ? f(e.value) : int(e.value);
    case 'bool':
      return { t: 'bool', v: e.value };
    case 'name': {
      const v = s.names.get(e.name);
      if (v) return v;
      if (e.name === 'causal') return { t: 'bool', v: asInt(s.names.get('q')!) >= asInt(s.names.get('k')!) };
      throw new Error(`reference-grad: unknown name ${e.name}`);
    }
    case 'unary': {
      const x = evalExpr(s, e.operand);
      if (e.op === '!') return { t: 'bool', v: !asBool(x) };
      return x.t === 'int' ? int(-x.v) : f(-asF32(x).v, scaled(asF32(x).d, -1));
    }
    case 'binary':
      return binary(e.op, evalExpr(s, e.left), evalExpr(s, e.right));
    case 'ternary':
      return pick(asBool(evalExpr(s, e.cond)), evalExpr(s, e.then), evalExpr(s, e.otherwise));
    case 'call':
      return call(
        e.callee,
        e.args.map((a) => evalExpr(s, a)),
      );
    case 'index':
      return lookup(s, e);
  }
}

/** Which params are f32 (their partials are kept), and the decl's own scalars as values. */
function paramValues(decl: AttentionDecl, env: EvalEnv): Map<string, Val> {
  const out = new Map<string, Val>();
  for (const p of decl.params) {
    if (p.type.kind !== 'scalar') continue;
    const v = env.params[p.name];
    if (v === undefined) throw new Error(`reference-grad: param '${p.name}' was not given`);
    if (p.type.name === 'f32') out.set(p.name, f(Number(v), new Map([[`$${p.name}`, 1]])));
    else if (p.type.name === 'int') out.set(p.name, int(Number(v)));
    else out.set(p.name, { t: 'bool', v: Boolean(v) });
  }
  return out;
}

/**
 * score′ of `decl` and its partials at one pair, as a function for referenceGradients. The raw
 * score's partial is keyed 'score'; a decl without a score statement gives (s, {score: 1}).
 */
export function declScoreDual(
  decl: AttentionDecl,
  env: EvalEnv,
): (s: number, b: number, h: number, q: number, k: number) => ScoreDual {
  const params = paramValues(decl, env);
  const { B, H, Hkv, Nq, Nk, D } = env.sizes;
  const sizes: [string, number][] = Object.entries({ B, H, Hkv, Nq, Nk, D });
  const scoreStmt = decl.body.filter((st) => st.kind === 'score').at(-1);
  const elems = new Map<string, 'i32' | 'f32'>();
  for (const p of decl.params) if (p.type.kind === 'tensor') elems.set(p.name, p.type.elem);
  return (sc, b, h, q, k) => {
    const names = new Map<string, Val>(params);
    for (const [n, v] of sizes) names.set(n, int(v));
    for (const [n, v] of Object.entries({ b, h, q, k })) names.set(n, int(v));
    names.set('score', f(sc, new Map([['score', 1]])));
    const scope: Scope = { env, names, elems };
    // Lets in order (a later statement sees earlier lets); the last score statement is the score.
    for (const st of decl.body) if (st.kind === 'let') names.set(st.name, evalExpr(scope, st.expr));
    if (!scoreStmt) return { value: sc, partials: new Map([['score', 1]]) };
    const r = asF32(evalExpr(scope, scoreStmt.expr));
    return { value: r.v, partials: r.d };
  };
}
