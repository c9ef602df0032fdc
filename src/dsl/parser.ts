// The .attn grammar as a chevrotain CstParser. Error recovery is on so that one typo does not
// hide the errors after it; the CST may then have missing children (see cst-to-ast.ts).
// One rule per precedence level, loosest first: ?: || && (== !=) (< <= > >=) (+ -) (* / %) unary.
import {
  EOF,
  type CstNode,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IToken,
  type TokenType,
} from 'chevrotain';
import * as T from './lexer.js';
import { skipGrammarChecks } from './grammar-checks.js';
import { lineStartLookahead, type RepetitionRecovery } from './body-recovery.js';
import { StorageRules } from './parser-storage.js';

export { splitParseMessage } from './parse-hint.js';

/**
 * The wording of the parse in progress (parser-messages.ts's, passed to parseTokens): the parser
 * is built once, so its message provider reads this. Without one a message is empty: the front
 * end's lazy use (front-async.ts) parses again with the wording once there is an error.
 */
let wording: IParserErrorMessageProvider | undefined;
const errorMessageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: (o) => wording?.buildMismatchTokenMessage(o) ?? '',
  buildNotAllInputParsedMessage: (o) => wording?.buildNotAllInputParsedMessage(o) ?? '',
  buildNoViableAltMessage: (o) => wording?.buildNoViableAltMessage(o) ?? '',
  buildEarlyExitMessage: (o) => wording?.buildEarlyExitMessage(o) ?? '',
};

/** chevrotain's own in-repetition recovery, which AttnParser's override delegates to. */
const chevrotainRecovery = StorageRules.prototype as unknown as RepetitionRecovery;

class AttnParser extends StorageRules {
  constructor() {
    super(T.allTokens, {
      recoveryEnabled: true,
      errorMessageProvider,
      maxLookahead: 2,
      skipValidations: skipGrammarChecks,
    });
    this.performSelfAnalysis();
  }

  /** The token the parser is at (where it stopped, after an overflow). */
  nextToken(): IToken {
    return this.LA(1);
  }

  /**
   * chevrotain calls this (when recovery is on) to skip to where a repetition can go on; in a
   * declaration body (the repetition before `}`) it also stops at the next line (body-recovery.ts).
   */
  tryInRepetitionRecovery(
    ...[rule, args, lookAhead, expected]: Parameters<RepetitionRecovery['tryInRepetitionRecovery']>
  ): void {
    const inBody = expected === T.RBrace;
    const resumeAt = inBody ? lineStartLookahead((k) => this.LA(k), lookAhead.bind(this)) : lookAhead;
    chevrotainRecovery.tryInRepetitionRecovery.call(this, rule, args, resumeAt, expected);
  }

  readonly program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.attentionDecl));
    this.CONSUME(EOF);
  });

  readonly attentionDecl = this.RULE('attentionDecl', () => {
    this.CONSUME(T.Attention);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.param) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.statement));
    this.CONSUME(T.RBrace);
  });

  readonly param = this.RULE('param', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeSpec);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expression);
    });
  });

  readonly typeSpec = this.RULE('typeSpec', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.IntKw) },
      { ALT: () => this.CONSUME(T.BoolKw) },
      {
        ALT: () => {
          this.CONSUME(T.I32Kw);
          this.SUBRULE(this.dims);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.F32Kw);
          this.OPTION1(() => this.SUBRULE1(this.dims));
        },
      },
    ]);
  });

  readonly dims = this.RULE('dims', () => {
    this.CONSUME(T.LBracket);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.dim) });
    this.CONSUME(T.RBracket);
  });

  readonly dim = this.RULE('dim', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(T.IntLit) }]);
  });

  readonly statement = this.RULE('statement', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Let);
          this.CONSUME(T.Identifier);
          this.CONSUME(T.Equals);
          this.SUBRULE(this.expression);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Mask);
          this.SUBRULE1(this.expression);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Score);
          this.SUBRULE2(this.expression);
        },
      },
      { ALT: () => this.SUBRULE(this.sparsityStmt) },
      { ALT: () => this.SUBRULE(this.storageStmt) },
      { ALT: () => this.SUBRULE(this.importanceStmt) },
      { ALT: () => this.SUBRULE(this.cacheStmt) },
      { ALT: () => this.SUBRULE(this.qkStmt) },
      { ALT: () => this.SUBRULE(this.pvStmt) },
    ]);
  });

  /** `cond ? then : otherwise`, right-associative; `cond` is an `||` expression. */
  readonly expression = this.RULE('expression', () => {
    this.SUBRULE(this.orExpr, { LABEL: 'cond' });
    this.OPTION(() => {
      this.CONSUME(T.Question);
      this.SUBRULE(this.expression, { LABEL: 'then' });
      this.CONSUME(T.Colon);
      this.SUBRULE1(this.expression, { LABEL: 'otherwise' });
    });
  });

  readonly orExpr = this.binaryLevel('orExpr', T.OrOp, () => this.andExpr);
  readonly andExpr = this.binaryLevel('andExpr', T.AndOp, () => this.eqExpr);
  readonly eqExpr = this.binaryLevel('eqExpr', T.EqOp, () => this.relExpr);
  readonly relExpr = this.binaryLevel('relExpr', T.RelOp, () => this.addExpr);
  readonly addExpr = this.binaryLevel('addExpr', T.AddOp, () => this.mulExpr);
  readonly mulExpr = this.binaryLevel('mulExpr', T.MulOp, () => this.unaryExpr);

  readonly unaryExpr: () => CstNode = this.RULE('unaryExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.OR1([
            { ALT: () => this.CONSUME(T.Minus, { LABEL: 'op' }) },
            { ALT: () => this.CONSUME(T.Bang, { LABEL: 'op' }) },
          ]);
          this.SUBRULE(this.unaryExpr, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.atom) },
    ]);
  });

  readonly atom = this.RULE('atom', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.FloatLit) },
      { ALT: () => this.CONSUME(T.IntLit) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.Score) },
      {
        // `route`/`select`/`emit` are names too, except where they plainly start a statement:
        // then an expression cut short (`mask causal &&`) reports the missing operand there.
        GATE: () => !this.startsSparsity() && !this.startsStorage(),
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() =>
            this.OR1([
              { ALT: () => this.SUBRULE(this.callArgs) },
              { ALT: () => this.SUBRULE(this.indexArgs) },
            ]),
          );
        },
      },
      {
        // `int(x)`: the conversion shares its name with the type keyword.
        ALT: () => {
          this.CONSUME(T.IntKw);
          this.SUBRULE1(this.callArgs);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME(T.RParen);
        },
      },
    ]);
  });

  readonly callArgs = this.RULE('callArgs', () => {
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
    this.CONSUME(T.RParen);
  });

  readonly indexArgs = this.RULE('indexArgs', () => {
    this.CONSUME(T.LBracket);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expression) });
    this.CONSUME(T.RBracket);
  });

  /** `next (op next)*` with operands and operators labelled so the AST builder can fold left. */
  private binaryLevel(name: string, op: TokenType, next: () => () => CstNode): () => CstNode {
    return this.RULE(name, () => {
      this.SUBRULE(next(), { LABEL: 'operands' });
      this.MANY(() => {
        this.CONSUME(op, { LABEL: 'operators' });
        this.SUBRULE1(next(), { LABEL: 'operands' });
      });
    });
  }
}

// Built once: grammar analysis is the expensive part and the REPL parses on every keystroke.
const parser = new AttnParser();

export interface ParseResult {
  readonly cst: CstNode;
  readonly errors: readonly IRecognitionException[];
  /**
   * Set when the parser ran out of stack (the CST is then empty): only possible where error
   * recovery joined several expressions into one, each within the limits of limits.ts.
   */
  readonly outOfStackAt?: IToken;
}

/** Parses lexed tokens (comments excluded), its errors worded by `messages`. Never throws. */
export function parseTokens(
  tokens: IToken[],
  messages: IParserErrorMessageProvider | undefined,
): ParseResult {
  wording = messages;
  parser.input = tokens;
  try {
    const cst = parser.program();
    return { cst, errors: parser.errors };
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const at = parser.nextToken();
    const errors = parser.errors;
    parser.input = []; // resets the rule stack the overflow left behind
    return { cst: { name: 'program', children: {} }, errors, outOfStackAt: at };
  }
}
