// The DSL frontend: source text → AST (+ lexer/parser diagnostics) → checked declarations, with
// the statements and messages only some programs need taken from a feature table
// (front-features.ts; index.ts binds the eager one, front-lazy.ts loads them on demand).
// Never throws on bad input; the REPL calls it on every keystroke.
import type { CstNode, IRecognitionException, IToken } from 'chevrotain';
import { error, hasErrors, type Diagnostic, type Span } from '../diagnostics.js';
import type { Program } from './ast.js';
import { checkProgram, type CheckedDecl } from './checker.js';
import { cstToAst } from './cst-to-ast.js';
import type { FrontFeatures } from './front-features.js';
import { withFloorDivisionHints } from './floor-division.js';
import { headerRanges, withoutFollowOns } from './follow-on.js';
import { attachComments } from './comments.js';
import { lex } from './lexer.js';
import { endOfSource, errorSpan, isReal, memberHint, tokenSpan } from './parse-spans.js';
import { checkSourceSize, checkTokenLimits } from './limits.js';
import { parseTokens, splitParseMessage } from './parser.js';

/** Parse errors at the end of the input (a file cut inside a statement): see withoutCascades. */
const atEndOfInput = new WeakSet<Diagnostic>();

/** A source lexed and parsed: the CST, or what stopped it first (a limit). */
export type ParsedSource =
  | {
      readonly kind: 'stopped';
      readonly source: string;
      readonly file: string;
      readonly diagnostics: Diagnostic[];
    }
  | {
      readonly kind: 'parsed';
      readonly source: string;
      readonly file: string;
      readonly lexed: ReturnType<typeof lex>;
      readonly cst: CstNode;
      readonly errors: readonly IRecognitionException[];
      readonly outOfStackAt?: IToken;
    };

/** Lexes and parses `source`, its parse errors worded by `features.messages` (empty without). */
export function parseSource(source: string, file: string, features: Partial<FrontFeatures>): ParsedSource {
  // Limits first (docs/LANGUAGE.md, "Limits"): the phases after them recurse over expressions.
  const tooLarge = checkSourceSize(source, file);
  if (tooLarge) return { kind: 'stopped', source, file, diagnostics: [tooLarge] };
  const lexed = lex(source);
  const overLimits = checkTokenLimits(lexed.tokens, file);
  if (overLimits.length > 0)
    return { kind: 'stopped', source, file, diagnostics: capped([...lexErrors(lexed, file), ...overLimits]) };
  const { cst, errors, outOfStackAt } = parseTokens(lexed.tokens, features.messages?.errorMessageProvider);
  return { kind: 'parsed', source, file, lexed, cst, errors, ...(outOfStackAt ? { outOfStackAt } : {}) };
}

function lexErrors(lexed: ReturnType<typeof lex>, file: string): Diagnostic[] {
  return lexed.errors.map((e) =>
    error(e.message, { file, line: e.line, column: e.column, offset: e.offset, length: e.length }, e.hint),
  );
}

export function parseProgram(
  source: string,
  file: string,
  features: Partial<FrontFeatures>,
): { program: Program; diagnostics: Diagnostic[] } {
  return programOf(parseSource(source, file, features), features);
}

/** The AST of a parsed source and its lexer, parser and AST builder diagnostics. */
function programOf(
  parsed: ParsedSource,
  features: Partial<FrontFeatures>,
): { program: Program; diagnostics: Diagnostic[] } {
  if (parsed.kind === 'stopped')
    return { program: emptyProgram(parsed.file), diagnostics: parsed.diagnostics };
  const { source, file, lexed, errors, outOfStackAt } = parsed;
  const diagnostics = lexErrors(lexed, file);
  const lexErrorCount = diagnostics.length;
  if (outOfStackAt)
    diagnostics.push(
      outOfStack(isReal(outOfStackAt) ? tokenSpan(outOfStackAt, file) : endOfSource(source, file)),
    );
  const built = outOfStackAt ? { program: emptyProgram(file), diagnostics: [] } : buildAst(parsed, features);
  const seen = new Set<number>();
  const syntax: Diagnostic[] = diagnostics.splice(lexErrorCount); // the out-of-stack one, if any
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
  { cst, file, lexed, errors, source }: Extract<ParsedSource, { kind: 'parsed' }>,
  features: Partial<FrontFeatures>,
): { program: Program; diagnostics: Diagnostic[] } {
  try {
    return cstToAst(cst, file, attachComments(lexed.tokens, lexed.comments), features);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const first = errors[0];
    const at = first ? errorSpan(first, source, file) : endOfSource(source, file);
    return { program: emptyProgram(file), diagnostics: [outOfStack(at)] };
  }
}

const emptyProgram = (file: string): Program => ({ kind: 'program', file, decls: [], header: '' });

/** checkProgram, catching an overflow on a recovered (syntax-error) program like buildAst. */
function checkRecovered(
  program: Program,
  parse: readonly Diagnostic[],
  features: Partial<FrontFeatures>,
): ReturnType<typeof checkProgram> {
  try {
    return checkProgram(program, features);
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

export function frontend(source: string, file: string, features: Partial<FrontFeatures>): FrontendResult {
  return frontendOf(parseSource(source, file, features), features);
}

/** The checked declarations of a parsed source, and every diagnostic. */
export function frontendOf(parsedSource: ParsedSource, features: Partial<FrontFeatures>): FrontendResult {
  const { source, file } = parsedSource;
  const parsed = programOf(parsedSource, features);
  const checked = checkRecovered(parsed.program, parsed.diagnostics, features);
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
