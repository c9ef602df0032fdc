// The dK/dV kernels' walk over the non-empty q-tiles of the GQA group (backward-mma-kernels.ts on
// mma.sync, backward-wgmma-kernel.ts on warpgroups): the tile walk's head, the lambda that loads a
// q-tile (Q, dO, lse, delta), the engine's tile lambda, and the double-buffered loop that streams
// the next q-tile in while this one computes.
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { headWalk, lseDeltaLoad } from './backward-dkdv-parts.js';
import { queryHoistFill } from './backward-mask-hoists.js';

/** What an engine puts into the q-tile loop. */
export interface QTileLoop {
  /** Its tile loader template ('load_rows', 'load_panel'). */
  readonly loader: string;
  /** Its `tile` lambda (rendered after the walk's head: it may use the walk's names). */
  readonly tile: () => readonly string[];
  /** Lines after the cp.async wait, before the barrier (wgmma: the proxy fence). */
  readonly afterWait: readonly string[];
  /** The call(s) of `tile` on q-tile qt in buffer buf (full: no predicate). */
  readonly call: readonly string[];
}

export function qTileLoop(x: BackwardMmaExprs, engine: QTileLoop): string[] {
  const o = x.order;
  const panel = (w: string, dst: string, src: string): string =>
    `  ${o.queryLoad(engine.loader, w, dst, src, 'tid')}`;
  return [
    ...headWalk(x),
    'auto load_q = [&](const int qt, const int buf) {',
    '  const int q0 = qt * BM;',
    panel('D', 'Qs + buf * (BM * D)', 'a.q'),
    panel('DV', 'Os + buf * (BM * DV)', 'a.dout'),
    ...lseDeltaLoad('tid', 'THREADS', o),
    ...queryHoistFill(x.dkdvMask, 'tid', 'THREADS', o),
    '};',
    ...engine.tile(),
    'bool full, nfull;',
    'int qt = next_tile(0, full), buf = 0;',
    'if (qt < nqt) load_q(qt, 0);',
    'cp_commit();',
    'while (qt < nqt) {',
    '  const int nq = next_tile(qt + 1, nfull);',
    '  if (nq < nqt) load_q(nq, buf ^ 1); // the next q-tile streams in while this one computes',
    '  cp_commit();',
    '  cp_wait<1>();',
    ...engine.afterWait.map((l) => `  ${l}`),
    '  __syncthreads();',
    ...engine.call.map((l) => `  ${l}`),
    '  buf ^= 1;',
    '  qt = nq;',
    '  full = nfull;',
    '}',
  ];
}
