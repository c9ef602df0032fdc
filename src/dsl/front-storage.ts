// The front end's K/V storage statements (front-features.ts): `store`, `importance` and `cache`,
// their CST → AST builders and checkers, the check of what a target compiles and the formats the
// `store` statements give (compile-core.ts). Only programs with one load it.
import type { AttentionDecl } from './ast.js';
import { checkCache } from './cache-stmt.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import { checkStorage } from './check-storage.js';

export { buildCache } from './cache-stmt.js';
export { buildImportance, buildStorage } from './cst-storage.js';
export { unsupportedStorage } from '../ir/storage-support.js';
export { checkedFormats } from '../quant/format.js';

export function check(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkStorage(decl.storage ?? [], decl.importance ?? [], ctx);
  checkCache(decl, ctx);
}
