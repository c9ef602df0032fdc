// Lowering: a checked AST declaration → graph IR (AttentionIR). Types are re-derived from the
// IR builder's dtypes (int→i32, f32, bool) with the language's promotion rule (an int meeting an
// f32 is cast); the checker has already rejected ill-typed programs, so mismatches here are bugs.
import type { AttentionDecl, BinaryOp, DimRef, Expr, SelectionUnit } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';
import { Graph, type Node } from './graph.js';
import { uniformFormats, type TensorFormats } from './formats.js';
import { qkInt8Of, type QkInt8 } from './int8qk.js';
import { pvE4m3Of, type PvE4m3 } from './pv-e4m3.js';
import type { ParamSlot, ShapeDim, TensorSlot } from './kernel.js';
import { Op, type DType, type VarName } from './ops.js';
import type { AttentionIR } from './program.js';
import type { FromSource, RoutingPlan, RoutingUnit } from './routing.js';
import { simplifyExpr } from './passes/simplify.js';

const indexVars: Readonly<Record<string, VarName>> = {
  b: 'b',
  h: 'h',
  q: 'q',
  k: 'k',
  B: 'B',
  H: 'H',
  Hkv: 'Hkv',
  Nq: 'Nq',
  Nk: 'Nk',
  D: 'D',
};

const binaryOps: Readonly<Record<BinaryOp, Op>> = {
  '+': Op.ADD,
  '-': Op.SUB,
  '*': Op.MUL,
  '/': Op.DIV,
  '%': Op.MOD,
  '<': Op.LT,
  '<=': Op.LE,
  '>': Op.GT,
  '>=': Op.GE,
  '==': Op.EQ,
  '!=': Op.NE,
  '&&': Op.AND,
  '||': Op.OR,
};

const floatFunctions: Readonly<Record<string, Op>> = {
  exp: Op.EXP,
  log: Op.LOG,
  exp2: Op.EXP2,
  log2: Op.LOG2,
  sqrt: Op.SQRT,
  tanh: Op.TANH,
  floor: Op.FLOOR,
};

const sizeDims: Readonly<Record<string, 'Nk' | 'Nq' | 'H' | 'Hkv' | 'B'>> = {
  kv: 'Nk',
  queries: 'Nq',
  heads: 'H',
  kv_heads: 'Hkv',
  batch: 'B',
};

function shapeDim(d: DimRef): ShapeDim {
  if (d.kind === 'literal') return { kind: 'literal', value: d.value };
  if (d.kind === 'param') return { kind: 'param', name: d.name };
  return { kind: 'size', name: sizeDims[d.name]! };
}

class Lowerer {
  readonly g = new Graph();
  readonly scope = new Map<string, Node>();
  readonly tensors = new Map<string, TensorSlot>();

  cast(n: Node, to: DType): Node {
    return n.dtype === to ? n : this.g.node(Op.CAST, to, [n], null, n.span);
  }

  /** Numeric promotion: if either side is f32, both become f32. */
  promote(a: Node, b: Node): [Node, Node] {
    if (a.dtype === 'f32' || b.dtype === 'f32') return [this.cast(a, 'f32'), this.cast(b, 'f32')];
    return [a, b];
  }

  expr(e: Expr, inScore: boolean): Node {
    const g = this.g;
    switch (e.kind) {
      case 'num':
        return g.node(
          Op.CONST,
          e.isFloat ? 'f32' : 'i32',
          [],
          e.isFloat ? Math.fround(e.value) : e.value | 0,
          e.span,
        );
      case 'bool':
        return g.node(Op.CONST, 'bool', [], e.value, e.span);
      case 'name':
        return this.name(e.name, e.span, inScore);
      case 'unary': {
        const x = this.expr(e.operand, inScore);
        return e.op === '!'
          ? g.node(Op.NOT, 'bool', [x], null, e.span)
          : g.node(Op.NEG, x.dtype, [x], null, e.span);
      }
      case 'binary': {
        const op = binaryOps[e.op];
        const l = this.expr(e.left, inScore);
        const r = this.expr(e.right, inScore);
        if (op === Op.AND || op === Op.OR) return g.node(op, 'bool', [l, r], null, e.span);
        const [a, b] = this.promote(l, r);
        const isCompare =
          op === Op.LT || op === Op.LE || op === Op.GT || op === Op.GE || op === Op.EQ || op === Op.NE;
        return g.node(op, isCompare ? 'bool' : a.dtype, [a, b], null, e.span);
      }
      case 'ternary': {
        const c = this.expr(e.cond, inScore);
        const [a, b] = this.promote(this.expr(e.then, inScore), this.expr(e.otherwise, inScore));
        return g.node(Op.SELECT, a.dtype, [c, a, b], null, e.span);
      }
      case 'call':
        return this.call(
          e.callee,
          e.args.map((a) => this.expr(a, inScore)),
          e.span,
        );
      case 'index': {
        const t = this.tensors.get(e.tensor);
        if (!t) throw new Error(`internal: unknown tensor ${e.tensor}`);
        const idx = e.indices.map((i) => this.cast(this.expr(i, inScore), 'i32'));
        return g.node(Op.LOAD, t.dtype, idx, e.tensor, e.span);
      }
    }
  }

  name(name: string, span: Span, inScore: boolean): Node {
    const g = this.g;
    const bound = this.scope.get(name);
    if (bound) return bound;
    if (name === 'causal') return g.node(Op.GE, 'bool', [g.var('q'), g.var('k')], null, span);
    if (name === 'score') {
      if (!inScore) throw new Error('internal: `score` outside a score expression');
      return g.var('score');
    }
    const v = indexVars[name];
    if (v) return g.var(v);
    throw new Error(`internal: unknown name ${name}`);
  }

  call(callee: string, args: readonly Node[], span: Span): Node {
    const g = this.g;
    const [x, y, z] = args;
    if (!x) throw new Error(`internal: ${callee}() without arguments`);
    const fop = floatFunctions[callee];
    if (fop) return g.node(fop, 'f32', [this.cast(x, 'f32')], null, span);
    switch (callee) {
      case 'float':
        return this.cast(x, 'f32');
      case 'int':
        return this.cast(x, 'i32');
      case 'abs':
        return g.node(Op.ABS, x.dtype, [x], null, span);
      case 'min':
      case 'max': {
        const [a, b] = this.promote(x, y!);
        return g.node(callee === 'min' ? Op.MIN : Op.MAX, a.dtype, [a, b], null, span);
      }
      case 'clamp': {
        const t: DType = [x, y!, z!].some((n) => n.dtype === 'f32') ? 'f32' : 'i32';
        const [a, lo, hi] = [this.cast(x, t), this.cast(y!, t), this.cast(z!, t)];
        return g.node(Op.MIN, t, [g.node(Op.MAX, t, [a, lo], null, span), hi], null, span);
      }
    }
    throw new Error(`internal: unknown function ${callee}`);
  }
}

/** `qk int8`, `pv e4m3`: the options as IR fields, absent without the statements (hashes unchanged). */
function qkOption(decl: AttentionDecl): { qkInt8?: QkInt8; pvE4m3?: PvE4m3 } {
  const qkInt8 = qkInt8Of(decl);
  const pvE4m3 = pvE4m3Of(decl);
  return { ...(qkInt8 ? { qkInt8 } : {}), ...(pvE4m3 ? { pvE4m3 } : {}) };
}

/** Lowers one checked declaration. `defaults` holds the evaluated defaults of scalar params. */
export function lowerDecl(
  decl: AttentionDecl,
  defaults: ReadonlyMap<string, number | boolean>,
  options: { lse?: boolean; formats?: TensorFormats } = {},
): AttentionIR {
  const L = new Lowerer();
  const params: ParamSlot[] = [];
  for (const p of decl.params) {
    if (p.type.kind === 'tensor') {
      L.tensors.set(p.name, { name: p.name, dtype: p.type.elem, dims: p.type.dims.map(shapeDim) });
      continue;
    }
    const dtype = p.type.name === 'int' ? 'i32' : p.type.name;
    const d = defaults.get(p.name);
    params.push({ name: p.name, dtype, default: d === undefined ? undefined : Number(d) });
    L.scope.set(p.name, L.g.node(Op.PARAM, dtype, [], p.name, p.nameSpan));
  }
  // Routing counts read params and sizes only, so they are lowered before any `let` is in scope.
  const routing = lowerRouting(decl, L);
  let mask = L.g.const(true);
  let score = L.g.var('score');
  for (const s of decl.body) {
    if (s.kind === 'let') L.scope.set(s.name, L.expr(s.expr, true));
    else if (s.kind === 'mask') mask = L.g.node(Op.AND, 'bool', [mask, L.expr(s.expr, false)], null, s.span);
    else score = L.cast(L.expr(s.expr, true), 'f32');
  }
  return {
    name: decl.name,
    graph: L.g,
    score,
    mask,
    params,
    tensors: [...L.tensors.values()],
    outputs: { lse: options.lse ?? true },
    formats: options.formats ?? uniformFormats('f32'),
    ...(routing ? { routing } : {}),
    ...qkOption(decl),
  };
}

/** The routing plan of a `route` / `select` / `emit` statement, a union mirroring the AST's. */
function lowerRouting(decl: AttentionDecl, L: Lowerer): RoutingPlan | undefined {
  const s = decl.sparsity?.[0];
  if (!s) return undefined;
  const src = s.source;
  // A token is a one-key block: its `first` pooling is the key itself.
  const k = src.kind === 'topk' && s.unit ? src.by.k.reducer : 'first';
  if (k === 'raw') return undefined;
  // Counts are constant-folded so `8` and `4 + 4` give the same plan.
  const count = (e: Expr | undefined): Node =>
    e ? simplifyExpr(L.g, L.cast(L.expr(e, false), 'i32')) : L.g.const(0, 'i32');
  const forced = (kind: 'first' | 'local'): Node => count(s.force.find((f) => f.kind === kind)?.count);
  return {
    unit: lowerUnit(s.unit, count, L),
    source:
      src.kind === 'topk'
        ? {
            kind: 'topk',
            count: count(src.count),
            q: src.by.q.reducer,
            k,
            ...(s.vote ? { vote: s.vote.over } : {}),
          }
        : lowerFrom(src.tensor, L),
    first: forced('first'),
    local: forced('local'),
    attention: s.kind === 'emit' ? 'static-mask' : 'selected',
  };
}

function lowerUnit(u: SelectionUnit | undefined, count: (e: Expr) => Node, L: Lowerer): RoutingUnit {
  // Tokens and chunks position ids in one-position steps: the i32 1 they step by is interned
  // here, where a block size is, so graph node ids (in the CUDA manifest) do not depend on the unit.
  const size = u?.kind === 'blocks' ? count(u.size) : L.g.const(1, 'i32');
  if (u === undefined) return { kind: 'tokens' };
  if (u.kind === 'chunks') return { kind: 'chunks', tensor: u.tensor };
  if (size.op !== Op.CONST) throw new Error('internal: the routing block size is not a constant');
  return { kind: 'blocks', size: Number(size.arg) };
}

/** The capacity K of `from t`'s [batch, G, queries, K] as an i32 node (literal, int param or size). */
function fromCapacity(tensor: string, L: Lowerer): Node {
  const cap = L.tensors.get(tensor)?.dims[3];
  if (!cap) throw new Error(`internal: the index tensor "${tensor}" has no capacity dim`);
  if (cap.kind === 'literal') return L.g.const(cap.value, 'i32');
  if (cap.kind === 'size') return L.g.var(cap.name);
  const p = L.scope.get(cap.name);
  if (!p || p.dtype !== 'i32') throw new Error(`internal: "${cap.name}" is not an int param`);
  return p;
}

/** `from t`: the selection groups and capacity of t's declared [batch, G, queries, K] shape. */
function lowerFrom(tensor: string, L: Lowerer): FromSource {
  const t = L.tensors.get(tensor);
  const [g, cap] = [t?.dims[1], t?.dims[3]];
  if (!t || t.dims.length !== 4 || !g || !cap)
    throw new Error(`internal: the index tensor "${tensor}" is not [batch, G, queries, K]`);
  const groups =
    g.kind === 'size' && (g.name === 'H' || g.name === 'Hkv')
      ? g.name
      : g.kind === 'literal' && g.value === 1
        ? '1'
        : undefined;
  if (groups === undefined) throw new Error(`internal: the index tensor "${tensor}" has no selection groups`);
  const capacity = cap.kind === 'literal' ? String(cap.value) : cap.name;
  // The row capacity stands where a ranked source has its top-k count (it sizes `indices`).
  return { kind: 'from', tensor, groups, capacity, count: fromCapacity(tensor, L) };
}
