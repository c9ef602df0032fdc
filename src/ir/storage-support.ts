// K/V storage formats (`store`) check and run in the reference (src/runtime/reference-quant.ts)
// but no code generator reads them yet: compile()
// refuses such a declaration with one positioned error, as it does for unsupported routing
// (`unsupportedRouting` in routing.ts), rather than emit a kernel that ignores them.
import type { AttentionDecl } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';

export function unsupportedStorage(decl: AttentionDecl): { message: string; span: Span } | undefined {
  const store = decl.storage?.[0];
  if (store)
    return {
      message: 'K/V storage formats run in the reference; code generators do not support them yet',
      span: store.span,
    };
  return undefined;
}
