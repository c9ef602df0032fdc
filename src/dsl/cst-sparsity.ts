// CST → AST for `route`, `select` and `emit` (the `sparsityStmt` rule of parser.ts). Like the
// rest of the AST builder it never throws on a partial CST. The grammar reads the affinity's
// sides and the vote target as plain names; the words allowed there are checked here, with a
// did-you-mean, because they are part of the statement's syntax rather than names in scope.
import type { CstNode, IToken } from 'chevrotain';
import type { Diagnostic, Span } from '../diagnostics.js';
import {
  poolReducers,
  type AffinitySide,
  type Expr,
  type ForcedUnits,
  type PoolReducer,
  type SelectionSource,
  type SelectionUnit,
  type SparsityStmt,
} from './ast.js';
import { ch, PieceReader, q } from './cst-pieces.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

type Tok = IToken[] | undefined;
type Node = CstNode[] | undefined;

/** What the sparsity builder needs from the main AST builder (cst-to-ast.ts). */
export interface AstBuilder {
  readonly diags: Diagnostic[];
  /** The token's span; for a missing token, an empty span after the last real one. */
  span(t: IToken | undefined): Span;
  expr(n: CstNode | undefined): Expr;
  /** True for a token the source really contains (not one made up by error recovery). */
  isReal(t: IToken | undefined): t is IToken;
}

interface StmtCh {
  Route?: Tok;
  Select?: Tok;
  Emit?: Tok;
  unit?: Node;
  source?: Node;
  clause?: Node;
}
interface UnitCh {
  Blocks?: Tok;
  Chunks?: Tok;
  expression?: Node;
  Identifier?: Tok;
  RParen?: Tok;
}
interface SourceCh {
  Topk?: Tok;
  From?: Tok;
  expression?: Node;
  Identifier?: Tok;
  qSide?: Node;
  kSide?: Node;
}
interface SideCh {
  head?: Tok;
  operand?: Tok;
  RParen?: Tok;
}
interface ClauseCh {
  Vote?: Tok;
  Identifier?: Tok;
  Force?: Tok;
  forced?: Node;
  Emit?: Tok;
  Indices?: Tok;
}
interface ForcedCh {
  First?: Tok;
  Local?: Tok;
  expression?: Node;
  RParen?: Tok;
}

class SparsityBuilder extends PieceReader {
  private expr(n: CstNode | undefined): Expr {
    const e = this.b.expr(n);
    if (e.span.length > 0) this.end = e.span;
    return e;
  }

  build(kind: SparsityStmt['kind'], keywordSpan: Span, c: StmtCh): SparsityStmt {
    const unitNode = c.unit?.[0];
    const unit = unitNode ? this.unit(ch<UnitCh>(unitNode)) : undefined;
    const source = this.source(ch<SourceCh>(c.source?.[0]));
    let vote: SparsityStmt['vote'];
    const force: ForcedUnits[] = [];
    let emitIndices: Span | undefined;
    for (const n of c.clause ?? []) {
      const cl = ch<ClauseCh>(n);
      if (cl.Vote) {
        const kw = this.at(cl.Vote[0]);
        const over = this.vote(cl.Identifier?.[0]);
        if (vote) this.twice('vote', kw, vote.span);
        else if (over) vote = { over, span: this.upTo(kw) };
      } else if (cl.Force) {
        this.at(cl.Force[0]);
        for (const item of cl.forced ?? []) {
          const f = this.forced(ch<ForcedCh>(item));
          const prev = force.find((x) => x.kind === f.kind);
          if (prev) this.twice(`${f.kind}(…)`, f.span, prev.span);
          else force.push(f);
        }
      } else if (cl.Emit) {
        const kw = this.at(cl.Emit[0]);
        this.at(cl.Indices?.[0]);
        if (emitIndices) this.twice('emit indices', kw, emitIndices);
        else emitIndices = this.upTo(kw);
      }
    }
    return {
      kind,
      keywordSpan,
      ...(unit ? { unit } : {}),
      source,
      ...(vote ? { vote } : {}),
      // Canonical order (first, then local), so a reordered clause prints and compares the same.
      force: force.sort((a, b) => a.kind.localeCompare(b.kind)),
      ...(emitIndices ? { emitIndices } : {}),
      span: this.upTo(keywordSpan),
    };
  }

  private twice(what: string, span: Span, first: Span): void {
    const where = first.line === span.line ? `column ${first.column}` : `line ${first.line}`;
    this.err(`\`${what}\` is given twice`, span, `the first is at ${where}`);
  }

  private unit(c: UnitCh): SelectionUnit {
    const kw = c.Blocks?.[0] ?? c.Chunks?.[0];
    const start = this.at(kw);
    if (c.Blocks) {
      const size = this.expr(c.expression?.[0]);
      this.at(c.RParen?.[0]);
      return { kind: 'blocks', size, span: this.upTo(start) };
    }
    const id = c.Identifier?.[0];
    const tensorSpan = this.at(id);
    this.at(c.RParen?.[0]);
    const tensor = this.b.isReal(id) ? id.image : '';
    return { kind: 'chunks', tensor, tensorSpan, span: this.upTo(start) };
  }

  private source(c: SourceCh): SelectionSource {
    if (c.From) {
      const start = this.at(c.From[0]);
      const id = c.Identifier?.[0];
      const tensorSpan = this.at(id);
      const tensor = this.b.isReal(id) ? id.image : '';
      return { kind: 'from', tensor, tensorSpan, span: this.upTo(start) };
    }
    const start = this.at(c.Topk?.[0]);
    const count = this.expr(c.expression?.[0]);
    const qSide = this.side(ch<SideCh>(c.qSide?.[0]), 'q');
    const kSide = this.side(ch<SideCh>(c.kSide?.[0]), 'k');
    const by = { q: qSide, k: kSide, span: cover(qSide.span, kSide.span) };
    return { kind: 'topk', count, by, span: this.upTo(start) };
  }

  /** `q`, `k` or `REDUCER(q|k)`; `want` is the operand this side must name. */
  private side(c: SideCh, want: 'q' | 'k'): AffinitySide {
    const head = c.head?.[0];
    const headSpan = this.at(head);
    const operand = c.operand?.[0];
    const opSpan = this.at(operand);
    this.at(c.RParen?.[0]);
    const span = this.upTo(headSpan);
    if (!this.b.isReal(head)) return { reducer: 'raw', span };
    const other = want === 'q' ? 'k' : 'q';
    const order = `write the query side first, like ${q('mean(q) . mean(k)')}`;
    if (operand === undefined) {
      if (head.image === other) this.err(`expected ${q(want)} here, found ${q(other)}`, headSpan, order);
      else if (head.image !== want) {
        const hint = (poolReducers as readonly string[]).includes(head.image)
          ? `pool it like ${q(`${head.image}(${want})`)}`
          : didYouMean(head.image, [want]);
        this.err(
          `expected ${q(want)} or a pooling like ${q(`mean(${want})`)}, found ${q(head.image)}`,
          headSpan,
          hint,
        );
      }
      return { reducer: 'raw', span };
    }
    const reducer = poolReducers.find((r) => r === head.image);
    if (reducer === undefined) {
      const hint = didYouMean(head.image, poolReducers) ?? `one of ${poolReducers.map(q).join(', ')}`;
      this.err(`unknown pooling ${q(head.image)}`, headSpan, hint);
    }
    if (this.b.isReal(operand) && operand.image !== want) {
      const found = `found ${q(operand.image)}`;
      if (operand.image === other) this.err(`expected ${q(want)} here, ${found}`, opSpan, order);
      else this.err(`a pooling takes ${q(want)} on this side, ${found}`, opSpan);
    }
    return { reducer: reducer ?? ('mean' satisfies PoolReducer), span };
  }

  private vote(t: IToken | undefined): 'heads' | 'groups' | undefined {
    const s = this.at(t);
    if (!this.b.isReal(t)) return undefined;
    if (t.image === 'heads' || t.image === 'groups') return t.image;
    const hint =
      didYouMean(t.image, ['heads', 'groups']) ?? 'vote across all `heads`, or the `groups` of a kv head';
    this.err(`expected \`heads\` or \`groups\` after \`vote\`, found ${q(t.image)}`, s, hint);
    return undefined;
  }

  private forced(c: ForcedCh): ForcedUnits {
    const kw = c.First?.[0] ?? c.Local?.[0];
    const start = this.at(kw);
    const count = this.expr(c.expression?.[0]);
    this.at(c.RParen?.[0]);
    return { kind: c.First ? 'first' : 'local', count, span: this.upTo(start) };
  }
}

/** Builds a `route`/`select`/`emit` statement from its CST node. */
export function buildSparsity(b: AstBuilder, n: CstNode): SparsityStmt | undefined {
  const c = ch<StmtCh>(n);
  const kw = c.Route?.[0] ?? c.Select?.[0] ?? c.Emit?.[0];
  if (!b.isReal(kw)) return undefined;
  const kind = c.Route ? 'route' : c.Select ? 'select' : 'emit';
  const keywordSpan = b.span(kw);
  return new SparsityBuilder(b, keywordSpan).build(kind, keywordSpan, c);
}
