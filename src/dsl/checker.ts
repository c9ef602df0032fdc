// Checking of attention declarations (docs/LANGUAGE.md): parameters, statements and their
// limits, then the routing and storage statements. Reports every error it can find in one pass;
// the typing of expressions is check-expr.ts.
import { error, type Diagnostic, type Span } from '../diagnostics.js';
import type { AttentionDecl, DimRef, Expr, ParamDecl, Program, Stmt } from './ast.js';
import { tensorDimNames } from './ast.js';
import { foldChecked, INT_MAX } from './check-constants.js';
import { ExprChecker, onLine, q } from './check-expr.js';
import { overflowed } from './check-constants.js';
import { hintsOf, statementCheckers, type FrontFeatures } from './front-features.js';
import { inlinedDepth, limits } from './limits.js';
import { hasHole, isMissingType } from './cst-to-ast.js';
import { convertConst, isNumeric, type ConstValue, type ValueType } from './builtins.js';

/**
 * Names every JavaScript object has (`constructor`, `toString`, `__proto__`, …). Params and
 * tensors reach the runtime, the emitted modules and the reference by name in plain objects,
 * where such a name reads (or, for `__proto__`, sets) the object's prototype instead of a value.
 */
const objectMembers: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export type { ValueType } from './builtins.js';

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

const dimNames: readonly string[] = tensorDimNames;

/**
 * The runtime sizes as IR dumps, shapes in errors and generated modules print a tensor's dims
 * (`doc: i32[Nk]`), spelt as a tensor type spells them. `Hkv` was told "did you mean `kv`?".
 */
const sizeDims: Readonly<Record<string, string>> = {
  Nk: 'a tensor type writes `Nk` as `kv`',
  Nq: 'a tensor type writes `Nq` as `queries`',
  H: 'a tensor type writes `H` as `heads`',
  Hkv: 'a tensor type writes `Hkv` as `kv_heads`',
  B: 'a tensor type writes `B` as `batch`',
};

/** Checks `p`, its statements with the checkers of `features` (each one `p` has statements of). */
export function checkProgram(
  p: Program,
  features: Partial<FrontFeatures>,
): { decls: CheckedDecl[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const decls: CheckedDecl[] = [];
  const seen = new Map<string, Span>();
  for (const d of p.decls) {
    const first = seen.get(d.name);
    if (first) {
      const hint = `first declared on ${onLine(first)}`;
      diagnostics.push(error(`duplicate declaration ${q(d.name)}`, d.nameSpan, hint));
    } else if (d.name !== '') seen.set(d.name, d.nameSpan);
    const c = new DeclChecker(d, features);
    const checked = c.run();
    diagnostics.push(...c.diags);
    if (c.diags.length === 0) decls.push(checked);
  }
  return { decls, diagnostics };
}

class DeclChecker extends ExprChecker {
  private readonly defaults = new Map<string, ConstValue>();
  /** Depth of each `let` with the lets it uses written out, as lowering writes them. */
  private readonly letDepths = new Map<string, number>();
  private masks = 0;

  constructor(
    private readonly decl: AttentionDecl,
    private readonly features: Partial<FrontFeatures>,
  ) {
    super(hintsOf(features));
    for (const p of decl.params) this.paramNames.add(p.name);
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
    for (const f of statementCheckers(this.features)) f.check(this.decl, ctx);
    return { decl: this.decl, types: this.types, defaults: this.defaults };
  }

  private param(p: ParamDecl): void {
    if (p.name === '') return; // a parse hole
    const prev = this.scope.get(p.name);
    if (prev?.kind === 'builtin')
      this.err(`parameter ${q(p.name)} shadows the builtin ${q(p.name)}`, p.nameSpan);
    else if (prev) this.err(`duplicate parameter ${q(p.name)}`, p.nameSpan);
    else if (dimNames.includes(p.name))
      this.err(`${q(p.name)} is a dimension name, not a parameter`, p.nameSpan);
    else if (objectMembers.has(p.name))
      this.err(
        `parameter ${q(p.name)} has the name of a JavaScript object member`,
        p.nameSpan,
        'params and tensors are passed by name in JavaScript objects: rename it',
      );
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
    if (v === undefined || v === overflowed) return;
    const value = convertConst(v, type);
    // Every entry point refuses a non-finite f32 param value (runtime, emitted modules, the CUDA
    // launcher), so such a default could never be used: say so here, where it is written.
    if (type === 'f32' && typeof value === 'number' && !Number.isFinite(Math.fround(value))) {
      const hint =
        'f32 params must be finite; write the constant in the expression instead (e.g. `min(score, 1.0 / 0.0)`)';
      this.err(`the default of ${q(p.name)} is ${Math.fround(value)}, not a finite f32`, e.span, hint);
      return;
    }
    this.defaults.set(p.name, value);
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
      const size = Object.hasOwn(sizeDims, d.name) ? sizeDims[d.name] : undefined;
      const hint = size ?? this.hints.didYouMean(d.name, [...dimNames, ...ints]);
      this.err(`unknown dimension ${q(d.name)}`, d.span, hint);
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
}
