// K/V storage formats (`store`) and the `importance` output check and run in the reference
// (src/runtime/reference-quant.ts, reference.ts) but no code generator reads them yet: compile()
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
  const importance = decl.importance?.[0];
  if (importance)
    return {
      message: 'the `importance` output runs in the reference; code generators do not support it yet',
      span: importance.span,
    };
  return undefined;
}
