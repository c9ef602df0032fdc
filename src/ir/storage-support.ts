// K/V storage formats (`store`): which kernels the code generators run them in. The WGSL backend's
// row and coop engines and decode modules dequantize in their K/V tile loads (codegen/wgsl/dequant.ts),
// the CUDA engines and importance pass in theirs (codegen/cuda/dequant.ts, dequant-tile.ts,
// importance.ts); the
// rest is refused here with one positioned error naming what runs, as unsupported routing is
// (`unsupportedRouting` in routing.ts), rather than emit a kernel that ignores the format.
import type { AttentionDecl } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';

const runs =
  'K/V storage formats run on the WGSL backend (row and coop engines, decode mode) and every CUDA engine';

/**
 * Passes that read keys besides the attention, over a paged cache: CUDA's selection passes
 * (select*.ts), ranked block routing's pooling pass (routing.ts) and importance pass read through
 * the block table (kv-rows.ts); WGSL's routing, selection and importance passes through
 * kv-load.ts's address functions (`k_row` / `v_row`). Other targets are refused.
 */
function pagedWithPasses(decl: AttentionDecl, target: string): { message: string; span: Span } | undefined {
  const cache = decl.cache?.[0];
  const sparse = decl.sparsity?.[0];
  const imp = decl.importance?.[0];
  if (!cache || (!sparse && !imp) || target === 'cuda' || target === 'wgsl') return undefined;
  const where = sparse
    ? `the statement on line ${sparse.keywordSpan.line} reads keys outside the block table`
    : `the importance pass (line ${imp!.keywordSpan.line}) reads keys outside the block table`;
  return {
    message: `a paged cache with routing, selection or importance: CUDA and WGSL only (${where})`,
    span: cache.span,
  };
}

export function unsupportedStorage(
  decl: AttentionDecl,
  target: string,
): { message: string; span: Span } | undefined {
  // Paged caches (`cache paged N`) run on both targets: CUDA reads K/V rows through
  // kv-rows.ts's block table, WGSL through codegen/wgsl/kv-load.ts's address functions.
  // Passes besides the attention that read keys: through the block table on CUDA (above).
  const paged = pagedWithPasses(decl, target);
  if (paged) return paged;
  const store = decl.storage?.[0];
  if (!store) return undefined;
  if (target !== 'wgsl' && target !== 'cuda')
    return { message: `${runs}; ${target}: not yet`, span: store.span };
  // Salient tokens run from a flag tensor, or from an index list through a pre-pass that
  // scatters it into flags (codegen/cuda/salient-list.ts, codegen/wgsl/salient-list.ts).
  return undefined;
}
