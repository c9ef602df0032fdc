// The front end's `route`, `select` and `emit` statements (front-features.ts): their CST → AST
// builder, checker and lowering to the routing plan. Only programs with one load it.
import type { AttentionDecl } from './ast.js';
import { checkSparsity, type SparsityCheckCtx } from './check-sparsity.js';

export { buildSparsity } from './cst-sparsity.js';
export { lowerRouting } from '../ir/lower-routing.js';

export function check(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkSparsity(decl.sparsity ?? [], ctx);
}
