// Name resolution and typing of attention declarations (docs/LANGUAGE.md). Reports every error
// it can find in one pass; an expression whose type is unknown (a parse hole, or an error already
// reported) has no type, and nothing built on it reports again.
import { error, type Diagnostic, type Span } from '../diagnostics.js';
import type { AttentionDecl, DimRef, Expr, ParamDecl, Program, Stmt } from './ast.js';
import { tensorDimNames } from './ast.js';
import { checkLiteral, foldChecked, INT_MAX } from './check-constants.js';
import { checkSparsity, overflowed } from './check-sparsity.js';
import { checkStorage } from './check-storage.js';
import { inlinedDepth, limits } from './limits.js';
import { hasHole, isHole, isMissingType } from './cst-to-ast.js';
import {
  binaryResult,
  builtinFunctions,
  builtinVars,
  convertConst,
  isNumeric,
  operandKind,
  promote,
  unaryResult,
  type ConstValue,
  type ValueType,
} from './builtins.js';
import { didYouMean } from './suggest.js';

export type { ValueType } from './builtins.js';
export { didYouMean, editDistance } from './suggest.js';

export interface CheckedDecl {
  readonly decl: AttentionDecl;
  /**
   * Type of every Expr node in the body and in param defaults: each node's own type. The
   * operands of `1 + 2.5` stay int and f32 (the `+` is f32); a comparison is bool and compares
   * promote(left, right); an int `score` expression is converted to f32 by lowering.
   */
  readonly types: ReadonlyMap<Expr, ValueType>;
  /** Evaluated constant defaults of scalar params (bool as true/false), in the param's type. */
  readonly defaults: ReadonlyMap<string, number | boolean>;
}

type Binding =
  | { readonly kind: 'builtin'; readonly type: ValueType }
  /** A param whose type is missing (a parse error) has no type and causes no further errors. */
  | { readonly kind: 'param'; readonly type: ValueType | undefined }
  | { readonly kind: 'tensor'; readonly type: ValueType; readonly rank: number }
  | { readonly kind: 'let'; readonly type: ValueType | undefined; readonly usesScore: boolean };

/**
 * Where an expression sits: decides whether `score` is visible and whether names are allowed.
 * 'uniform' is a count of a routing statement: fixed for the whole kernel (no b/h/q/k, lets or
 * lookups), but unlike a default it may name params and sizes.
 */
type Ctx = 'mask' | 'score' | 'let' | 'default' | 'uniform';

/** Builtins that are fixed for the whole kernel (sizes); the others vary per query/key pair. */
const sizeNames = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);
const arithmetic = new Set(['+', '-', '*', '/', '%']);
const dimNames: readonly string[] = tensorDimNames;
const onLine = (s: Span): string => `line ${s.line}`;
const isType = (r: string): r is ValueType => r === 'int' || r === 'f32' || r === 'bool';
/** Quotes code in a message: q('x') is `x`. */
const q = (code: string): string => `\`${code}\``;
const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
const uniformHint = 'counts and block sizes take literals, scalar parameters and sizes like `Nk`';

export function checkProgram(p: Program): { decls: CheckedDecl[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const decls: CheckedDecl[] = [];
  const seen = new Map<string, Span>();
  for (const d of p.decls) {
    const first = seen.get(d.name);
    if (first) {
      const hint = `first declared on ${onLine(first)}`;
      diagnostics.push(error(`duplicate declaration ${q(d.name)}`, d.nameSpan, hint));
    } else if (d.name !== '') seen.set(d.name, d.nameSpan);
    const c = new DeclChecker(d);
    const checked = c.run();
    diagnostics.push(...c.diags);
    if (c.diags.length === 0) decls.push(checked);
  }
  return { decls, diagnostics };
}

class DeclChecker {
  readonly diags: Diagnostic[] = [];
  private readonly types = new Map<Expr, ValueType>();
  private readonly defaults = new Map<string, ConstValue>();
  private readonly scope = new Map<string, Binding>();
  /** Every `let` of the body, to tell "defined later" from "unknown". */
  private readonly allLets = new Map<string, Span>();
  /** Set while checking a `let` whose expression mentions `score` (directly or via a let). */
  private usesScore = false;
  /** Depth of each `let` with the lets it uses written out, as lowering writes them. */
  private readonly letDepths = new Map<string, number>();
  private masks = 0;

  constructor(private readonly decl: AttentionDecl) {
    for (const [name, v] of Object.entries(builtinVars))
      this.scope.set(name, { kind: 'builtin', type: v.type });
    for (const s of decl.body)
      if (s.kind === 'let' && !this.allLets.has(s.name)) this.allLets.set(s.name, s.span);
  }

  run(): CheckedDecl {
    this.decl.params.forEach((p) => this.param(p));
    let firstScore: Span | undefined;
    for (const s of this.decl.body) {
      if (s.kind === 'score' && firstScore) {
        const kw = { ...s.span, length: 'score'.length };
        this.err('only one `score` statement is allowed', kw, `the first is on ${onLine(firstScore)}`);
      }
      if (s.kind === 'score') firstScore ??= s.span;
      this.stmt(s);
    }
    const ctx = {
      err: (m: string, span: Span, hint?: string) => this.err(m, span, hint),
      uniform: (e: Expr) => this.expr(e, 'uniform'),
      fold: (e: Expr) => this.fold(e),
      params: this.decl.params,
    };
    checkSparsity(this.decl.sparsity ?? [], ctx);
    checkStorage(this.decl.storage ?? [], this.decl.importance ?? [], ctx);
    return { decl: this.decl, types: this.types, defaults: this.defaults };
  }

  private err(message: string, span: Span, hint?: string): undefined {
    this.diags.push(error(message, span, hint));
    return undefined;
  }

  private param(p: ParamDecl): void {
    if (p.name === '') return; // a parse hole
    const prev = this.scope.get(p.name);
    if (prev?.kind === 'builtin')
      this.err(`parameter ${q(p.name)} shadows the builtin ${q(p.name)}`, p.nameSpan);
    else if (prev) this.err(`duplicate parameter ${q(p.name)}`, p.nameSpan);
    else if (dimNames.includes(p.name))
      this.err(`${q(p.name)} is a dimension name, not a parameter`, p.nameSpan);
    const t = p.type;
    if (t.kind === 'tensor') {
      t.dims.forEach((d) => this.dim(d, p));
      const def = p.default;
      if (def)
        this.err(
          `tensor parameter ${q(p.name)} cannot have a default`,
          def.span,
          'tensors are given at run time',
        );
      if (!prev)
        this.scope.set(p.name, {
          kind: 'tensor',
          type: t.elem === 'i32' ? 'int' : 'f32',
          rank: t.dims.length,
        });
      return;
    }
    const type = isMissingType(t) ? undefined : t.name;
    if (p.default && type) this.paramDefault(p, p.default, type);
    if (!prev) this.scope.set(p.name, { kind: 'param', type });
  }

  private paramDefault(p: ParamDecl, e: Expr, type: ValueType): void {
    const before = this.diags.length;
    const t = this.expr(e, 'default');
    if (t === undefined || this.diags.length > before) return;
    if (t !== type && !(type === 'f32' && t === 'int')) {
      this.err(`the default of ${q(p.name)} must be ${type}, found ${t}`, e.span);
      return;
    }
    const v = this.fold(e);
    if (v !== undefined && v !== overflowed) this.defaults.set(p.name, convertConst(v, type));
  }

  private fold(e: Expr): ConstValue | typeof overflowed | undefined {
    return foldChecked(
      e,
      (x) => this.types.get(x),
      (m, span, hint) => this.err(m, span, hint),
    );
  }

  private dim(d: DimRef, p: ParamDecl): void {
    if (d.kind === 'size') return;
    if (d.kind === 'literal') {
      if (!(d.value > 0 && d.value <= INT_MAX))
        this.err(`a dimension must be a positive int, found ${d.value}`, d.span);
      return;
    }
    const b =
      d.name === p.name ? ({ kind: 'tensor', type: 'int', rank: 0 } as const) : this.scope.get(d.name);
    if (b?.kind === 'param' && b.type !== 'f32' && b.type !== 'bool') return; // int, or already reported
    if (b?.kind === 'param' || b?.kind === 'tensor') {
      const is = b.kind === 'tensor' ? 'a tensor' : b.type;
      this.err(`dimension ${q(d.name)} must be an int parameter, but ${q(d.name)} is ${is}`, d.span);
    } else if (b === undefined && this.decl.params.some((x) => x.name === d.name)) {
      const hint = `declare ${q(d.name)} before ${q(p.name)}`;
      this.err(`dimension ${q(d.name)} refers to a later parameter`, d.span, hint);
    } else {
      const ints = [...this.scope].filter(([, x]) => x.kind === 'param' && x.type === 'int').map(([n]) => n);
      this.err(`unknown dimension ${q(d.name)}`, d.span, didYouMean(d.name, [...dimNames, ...ints]));
    }
  }

  /**
   * The limits that need the `let`s resolved (docs/LANGUAGE.md, "Limits"); the token-level ones
   * were checked before parsing. Returns the depth to record for a `let` (0 once reported).
   */
  private statementLimits(s: Stmt): number {
    if (s.kind === 'mask' && ++this.masks === limits.masks + 1) {
      const kw = { ...s.span, length: 'mask'.length };
      this.err(`too many \`mask\` statements: the limit is ${limits.masks}`, kw, 'combine them with `&&`');
    }
    const depth = inlinedDepth(s.expr, this.letDepths);
    if (depth <= limits.depth) return depth;
    const hint = 'lowering writes each `let` out where it is used; simplify the chain of `let`s';
    this.err(
      `expression too deep: ${depth} levels with its \`let\`s written out, the limit is ${limits.depth}`,
      s.expr.span,
      hint,
    );
    return 0;
  }

  private stmt(s: Stmt): void {
    const depth = this.statementLimits(s);
    if (s.kind === 'let') {
      this.usesScore = false;
      const t = this.expr(s.expr, 'let');
      const prev = this.scope.get(s.name);
      if (s.name === '') return;
      if (prev?.kind === 'let') return void this.err(`${q(s.name)} is already defined`, s.nameSpan);
      const what = prev?.kind === 'builtin' ? 'builtin' : 'parameter';
      if (prev) return void this.err(`\`let ${s.name}\` shadows the ${what} ${q(s.name)}`, s.nameSpan);
      this.scope.set(s.name, { kind: 'let', type: t, usesScore: this.usesScore });
      this.letDepths.set(s.name, depth);
      return;
    }
    const t = this.expr(s.expr, s.kind);
    if (t === undefined || hasHole(s.expr)) return; // a broken statement: the parser reported it
    if (s.kind === 'mask' && t !== 'bool') this.err(`a mask must be bool, found ${t}`, s.expr.span);
    if (s.kind === 'score' && !isNumeric(t)) this.err(`a score must be a number, found ${t}`, s.expr.span);
  }

  private expr(e: Expr, ctx: Ctx): ValueType | undefined {
    const t = this.infer(e, ctx);
    if (t !== undefined) this.types.set(e, t);
    return t;
  }

  private infer(e: Expr, ctx: Ctx): ValueType | undefined {
    switch (e.kind) {
      case 'num':
        return checkLiteral(e, (m, span, hint) => this.err(m, span, hint));
      case 'bool':
        return 'bool';
      case 'name':
        return this.name(e.name, e.span, ctx);
      case 'unary': {
        // -2147483648 is an int even though 2147483648 alone is not.
        const o = e.operand;
        if (e.op === '-' && o.kind === 'num' && !o.isFloat && o.value === INT_MAX + 1) {
          this.types.set(o, 'int');
          return 'int';
        }
        const t = this.expr(e.operand, ctx);
        if (t === undefined) return e.op === '!' ? 'bool' : undefined;
        const r = unaryResult(e.op, t);
        return isType(r) ? r : this.err(r, e.operand.span);
      }
      case 'binary':
        return this.binary(e, ctx);
      case 'ternary': {
        const c = this.expr(e.cond, ctx);
        if (c !== undefined && c !== 'bool') this.err(`a condition must be bool, found ${c}`, e.cond.span);
        const a = this.expr(e.then, ctx);
        const b = this.expr(e.otherwise, ctx);
        if (a === undefined || b === undefined) return a ?? b;
        const t = a === b ? a : promote(a, b);
        return t ?? this.err(`the branches of \`?:\` have different types: ${a} and ${b}`, e.span);
      }
      case 'call':
        return this.call(e, ctx);
      case 'index':
        return this.index(e, ctx);
    }
  }

  private binary(e: Extract<Expr, { kind: 'binary' }>, ctx: Ctx): ValueType | undefined {
    const l = this.expr(e.left, ctx);
    const r = this.expr(e.right, ctx);
    const wantBool = operandKind[e.op] === 'bool';
    const fallback = wantBool || !arithmetic.has(e.op) ? 'bool' : undefined;
    if (isHole(e.left) || isHole(e.right)) return fallback; // recovery mangled it; already reported
    for (const [x, t] of [[e.left, l] as const, [e.right, r] as const]) {
      if (t !== undefined && (t === 'bool') !== wantBool) {
        return this.err(`${q(e.op)} takes ${wantBool ? 'bools' : 'numbers'}, found ${t}`, x.span) ?? fallback;
      }
    }
    if (l === undefined || r === undefined) return fallback;
    const res = binaryResult(e.op, l, r);
    return isType(res) ? res : this.err(res, e.span);
  }

  private notConstant(what: string, span: Span): undefined {
    return this.err(
      `a parameter default must be a constant, not ${what}`,
      span,
      'use literals and arithmetic',
    );
  }

  private name(name: string, span: Span, ctx: Ctx): ValueType | undefined {
    if (name === '') return undefined; // a parse hole, already reported
    if (ctx === 'default') return this.notConstant(`${q(name)}`, span);
    const b = this.scope.get(name);
    if (ctx === 'uniform' && (this.allLets.has(name) || (b?.kind === 'builtin' && !sizeNames.has(name)))) {
      const what = this.allLets.has(name) ? `${q(name)} is a \`let\`, which` : q(name);
      return this.err(`${what} varies across the kernel`, span, uniformHint);
    }
    if (b?.kind === 'tensor') return this.err(`${q(name)} is a tensor; index it like \`${name}[…]\``, span);
    if (name === 'score' || (b?.kind === 'let' && b.usesScore)) {
      if (ctx === 'mask') {
        const why =
          name === 'score'
            ? '`score` cannot be used in a mask'
            : `${q(name)} uses \`score\`, so a mask cannot use it`;
        return this.err(why, span, 'masks are static predicates over positions and tensor lookups');
      }
      this.usesScore = true;
    }
    if (b) return b.type;
    const later = this.allLets.get(name);
    if (later)
      return this.err(`${q(name)} is used before its \`let\``, span, `it is defined on ${onLine(later)}`);
    if (name in builtinFunctions)
      return this.err(`${q(name)} is a function`, span, `call it like \`${name}(x)\``);
    const visible = [...this.scope.keys()].filter((n) => ctx !== 'mask' || n !== 'score');
    return this.err(`unknown name ${q(name)}`, span, didYouMean(name, visible));
  }

  private call(e: Extract<Expr, { kind: 'call' }>, ctx: Ctx): ValueType | undefined {
    const args = e.args.map((a) => this.expr(a, ctx));
    if (ctx === 'default') return this.notConstant('a call', e.span);
    const fn = builtinFunctions[e.callee];
    if (fn === undefined) {
      const b = this.scope.get(e.callee);
      if (b?.kind === 'tensor')
        return this.err(`${q(e.callee)} is a tensor; index it with \`[…]\``, e.calleeSpan);
      if (b) return this.err(`${q(e.callee)} is not a function`, e.calleeSpan);
      const hint = didYouMean(e.callee, Object.keys(builtinFunctions));
      return this.err(`unknown function ${q(e.callee)}`, e.calleeSpan, hint);
    }
    if (args.length !== fn.arity) {
      return this.err(`${q(e.callee)} takes ${plural(fn.arity, 'argument')}, found ${args.length}`, e.span);
    }
    const bad = e.args[args.indexOf('bool')];
    if (bad) return this.err(`${q(e.callee)} takes numbers, found bool`, bad.span);
    if (args.some((t) => t === undefined)) return undefined;
    const r = fn.result(args as ValueType[]);
    return isType(r) ? r : this.err(r, e.span);
  }

  private index(e: Extract<Expr, { kind: 'index' }>, ctx: Ctx): ValueType | undefined {
    const idx = e.indices.map((a) => this.expr(a, ctx));
    if (ctx === 'default') return this.notConstant('a tensor lookup', e.span);
    if (ctx === 'uniform') return this.err('a tensor lookup varies across the kernel', e.span, uniformHint);
    const b = this.scope.get(e.tensor);
    if (b === undefined) {
      const tensors = [...this.scope].filter(([, x]) => x.kind === 'tensor').map(([n]) => n);
      return this.err(`unknown tensor ${q(e.tensor)}`, e.tensorSpan, didYouMean(e.tensor, tensors));
    }
    if (b.kind !== 'tensor') {
      return this.err(
        `${q(e.tensor)} is not a tensor`,
        e.tensorSpan,
        'only tensor parameters can be indexed',
      );
    }
    if (idx.length !== b.rank) {
      this.err(`${q(e.tensor)} has ${plural(b.rank, 'dimension')} but is indexed with ${idx.length}`, e.span);
    }
    idx.forEach((t, i) => {
      const at = e.indices[i];
      if (at === undefined || t === undefined || t === 'int') return;
      this.err(
        `a tensor index must be int, found ${t}`,
        at.span,
        t === 'f32' ? 'convert it with `int(…)`' : undefined,
      );
    });
    return b.type;
  }
}
