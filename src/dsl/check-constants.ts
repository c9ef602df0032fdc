// Constants that must fit their type (docs/LANGUAGE.md, "Constants"): literals, and the values of
// parameter defaults and constant counts, whose int arithmetic must not wrap silently.
import type { Span } from '../diagnostics.js';
import type { Expr } from './ast.js';
import { foldConst, type ConstValue, type ValueType } from './builtins.js';

/** What folding gives for a constant whose int arithmetic overflowed (reported by the checker). */
export const overflowed = Symbol('overflowed');

export type Report = (message: string, span: Span, hint?: string) => void;

export const INT_MAX = 2 ** 31 - 1;

/** An integer as digits while a double holds it exactly, else in exponent form (`about 1e+20`). */
const bigValue = (x: number): string => (Number.isSafeInteger(x) ? String(x) : `about ${x.toPrecision(3)}`);

/** Literals must fit their type: an int in 32 bits, an f32 below its largest finite value. */
export function checkLiteral(e: Extract<Expr, { kind: 'num' }>, err: Report): ValueType {
  if (!e.isFloat && e.value > INT_MAX) {
    const hint = 'the largest int is 2147483647';
    err(`integer literal ${bigValue(e.value)} is too large for int`, e.span, hint);
  }
  if (e.isFloat && !Number.isFinite(Math.fround(e.value))) {
    const hint = 'the largest f32 is about 3.4e38; write `1.0 / 0.0` for infinity';
    err(`f32 literal ${e.value} is too large for f32`, e.span, hint);
  }
  return e.isFloat ? 'f32' : 'int';
}

/**
 * The value of a checked constant expression (undefined if it is not constant). Int arithmetic
 * that leaves the int range is an error here, reported once at the innermost overflow: a
 * default or count must not wrap silently.
 */
export function foldChecked(
  e: Expr,
  typeOf: (e: Expr) => ValueType | undefined,
  err: Report,
): ConstValue | typeof overflowed | undefined {
  let wrapped = false;
  const v = foldConst(e, typeOf, (at, exact) => {
    if (wrapped) return;
    wrapped = true;
    const hint = 'an int holds -2147483648 to 2147483647; use a smaller value';
    err(`this constant overflows int: its value ${bigValue(exact)} is out of range`, at.span, hint);
  });
  return wrapped ? overflowed : v;
}
