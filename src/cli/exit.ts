// The CLI's exit codes (README, CLI section; `attnc --help`) and which errors are the user's.
import { escapeControl } from '../diagnostics.js';
import { MissingDependencyError } from '../optional.js';
import { InputError } from '../runtime/validate.js';
import { ShapeExprError } from '../runtime/shape-expr.js';
import { UsageError } from './errors.js';
import { OutputPathError } from './out-path.js';
import { SourceFileError } from './source-file.js';

export const EXIT = {
  ok: 0,
  /** Bad usage or input: flags, files, programs, sizes the device cannot hold. */
  userError: 1,
  /** A bug in attnc (printed with its stack trace, to be reported). */
  internal: 2,
  /** `attnc run`: the kernel ran but disagrees with the dense reference. */
  disagrees: 3,
} as const;

type ErrorClass = abstract new (...a: never[]) => Error;

const userErrors: ErrorClass[] = [
  UsageError,
  OutputPathError,
  SourceFileError,
  InputError,
  ShapeExprError,
  MissingDependencyError,
];

/**
 * Adds user-error classes of a module the CLI loads lazily (viz's GridError, with the whole
 * compiler behind it): importing them here would load that module for every command.
 */
export function registerUserErrors(...classes: ErrorClass[]): void {
  for (const c of classes) if (!userErrors.includes(c)) userErrors.push(c);
}

/**
 * The message to print for a user error (one line per problem, control characters escaped), or
 * undefined for an internal error. The emitted module's KernelInputError is matched by name: it
 * is a class of generated code, not of this package.
 */
export function userErrorMessage(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  if (isStackOverflow(e))
    return 'the program is nested too deeply for attnc (it ran out of stack): split the expression with `let`';
  const user =
    userErrors.some((c) => e instanceof c) ||
    e.name === 'KernelInputError' ||
    (e as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS') === true;
  if (!user) return undefined;
  // InputError / KernelInputError list their problems on separate lines: one line here.
  const issues = (e as { issues?: unknown }).issues;
  const text =
    Array.isArray(issues) && issues.length > 1
      ? `invalid inputs: ${issues.map(String).join('; ')}`
      : e.message;
  return escapeControl(text);
}

/** V8's "Maximum call stack size exceeded": a limit the input hit, not a crash to report. */
export function isStackOverflow(e: unknown): boolean {
  return e instanceof RangeError && /call stack/i.test(e.message);
}
