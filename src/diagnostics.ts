// Source positions and diagnostics shared by every phase. Phases return diagnostics instead of
// throwing; the public API wraps all of them in one CompileError.

/** A range in a source file. `line` and `column` are 1-based; `offset` is a 0-based char index. */
export interface Span {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly offset: number;
  /** Length in characters (at least 1 for rendering a caret). */
  readonly length: number;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly severity: Severity;
  readonly message: string;
  readonly span: Span;
  /** Optional short hint rendered under the caret line. */
  readonly hint?: string;
}

export const noSpan: Span = { file: '<internal>', line: 1, column: 1, offset: 0, length: 1 };

export function error(message: string, span: Span, hint?: string): Diagnostic {
  return hint === undefined
    ? { severity: 'error', message, span }
    : { severity: 'error', message, span, hint };
}

export function warning(message: string, span: Span): Diagnostic {
  return { severity: 'warning', message, span };
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/**
 * Characters that must not reach a terminal raw from a source file or a name: C0 controls (an
 * ESC starts a terminal escape sequence), DEL, C1 controls, and the bidi overrides, isolates and
 * marks that reorder what a reader sees (the "Trojan Source" characters). Tab is handled apart;
 * newline is kept (multi-line messages), and never occurs inside one source line.
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
const TAB_WIDTH = 4;

/** One character as shown: `\x1B`, `\u202E`, a tab as spaces, anything else as itself. */
function displayChar(ch: string): string {
  if (ch === '\t') return ' '.repeat(TAB_WIDTH);
  if (!UNSAFE.test(ch)) return ch;
  const code = ch.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
    : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * `text` safe to print: control and bidi characters become visible escapes (`\x1B`, `\u202E`)
 * and tabs spaces. Used for source lines, names, paths and messages in diagnostics and CLI errors.
 */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE_ALL, displayChar).replace(/\t/g, ' '.repeat(TAB_WIDTH));
}

/**
 * East Asian wide characters (CJK, Hangul, fullwidth forms): a terminal gives each two columns,
 * so the caret must count them so. (A character outside the BMP is two UTF-16 halves here, two
 * columns, as most emoji are.)
 */
const WIDE =
  /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/;

/** Terminal columns of one shown character (its escape, a tab's spaces, or itself). */
const columns = (shown: string): number => (shown.length === 1 && WIDE.test(shown) ? 2 : shown.length);

/** Display columns of a shown source line beyond which only a window around the span is shown. */
const MAX_SHOWN_WIDTH = 120;
/** Columns of the line kept before the span in such a window. */
const CONTEXT_BEFORE = 40;

/**
 * A source line as printed, with the caret under the span: each character's escaped form may be
 * wider than one column, so the caret is laid out over the same display strings. A line wider
 * than MAX_SHOWN_WIDTH (generated code, a minified file) is cut to a window around the span start,
 * `…` marking what is left out: a diagnostic stays a few lines, not the whole line twice.
 */
function lineAndCaret(text: string, column: number, length: number): { shown: string; caret: string } {
  const shown = Array.from(text.split(''), displayChar);
  const start = Math.min(Math.max(0, column - 1), shown.length);
  const end = Math.min(shown.length, start + Math.max(1, length));
  const width = (from: number, to: number): number =>
    shown.slice(from, to).reduce((n, s) => n + columns(s), 0);
  let from = 0;
  let to = shown.length;
  if (width(0, to) > MAX_SHOWN_WIDTH) {
    from = start;
    while (from > 0 && width(from - 1, start) <= CONTEXT_BEFORE) from--;
    to = from;
    while (to < shown.length && width(from, to + 1) <= MAX_SHOWN_WIDTH) to++;
  }
  const before = from > 0 ? '…' : '';
  const after = to < shown.length ? '…' : '';
  const caretWidth = Math.max(1, width(start, Math.min(end, to)));
  return {
    shown: before + shown.slice(from, to).join('') + after,
    caret: ' '.repeat(before.length + width(from, start)) + '^'.repeat(caretWidth),
  };
}

/**
 * Renders a diagnostic like rustc:
 *   error: unknown name `windw`
 *    --> stdlib/x.attn:3:17
 *     |
 *   3 |   mask causal && windw > 0
 *     |                  ^^^^^
 * Every piece of user text (message, path, source line, hint) is printed through escapeControl.
 */
export function renderDiagnostic(d: Diagnostic, source: string | undefined): string {
  const { file, line, column } = d.span;
  const head = `${d.severity}: ${escapeControl(d.message)}\n --> ${escapeControl(file)}:${line}:${column}`;
  if (source === undefined) return head;
  const lines = source.split(/\r?\n/);
  const text = lines[line - 1];
  if (text === undefined) return head;
  const gutter = String(line).length;
  const pad = ' '.repeat(gutter);
  const { shown, caret } = lineAndCaret(text, column, d.span.length);
  const hint = d.hint ? ` ${escapeControl(d.hint)}` : '';
  return `${head}\n${pad} |\n${line} | ${shown}\n${pad} | ${caret}${hint}`;
}

export function renderDiagnostics(diags: readonly Diagnostic[], source: string | undefined): string {
  return diags.map((d) => renderDiagnostic(d, source)).join('\n\n');
}

/** The one exception the public API throws for bad programs: it carries every diagnostic. */
export class CompileError extends Error {
  constructor(
    readonly diagnostics: readonly Diagnostic[],
    readonly source?: string,
  ) {
    super(renderDiagnostics(diagnostics, source));
    this.name = 'CompileError';
  }
}
