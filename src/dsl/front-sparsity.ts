// The front end's `route`, `select` and `emit` statements (front-features.ts): their CST → AST
// builder, checker, lowering to the routing plan and the check of what a target compiles
// (compile-core.ts). Only programs with one load it.
import type { AttentionDecl } from './ast.js';
import { checkSparsity, type SparsityCheckCtx } from './check-sparsity.js';

export { buildSparsity } from './cst-sparsity.js';
export { lowerRouting } from '../ir/lower-routing.js';
export { unsupportedRouting } from '../ir/routing-check.js';

export function check(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkSparsity(decl.sparsity ?? [], ctx);
}
