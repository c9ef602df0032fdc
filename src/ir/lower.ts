// Lowering: a checked AST declaration → graph IR (AttentionIR). Types are re-derived from the
// IR builder's dtypes (int→i32, f32, bool) with the language's promotion rule (an int meeting an
// f32 is cast); the checker has already rejected ill-typed programs, so mismatches here are bugs.
import type { AttentionDecl, BinaryOp, DimRef, Expr } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';
import { Graph, type Node } from './graph.js';
import { uniformFormats, type TensorFormats } from './formats.js';
import { qkInt8Of, type QkInt8 } from './int8qk.js';
import { pvE4m3Of, type PvE4m3 } from './pv-e4m3.js';
import type { ParamSlot, ShapeDim, TensorSlot } from './kernel.js';
import { Op, type DType, type VarName } from './ops.js';
import type { AttentionIR } from './program.js';
import type { RoutingPlan } from './routing.js';

/**
 * Lowers a declaration's routing statement (lower-routing.ts's lowerRouting). An option, not an
 * import: it comes with the front end's routing statements (dsl/front-sparsity.ts), which
 * attnc/wgsl/async loads only for programs that have one.
 */
export type LowerRouting = (decl: AttentionDecl, L: Lowerer) => RoutingPlan | undefined;

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

/** The lowering state of one declaration (lower-routing.ts lowers the routing statement through it). */
export class Lowerer {
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
  options: { lse?: boolean; formats?: TensorFormats; routing?: LowerRouting } = {},
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
  const routing = decl.sparsity ? routingLowering(options.routing)(decl, L) : undefined;
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

function routingLowering(routing: LowerRouting | undefined): LowerRouting {
  if (!routing) throw new Error('lowerDecl: a routing statement needs options.routing');
  return routing;
}
