// `--json`: one JSON document on stdout per invocation of check, compile, run or doctor, success
// or failure alike, so a tool can parse stdout without reading stderr. The shape is documented in
// docs/CLI.md ("--json") and bumps `schema` when a field changes meaning or goes away.
import { CompileError, type Diagnostic } from '../diagnostics.js';

/** The document format's version. */
export const JSON_SCHEMA = 1;

export interface JsonDiagnostic {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly length: number;
  readonly severity: Diagnostic['severity'];
  readonly message: string;
  readonly hint?: string;
}

/** What every document carries; the command adds its own fields. */
export interface JsonHead {
  readonly schema: typeof JSON_SCHEMA;
  readonly command: string;
  readonly ok: boolean;
  readonly exitCode: number;
}

export type JsonErrorKind = 'usage' | 'diagnostics' | 'internal';

export interface JsonErrorDocument extends JsonHead {
  readonly ok: false;
  /** `usage`: the command's usage text, when the error is about how the command was called. */
  readonly error: { readonly kind: JsonErrorKind; readonly message: string; readonly usage?: string };
  readonly diagnostics: readonly JsonDiagnostic[];
}

export function diagnosticJson(d: Diagnostic): JsonDiagnostic {
  const { file, line, column, length } = d.span;
  return {
    file,
    line,
    column,
    length,
    severity: d.severity,
    message: d.message,
    ...(d.hint !== undefined ? { hint: d.hint } : {}),
  };
}

export function head(command: string, exitCode: number): JsonHead {
  return { schema: JSON_SCHEMA, command, ok: exitCode === 0, exitCode };
}

export function writeJson<T extends JsonHead>(doc: T): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

/** The document for a failed invocation: a usage error, a program's diagnostics or a bug. */
export function errorDocument(
  command: string,
  exitCode: number,
  kind: JsonErrorKind,
  e: unknown,
  message: string,
  usage?: string,
): JsonErrorDocument {
  const diagnostics = e instanceof CompileError ? e.diagnostics.map(diagnosticJson) : [];
  const error = { kind, message, ...(usage !== undefined ? { usage } : {}) };
  return { ...head(command, exitCode), ok: false, error, diagnostics };
}

/**
 * Whether the argument list asks for JSON, read before parsing so parse errors are JSON too:
 * `--json=1` is refused by the parser, and that refusal must still be a document. Words after
 * `--` are positionals.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const flags = end < 0 ? argv : argv.slice(0, end);
  return flags.some((w) => w === '--json' || w.startsWith('--json='));
}
