// How emitted code classifies a kernel's tiles: one static class for every tile, or per tile at run
// time ('dynamic'). The forward renderers of both targets and both backward passes ask it here.
import { toposort } from './graph.js';
import type { AttentionKernel, TileClass } from './kernel.js';
import { Op } from './ops.js';

export type TileMode = TileClass | 'dynamic';

/** The forward's mode: the kernel's static class, or 'dynamic'. */
export function classMode(kernel: AttentionKernel): TileMode {
  return kernel.tiles.kind === 'dynamic' ? 'dynamic' : kernel.tiles.value;
}

/**
 * The backward's mode: as the forward's, but 'dynamic' only where the backward computes every
 * summary the classifier reads; otherwise every tile is partial and the mask decides.
 */
export function backwardTileMode(kernel: AttentionKernel): TileMode {
  const t = kernel.tiles;
  if (t.kind === 'static') return t.value;
  // Every summary the classifier reads must be one the kernel computes; otherwise the mask decides.
  const summarized = new Set(kernel.summaries.map((x) => x.tensor));
  const ok = toposort([t.canBeTrue, t.canBeFalse]).every(
    (n) => !(n.op === Op.RANGE_MIN || n.op === Op.RANGE_MAX) || summarized.has(String(n.arg)),
  );
  return ok ? 'dynamic' : 'partial';
}
