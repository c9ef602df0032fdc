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
import { StorageRules, storageAlternatives, storageExpectations } from './parser-storage.js';

/** Separates a parse message from its hint inside chevrotain's single message string. */
const HINT = '\u0001';

export function splitParseMessage(m: string): { message: string; hint?: string } {
  const i = m.indexOf(HINT);
  return i < 0 ? { message: m } : { message: m.slice(0, i), hint: m.slice(i + 1) };
}

/** What the parser wanted, per `rule/TokenName`, phrased for people. */
const expectations: Record<string, string> = {
  'program/EOF': '`attention`',
  'attentionDecl/Identifier': 'a name after `attention`',
  'attentionDecl/LParen': '`(` to open the parameter list',
  'attentionDecl/RParen': '`)` to close the parameter list',
  'attentionDecl/LBrace': '`{` to open the declaration body',
  'attentionDecl/RBrace':
    'a statement (`let`, `mask`, `score`, `route`, `select`, `emit`, `store` or `importance`) or `}`',
  'param/Identifier': 'a parameter name',
  'param/Colon': '`:` and a type after the parameter name',
  'dims/LBracket': '`[` and the dimensions of the tensor',
  'dims/RBracket': '`,` or `]` in the dimension list',
  'statement/Identifier': 'a name after `let`',
  'statement/Equals': '`=` after the name',
  'expression/Colon': '`:` of the conditional expression',
  'atom/RParen': '`)` to close the parenthesis',
  'callArgs/RParen': '`)` to close the argument list',
  'indexArgs/RBracket': '`]` to close the index list',
  'unit/LParen': '`(` after the unit',
  'unit/RParen': '`)` to close the unit',
  'unit/Identifier': 'the name of an `i32[kv]` tensor of chunk ids',
  'source/LParen': '`(` and how many to keep',
  'source/RParen': '`)` after the count',
  'source/By': '`by` and an affinity like `mean(q) . mean(k)`',
  'source/Dot': '`.` between the query side and the key side',
  'source/Identifier': 'the name of an index tensor after `from`',
  'affinitySide/Identifier': '`q`, `k`, or a pooling like `mean(k)`',
  'affinitySide/RParen': '`)` to close the pooling',
  'clause/Identifier': '`heads` or `groups` after `vote`',
  'clause/Indices': '`indices` after `emit`',
  'forced/LParen': '`(` and a count',
  'forced/RParen': '`)` after the count',
  ...storageExpectations,
};

const alternatives: Record<string, string> = {
  atom: 'an expression',
  unaryExpr: 'an expression',
  indexArgs: 'an index expression',
  statement: 'a statement (`let`, `mask`, `score`, `route`, `select`, `emit`, `store` or `importance`)',
  typeSpec: 'a type (`int`, `f32`, `bool`, or a tensor type like `f32[heads]`)',
  dims: 'a dimension (`kv`, `queries`, `heads`, `kv_heads`, `batch`, a positive int, or an int parameter)',
  dim: 'a dimension (`kv`, `queries`, `heads`, `kv_heads`, `batch`, a positive int, or an int parameter)',
  unit: 'a unit (`blocks(n)` or `chunks(ids)`)',
  source: '`topk(n) by …` or `from idx`',
  clause: '`vote`, `force` or `emit indices`',
  forced: '`first(n)` or `local(n)`',
  ...storageAlternatives,
};

/** What a repetition needs at least once, per rule (where that differs from `alternatives`). */
const earlyExits: Record<string, string> = {
  clause: '`first(n)` or `local(n)` after `force`',
};

function describe(t: IToken | undefined): string {
  if (t === undefined || t.tokenType === EOF) return 'end of file';
  return t.image.length > 20 ? `\`${t.image.slice(0, 20)}…\`` : `\`${t.image}\``;
}

const isKeyword = (t: IToken): boolean => /^[a-z][a-z0-9]*$/.test(t.image) && t.tokenType !== T.Identifier;

function hintFor(
  ruleName: string,
  expected: TokenType | undefined,
  actual: IToken | undefined,
): string | undefined {
  if (actual === undefined) return undefined;
  const want = expected?.name;
  if (want === 'Identifier' && isKeyword(actual)) return `\`${actual.image}\` is a reserved word`;
  if (actual.tokenType === T.Attention && want === 'RBrace') return 'is a `}` missing above?';
  if (ruleName === 'program' && [T.Mask, T.Score, T.Let].includes(actual.tokenType)) {
    return 'statements go inside `attention NAME(…) { … }`';
  }
  if (actual.tokenType === T.Dot && want !== 'Dot') return 'write numbers with a leading digit, like `0.5`';
  const startsValue = [T.Identifier, T.IntLit, T.FloatLit].includes(actual.tokenType);
  if (startsValue && ruleName === 'attentionDecl' && want === 'RParen') return 'separate parameters with `,`';
  if (startsValue && (ruleName === 'callArgs' || ruleName === 'indexArgs'))
    return 'separate arguments with `,`';
  return undefined;
}

function message(what: string, ruleName: string, expected: TokenType | undefined, actual?: IToken): string {
  const hint = hintFor(ruleName, expected, actual);
  const m = `expected ${what}, found ${describe(actual)}`;
  return hint === undefined ? m : `${m}${HINT}${hint}`;
}

const label = (t: TokenType): string => t.LABEL ?? t.name;

const errorMessageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, ruleName }) {
    const what = expectations[`${ruleName}/${expected.name}`] ?? label(expected);
    return message(what, ruleName, expected, actual);
  },
  buildNotAllInputParsedMessage({ firstRedundant, ruleName }) {
    return message('`attention`', ruleName, undefined, firstRedundant);
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => path[0]));
    const what = alternatives[ruleName] ?? oneOf(firsts.filter((t): t is TokenType => t !== undefined));
    return message(what, ruleName, undefined, actual[0]);
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const firsts = expectedIterationPaths
      .map((path) => path[0])
      .filter((t): t is TokenType => t !== undefined);
    const what = earlyExits[ruleName] ?? alternatives[ruleName] ?? oneOf(firsts);
    return message(what, ruleName, undefined, actual[0]);
  },
};

function oneOf(types: readonly TokenType[]): string {
  const labels = [...new Set(types.map(label))];
  if (labels.length <= 1) return labels[0] ?? 'something else';
  return `${labels.slice(0, -1).join(', ')} or ${labels[labels.length - 1]}`;
}

class AttnParser extends StorageRules {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, errorMessageProvider, maxLookahead: 2 });
    this.performSelfAnalysis();
  }

  /** The token the parser is at (where it stopped, after an overflow). */
  nextToken(): IToken {
    return this.LA(1);
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

/** Parses lexed tokens (comments excluded). Never throws. */
export function parseTokens(tokens: IToken[]): ParseResult {
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
