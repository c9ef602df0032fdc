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

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/**
 * Renders a diagnostic like rustc:
 *   error: unknown name `windw`
 *    --> stdlib/x.attn:3:17
 *     |
 *   3 |   mask causal && windw > 0
 *     |                  ^^^^^
 */
export function renderDiagnostic(d: Diagnostic, source: string | undefined): string {
  const { file, line, column } = d.span;
  const head = `${d.severity}: ${d.message}\n --> ${file}:${line}:${column}`;
  if (source === undefined) return head;
  const lines = source.split(/\r?\n/);
  const text = lines[line - 1];
  if (text === undefined) return head;
  const gutter = String(line).length;
  const pad = ' '.repeat(gutter);
  const caretLen = Math.max(1, Math.min(d.span.length, text.length - column + 1));
  const caret = ' '.repeat(Math.max(0, column - 1)) + '^'.repeat(caretLen);
  const hint = d.hint ? ` ${d.hint}` : '';
  return `${head}\n${pad} |\n${line} | ${text}\n${pad} | ${caret}${hint}`;
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
