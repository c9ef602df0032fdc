// Scalar semantics of the language (docs/LANGUAGE.md), in one place: constant folding and the IR
// interpreter use these; backends emit code with the same behaviour (tested against them).

/** Wraps to a signed 32-bit int. */
export const i32 = (x: number): number => x | 0;

/** Floor division; x / 0 = 0 (a GPU must not fault, and the reference agrees). */
export function floorDiv(a: number, b: number): number {
  if (b === 0) return 0;
  return i32(Math.floor(a / b));
}

/** Floor modulo: the result has the divisor's sign; x % 0 = 0. */
export function floorMod(a: number, b: number): number {
  if (b === 0) return 0;
  return i32(a - Math.floor(a / b) * b);
}

/** f32 → i32 truncating toward zero, saturating (NaN → 0) so no backend hits undefined behaviour. */
export function truncToI32(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 2147483647) return 2147483647;
  if (x <= -2147483648) return -2147483648;
  return Math.trunc(x);
}

export const f32 = Math.fround;
