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

export function unsupportedStorage(
  decl: AttentionDecl,
  target: string,
): { message: string; span: Span } | undefined {
  // Paged caches (`cache paged N`): CUDA reads K/V rows through kv-rows.ts's block table; the
  // WGSL kernels still read packed rows, so a paged kernel there would read the wrong keys.
  const cache = decl.cache?.[0];
  if (cache && target !== 'cuda')
    return {
      message: `paged K/V caches compile for CUDA only for now; ${target}: not yet`,
      span: cache.span,
    };
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
  return undefined;
}
