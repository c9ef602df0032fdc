// The grammar of `route`, `select` and `emit` (docs/LANGUAGE.md, "Pooling, routing and
// selection"), as a base class of the .attn parser: chevrotain records every rule of the class
// chain in the subclass's performSelfAnalysis, so these rules may use `expression` from it.
import { CstParser, type CstNode, type ParserMethod } from 'chevrotain';
import * as T from './lexer.js';

export abstract class SparsityRules extends CstParser {
  abstract readonly expression: ParserMethod<[], CstNode>;

  /** True at `route|select|emit` followed by a unit or a source: a statement, not a name. */
  protected startsSparsity(): boolean {
    const verb = this.LA(1).tokenType;
    const next = this.LA(2).tokenType;
    return T.sparsityKeywords.includes(verb) && [T.Blocks, T.Chunks, T.Topk, T.From].includes(next);
  }

  // `route|select|emit UNIT? SOURCE CLAUSE*`. The grammar is deliberately loose (any verb with
  // any unit, clauses in any order): the checker explains what is missing or misplaced.
  readonly sparsityStmt = this.RULE('sparsityStmt', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Route) },
      { ALT: () => this.CONSUME(T.Select) },
      { ALT: () => this.CONSUME(T.Emit) },
    ]);
    this.OPTION(() => this.SUBRULE(this.unit));
    this.SUBRULE(this.source);
    // `emit` starts a clause only as `emit indices`; otherwise it is the next statement.
    this.MANY({
      GATE: () => this.LA(1).tokenType !== T.Emit || this.LA(2).tokenType === T.Indices,
      DEF: () => this.SUBRULE(this.clause),
    });
  });

  readonly unit = this.RULE('unit', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Blocks);
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Chunks);
          this.CONSUME1(T.LParen);
          this.CONSUME(T.Identifier);
          this.CONSUME1(T.RParen);
        },
      },
    ]);
  });

  readonly source = this.RULE('source', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Topk);
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME(T.RParen);
          this.CONSUME(T.By);
          this.SUBRULE(this.affinitySide, { LABEL: 'qSide' });
          this.CONSUME(T.Dot);
          this.SUBRULE1(this.affinitySide, { LABEL: 'kSide' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.From);
          this.CONSUME(T.Identifier);
        },
      },
    ]);
  });

  /** `q`, `k`, or `REDUCER(q|k)`; which names are valid is the AST builder's business. */
  readonly affinitySide = this.RULE('affinitySide', () => {
    this.CONSUME(T.Identifier, { LABEL: 'head' });
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.CONSUME1(T.Identifier, { LABEL: 'operand' });
      this.CONSUME(T.RParen);
    });
  });

  readonly clause = this.RULE('clause', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Vote);
          this.CONSUME(T.Identifier);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Force);
          this.AT_LEAST_ONE(() => this.SUBRULE(this.forced));
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Emit);
          this.CONSUME(T.Indices);
        },
      },
    ]);
  });

  readonly forced = this.RULE('forced', () => {
    this.OR([{ ALT: () => this.CONSUME(T.First) }, { ALT: () => this.CONSUME(T.Local) }]);
    this.CONSUME(T.LParen);
    this.SUBRULE(this.expression);
    this.CONSUME(T.RParen);
  });
}
