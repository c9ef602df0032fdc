// The spellings of numbers on the command line and in the REPL: decimal only, as in the DSL.
// A module of its own so that `attnc check` (which parses --param) loads none of the compiler.

/**
 * The value of a plain decimal integer (`16`, `-5`), else undefined: Number() would also take
 * `0x10`, `1e3`, `16.0` and ` 16 `, which the DSL's lexer refuses too (docs/CLI.md).
 */
export function decimalInt(raw: string): number | undefined {
  return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
}

/** `--flag`'s words for a value that is not a positive decimal integer, else undefined. */
export function positiveIntProblem(flag: string, raw: string): string | undefined {
  const n = decimalInt(raw);
  return n === undefined || n <= 0 ? `--${flag} expects a positive integer, got \`${raw}\`` : undefined;
}

/** An integer an i32 holds (what paramProblem accepts for an i32). */
const isI32Value = (n: number): boolean => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;

/**
 * An i32 value spelt as other than decimal digits (`1e3`, `16.0`): the DSL would refuse that
 * spelling. A fraction or a value past int32 is not this (it gets the runtime's own words).
 */
export function misspeltI32(raw: string): boolean {
  const n = decimalNumber(raw);
  return n !== undefined && isI32Value(n) && decimalInt(raw) === undefined;
}

/** A decimal number (`0.5`, `-3`, `1e-3`); not `0x10`, `Infinity` or one padded with spaces. */
export function decimalNumber(raw: string): number | undefined {
  return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : undefined;
}
