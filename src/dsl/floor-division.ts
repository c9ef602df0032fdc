// Python's `//` is floor division; here it starts a comment, so `mask q // 64 == k // 64` reads
// as `mask q` ("a mask must be bool, found int") and `(q - k) // 2 == 0 }` loses its `}`. The
// language has no strings, so a `//` between two operands on an error's line is that mistake
// (or a comment after code): the error gets a hint saying what `//` does here.
import type { Diagnostic } from '../diagnostics.js';

/** An operand, `//`, then the start of another: `q // 64`, `(q - k)//block`. */
const floorDivision = /[\w)\]]\s*\/\/\s*[\w(]/;

const hint = 'if `//` on this line is floor division: it starts a comment here, and int `/` already floors';

/** Each error without a hint on a line where `//` follows an operand gets the hint above. */
export function withFloorDivisionHints(diagnostics: Diagnostic[], source: string): Diagnostic[] {
  if (!source.includes('//')) return diagnostics;
  const lines = source.split('\n');
  return diagnostics.map((d) =>
    d.severity === 'error' && d.hint === undefined && floorDivision.test(lines[d.span.line - 1] ?? '')
      ? { ...d, hint }
      : d,
  );
}
