// Interprets an AttentionDecl straight from the AST, giving the mask/score predicates of the
// dense reference. It is the oracle's half of the language semantics (docs/LANGUAGE.md), so it
// must not share code with src/ir: it models what a GPU computing in i32/f32 produces — wrapping
// int arithmetic, floor division/modulo, x/0 = 0, out-of-range lookups reading 0, and f32 results
// rounded with Math.fround — and infers types itself (the checker's map is only cross-checked).
import type { AttentionDecl, DimRef, Expr } from '../dsl/ast.js';
import type { RefPredicates } from './reference.js';
import type { RoutingSpec } from './reference-routing.js';

export type ValueType = 'int' | 'f32' | 'bool';
export type Value = number | boolean;

export interface EvalEnv {
  params: Record<string, number | boolean>;
  /** May hold tensors the decl does not declare (a test harness shares one set of buffers). */
  tensors: Record<string, { data: ArrayLike<number>; shape: number[] }>;
  sizes: { B: number; H: number; Hkv: number; Nq: number; Nk: number; D: number };
}

export interface EvalOptions {
  /** The checker's types; when given, every expression's inferred type is checked against it. */
  types?: ReadonlyMap<Expr, ValueType>;
}

/** A point of the iteration space: positions, not row indices. `score` only inside `score`. */
export interface EvalPoint {
  b: number;
  h: number;
  q: number;
  k: number;
  score?: number;
}

interface Frame {
  b: number;
  h: number;
  q: number;
  k: number;
  score: number;
  /** Bumped per predicate call; `let` values are memoized per generation. */
  gen: number;
}

type Fn = (f: Frame) => Value;
type NumFn = (f: Frame) => number;
interface Node {
  readonly type: ValueType;
  readonly fn: Fn;
  readonly usesScore: boolean;
}

interface TensorBinding {
  readonly dims: readonly number[];
  readonly read: (flat: number) => number;
  readonly type: 'int' | 'f32';
}

interface Ctx {
  readonly sizes: ReadonlyMap<string, number>;
  readonly scalars: Map<string, { type: ValueType; value: Value }>;
  readonly tensors: Map<string, TensorBinding>;
  readonly lets: Map<string, Node>;
  /** True while evaluating param defaults, where b/h/q/k/score do not exist. */
  readonly constOnly: boolean;
  readonly types: ReadonlyMap<Expr, ValueType> | undefined;
}

// ---- scalar operations, bit-exact to i32 / f32 hardware ----

type ArithOp = '+' | '-' | '*' | '/' | '%';
type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

const arithInt: Record<ArithOp, (a: number, b: number) => number> = {
  '+': (a, b) => (a + b) | 0,
  '-': (a, b) => (a - b) | 0,
  '*': Math.imul,
  // Floor division; a/b in float64 is exact enough for i32 operands that floor() is exact.
  // −2^31 / −1 wraps to −2^31.
  '/': (a, b) => (b === 0 ? 0 : Math.floor(a / b) | 0),
  // Floor modulo: the result takes the divisor's sign.
  '%': (a, b) => {
    if (b === 0) return 0;
    const r = a % b;
    return (r !== 0 && r < 0 !== b < 0 ? r + b : r) | 0;
  },
};

const arithF32: Record<ArithOp, (a: number, b: number) => number> = {
  '+': (a, b) => Math.fround(a + b),
  '-': (a, b) => Math.fround(a - b),
  '*': (a, b) => Math.fround(a * b),
  '/': (a, b) => Math.fround(a / b),
  // f32 `%` is floor modulo like int `%` (LANGUAGE.md), rounded step by step as a kernel
  // computing a - b * floor(a / b) in f32 does.
  '%': (a, b) => Math.fround(a - Math.fround(b * Math.floor(Math.fround(a / b)))),
};

const compare: Record<CmpOp, (a: number, b: number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

const mathFns: Record<string, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  exp2: (x) => 2 ** x,
  log2: Math.log2,
  sqrt: Math.sqrt,
  tanh: Math.tanh,
  floor: Math.floor,
};

/** f32 → i32 truncating toward zero; saturating, NaN → 0 (CUDA cvt.rzi, WGSL i32()). */
function f32ToInt(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x) | 0;
}

function where(e: Expr): string {
  return `${e.span.file}:${e.span.line}:${e.span.column}`;
}

function fail(e: Expr, msg: string): never {
  throw new Error(`ast-eval: ${where(e)}: ${msg}`);
}

function node(type: ValueType, fn: Fn, ...children: Node[]): Node {
  return { type, fn, usesScore: children.some((c) => c.usesScore) };
}

function konst(type: ValueType, value: Value): Node {
  return { type, fn: () => value, usesScore: false };
}

function asNum(n: Node, e: Expr): NumFn {
  if (n.type === 'bool') fail(e, 'expected a number, got bool');
  return n.fn as NumFn;
}

/** Int → f32 conversion as a GPU does it (round to nearest f32). */
function asF32(n: Node, e: Expr): NumFn {
  const fn = asNum(n, e);
  return n.type === 'int' ? (f) => Math.fround(fn(f)) : fn;
}

/** Promotes numeric operands to their common type: f32 if any is f32, else int. */
function promote(ns: Node[], e: Expr): { type: 'int' | 'f32'; fns: NumFn[] } {
  const type = ns.some((n) => n.type === 'f32') ? 'f32' : 'int';
  return { type, fns: ns.map((n) => (type === 'f32' ? asF32(n, e) : asNum(n, e))) };
}

function compile(e: Expr, c: Ctx): Node {
  const n = compileRaw(e, c);
  const declared = c.types?.get(e);
  if (declared !== undefined && declared !== n.type) {
    fail(e, `the checker types this ${declared}, the evaluator infers ${n.type}`);
  }
  return n;
}

function compileName(e: Expr & { kind: 'name' }, c: Ctx): Node {
  const name = e.name;
  const bound = c.lets.get(name);
  if (bound) return bound;
  const scalar = c.scalars.get(name);
  if (scalar) return konst(scalar.type, scalar.value);
  if (c.tensors.has(name)) fail(e, `tensor '${name}' used without an index`);
  const size = c.sizes.get(name);
  if (size !== undefined) return konst('int', size);
  const indexVar = name === 'b' || name === 'h' || name === 'q' || name === 'k';
  if (c.constOnly && (indexVar || name === 'score' || name === 'causal')) {
    fail(e, `'${name}' is not a constant`);
  }
  if (indexVar) return node('int', (f) => f[name]);
  if (name === 'causal') return node('bool', (f) => f.q >= f.k);
  if (name === 'score') return { type: 'f32', fn: (f) => f.score, usesScore: true };
  return fail(e, `unknown name '${name}'`);
}

function compileBinary(e: Expr & { kind: 'binary' }, c: Ctx): Node {
  const l = compile(e.left, c);
  const r = compile(e.right, c);
  const op = e.op;
  if (op === '&&' || op === '||') {
    if (l.type !== 'bool' || r.type !== 'bool') fail(e, `'${op}' takes two bools`);
    const lf = l.fn;
    const rf = r.fn;
    return op === '&&'
      ? node('bool', (f) => lf(f) && rf(f), l, r)
      : node('bool', (f) => lf(f) || rf(f), l, r);
  }
  if (op === '==' || op === '!=' || op === '<' || op === '<=' || op === '>' || op === '>=') {
    // LANGUAGE.md: comparisons take two numbers (bools compare with `&&`/`||`/`!`).
    if (l.type === 'bool' || r.type === 'bool') fail(e, `'${op}' takes two numbers`);
    const cmp = compare[op as CmpOp];
    const [lf, rf] = promote([l, r], e).fns as [NumFn, NumFn];
    return node('bool', (f) => cmp(lf(f), rf(f)), l, r);
  }
  const { type, fns } = promote([l, r], e);
  const [lf, rf] = fns as [NumFn, NumFn];
  const arith = (type === 'int' ? arithInt : arithF32)[op as ArithOp];
  return node(type, (f) => arith(lf(f), rf(f)), l, r);
}

function compileTernary(e: Expr & { kind: 'ternary' }, c: Ctx): Node {
  const cond = compile(e.cond, c);
  if (cond.type !== 'bool') fail(e, 'a ternary condition must be bool');
  const t = compile(e.then, c);
  const o = compile(e.otherwise, c);
  const cf = cond.fn;
  if (t.type === 'bool' || o.type === 'bool') {
    if (t.type !== o.type) fail(e, 'ternary branches have incompatible types');
    return node('bool', (f) => (cf(f) ? t.fn(f) : o.fn(f)), cond, t, o);
  }
  const { type, fns } = promote([t, o], e);
  const [tf, of] = fns as [NumFn, NumFn];
  return node(type, (f) => (cf(f) ? tf(f) : of(f)), cond, t, o);
}

const unaryFns = new Set(['exp', 'log', 'exp2', 'log2', 'sqrt', 'tanh', 'floor', 'abs', 'float', 'int']);

function arityOf(callee: string): number | undefined {
  if (unaryFns.has(callee)) return 1;
  if (callee === 'min' || callee === 'max') return 2;
  return callee === 'clamp' ? 3 : undefined;
}

function compileCall(e: Expr & { kind: 'call' }, c: Ctx): Node {
  const want = arityOf(e.callee);
  if (want === undefined) fail(e, `unknown function '${e.callee}'`);
  if (e.args.length !== want) fail(e, `'${e.callee}' takes ${want} argument(s), got ${e.args.length}`);
  const args = e.args.map((a) => compile(a, c));
  const a0 = args[0] as Node;
  const math = Object.hasOwn(mathFns, e.callee) ? mathFns[e.callee] : undefined;
  if (math) {
    const x = asF32(a0, e);
    return node('f32', (f) => Math.fround(math(x(f))), a0);
  }
  switch (e.callee) {
    case 'float':
      return node('f32', asF32(a0, e), a0);
    case 'int': {
      const x = asNum(a0, e);
      return a0.type === 'int' ? a0 : node('int', (f) => f32ToInt(x(f)), a0);
    }
    case 'abs': {
      const x = asNum(a0, e);
      // |−2^31| wraps back to −2^31 in i32, as on a GPU.
      return a0.type === 'int'
        ? node('int', (f) => Math.abs(x(f)) | 0, a0)
        : node('f32', (f) => Math.abs(x(f)), a0);
    }
    case 'min':
    case 'max': {
      const { type, fns } = promote(args, e);
      const [x, y] = fns as [NumFn, NumFn];
      const m = e.callee === 'min' ? Math.min : Math.max;
      return node(type, (f) => m(x(f), y(f)), ...args);
    }
    default: {
      // clamp(x, lo, hi) = min(max(x, lo), hi), as in WGSL; hi wins when lo > hi.
      const { type, fns } = promote(args, e);
      const [x, lo, hi] = fns as [NumFn, NumFn, NumFn];
      return node(type, (f) => Math.min(Math.max(x(f), lo(f)), hi(f)), ...args);
    }
  }
}

function compileIndex(e: Expr & { kind: 'index' }, c: Ctx): Node {
  const t = c.tensors.get(e.tensor);
  if (!t) fail(e, `unknown tensor '${e.tensor}'`);
  if (e.indices.length !== t.dims.length) {
    fail(e, `'${e.tensor}' has ${t.dims.length} dimension(s), indexed with ${e.indices.length}`);
  }
  const idx = e.indices.map((i) => compile(i, c));
  const fns = idx.map((n) => {
    if (n.type !== 'int') fail(e, `tensor indices must be int, got ${n.type}`);
    return n.fn as NumFn;
  });
  const { dims, read } = t;
  return node(
    t.type,
    (f) => {
      let flat = 0;
      for (let d = 0; d < fns.length; d++) {
        const i = (fns[d] as NumFn)(f);
        const dim = dims[d] as number;
        if (i < 0 || i >= dim) return 0;
        flat = flat * dim + i;
      }
      return read(flat);
    },
    ...idx,
  );
}

function compileRaw(e: Expr, c: Ctx): Node {
  switch (e.kind) {
    case 'num':
      return e.isFloat ? konst('f32', Math.fround(e.value)) : konst('int', e.value | 0);
    case 'bool':
      return konst('bool', e.value);
    case 'name':
      return compileName(e, c);
    case 'unary': {
      const x = compile(e.operand, c);
      if (e.op === '!') {
        if (x.type !== 'bool') fail(e, "'!' takes a bool");
        return node('bool', (f) => !x.fn(f), x);
      }
      const n = asNum(x, e);
      return x.type === 'int' ? node('int', (f) => -n(f) | 0, x) : node('f32', (f) => -n(f), x);
    }
    case 'binary':
      return compileBinary(e, c);
    case 'ternary':
      return compileTernary(e, c);
    case 'call':
      return compileCall(e, c);
    case 'index':
      return compileIndex(e, c);
  }
}

// ---- binding a declaration to an environment ----

function paramValue(name: string, type: ValueType, v: Value, from: string): Value {
  const bad = (): never => {
    throw new Error(`ast-eval: param '${name}' (${type}) ${from} ${JSON.stringify(v)}`);
  };
  if (type === 'bool') return typeof v === 'boolean' ? v : v !== 0;
  if (typeof v !== 'number') return bad();
  if (type === 'f32') return Math.fround(v);
  return Number.isInteger(v) ? v | 0 : bad();
}

function resolveDim(d: DimRef, c: Ctx, tensor: string): number {
  if (d.kind === 'literal') return d.value;
  if (d.kind === 'param') {
    const p = c.scalars.get(d.name);
    if (p?.type !== 'int')
      throw new Error(`ast-eval: tensor '${tensor}': dim '${d.name}' is not an int param`);
    return p.value as number;
  }
  const size = { kv: 'Nk', queries: 'Nq', heads: 'H', kv_heads: 'Hkv', batch: 'B' }[d.name];
  return c.sizes.get(size) as number;
}

/** Binds params (env value, else the evaluated default) and tensors; a Ctx for the body. */
function bindDecl(decl: AttentionDecl, env: EvalEnv, opts: EvalOptions): Ctx {
  const sizes = new Map(Object.entries(env.sizes));
  const declared = new Set(decl.params.map((p) => p.name));
  for (const name of Object.keys(env.params)) {
    if (!declared.has(name)) throw new Error(`ast-eval: '${decl.name}' has no param '${name}'`);
  }
  const scalars: Ctx['scalars'] = new Map();
  const tensors: Ctx['tensors'] = new Map();
  const base = { sizes, scalars, tensors, lets: new Map<string, Node>(), types: opts.types };
  const constCtx: Ctx = { ...base, constOnly: true };
  const frame: Frame = { b: 0, h: 0, q: 0, k: 0, score: Number.NaN, gen: 0 };
  for (const p of decl.params) {
    if (p.type.kind !== 'scalar') continue;
    const type = p.type.name;
    const given = env.params[p.name];
    if (given !== undefined) {
      scalars.set(p.name, { type, value: paramValue(p.name, type, given, 'was given') });
      continue;
    }
    if (!p.default) throw new Error(`ast-eval: param '${p.name}' has no default and was not given`);
    const def = compile(p.default, constCtx);
    if ((def.type === 'bool') !== (type === 'bool') || (def.type === 'f32' && type === 'int')) {
      throw new Error(`ast-eval: param '${p.name}' (${type}) has a ${def.type} default`);
    }
    scalars.set(p.name, { type, value: paramValue(p.name, type, def.fn(frame), 'has default') });
  }
  for (const p of decl.params) {
    if (p.type.kind !== 'tensor') continue;
    const dims = p.type.dims.map((d) => resolveDim(d, constCtx, p.name));
    const t = Object.hasOwn(env.tensors, p.name) ? env.tensors[p.name] : undefined;
    const want = `${p.type.elem}[${dims.join(', ')}]`;
    if (!t) throw new Error(`ast-eval: tensor '${p.name}' (${want}) was not given`);
    const size = dims.reduce((a, b) => a * b, 1);
    if (t.shape.length !== dims.length || t.shape.some((s, i) => s !== dims[i]) || t.data.length !== size) {
      throw new Error(
        `ast-eval: tensor '${p.name}' has shape [${t.shape.join(', ')}] and ${t.data.length} elements, expected ${want}`,
      );
    }
    const data = t.data;
    const read =
      p.type.elem === 'i32'
        ? (i: number) => (data[i] as number) | 0
        : (i: number) => Math.fround(data[i] as number);
    tensors.set(p.name, { dims, read, type: p.type.elem === 'i32' ? 'int' : 'f32' });
  }
  return { ...base, constOnly: false };
}

/** Memoizes a `let` per predicate call, so chains of lets stay linear in cost. */
function memoLet(n: Node): Node {
  let gen = -1;
  let value: Value = 0;
  const fn: Fn = (f) => {
    if (f.gen !== gen) {
      value = n.fn(f);
      gen = f.gen;
    }
    return value;
  };
  return { ...n, fn };
}

interface Compiled {
  ctx: Ctx;
  masks: Node[];
  score: NumFn | undefined;
}

function compileBody(decl: AttentionDecl, env: EvalEnv, opts: EvalOptions): Compiled {
  const ctx = bindDecl(decl, env, opts);
  const masks: Node[] = [];
  let score: NumFn | undefined;
  for (const st of decl.body) {
    const n = compile(st.expr, ctx);
    if (st.kind === 'let') {
      ctx.lets.set(st.name, memoLet(n));
    } else if (st.kind === 'mask') {
      if (n.type !== 'bool') fail(st.expr, `a mask must be bool, got ${n.type}`);
      if (n.usesScore) fail(st.expr, 'a mask may not use score');
      masks.push(n);
    } else {
      if (score) fail(st.expr, 'at most one score statement is allowed');
      score = asF32(n, st.expr);
    }
  }
  return { ctx, masks, score };
}

/**
 * The reference predicates of `decl` under `env`: the AND of all masks (true when none) and the
 * score expression (identity when none). Throws on ill-typed programs or a malformed env.
 */
export function declPredicates(
  decl: AttentionDecl,
  env: EvalEnv,
  opts: EvalOptions = {},
): Required<RefPredicates> {
  const { masks, score: scoreFn } = compileBody(decl, env, opts);
  const frame: Frame = { b: 0, h: 0, q: 0, k: 0, score: Number.NaN, gen: 0 };
  const maskFns = masks.map((m) => m.fn);
  const enter = (b: number, h: number, q: number, k: number, s: number): void => {
    frame.b = b;
    frame.h = h;
    frame.q = q;
    frame.k = k;
    frame.score = s;
    frame.gen++;
  };
  return {
    mask: (b, h, q, k) => {
      enter(b, h, q, k, Number.NaN);
      for (const m of maskFns) if (m(frame) !== true) return false;
      return true;
    },
    score: (s, b, h, q, k) => {
      if (!scoreFn) return s;
      enter(b, h, q, k, s);
      return scoreFn(frame);
    },
  };
}

/**
 * Evaluates one expression at one point, in the scope at the end of `decl`'s body (its params
 * and every `let`). For tests and the REPL.
 */
export function evalExpr(
  expr: Expr,
  env: EvalEnv,
  at: EvalPoint,
  decl?: AttentionDecl,
): { type: ValueType; value: Value } {
  const d: AttentionDecl = decl ?? { ...emptyDecl, span: expr.span, nameSpan: expr.span };
  const { ctx } = compileBody(d, env, {});
  const n = compile(expr, ctx);
  const frame: Frame = { ...at, score: at.score ?? Number.NaN, gen: 1 };
  return { type: n.type, value: n.fn(frame) };
}

const emptyDecl = { kind: 'attention', name: '<expr>', params: [], body: [], doc: '' } as const;

/**
 * The routing spec of `decl`'s `route`/`select`/`emit` statement under `env` (undefined when it
 * has none): counts evaluated like params, chunk ids and index tensors taken from `env.tensors`
 * (an index tensor's shape `[B, G, Nq, K]` gives its groups and capacity).
 */
export function declRouting(decl: AttentionDecl, env: EvalEnv): RoutingSpec | undefined {
  const s = decl.sparsity?.[0];
  if (s === undefined) return undefined;
  const { ctx } = compileBody(decl, env, {});
  const frame: Frame = { b: 0, h: 0, q: 0, k: 0, score: Number.NaN, gen: 1 };
  const int = (e: Expr): number => {
    const n = compile(e, ctx);
    if (n.type !== 'int') fail(e, `expected an int, got ${n.type}`);
    return n.fn(frame) as number;
  };
  const tensor = (name: string): { data: ArrayLike<number>; shape: number[] } => {
    const t = Object.hasOwn(env.tensors, name) ? env.tensors[name] : undefined;
    if (!t) throw new Error(`ast-eval: tensor '${name}' was not given`);
    return t;
  };
  const u = s.unit;
  const unit: RoutingSpec['unit'] =
    u?.kind === 'blocks'
      ? { kind: 'blocks', size: int(u.size) }
      : u?.kind === 'chunks'
        ? { kind: 'chunks', ids: tensor(u.tensor).data }
        : { kind: 'tokens' };
  const src = s.source;
  let source: RoutingSpec['source'];
  if (src.kind === 'topk') {
    source = { kind: 'topk', k: int(src.count), q: src.by.q.reducer, key: src.by.k.reducer };
  } else {
    const t = tensor(src.tensor);
    const [groups, capacity] = [t.shape[1], t.shape[3]];
    if (t.shape.length !== 4 || groups === undefined || capacity === undefined) {
      throw new Error(
        `ast-eval: index tensor '${src.tensor}' must be [B, G, Nq, K], got [${t.shape.join(', ')}]`,
      );
    }
    source = { kind: 'from', indices: t.data, groups, capacity };
  }
  const force = (kind: 'first' | 'local'): number => {
    const f = s.force.find((x) => x.kind === kind);
    return f ? int(f.count) : 0;
  };
  return {
    unit,
    source,
    ...(s.vote ? { vote: s.vote.over } : {}),
    first: force('first'),
    local: force('local'),
    restrict: s.kind !== 'emit',
  };
}
