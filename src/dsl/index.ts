// The DSL frontend: source text → AST (+ lexer/parser diagnostics) → checked declarations.
// Never throws on bad input; the REPL calls it on every keystroke.
import { EOF, type CstNode, type IRecognitionException, type IToken } from 'chevrotain';
import { error, hasErrors, type Diagnostic, type Span } from '../diagnostics.js';
import type { AttentionDecl, Program } from './ast.js';
import { checkProgram, type CheckedDecl } from './checker.js';
import { cstToAst } from './cst-to-ast.js';
import { withFloorDivisionHints } from './floor-division.js';
import { headerRanges, withoutFollowOns } from './follow-on.js';
import { attachComments } from './comments.js';
import { Dot, Identifier, lex } from './lexer.js';
import { checkSourceSize, checkTokenLimits } from './limits.js';
import { parseTokens, splitParseMessage } from './parser.js';

export type { CheckedDecl, ValueType } from './checker.js';
export { checkProgram } from './checker.js';
export { isHole } from './cst-to-ast.js';

const isReal = (t: IToken | undefined): t is IToken =>
  t !== undefined && t.tokenType !== EOF && t.startOffset >= 0 && Number.isFinite(t.startOffset);

function tokenSpan(t: IToken, file: string): Span {
  return {
    file,
    line: t.startLine ?? 1,
    column: t.startColumn ?? 1,
    offset: t.startOffset,
    length: t.image.length,
  };
}

/** The position just after `t` (where a missing `)` belongs). */
function afterToken(t: IToken, file: string): Span {
  const line = t.endLine ?? t.startLine ?? 1;
  const column = (t.endColumn ?? t.startColumn ?? 0) + 1;
  return { file, line, column, offset: (t.endOffset ?? t.startOffset) + 1, length: 1 };
}

function endOfSource(source: string, file: string): Span {
  const lastBreak = source.lastIndexOf('\n');
  const line = source.split('\n').length;
  return { file, line, column: source.length - lastBreak, offset: source.length, length: 1 };
}

/** Tokens that, found on a later line, mean something is *missing* before them. */
const closers = new Set([
  'RBrace',
  'RParen',
  'RBracket',
  'Attention',
  'Mask',
  'Score',
  'Let',
  'Route',
  'Select',
  'Emit',
  'Store',
  'Importance',
  'Cache',
  'Qk',
  'Pv',
]);

/**
 * Where to point for a parse error: at the offending token, unless something is missing at the
 * end of a line (the next token is the end of file, or a closer or statement keyword on a later
 * line); then just after the last good token, where the missing piece belongs.
 */
function errorSpan(e: IRecognitionException, source: string, file: string): Span {
  const prev = (e as { previousToken?: IToken }).previousToken;
  const tok = e.token;
  if (isReal(prev)) {
    const missing =
      !isReal(tok) || (closers.has(tok.tokenType.name) && (tok.startLine ?? 0) > (prev.endLine ?? 0));
    if (missing) return afterToken(prev, file);
  }
  return isReal(tok) ? tokenSpan(tok, file) : endOfSource(source, file);
}

/** Parse errors at the end of the input (a file cut inside a statement): see withoutCascades. */
const atEndOfInput = new WeakSet<Diagnostic>();

export function parseProgram(source: string, file: string): { program: Program; diagnostics: Diagnostic[] } {
  const empty: Program = { kind: 'program', file, decls: [], header: '' };
  // Limits first (docs/LANGUAGE.md, "Limits"): the phases after them recurse over expressions.
  const tooLarge = checkSourceSize(source, file);
  if (tooLarge) return { program: empty, diagnostics: [tooLarge] };
  const lexed = lex(source);
  const diagnostics: Diagnostic[] = lexed.errors.map((e) =>
    error(e.message, { file, line: e.line, column: e.column, offset: e.offset, length: e.length }, e.hint),
  );
  const lexErrors = diagnostics.length;
  const overLimits = checkTokenLimits(lexed.tokens, file);
  if (overLimits.length > 0) return { program: empty, diagnostics: capped([...diagnostics, ...overLimits]) };
  const { cst, errors, outOfStackAt } = parseTokens(lexed.tokens);
  if (outOfStackAt)
    diagnostics.push(
      outOfStack(isReal(outOfStackAt) ? tokenSpan(outOfStackAt, file) : endOfSource(source, file)),
    );
  const built = outOfStackAt
    ? { program: empty, diagnostics: [] }
    : buildAst(cst, file, lexed, errors, source);
  const seen = new Set<number>();
  const syntax: Diagnostic[] = diagnostics.splice(lexErrors); // the out-of-stack one, if any
  for (const e of errors) {
    // The end of file an unterminated comment brought early: its own error says so.
    if (lexed.endsInComment && !isReal(e.token)) continue;
    const span = errorSpan(e, source, file);
    // Recovery can report the same spot twice (rule and repetition re-sync); keep the first.
    if (seen.has(span.offset)) continue;
    seen.add(span.offset);
    const { message, hint } = splitParseMessage(e.message);
    const d = error(message, span, memberHint(e.token, lexed.tokens) ?? hint);
    if (!isReal(e.token)) atEndOfInput.add(d);
    syntax.push(d);
  }
  const builder = built.diagnostics.filter((d) => !seen.has(d.span.offset));
  // Lexer errors (a stray `;`) are each a mistake of their own: only the parser's follow-ons go,
  // those after another syntax error or a lexer error on the same line.
  diagnostics.push(...withoutFollowOns(syntax, builder, headerRanges(lexed.tokens), diagnostics.slice()));
  return { program: built.program, diagnostics: capped(diagnostics) };
}

/**
 * `torch.tanh(x)`: a `.` right after a name is a member access, which the language has none of;
 * chevrotain's `previous` token is not always the one before the error, so look it up.
 */
function memberHint(token: IToken, tokens: readonly IToken[]): string | undefined {
  if (!isReal(token) || token.tokenType !== Dot) return undefined;
  const before = tokens[tokens.indexOf(token) - 1];
  if (before?.tokenType !== Identifier || (before.endOffset ?? -2) + 1 !== token.startOffset)
    return undefined;
  return 'names have no `.` members: call a function by its name, like `tanh(x)`';
}

/** At most this many diagnostics per source: a megabyte of garbage needs no million messages. */
export const maxDiagnostics = 100;

/** The notes `capped` wrote, and how many diagnostics each stands for. */
const leftOut = new WeakMap<Diagnostic, number>();

/** How many diagnostics `ds` leaves out: the count its "… more errors …" note gives (else 0). */
export function hiddenErrors(ds: readonly Diagnostic[]): number {
  return ds.reduce((n, d) => n + (leftOut.get(d) ?? 0), 0);
}

/**
 * The first `maxDiagnostics` diagnostics in source order, and a note saying how many were left
 * out. Capping again (the front end caps the parser's capped list with the checker's) keeps
 * the count of what an earlier cut left out instead of counting that note as one more.
 */
function capped(ds: Diagnostic[]): Diagnostic[] {
  const earlier = hiddenErrors(ds);
  const sorted = sortByPosition(ds.filter((d) => !leftOut.has(d)));
  const kept = sorted.slice(0, maxDiagnostics);
  const last = kept.at(-1);
  const left = sorted.length - kept.length + earlier;
  if (last === undefined || left === 0) return sorted;
  const more = left === 1 ? '1 more error after this one is' : `${left} more errors after this one are`;
  const note = error(`${more} not shown`, last.span, 'fix these first');
  leftOut.set(note, left);
  return [...kept, note];
}

/**
 * Past the token-level limits, the recursive phases cannot run out of stack on a program that
 * parses cleanly. Error recovery can join broken pieces into one deeper expression, though; the
 * phases that still run on such a program catch the overflow and say so here.
 */
function outOfStack(at: Span): Diagnostic {
  const hint = 'the syntax errors before this point joined several expressions; fix those first';
  return error('too deeply nested to read on', at, hint);
}

/** The AST (see cstToAst); out of stack on a recovered CST, an empty program and a diagnostic. */
function buildAst(
  cst: CstNode,
  file: string,
  lexed: ReturnType<typeof lex>,
  errors: readonly IRecognitionException[],
  source: string,
): { program: Program; diagnostics: Diagnostic[] } {
  try {
    return cstToAst(cst, file, attachComments(lexed.tokens, lexed.comments));
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const first = errors[0];
    const at = first ? errorSpan(first, source, file) : endOfSource(source, file);
    return { program: { kind: 'program', file, decls: [], header: '' }, diagnostics: [outOfStack(at)] };
  }
}

/** checkProgram, catching an overflow on a recovered (syntax-error) program like buildAst. */
function checkRecovered(program: Program, parse: readonly Diagnostic[]): ReturnType<typeof checkProgram> {
  try {
    return checkProgram(program);
  } catch (e) {
    const first = parse.find((d) => d.severity === 'error');
    if (!(e instanceof RangeError) || first === undefined) throw e;
    return { decls: [], diagnostics: [outOfStack(first.span)] };
  }
}

export interface FrontendResult {
  readonly program: Program;
  /** Declarations that are free of errors (safe to lower), in source order. */
  readonly decls: CheckedDecl[];
  /** Every lexer, parser and checker diagnostic, in source order. */
  readonly diagnostics: Diagnostic[];
}

/**
 * The source regions of each parameter and statement: from its start to the start of the next
 * one (or the end of its declaration), so a missing `)` after a statement falls in its region.
 * A declaration that reached its `}` ends there: an error just after it (a stray `)` on the next
 * line, whose caret goes to the end of this one) is not in its last statement, which stays checked.
 */
function regions(program: Program, source: string): [number, number][] {
  return program.decls.flatMap((d) => {
    const starts = [
      ...d.params,
      ...d.body,
      ...(d.sparsity ?? []),
      ...(d.storage ?? []),
      ...(d.importance ?? []),
    ]
      .map((u) => u.span.offset)
      .sort((a, b) => a - b);
    const after = d.span.offset + d.span.length;
    const end = source[after - 1] === '}' ? after - 1 : after;
    return starts.map((s, i): [number, number] => [s, starts[i + 1] ?? end]);
  });
}

/**
 * Checker errors in a parameter or statement that also has a syntax error are dropped: recovery
 * repaired that piece by guessing, and errors about the guess are noise.
 */
function withoutCascades(
  program: Program,
  parse: Diagnostic[],
  check: Diagnostic[],
  source: string,
): Diagnostic[] {
  const inside = (o: number, [a, b]: [number, number]): boolean => o >= a && o <= b;
  const all = regions(program, source);
  const broken = all.filter((r) => parse.some((d) => inside(d.span.offset, r)));
  // A file cut inside a statement breaks what was still open, the last piece, whose recovered
  // span ends before the error: an error at the end of the input, or any after that piece when
  // the last declaration never reached its `}` (`route b` at the end: "`route` needs a unit").
  const last = all.reduce<[number, number] | undefined>((m, r) => (!m || r[0] > m[0] ? r : m), undefined);
  const decl = program.decls.at(-1);
  const open = decl !== undefined && source[decl.span.offset + decl.span.length - 1] !== '}';
  const after = (d: Diagnostic): boolean => last !== undefined && d.span.offset > last[1];
  if (last && parse.some((d) => atEndOfInput.has(d) || (open && after(d)))) broken.push(last);
  return check.filter((d) => !broken.some((r) => inside(d.span.offset, r)));
}

export function frontend(source: string, file: string): FrontendResult {
  const parsed = parseProgram(source, file);
  const checked = checkRecovered(parsed.program, parsed.diagnostics);
  const checks = withoutCascades(parsed.program, parsed.diagnostics, checked.diagnostics, source);
  const diagnostics = withFloorDivisionHints(capped([...parsed.diagnostics, ...checks]), source);
  if (parsed.program.decls.length === 0 && !hasErrors(diagnostics)) {
    const at: Span = { file, line: 1, column: 1, offset: 0, length: 1 };
    diagnostics.push(
      error('expected at least one `attention` declaration', at, 'like `attention full() { }`'),
    );
  }
  // A declaration with a syntax error inside it was checked (for more errors) but is not usable.
  const errorsAt = diagnostics.filter((d) => d.severity === 'error').map((d) => d.span.offset);
  const decls = checked.decls.filter(
    ({ decl: { span } }) => !errorsAt.some((o) => o >= span.offset && o <= span.offset + span.length),
  );
  return { program: parsed.program, decls, diagnostics };
}

function sortByPosition(ds: Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.span.offset - b.d.span.offset || a.i - b.i)
    .map((x) => x.d);
}

/**
 * True if `decl` uses data-dependent sparsity (`route`, `select` or `emit`): the kernel itself
 * decides which keys matter. compile() lowers what the code generators implement (block routing
 * on WGSL) and rejects the rest with a positioned diagnostic at `sparsitySpan(decl)`.
 */
export function usesDataDependentSparsity(decl: AttentionDecl): boolean {
  return (decl.sparsity?.length ?? 0) > 0;
}

/** The span of the first `route`/`select`/`emit` statement of `decl`, if any. */
export function sparsitySpan(decl: AttentionDecl): Span | undefined {
  return decl.sparsity?.[0]?.span;
}
