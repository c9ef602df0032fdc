// Parse error messages of the .attn grammar (parser.ts): what each rule wanted, phrased for
// people, with a hint where a common mistake is likely. chevrotain takes one message string, so
// the hint travels inside it after a separator (splitParseMessage takes it apart).
import { EOF, tokenMatcher, type IParserErrorMessageProvider, type IToken, type TokenType } from 'chevrotain';
import * as T from './lexer.js';
import { storageAlternatives, storageExpectations } from './parser-storage.js';
import { HINT } from './parse-hint.js';
import { didYouMean, foreignHint } from './suggest.js';

/** Every word that starts a statement, in the order the docs introduce them. */
const statementWords = [
  'let',
  'mask',
  'score',
  'route',
  'select',
  'emit',
  'store',
  'importance',
  'cache',
  'qk',
  'pv',
];
const statementList = `a statement (${orList(statementWords.map((w) => `\`${w}\``))})`;

/**
 * Words a misspelt one at a statement's start was likely meant to be: a statement, or a clause
 * of the statement before it (recovery ends a statement at its first unknown word, so `forse`
 * in a `route` is reported where the next statement was wanted).
 */
const statementOrClauseWords = [
  ...statementWords,
  ...['vote', 'force', 'first', 'local', 'indices', 'heads', 'groups'],
  ...['scale', 'per', 'group', 'zero', 'norm', 'recent', 'salient', 'smooth'],
];

/** Near misses worth a "did you mean", per rule where the parser wanted one word of a few. */
const typoCandidates: Record<string, readonly string[]> = {
  attentionDecl: statementOrClauseWords,
  statement: statementOrClauseWords,
  program: ['attention'],
  source: ['topk', 'from', 'blocks', 'chunks'],
  typeSpec: ['int', 'f32', 'bool', 'i32'],
  clause: ['vote', 'force', 'emit'],
  forced: ['first', 'local'],
};

/** What the parser wanted, per `rule/TokenName`, phrased for people. */
const expectations: Record<string, string> = {
  'program/EOF': '`attention`',
  'attentionDecl/Identifier': 'a name after `attention`',
  'attentionDecl/LParen': '`(` to open the parameter list',
  'attentionDecl/RParen': '`)` to close the parameter list',
  'attentionDecl/LBrace': '`{` to open the declaration body',
  'attentionDecl/RBrace': `${statementList} or \`}\``,
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
  statement: statementList,
  typeSpec: 'a type (`int`, `f32`, `bool`, or a tensor type like `f32[heads]`)',
  dims: 'a dimension (`kv`, `queries`, `heads`, `kv_heads`, `batch`, a positive int, or an int parameter)',
  dim: 'a dimension (`kv`, `queries`, `heads`, `kv_heads`, `batch`, a positive int, or an int parameter)',
  unit: 'a unit (`blocks(n)` or `chunks(ids)`)',
  source: '`topk(n) by …` or `from idx`',
  clause: '`vote`, `force` or `emit indices`',
  forced: '`first(n)` or `local(n)`',
  ...storageAlternatives,
};

// Right after `route` (or `emit`) the unit is still possible, so the list names it too: a user
// who wrote `route foo …` needs to hear about `blocks(n)` first. `select` takes no unit.
const unitOrSource = 'a unit (`blocks(n)` or `chunks(ids)`) or a ranking (`topk(n) by …` or `from idx`)';
const takesUnit = (t: IToken | undefined): boolean =>
  t !== undefined && [T.Route, T.Emit].includes(t.tokenType);

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
  previous: IToken | undefined,
): string | undefined {
  if (actual === undefined) return undefined;
  const want = expected?.name;
  // A word on a later line is where something missing at the end of this one was wanted (the
  // caret goes there, index.ts): `select from` then `mask` is not a misuse of `mask`.
  const onLaterLine = previous !== undefined && (actual.startLine ?? 0) > (previous.endLine ?? 0);
  // A first parameter is optional (`()`), so a keyword there reads as a missing `)`.
  const firstParam = ruleName === 'attentionDecl' && want === 'RParen' && previous?.image === '(';
  if ((want === 'Identifier' || firstParam) && isKeyword(actual) && !onLaterLine)
    return `\`${actual.image}\` is a reserved word`;
  if (actual.tokenType === T.Attention && want === 'RBrace') return 'is a `}` missing above?';
  // An assignment (`score = score * 2.0`, as a score_mod's body might read): the keyword takes the
  // expression itself.
  if (actual.image === '=' && previous && [T.Mask, T.Score].includes(previous.tokenType))
    return `no \`=\`: write \`${previous.image} EXPR\`, like ${previous.image === 'mask' ? '`mask q >= k`' : '`score score * 2.0`'}`;
  // A FlexAttention mask_mod or score_mod pasted as Python.
  if (ruleName === 'program' && ['def', 'lambda', 'import', 'from'].includes(actual.image))
    return 'this is no Python: write `attention NAME() { mask q >= k }` (`mask` for a mask_mod, `score` for a score_mod)';
  if (ruleName === 'program' && [T.Mask, T.Score, T.Let].includes(actual.tokenType)) {
    return 'statements go inside `attention NAME(…) { … }`';
  }
  // `float(…)` and `int(…)` convert, so `bool(q)` reads as one; a comparison is how to write it.
  if (actual.tokenType === T.BoolKw && want === undefined)
    return 'there is no `bool(…)` conversion: compare instead, like `q != 0`';
  // (After a name it is a member access: index.ts's memberHint says so instead.)
  if (actual.tokenType === T.Dot && want !== 'Dot') return 'write numbers with a leading digit, like `0.5`';
  // Python's `**`: the second `*` is where an operand was wanted.
  if (actual.image === '*' && previous?.image === '*') return 'there is no `**`: write `x * x`';
  // Python's `and`, `or` end the expression before them; `not x` reads as the name `not`.
  const foreign = [actual, previous].find((t) => t && tokenMatcher(t, T.Identifier) && foreignHint(t.image));
  if (foreign && (ruleName === 'statement' || want === 'RBrace')) return foreignHint(foreign.image);
  const startsValue = [T.Identifier, T.IntLit, T.FloatLit].includes(actual.tokenType);
  if (startsValue && ruleName === 'attentionDecl' && want === 'RParen') return 'separate parameters with `,`';
  if (startsValue && (ruleName === 'callArgs' || ruleName === 'indexArgs'))
    return 'separate arguments with `,`';
  if (ruleName === 'groupSize' && tokenMatcher(actual, T.Identifier)) {
    return `\`${actual.image}\` starts the next clause: the count after \`group\` is missing`;
  }
  const closer = closers[actual.tokenType.name];
  if (closer !== undefined && (ruleName === 'statement' || want === 'RBrace')) {
    return `nothing is open here for \`${actual.image}\` to close: a \`${closer}\` missing, or one \`${actual.image}\` too many?`;
  }
  return typoHint(ruleName, want, actual);
}

/** The opener each closer wants, for a stray `)` or `]` where a statement should start. */
const closers: Record<string, string> = { RParen: '(', RBracket: '[' };

/** "did you mean `vote`?" for a misspelt word where the parser wanted one of a few words. */
function typoHint(ruleName: string, want: string | undefined, actual: IToken): string | undefined {
  if (!tokenMatcher(actual, T.Identifier)) return undefined;
  const wanted = want === 'By' ? ['by'] : typoCandidates[ruleName];
  if (wanted === undefined || wanted.includes(actual.image)) return undefined;
  return didYouMean(actual.image, wanted);
}

function message(
  what: string,
  ruleName: string,
  expected: TokenType | undefined,
  actual?: IToken,
  previous?: IToken,
): string {
  const hint = hintFor(ruleName, expected, actual, previous);
  const m = `expected ${what}, found ${describe(actual)}`;
  return hint === undefined ? m : `${m}${HINT}${hint}`;
}

const label = (t: TokenType): string => t.LABEL ?? t.name;

export const errorMessageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, previous, ruleName }) {
    const what = expectations[`${ruleName}/${expected.name}`] ?? label(expected);
    return message(what, ruleName, expected, actual, previous);
  },
  buildNotAllInputParsedMessage({ firstRedundant, ruleName }) {
    return message('`attention`', ruleName, undefined, firstRedundant);
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, previous, ruleName }) {
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => path[0]));
    const what =
      (ruleName === 'source' && takesUnit(previous) ? unitOrSource : undefined) ??
      alternatives[ruleName] ??
      oneOf(firsts.filter((t): t is TokenType => t !== undefined));
    return message(what, ruleName, undefined, actual[0], previous);
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, previous, ruleName }) {
    const firsts = expectedIterationPaths
      .map((path) => path[0])
      .filter((t): t is TokenType => t !== undefined);
    const what = earlyExits[ruleName] ?? alternatives[ruleName] ?? oneOf(firsts);
    return message(what, ruleName, undefined, actual[0], previous);
  },
};

function oneOf(types: readonly TokenType[]): string {
  return orList([...new Set(types.map(label))]);
}

/** `a, b or c`. */
function orList(words: readonly string[]): string {
  if (words.length <= 1) return words[0] ?? 'something else';
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}
