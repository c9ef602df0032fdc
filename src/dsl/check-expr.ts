// Typing of expressions (docs/LANGUAGE.md, "Names in expressions", "Types and operators"): the
// half of the declaration checker (checker.ts) that resolves names and infers each node's type.
// An expression whose type is unknown (a parse hole, or an error already reported) has no type,
// and nothing built on it reports again.
import { error, type Diagnostic, type Span } from '../diagnostics.js';
import type { Expr } from './ast.js';
import { checkLiteral, INT_MAX } from './check-constants.js';
import { isHole } from './cst-to-ast.js';
import {
  binaryResult,
  builtinFunctions,
  builtinVars,
  operandKind,
  promote,
  unaryResult,
  type ValueType,
} from './builtins.js';
import type { Hints } from './front-features.js';

/** Builtins that are fixed for the whole kernel (sizes); the others vary per query/key pair. */
const sizeNames = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);
const arithmetic = new Set(['+', '-', '*', '/', '%']);
export const onLine = (s: Span): string => `line ${s.line}`;
const isType = (r: string): r is ValueType => r === 'int' || r === 'f32' || r === 'bool';
/** Quotes code in a message: q('x') is `x`. */
export const q = (code: string): string => `\`${code}\``;
const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
const uniformHint = 'counts and block sizes take literals, scalar parameters and sizes like `Nk`';

export type Binding =
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
export type Ctx = 'mask' | 'score' | 'let' | 'default' | 'uniform';

/** Scope and types of one declaration, and the typing of its expressions. */
export abstract class ExprChecker {
  readonly diags: Diagnostic[] = [];
  protected readonly types = new Map<Expr, ValueType>();
  protected readonly scope = new Map<string, Binding>();
  /** Every `let` of the body, to tell "defined later" from "unknown". */
  protected readonly allLets = new Map<string, Span>();
  /** Set while checking a `let` whose expression mentions `score` (directly or via a let). */
  protected usesScore = false;
  /** Every parameter of the declaration, to say why a default cannot name one. */
  protected readonly paramNames = new Set<string>();

  /** "Did you mean" hints: none before compileAsync loads the messages (front-async.ts). */
  constructor(protected readonly hints: Hints) {
    for (const [name, v] of Object.entries(builtinVars))
      this.scope.set(name, { kind: 'builtin', type: v.type });
  }

  protected err(message: string, span: Span, hint?: string): undefined {
    this.diags.push(error(message, span, hint));
    return undefined;
  }

  protected expr(e: Expr, ctx: Ctx): ValueType | undefined {
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

  private notConstant(what: string, span: Span, hint = 'use literals and arithmetic'): undefined {
    return this.err(`a parameter default must be a constant, not ${what}`, span, hint);
  }

  /** `ture` is a typo; `w: int = s * 2` names another parameter, which has no value yet. */
  private defaultNameHint(name: string): string | undefined {
    if (this.paramNames.has(name)) return 'a default cannot name a parameter: use literals and arithmetic';
    return this.hints.didYouMean(name, ['true', 'false']);
  }

  private name(name: string, span: Span, ctx: Ctx): ValueType | undefined {
    if (name === '') return undefined; // a parse hole, already reported
    if (ctx === 'default') return this.notConstant(`${q(name)}`, span, this.defaultNameHint(name));
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
    return this.err(
      `unknown name ${q(name)}`,
      span,
      this.hints.foreignHint(name) ??
        this.hints.didYouMean(name, visible) ??
        this.hints.undeclaredHint(name, false),
    );
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
      const hint =
        this.hints.foreignFunctionHint(e.callee) ??
        this.hints.didYouMean(e.callee, Object.keys(builtinFunctions));
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
      return this.err(
        `unknown tensor ${q(e.tensor)}`,
        e.tensorSpan,
        this.hints.didYouMean(e.tensor, tensors) ?? this.hints.undeclaredHint(e.tensor, true),
      );
    }
    // A param whose type did not parse (`doc: tensor i32[kv]`), or a tensor whose dims did not
    // (`t: f32[-3]`, no dims): that error was said at the declaration; each lookup would echo it.
    if ((b.kind === 'param' && b.type === undefined) || (b.kind === 'tensor' && b.rank === 0))
      return undefined;
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
