// CST → AST with spans. The CST may be partial (parser error recovery), so every child is
// optional here: missing pieces are skipped or repaired, never thrown on. A missing expression
// becomes a *hole*, a `name` node whose name is '' (see `isHole`); the parser has already
// reported it, and the checker gives holes no type and no further errors.
import type { CstNode, IToken } from 'chevrotain';
import { error, type Diagnostic, type Span } from '../diagnostics.js';
import type {
  AttentionDecl,
  BinaryOp,
  DimRef,
  Expr,
  ParamDecl,
  ParamType,
  Program,
  SparsityStmt,
  Stmt,
} from './ast.js';
import { tensorDimNames } from './ast.js';
import type { CacheDecl, ImportanceRequest, StorageDecl } from './ast-storage.js';
import type { PvDecl } from './pv-stmt.js';
import type { QkDecl } from './qk-stmt.js';
import type { AstBuilder } from './cst-sparsity.js';
import { frontFeature, type FrontFeatures, type StatementFeature } from './front-features.js';
import type { AttachedComments } from './comments.js';
import { cover, isHole } from './holes.js';
import type {
  ArgsCh,
  AtomCh,
  BinaryCh,
  DeclCh,
  DimCh,
  DimsCh,
  ExprCh,
  ParamCh,
  ProgramCh,
  StmtCh,
  TypeCh,
  UnaryCh,
} from './cst-children.js';

export { cover, hasHole, isHole, isMissingType } from './holes.js';

const ch = <C>(n: CstNode | undefined): C => (n?.children ?? {}) as C;

/** Tokens inserted by recovery have offset -1 and an empty image. */
const isReal = (t: IToken | undefined): t is IToken =>
  t !== undefined && t.startOffset >= 0 && Number.isFinite(t.startOffset) && !t.isInsertedInRecovery;

const push = <T>(into: T[], x: T | undefined): void => {
  if (x !== undefined) into.push(x);
};

/** Operator typos the grammar accepts (so the rest of the expression parses) and we report. */
const typoOps: Record<string, BinaryOp> = { '=': '==', '&': '&&', '|': '||' };

class Builder implements AstBuilder {
  readonly diags: Diagnostic[] = [];
  /** Where the last real token ended: holes and inserted tokens get a span here. */
  private last: Span;

  constructor(
    private readonly file: string,
    private readonly comments: AttachedComments,
    private readonly features: Partial<FrontFeatures>,
  ) {
    this.last = { file, line: 1, column: 1, offset: 0, length: 0 };
  }

  span(t: IToken | undefined): Span {
    if (!isReal(t)) {
      const { line, column, offset, length } = this.last;
      return { file: this.file, line, column: column + length, offset: offset + length, length: 0 };
    }
    const s: Span = {
      file: this.file,
      line: t.startLine ?? 1,
      column: t.startColumn ?? 1,
      offset: t.startOffset,
      length: t.image.length,
    };
    this.last = s;
    return s;
  }

  isReal(t: IToken | undefined): t is IToken {
    return isReal(t);
  }

  hole(): Expr {
    return { kind: 'name', name: '', span: this.span(undefined) };
  }

  /** The builders of a statement feature (the caller loaded what the CST holds). */
  private feature<F extends StatementFeature>(name: F): FrontFeatures[F] {
    return frontFeature(this.features, name);
  }

  program(cst: CstNode): Program {
    const decls = (ch<ProgramCh>(cst).attentionDecl ?? []).map((d) => this.decl(d));
    return { kind: 'program', file: this.file, decls, header: this.comments.header };
  }

  decl(n: CstNode): AttentionDecl {
    const c = ch<DeclCh>(n);
    const kw = c.Attention?.[0];
    const start = this.span(kw);
    const nameTok = c.Identifier?.[0];
    const nameSpan = this.span(nameTok);
    const params = (c.param ?? []).map((p) => this.param(p));
    const body: Stmt[] = [];
    const sparsity: SparsityStmt[] = [];
    const storage: StorageDecl[] = [];
    const importance: ImportanceRequest[] = [];
    const cache: CacheDecl[] = [];
    const qk: QkDecl[] = [];
    const pv: PvDecl[] = [];
    let qkUnbuilt = false;
    for (const s of c.statement ?? []) {
      const sc = ch<StmtCh>(s);
      const [routing, store, imp] = [sc.sparsityStmt?.[0], sc.storageStmt?.[0], sc.importanceStmt?.[0]];
      if (routing) push(sparsity, this.feature('sparsity').buildSparsity(this, routing));
      else if (store) push(storage, this.feature('storage').buildStorage(this, store));
      else if (imp) push(importance, this.feature('storage').buildImportance(this, imp));
      else if (sc.cacheStmt?.[0]) push(cache, this.feature('storage').buildCache(this, sc.cacheStmt[0]));
      else if (sc.qkStmt?.[0]) {
        const built = this.feature('operandQuant').buildQk(this, sc.qkStmt[0]);
        push(qk, built);
        if (built === undefined) qkUnbuilt = true;
      } else if (sc.pvStmt?.[0]) push(pv, this.feature('operandQuant').buildPv(this, sc.pvStmt[0]));
      else body.push(...this.stmt(s));
    }
    const spans = [...body, ...sparsity, ...storage, ...importance, ...cache, ...qk, ...pv]
      .map((x) => x.span)
      .sort((x, y) => x.offset - y.offset);
    const close = c.RBrace?.[0];
    const last = isReal(close) ? this.span(close) : (spans.at(-1) ?? params.at(-1)?.span ?? nameSpan);
    const doc = (kw && this.comments.docs.get(kw.startOffset)) ?? '';
    const name = isReal(nameTok) ? nameTok.image : '';
    const decl = { kind: 'attention', name, nameSpan, params, body, doc, span: cover(start, last) } as const;
    // Only present when used, so declarations without them compare equal to hand-built ones.
    return {
      ...decl,
      ...(sparsity.length > 0 ? { sparsity } : {}),
      ...(storage.length > 0 ? { storage } : {}),
      ...(importance.length > 0 ? { importance } : {}),
      ...(cache.length > 0 ? { cache } : {}),
      ...(qk.length > 0 ? { qk } : {}),
      ...(qkUnbuilt ? { qkUnbuilt: true as const } : {}),
      ...(pv.length > 0 ? { pv } : {}),
    };
  }

  param(n: CstNode): ParamDecl {
    const c = ch<ParamCh>(n);
    const nameTok = c.Identifier?.[0];
    const nameSpan = this.span(nameTok);
    const type = this.type(c.typeSpec?.[0]);
    const def = c.Equals ? this.expr(c.expression?.[0]) : undefined;
    const span = cover(nameSpan, def?.span ?? type.span);
    const name = isReal(nameTok) ? nameTok.image : '';
    return def === undefined ? { name, nameSpan, type, span } : { name, nameSpan, type, default: def, span };
  }

  type(n: CstNode | undefined): ParamType {
    const c = ch<TypeCh>(n);
    const elemTok = c.I32Kw?.[0] ?? c.F32Kw?.[0];
    const dc = ch<DimsCh>(c.dims?.[0]);
    // Without a real `[` it is no tensor: a bare `i32` (reported by the parser) reads as int.
    if (elemTok && isReal(dc.LBracket?.[0])) {
      const start = this.span(elemTok);
      const dims = (dc.dim ?? []).flatMap((d) => this.dim(d));
      const close = dc.RBracket?.[0];
      const span = isReal(close) ? cover(start, this.span(close)) : cover(start, dims.at(-1)?.span ?? start);
      return { kind: 'tensor', elem: elemTok.tokenType.name === 'I32Kw' ? 'i32' : 'f32', dims, span };
    }
    const tok = c.IntKw?.[0] ?? c.BoolKw?.[0] ?? c.F32Kw?.[0] ?? c.I32Kw?.[0];
    const name =
      tok === undefined ? 'int' : tok.image === 'bool' ? 'bool' : tok.image === 'f32' ? 'f32' : 'int';
    return { kind: 'scalar', name, span: this.span(tok) };
  }

  dim(n: CstNode): DimRef[] {
    const c = ch<DimCh>(n);
    const lit = c.IntLit?.[0];
    if (isReal(lit)) return [{ kind: 'literal', value: Number(lit.image), span: this.span(lit) }];
    const id = c.Identifier?.[0];
    if (!isReal(id)) return [];
    const span = this.span(id);
    const size = tensorDimNames.find((d) => d === id.image);
    return [size ? { kind: 'size', name: size, span } : { kind: 'param', name: id.image, span }];
  }

  stmt(n: CstNode): Stmt[] {
    const c = ch<StmtCh>(n);
    const kw = c.Let?.[0] ?? c.Mask?.[0] ?? c.Score?.[0];
    if (kw === undefined) return [];
    const start = this.span(kw);
    if (c.Let) {
      const nameTok = c.Identifier?.[0];
      const nameSpan = this.span(nameTok);
      const expr = this.expr(c.expression?.[0]);
      const name = isReal(nameTok) ? nameTok.image : '';
      return [{ kind: 'let', name, nameSpan, expr, span: cover(start, expr.span) }];
    }
    const expr = this.expr(c.expression?.[0]);
    return [{ kind: c.Mask ? 'mask' : 'score', expr, span: cover(start, expr.span) }];
  }

  expr(n: CstNode | undefined): Expr {
    if (n === undefined) return this.hole();
    switch (n.name) {
      case 'expression':
        return this.ternary(ch<ExprCh>(n));
      case 'unaryExpr':
        return this.unary(ch<UnaryCh>(n));
      case 'atom':
        return this.atom(ch<AtomCh>(n));
      default:
        return this.binary(ch<BinaryCh>(n));
    }
  }

  ternary(c: ExprCh): Expr {
    const cond = this.expr(c.cond?.[0]);
    if (!c.Question) return cond;
    const then = this.expr(c.then?.[0]);
    const otherwise = this.expr(c.otherwise?.[0]);
    return { kind: 'ternary', cond, then, otherwise, span: cover(cond.span, otherwise.span) };
  }

  /** Folds `a op b op c` to the left; a missing operand becomes a hole. */
  binary(c: BinaryCh): Expr {
    const operands = c.operands ?? [];
    let left = this.expr(operands[0]);
    (c.operators ?? []).forEach((opTok, i) => {
      const opSpan = this.span(opTok);
      const fixed = typoOps[opTok.image];
      if (fixed)
        this.diags.push(error(`\`${opTok.image}\` is not an operator`, opSpan, `did you mean \`${fixed}\`?`));
      const right = this.expr(operands[i + 1]);
      const span = cover(left.span, isHole(right) ? opSpan : right.span);
      left = { kind: 'binary', op: fixed ?? (opTok.image as BinaryOp), left, right, span };
    });
    return left;
  }

  unary(c: UnaryCh): Expr {
    const opTok = c.op?.[0];
    if (opTok === undefined) return this.expr(c.atom?.[0]);
    const opSpan = this.span(opTok);
    const operand = this.expr(c.operand?.[0]);
    const span = isHole(operand) ? opSpan : cover(opSpan, operand.span);
    return { kind: 'unary', op: opTok.image === '!' ? '!' : '-', operand, span };
  }

  atom(c: AtomCh): Expr {
    const num = c.FloatLit?.[0] ?? c.IntLit?.[0];
    if (isReal(num)) {
      const isFloat = num.tokenType.name === 'FloatLit';
      return { kind: 'num', value: Number(num.image), isFloat, span: this.span(num) };
    }
    const bool = c.True?.[0] ?? c.False?.[0];
    if (isReal(bool)) return { kind: 'bool', value: bool.image === 'true', span: this.span(bool) };
    const id = c.Identifier?.[0] ?? c.Score?.[0] ?? c.IntKw?.[0];
    if (isReal(id)) return this.named(id, c);
    if (c.LParen) {
      const open = this.span(c.LParen[0]);
      const inner = this.expr(c.expression?.[0]);
      if (isHole(inner)) return inner;
      const close = c.RParen?.[0];
      // Parentheses widen the span so that `(a + b) * c` covers its `(`.
      return { ...inner, span: cover(open, isReal(close) ? this.span(close) : inner.span) };
    }
    return this.hole();
  }

  named(id: IToken, c: AtomCh): Expr {
    const span = this.span(id);
    const args = c.callArgs?.[0] ?? c.indexArgs?.[0];
    if (args === undefined) return { kind: 'name', name: id.image, span };
    const a = ch<ArgsCh>(args);
    const list = (a.expression ?? []).map((e) => this.expr(e));
    const close = [a.RParen?.[0], a.RBracket?.[0]].find(isReal);
    const open = a.LParen?.[0] ?? a.LBracket?.[0];
    const end = close ? this.span(close) : (list.at(-1)?.span ?? this.span(open));
    const whole = cover(span, end);
    return c.callArgs
      ? { kind: 'call', callee: id.image, calleeSpan: span, args: list, span: whole }
      : { kind: 'index', tensor: id.image, tensorSpan: span, indices: list, span: whole };
  }
}

/** Builds the AST; `diagnostics` are the operator typos it repaired (`=` for `==`, …). */
export function cstToAst(
  cst: CstNode,
  file: string,
  comments: AttachedComments,
  features: Partial<FrontFeatures>,
): { program: Program; diagnostics: Diagnostic[] } {
  const b = new Builder(file, comments, features);
  return { program: b.program(cst), diagnostics: b.diags };
}
