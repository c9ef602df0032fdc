// Pieces of a partial AST (parser error recovery, see cst-to-ast.ts): holes where an expression
// was dropped, a type made up for a parameter written without one, and spans covering pieces.
import type { Span } from '../diagnostics.js';
import type { Expr, ParamType } from './ast.js';

/** True for the placeholder left where recovery dropped an expression. */
export function isHole(e: Expr): boolean {
  return e.kind === 'name' && e.name === '';
}

/** True if `e` contains a hole anywhere. */
export function hasHole(e: Expr): boolean {
  switch (e.kind) {
    case 'name':
      return isHole(e);
    case 'unary':
      return hasHole(e.operand);
    case 'binary':
      return hasHole(e.left) || hasHole(e.right);
    case 'ternary':
      return hasHole(e.cond) || hasHole(e.then) || hasHole(e.otherwise);
    case 'call':
      return e.args.some(hasHole);
    case 'index':
      return e.indices.some(hasHole);
    default:
      return false;
  }
}

/** True for the type recovery made up for a parameter written without one (`f(x) { … }`). */
export function isMissingType(t: ParamType): boolean {
  return t.span.length === 0;
}

/** The smallest span holding both `a` and `b`. */
export function cover(a: Span, b: Span): Span {
  const [first, second] = a.offset <= b.offset ? [a, b] : [b, a];
  const end = Math.max(first.offset + first.length, second.offset + second.length);
  return { ...first, length: end - first.offset };
}
