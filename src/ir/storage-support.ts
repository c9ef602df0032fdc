// K/V storage formats (`store`): which kernels the code generators run them in. The WGSL backend's
// row and coop engines and decode modules dequantize in their K/V tile loads (codegen/wgsl/dequant.ts),
// the CUDA engines in theirs (codegen/cuda/dequant.ts, dequant-tile.ts); the
// rest is refused here with one positioned error naming what runs, as unsupported routing is
// (`unsupportedRouting` in routing.ts), rather than emit a kernel that ignores the format.
import type { AttentionDecl } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';

const runs =
  'K/V storage formats run on the WGSL backend (row and coop engines, decode mode) and every CUDA engine';

export function unsupportedStorage(
  decl: AttentionDecl,
  target: string,
): { message: string; span: Span } | undefined {
  // Paged caches (`cache paged N`) run on both targets: CUDA reads K/V rows through
  // kv-rows.ts's block table, WGSL through codegen/wgsl/kv-load.ts's address functions.
  const store = decl.storage?.[0];
  if (!store) return undefined;
  if (target !== 'wgsl' && target !== 'cuda')
    return { message: `${runs}; ${target}: not yet`, span: store.span };
  // Salient tokens run from a flag per token; an index list would need a search per key.
  for (const s of decl.storage ?? []) {
    const t = s.salient && decl.params.find((p) => p.name === s.salient?.tensor);
    const last = t && t.type.kind === 'tensor' ? t.type.dims[2] : undefined;
    if (s.salient && !(last?.kind === 'size' && last.name === 'kv'))
      return {
        message: `${runs}, with salient tokens flagged per token (i32[batch, kv_heads, kv]), not listed`,
        span: s.salient.span,
      };
  }
  const importance = decl.importance?.[0];
  if (target === 'cuda' && importance)
    return { message: `${runs}, on CUDA without the importance output for now`, span: importance.span };
  const sparse = decl.sparsity?.[0];
  // WGSL routing reads K in its pooling pass and key scores, which dequantize (codegen/wgsl/
  // routing.ts, routing-select-helpers.ts); CUDA block routing in its pooling pass (routing.ts).
  const cudaBlocks =
    sparse?.kind === 'route' && sparse.unit?.kind === 'blocks' && sparse.source.kind === 'topk';
  if (sparse && target === 'cuda' && !cudaBlocks)
    return {
      message: `${runs}, with routing on CUDA only as route blocks(n) topk(k) for now`,
      span: sparse.span,
    };
  return undefined;
}
