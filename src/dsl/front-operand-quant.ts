// The front end's operand-quantizing statements (front-features.ts): `qk` and `pv`, their
// CST → AST builders and checkers, and the check of what a target compiles (compile-core.ts).
// Only programs with one load it.
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import { checkPv } from './pv-stmt.js';
import { checkQk } from './qk-stmt.js';

export { buildPv } from './pv-stmt.js';
export { buildQk } from './qk-stmt.js';
export { unsupportedPv, unsupportedQk } from '../ir/int8qk-support.js';

export function check(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkQk(decl, ctx);
  checkPv(decl, ctx);
}
