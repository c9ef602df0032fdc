// Interprets an AttentionDecl straight from the AST, giving the mask/score predicates of the
// dense reference. It is the oracle's half of the language semantics (docs/LANGUAGE.md), so it
// must not share code with src/ir: it models what a GPU computing in i32/f32 produces — wrapping
// int arithmetic, floor division/modulo, x/0 = 0, out-of-range lookups reading 0, and f32 results
// rounded with Math.fround — and infers types itself (the checker's map is only cross-checked).
// Split: ast-eval-types.ts (values, env, closure nodes), ast-eval-compile.ts (expressions),
// ast-eval-routing.ts (the routing spec); here the declaration is bound and its predicates built.
import type { AttentionDecl, DimRef, Expr } from '../dsl/ast.js';
import type { RefPredicates } from './reference.js';
import { asF32, compile, fail } from './ast-eval-compile.js';
import type {
  Ctx,
  EvalEnv,
  EvalOptions,
  EvalPoint,
  Fn,
  Frame,
  Node,
  NumFn,
  Value,
  ValueType,
} from './ast-eval-types.js';

export type { EvalEnv, EvalOptions, EvalPoint, Value, ValueType } from './ast-eval-types.js';
export { declRouting } from './ast-eval-routing.js';

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

export function compileBody(decl: AttentionDecl, env: EvalEnv, opts: EvalOptions): Compiled {
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
