// The spellings of numbers on the command line and in the REPL: decimal only, as in the DSL.
// A module of its own so that `attnc check` (which parses --param) loads none of the compiler.

/**
 * The value of a plain decimal integer (`16`, `-5`), else undefined: Number() would also take
 * `0x10`, `1e3`, `16.0` and ` 16 `, which the DSL's lexer refuses too (docs/CLI.md).
 */
export function decimalInt(raw: string): number | undefined {
  return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
}

/** A decimal number (`0.5`, `-3`, `1e-3`); not `0x10`, `Infinity` or one padded with spaces. */
export function decimalNumber(raw: string): number | undefined {
  return /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : undefined;
}
