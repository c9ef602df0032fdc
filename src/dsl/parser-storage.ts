// The grammar of `store` and `importance` (docs/LANGUAGE.md, "K/V storage formats"), as a base
// class of the .attn parser (see parser-sparsity.ts for why a base class). Element types,
// dtypes and granularities are read as plain words: the AST builder (cst-storage.ts) checks
// them with a did-you-mean, which reads better than a parser's list of expected tokens.
import * as T from './lexer.js';
import { SparsityRules } from './parser-sparsity.js';

/** Parse messages of these rules, per `rule/TokenName` (merged into parser.ts's table). */
export const storageExpectations: Record<string, string> = {
  'storageStmt/Identifier': '`k`, `v` or `kv` after `store`',
  'storageClause/Per': '`per` and what one scale covers (`tensor`, `token` or `channel`)',
  'storageClause/From': '`from` and the tensor that marks the salient tokens',
  'storageClause/Identifier': 'the name of the tensor that marks the salient tokens',
  'scaleUnit/Identifier': '`tensor`, `token` or `channel` after `per`',
  'storageWord/Identifier': 'a type like `int4`, `e4m3`, `f16` or `f32`',
  'cacheStmt/Identifier': '`paged` after `cache`',
  'cacheStmt/IntLit': 'the page size in rows, a power of two like `64`',
  'qkStmt/Identifier': '`int8` after `qk`, or `k` after `smooth`',
  'pvStmt/Identifier': '`e4m3` after `pv`, or `v` after `smooth`',
};

/** Alternatives' descriptions of these rules (merged into parser.ts's table). */
export const storageAlternatives: Record<string, string> = {
  storageWord: 'a type like `int4`, `e4m3`, `f16` or `f32`',
  storageClause: '`scale`, `zero`, `norm`, `recent` or `salient`',
  groupSize: 'the group size after `group`, a count like `32`',
};

/** Words that start a storage clause. */
const clauseHeads = [T.ScaleKw, T.Zero, T.Norm, T.Recent, T.Salient];
/** What follows a clause word in its clause (a type, or `recent`'s count); never an operator. */
const clauseOperands = [T.Identifier, T.F32Kw, T.IntKw, T.I32Kw, T.BoolKw, T.IntLit];

export abstract class StorageRules extends SparsityRules {
  /** True at `store NAME`, `importance NAME`, `cache NAME`, `qk NAME` or `pv NAME`: a statement, not a name in an expression. */
  protected startsStorage(): boolean {
    const verb = this.LA(1).tokenType;
    const statement =
      verb === T.Store || verb === T.Importance || verb === T.Cache || verb === T.Qk || verb === T.Pv;
    return statement && this.LA(2).tokenType === T.Identifier;
  }

  // `store TARGET ELEM CLAUSE*`: loose on purpose (any clause, any order, repeats); the AST
  // builder and the checker explain what is wrong.
  readonly storageStmt = this.RULE('storageStmt', () => {
    this.CONSUME(T.Store);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.storageWord, { LABEL: 'elem' });
    this.MANY(() => this.SUBRULE(this.storageClause));
  });

  /** `cache paged N` (cache-stmt.ts): the layout word is checked by the AST builder. */
  readonly cacheStmt = this.RULE('cacheStmt', () => {
    this.CONSUME(T.Cache);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.IntLit);
  });

  /** `qk ELEM [smooth TENSOR]` (qk-stmt.ts): the words are checked by the AST builder. */
  readonly qkStmt = this.RULE('qkStmt', () => {
    this.CONSUME(T.Qk);
    this.CONSUME(T.Identifier, { LABEL: 'elem' });
    this.OPTION(() => {
      this.CONSUME(T.Smooth);
      this.CONSUME2(T.Identifier, { LABEL: 'smoothed' });
    });
  });

  /** `pv ELEM [smooth TENSOR]` (pv-stmt.ts): the words are checked by the AST builder. */
  readonly pvStmt = this.RULE('pvStmt', () => {
    this.CONSUME(T.Pv);
    this.CONSUME(T.Identifier, { LABEL: 'elem' });
    this.OPTION(() => {
      this.CONSUME(T.Smooth);
      this.CONSUME2(T.Identifier, { LABEL: 'smoothed' });
    });
  });

  readonly importanceStmt = this.RULE('importanceStmt', () => {
    this.CONSUME(T.Importance);
    this.CONSUME(T.Identifier);
  });

  /** A type word: a name (`int4`, `e4m3`, `f16`, `bf16`) or a type keyword (`f32`, `int`, …). */
  readonly storageWord = this.RULE('storageWord', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.F32Kw) },
      { ALT: () => this.CONSUME(T.IntKw) },
      { ALT: () => this.CONSUME(T.I32Kw) },
      { ALT: () => this.CONSUME(T.BoolKw) },
    ]);
  });

  readonly storageClause = this.RULE('storageClause', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.ScaleKw);
          this.SUBRULE(this.storageWord, { LABEL: 'dtype' });
          this.CONSUME(T.Per);
          this.SUBRULE(this.scaleUnit);
          this.OPTION(() => {
            this.CONSUME(T.Group);
            this.SUBRULE(this.groupSize);
          });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Zero);
          this.SUBRULE1(this.storageWord, { LABEL: 'dtype' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Norm);
          this.SUBRULE2(this.storageWord, { LABEL: 'dtype' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Recent);
          this.SUBRULE1(this.expression);
          this.SUBRULE3(this.storageWord, { LABEL: 'dtype' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Salient);
          this.SUBRULE4(this.storageWord, { LABEL: 'dtype' });
          this.CONSUME(T.From);
          this.CONSUME1(T.Identifier, { LABEL: 'tensor' });
        },
      },
    ]);
  });

  /**
   * The count after `group`: an expression, except that the next clause is not read as one. The
   * clause words are soft keywords, so `group zero f16` (size left out) took `zero` for the size
   * and failed at `f16`; a clause word followed by what its clause takes is that clause.
   */
  readonly groupSize = this.RULE('groupSize', () => {
    this.OR([{ GATE: () => !this.clauseAhead(), ALT: () => this.SUBRULE(this.expression) }]);
  });

  private clauseAhead(): boolean {
    const [head, operand] = [this.LA(1).tokenType, this.LA(2).tokenType];
    return clauseHeads.includes(head) && clauseOperands.includes(operand);
  }

  readonly scaleUnit = this.RULE('scaleUnit', () => {
    this.CONSUME(T.Identifier);
  });
}
