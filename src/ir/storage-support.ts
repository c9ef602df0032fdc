// K/V storage formats (`store`): which kernels the code generators run them in. The WGSL backend's
// row engine and decode module dequantize in their K/V tile load (codegen/wgsl/dequant.ts); the
// rest is refused here with one positioned error naming what runs, as unsupported routing is
// (`unsupportedRouting` in routing.ts), rather than emit a kernel that ignores the format.
import type { AttentionDecl } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';

const runs = 'K/V storage formats run on the WGSL backend (row engine and decode mode)';

export function unsupportedStorage(
  decl: AttentionDecl,
  target: string,
  /** The importance output, when the compile option asks for it (it overrides the source's). */
  importanceOption?: string,
): { message: string; span: Span } | undefined {
  const store = decl.storage?.[0];
  if (!store) return undefined;
  if (target !== 'wgsl') return { message: `${runs}; ${target}: not yet`, span: store.span };
  const salient = decl.storage?.find((s) => s.salient);
  if (salient) return { message: `${runs}, without salient tokens for now`, span: salient.span };
  const sparse = decl.sparsity?.[0];
  if (sparse) return { message: `${runs}, without routing for now`, span: sparse.span };
  const importance = decl.importance?.[0];
  if (importanceOption !== undefined && !importance)
    return { message: `${runs}, without the importance output for now`, span: store.span };
  if (importance) return { message: `${runs}, without the importance output for now`, span: importance.span };
  return undefined;
}
