// The kernel's tile classes over a grid, for the pictures. Classifying a tile costs a few µs (an
// interval evaluation of the tile predicate), so a grid of N²/(blockQ·blockK) tiles is bounded:
// beyond MAX_SHOWN_TILES, neighbouring tiles are merged into boxes of mergeQ × mergeK tiles and
// each box is classified as one (the same interval analysis on the larger box: sound, since a box
// proven empty or full is so for every tile inside it; only less precise). That keeps `viz
// --nq 1000000` and `:mask 100000` to a fraction of a second instead of minutes.
import type { Node } from '../ir/graph.js';
import type { AttentionKernel, TileClass } from '../ir/kernel.js';
import { Op } from '../ir/ops.js';
import { classifyTile, type TileGridOptions } from '../ir/tile-stats.js';

/** Tiles (or merged boxes) classified per grid at most: ~0.2 s (8192² at 64×32 tiles: 32768). */
export const MAX_SHOWN_TILES = 32768;
/** Per axis at most (the cell filler walks one row of tiles per sampled query). */
export const MAX_SHOWN_TILES_PER_AXIS = 1024;

export interface TileGrid {
  /** Extent of one shown tile in tokens: the kernel's tile, times mergeQ/mergeK when merged. */
  readonly blockQ: number;
  readonly blockK: number;
  readonly rows: number;
  readonly cols: number;
  /** Row-major [qt · cols + kt]. */
  readonly classes: readonly TileClass[];
  /** Shown tiles (boxes when merged) of each class. */
  readonly counts: Readonly<Record<TileClass, number>>;
  /** The kernel's tile size. */
  readonly kernelBlockQ: number;
  readonly kernelBlockK: number;
  /** Kernel tiles per shown tile along q and k (1 × 1 unless merged). */
  readonly mergeQ: number;
  readonly mergeK: number;
  /**
   * Kernel tiles of each class: exact unless merged; merged, a box's tiles all take its class, so
   * `partial` is an upper bound (and full/empty lower bounds).
   */
  readonly kernelCounts: Readonly<Record<TileClass, number>>;
}

/**
 * Tensor reads of range_min/range_max in the classifier at most. Each reads its whole q or k
 * range per tile, so a grid of rows × cols boxes reads about rows·Nk + cols·Nq elements.
 */
export const MAX_RANGE_READS = 2 ** 23;

function usesRanges(kernel: AttentionKernel): boolean {
  if (kernel.tiles.kind !== 'dynamic') return false;
  const seen = new Set<Node>();
  const stack: Node[] = [kernel.tiles.canBeTrue, kernel.tiles.canBeFalse];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (n.op === Op.RANGE_MIN || n.op === Op.RANGE_MAX) return true;
    stack.push(...n.src);
  }
  return false;
}

/** Kernel tiles per box along each axis so that the boxes fit every cap. */
function mergeFactors(kernel: AttentionKernel, nq: number, nk: number): { mq: number; mk: number } {
  const tRows = Math.ceil(nq / kernel.schedule.blockQ);
  const tCols = Math.ceil(nk / kernel.schedule.blockK);
  const ranges = usesRanges(kernel);
  let mq = Math.ceil(tRows / MAX_SHOWN_TILES_PER_AXIS);
  let mk = Math.ceil(tCols / MAX_SHOWN_TILES_PER_AXIS);
  // Halve the longer side (in boxes) until everything fits; a short axis keeps its tiles.
  for (;;) {
    const rows = Math.ceil(tRows / mq);
    const cols = Math.ceil(tCols / mk);
    const fits = rows * cols <= MAX_SHOWN_TILES && (!ranges || rows * nk + cols * nq <= MAX_RANGE_READS);
    if (fits || rows * cols === 1) return { mq, mk };
    if (rows >= cols) mq *= 2;
    else mk *= 2;
  }
}

export function tileGrid(kernel: AttentionKernel, o: TileGridOptions): TileGrid {
  const { blockQ, blockK } = kernel.schedule;
  const tRows = Math.ceil(o.Nq / blockQ);
  const tCols = Math.ceil(o.Nk / blockK);
  const { mq, mk } = mergeFactors(kernel, o.Nq, o.Nk);
  const bq = blockQ * mq;
  const bk = blockK * mk;
  // Merged: the same classifier over boxes, by giving it the box as its tile size.
  const boxKernel =
    mq === 1 && mk === 1 ? kernel : { ...kernel, schedule: { ...kernel.schedule, blockQ: bq, blockK: bk } };
  const rows = Math.ceil(o.Nq / bq);
  const cols = Math.ceil(o.Nk / bk);
  const classes: TileClass[] = [];
  const counts = { empty: 0, full: 0, partial: 0 };
  const kernelCounts = { empty: 0, full: 0, partial: 0 };
  for (let qt = 0; qt < rows; qt++)
    for (let kt = 0; kt < cols; kt++) {
      const c = classifyTile(boxKernel, o, qt, kt);
      classes.push(c);
      counts[c]++;
      kernelCounts[c] += Math.min(mq, tRows - qt * mq) * Math.min(mk, tCols - kt * mk);
    }
  return {
    blockQ: bq,
    blockK: bk,
    rows,
    cols,
    classes,
    counts,
    kernelBlockQ: blockQ,
    kernelBlockK: blockK,
    mergeQ: mq,
    mergeK: mk,
    kernelCounts,
  };
}
