// The one rule for a scalar param's value, wherever a value enters: the runtime (validateRun),
// `attnc run` / `viz` / the REPL's :set, and (as text that mirrors it, pinned by a parity test)
// the emitted TS/JS module. A value the kernel cannot hold exactly in its uniform is refused, never
// wrapped (int32 `| 0`) or saturated (f32 rounding to ±Inf).

export type ParamDtype = 'i32' | 'f32' | 'bool';

export const I32_MIN = -2147483648;
export const I32_MAX = 2147483647;

export const isI32 = (x: unknown): x is number =>
  typeof x === 'number' && Number.isInteger(x) && x >= I32_MIN && x <= I32_MAX;

/** "number 1e+40", "boolean true", "undefined", "a plain Array of 2 elements" (the emitted module's words). */
export function describeValue(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (ArrayBuffer.isView(x))
    return `${x.constructor.name} of ${(x as unknown as ArrayLike<number>).length} elements`;
  if (Array.isArray(x)) return `a plain Array of ${x.length} elements`;
  return typeof x === 'object' ? 'an object' : `${typeof x} ${String(x)}`;
}

/** What the param type accepts, for messages. */
export function paramTypeText(dtype: ParamDtype): string {
  switch (dtype) {
    case 'i32':
      return `an integer in [${I32_MIN}, ${I32_MAX}]`;
    case 'f32':
      return 'a finite number within f32 range (|x| < 3.4028235e38)';
    case 'bool':
      return 'true or false';
  }
}

/** Why `value` cannot be param `name` of type `dtype`, or undefined when it can. */
export function paramProblem(name: string, dtype: ParamDtype, value: unknown): string | undefined {
  const ok =
    dtype === 'bool'
      ? typeof value === 'boolean'
      : dtype === 'i32'
        ? isI32(value)
        : typeof value === 'number' && Number.isFinite(Math.fround(value));
  if (ok) return undefined;
  return `param "${name}" (${dtype}): expected ${paramTypeText(dtype)}, got ${describeValue(value)}`;
}

/**
 * A param's declared default as a caller would pass it: the artifact stores a bool default as its
 * uniform word 0/1 (ParamSlot.default is a number), which paramProblem refuses as a bool value.
 */
export function declaredDefault(p: {
  readonly dtype: ParamDtype;
  readonly default: number | undefined;
}): number | boolean | undefined {
  return p.dtype === 'bool' && p.default !== undefined ? p.default === 1 : p.default;
}

/** The uniform word of a checked value: bools as 0/1, f32 rounded. */
export function paramWord(dtype: ParamDtype, value: number | boolean): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return dtype === 'f32' ? Math.fround(value) : value;
}

/**
 * Offsets whose positions leave int32: the kernels compute positions as i32 (query row r is at
 * qOffset + r, key row c at kOffset + c), so the last row must still fit, or positions wrap and
 * masks answer for the wrong positions. `offset` itself is checked to be an i32 by the caller.
 */
/**
 * Why the query and key positions are too far apart, or undefined: every difference q − k must
 * fit int32 too (docs/LANGUAGE.md, "Int arithmetic"), since masks compute it and the dilation
 * rewrite (q − k) % d → q % d, k % d relies on it not wrapping. Positions must fit first.
 */
export function spanProblem(qOffset: number, Nq: number, kOffset: number, Nk: number): string | undefined {
  if (Nq <= 0 || Nk <= 0) return undefined;
  const hi = qOffset + Nq - 1 - kOffset;
  const lo = qOffset - (kOffset + Nk - 1);
  if (hi <= I32_MAX && lo >= -I32_MAX) return undefined; // k − q = −(q − k) must fit too
  return (
    `qOffset, kOffset: q - k ranges over [${lo}, ${hi}], which leaves int32 ` +
    `(query positions [${qOffset}, ${qOffset + Nq - 1}], key positions [${kOffset}, ${kOffset + Nk - 1}])`
  );
}

export function positionProblem(
  what: 'qOffset' | 'kOffset',
  offset: number,
  rows: number,
  rowsName: 'Nq' | 'Nk',
): string | undefined {
  if (rows <= 0 || offset + rows - 1 <= I32_MAX) return undefined;
  const side = what === 'qOffset' ? 'query' : 'key';
  return (
    `${what}: ${side} positions [${offset}, ${offset + rows - 1}] leave int32 ` +
    `(${what} + ${rowsName} - 1 must be <= ${I32_MAX}; got ${what} = ${offset}, ${rowsName} = ${rows})`
  );
}

/**
 * Every problem with a call's query and key offsets: each an i32 whose positions fit int32, then
 * (only once both are valid positions) the span q − k. `show` writes a non-integer offset as the
 * surface's messages do (the forward run(): `String`; the backward and emitted modules: with its type).
 */
export function offsetProblems(
  qOffset: unknown,
  Nq: number,
  kOffset: unknown,
  Nk: number,
  show: (x: unknown) => string = String,
): string[] {
  const problems = (
    [
      ['qOffset', qOffset, Nq, 'Nq'],
      ['kOffset', kOffset, Nk, 'Nk'],
    ] as const
  ).flatMap(([what, offset, rows, rowsName]) => {
    const problem = isI32(offset)
      ? positionProblem(what, offset, rows, rowsName)
      : `${what}: expected an i32 (integer), got ${show(offset)}`;
    return problem ? [problem] : [];
  });
  if (problems.length) return problems;
  const span = spanProblem(qOffset as number, Nq, kOffset as number, Nk);
  return span ? [span] : [];
}
