// Tokens of the .attn language. Comments are kept in a token group (not the parser's input) so
// that the file header and the doc comment above each `attention` can be recovered afterwards.
import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';
import { skipGrammarChecks } from './grammar-checks.js';
import { splitNumberSuffixes } from './number-suffix.js';
import { replaceStrings } from './strings.js';

export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  label: 'a name',
});

// `longer_alt` makes `maskx` an identifier rather than `mask` followed by `x`.
const keyword = (name: string, word: string): TokenType =>
  createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `\`${word}\`` });

export const Attention = keyword('Attention', 'attention');
export const Mask = keyword('Mask', 'mask');
export const Score = keyword('Score', 'score');
export const Let = keyword('Let', 'let');
export const True = keyword('True', 'true');
export const False = keyword('False', 'false');
export const IntKw = keyword('IntKw', 'int');
export const F32Kw = keyword('F32Kw', 'f32');
export const BoolKw = keyword('BoolKw', 'bool');
export const I32Kw = keyword('I32Kw', 'i32');

// Words of the routing statements are *soft* keywords: tokens of their own (so the grammar can
// tell its clauses apart) that also count as an Identifier, so `let first = …` or a parameter
// named `top`, `local` or `from` keep working as they did before these statements existed.
const softKeyword = (name: string, word: string): TokenType =>
  createToken({
    name,
    pattern: new RegExp(word),
    longer_alt: Identifier,
    categories: [Identifier],
    label: `\`${word}\``,
  });

export const Route = softKeyword('Route', 'route');
export const Select = softKeyword('Select', 'select');
export const Emit = softKeyword('Emit', 'emit');
export const Topk = softKeyword('Topk', 'topk');
export const By = softKeyword('By', 'by');
export const From = softKeyword('From', 'from');
export const Vote = softKeyword('Vote', 'vote');
export const Force = softKeyword('Force', 'force');
export const Blocks = softKeyword('Blocks', 'blocks');
export const Chunks = softKeyword('Chunks', 'chunks');
export const Indices = softKeyword('Indices', 'indices');
export const First = softKeyword('First', 'first');
export const Local = softKeyword('Local', 'local');
// K/V storage statements (`store`, `importance`) and the heads of their clauses.
export const Store = softKeyword('Store', 'store');
export const Importance = softKeyword('Importance', 'importance');
/** `cache paged N`: K/V rows addressed through a block table (cache-stmt.ts). */
export const Cache = softKeyword('Cache', 'cache');
/** `qk int8 [smooth k]`: SageAttention-style int8 Q·Kᵀ (qk-stmt.ts). */
export const Qk = softKeyword('Qk', 'qk');
/** `pv e4m3 [smooth v]`: SageAttention2-style fp8 P·V (pv-stmt.ts). */
export const Pv = softKeyword('Pv', 'pv');
export const Smooth = softKeyword('Smooth', 'smooth');
export const ScaleKw = softKeyword('ScaleKw', 'scale');
export const Zero = softKeyword('Zero', 'zero');
export const Norm = softKeyword('Norm', 'norm');
export const Recent = softKeyword('Recent', 'recent');
export const Salient = softKeyword('Salient', 'salient');
export const Per = softKeyword('Per', 'per');
export const Group = softKeyword('Group', 'group');
/** Statement keywords of the routing statements (for messages and error positions). */
export const sparsityKeywords: readonly TokenType[] = [Route, Select, Emit];
const softKeywords = [
  Route,
  Select,
  Emit,
  Topk,
  By,
  From,
  Vote,
  Force,
  Blocks,
  Chunks,
  Indices,
  First,
  Local,
  Store,
  Importance,
  Cache,
  Qk,
  Pv,
  Smooth,
  ScaleKw,
  Zero,
  Norm,
  Recent,
  Salient,
  Per,
  Group,
];

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /[ \t\r\n\f\v]+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n]*/, group: 'comments' });
export const BlockComment = createToken({
  name: 'BlockComment',
  pattern: /\/\*[\s\S]*?\*\//,
  group: 'comments',
  line_breaks: true,
});
// Matched only when BlockComment fails, i.e. there is no closing `*/`: reported as an error
// instead of lexing the rest of the file as `/`, `*`, ….
export const UnterminatedComment = createToken({
  name: 'UnterminatedComment',
  pattern: /\/\*[\s\S]*/,
  group: 'unterminated',
  line_breaks: true,
});

// A quoted string: one error over it (strings.ts), not one per quote.
export const StringLit = createToken({
  name: 'StringLit',
  pattern: /"[^"\n]*"?|'[^'\n]*'?/,
  group: 'strings',
});

// f32 literals need a `.` or an exponent; anything else made of digits is an int.
export const FloatLit = createToken({
  name: 'FloatLit',
  pattern: /\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+/,
  label: 'a number',
});
export const IntLit = createToken({ name: 'IntLit', pattern: /\d+/, label: 'an integer' });

const punct = (name: string, text: string, categories?: TokenType[]): TokenType =>
  createToken({
    name,
    pattern: new RegExp(text.replace(/[|&?*+()[\]{}/.]/g, '\\$&')),
    label: `\`${text}\``,
    ...(categories ? { categories } : {}),
  });

// Operator categories: the parser consumes "any additive operator" etc. per precedence level.
export const AddOp = createToken({ name: 'AddOp', pattern: Lexer.NA, label: '`+` or `-`' });
export const MulOp = createToken({ name: 'MulOp', pattern: Lexer.NA, label: '`*`, `/` or `%`' });
export const RelOp = createToken({ name: 'RelOp', pattern: Lexer.NA, label: 'a comparison' });
export const EqOp = createToken({ name: 'EqOp', pattern: Lexer.NA, label: '`==` or `!=`' });
export const AndOp = createToken({ name: 'AndOp', pattern: Lexer.NA, label: '`&&`' });
export const OrOp = createToken({ name: 'OrOp', pattern: Lexer.NA, label: '`||`' });

export const OrOr = punct('OrOr', '||', [OrOp]);
export const AndAnd = punct('AndAnd', '&&', [AndOp]);
// Common typos (`&`, `|`, and `=` for `==`) parse as the operator they were meant to be; the AST
// builder reports them. That avoids a cascade of errors from the rest of the expression.
export const Amp = punct('Amp', '&', [AndOp]);
export const Pipe = punct('Pipe', '|', [OrOp]);
export const EqEq = punct('EqEq', '==', [EqOp]);
export const NotEq = punct('NotEq', '!=', [EqOp]);
export const Le = punct('Le', '<=', [RelOp]);
export const Ge = punct('Ge', '>=', [RelOp]);
export const Lt = punct('Lt', '<', [RelOp]);
export const Gt = punct('Gt', '>', [RelOp]);
export const Plus = punct('Plus', '+', [AddOp]);
export const Minus = punct('Minus', '-', [AddOp]);
export const Star = punct('Star', '*', [MulOp]);
export const Slash = punct('Slash', '/', [MulOp]);
export const Percent = punct('Percent', '%', [MulOp]);
export const Bang = punct('Bang', '!');
/** The affinity operator of `by mean(q) . mean(k)`. */
export const Dot = punct('Dot', '.');
export const Equals = punct('Equals', '=', [EqOp]);
export const Question = punct('Question', '?');
export const Colon = punct('Colon', ':');
export const Comma = punct('Comma', ',');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');

/** Order matters: comments before `/`, longer operators before their prefixes, floats before ints. */
export const allTokens: TokenType[] = [
  StringLit,
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  Attention,
  Mask,
  Score,
  Let,
  True,
  False,
  IntKw,
  F32Kw,
  BoolKw,
  I32Kw,
  ...softKeywords,
  Identifier,
  FloatLit,
  IntLit,
  OrOr,
  AndAnd,
  Amp,
  Pipe,
  EqEq,
  NotEq,
  Le,
  Ge,
  Lt,
  Gt,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  Bang,
  Dot,
  Equals,
  Question,
  Colon,
  Comma,
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  AddOp,
  MulOp,
  RelOp,
  EqOp,
  AndOp,
  OrOp,
];

// Only `\n` (and so `\r\n`) ends a line, matching how renderDiagnostic splits the source.
const lexer = new Lexer(allTokens, {
  positionTracking: 'full',
  lineTerminatorsPattern: /\n/g,
  lineTerminatorCharacters: ['\n'],
  ensureOptimizations: true,
  skipValidations: skipGrammarChecks,
});

export interface LexError {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  readonly length: number;
  readonly message: string;
  readonly hint?: string;
}

export interface LexResult {
  readonly tokens: IToken[];
  readonly comments: IToken[];
  readonly errors: LexError[];
  /** A `/*` without its `*\/` took the rest of the source: what the parser misses at the end follows from it. */
  readonly endsInComment: boolean;
}

const charHints: Record<string, string> = {
  ';': 'statements need no `;`',
  '"': 'the language has no strings',
  "'": 'the language has no strings',
  // Operators as papers and word processors typeset them, pasted into a mask.
  '≥': 'write `>=`',
  '≤': 'write `<=`',
  '≠': 'write `!=`',
  '−': 'write `-` (this is U+2212, the typeset minus)',
  '×': 'write `*`',
  '÷': 'write `/`',
};

export function lex(source: string): LexResult {
  const r = lexer.tokenize(source);
  const errors: LexError[] = r.errors.map((e) => {
    const text = source.slice(e.offset, e.offset + e.length);
    const first = text.codePointAt(0) ?? 0;
    const shown = first > 0x20 && first < 0x7f ? `\`${String.fromCodePoint(first)}\`` : `U+${hex(first)}`;
    const hint = charHints[text[0] ?? ''];
    const message =
      e.length > 1 ? `unexpected characters starting with ${shown}` : `unexpected character ${shown}`;
    const base = { offset: e.offset, line: e.line ?? 1, column: e.column ?? 1, length: e.length, message };
    return hint === undefined ? base : { ...base, hint };
  });
  for (const t of r.groups['unterminated'] ?? []) {
    errors.push({
      offset: t.startOffset,
      line: t.startLine ?? 1,
      column: t.startColumn ?? 1,
      length: 2,
      message: 'unterminated block comment',
      hint: 'add `*/` to close it',
    });
  }
  const strings = replaceStrings(r.tokens, r.groups['strings'] ?? [], IntLit);
  errors.push(...strings.errors);
  const numbers = splitNumberSuffixes(strings.tokens);
  errors.push(...numbers.errors);
  errors.sort((a, b) => a.offset - b.offset);
  const endsInComment = (r.groups['unterminated'] ?? []).length > 0;
  return { tokens: numbers.tokens, comments: r.groups['comments'] ?? [], errors, endsInComment };
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
