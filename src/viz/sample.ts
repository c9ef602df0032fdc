// Counting allowed pairs per grid cell. Every pair once when there are at most MAX_PAIRS of them,
// else a few evenly spaced tokens per cell and axis (as many as keep the sampled pairs within
// MAX_PAIRS, so the cost never grows with Nq·Nk); pairs inside tiles the kernel's classifier
// proves empty or full take that value without calling the predicate (after a spot check),
// unless `exact`.
import type { TileClass } from '../ir/kernel.js';

/** Most tokens sampled per cell and axis. */
export const SAMPLES_PER_CELL = 8;
/** Most predicate evaluations of a picture's pairs (a 4096 × 4096 mask exactly; ~0.5 s). */
export const MAX_PAIRS = 4096 * 4096;

export interface Axis {
  /** Tokens on this axis. */
  readonly n: number;
  /** Cell boundaries (cells + 1 entries). */
  readonly starts: Int32Array;
  /** Tile size of the kernel's schedule along this axis. */
  readonly block: number;
  /** Tokens taken per cell at most (Infinity: every token). */
  readonly perCell: number;
}

/** Tokens an axis contributes when each cell takes at most `cap`. */
function taken(starts: Int32Array, cap: number): number {
  let n = 0;
  for (let c = 0; c + 1 < starts.length; c++) n += Math.min(cap, starts[c + 1]! - starts[c]!);
  return n;
}

/**
 * Tokens per cell to take on both axes: every token when all pairs fit MAX_PAIRS, else the most
 * (≤ SAMPLES_PER_CELL, ≥ 1) that keep the sampled pairs within it.
 */
export function samplesPerCell(rowStart: Int32Array, colStart: Int32Array): number {
  const nq = rowStart[rowStart.length - 1]!;
  const nk = colStart[colStart.length - 1]!;
  if (nq * nk <= MAX_PAIRS) return Infinity;
  let cap = SAMPLES_PER_CELL;
  while (cap > 1 && taken(rowStart, cap) * taken(colStart, cap) > MAX_PAIRS) cap--;
  return cap;
}

/** Whether taking `cap` tokens per cell leaves some out (the density is then an estimate). */
export function isSampled(starts: Int32Array, cap: number): boolean {
  return taken(starts, cap) < starts[starts.length - 1]!;
}

interface Samples {
  /** Token indices taken, ascending. */
  readonly index: Int32Array;
  /** The cell of each. */
  readonly cell: Int32Array;
  /** Tokens taken per cell. */
  readonly perCell: Int32Array;
}

function samples(a: Axis): Samples {
  const cells = a.starts.length - 1;
  const index: number[] = [];
  const cell: number[] = [];
  const perCell = new Int32Array(cells);
  for (let c = 0; c < cells; c++) {
    const lo = a.starts[c]!;
    const extent = a.starts[c + 1]! - lo;
    const s = Math.min(extent, a.perCell);
    for (let t = 0; t < s; t++) {
      index.push(s === extent ? lo + t : lo + Math.round((t * (extent - 1)) / Math.max(1, s - 1)));
      cell.push(c);
    }
    perCell[c] = s;
  }
  return { index: Int32Array.from(index), cell: Int32Array.from(cell), perCell };
}

export interface FillInput {
  /** The reference predicate on row indices (i in [0, Nq), j in [0, Nk)). */
  readonly mask: (i: number, j: number) => boolean;
  readonly classes: readonly TileClass[];
  readonly tileCols: number;
  readonly exact: boolean;
}

export interface Filled {
  readonly fraction: Float32Array;
  readonly density: number;
  readonly unsoundTiles: number;
  /** Predicate calls made (pairs of partial tiles, plus five probes per full/empty tile). */
  readonly maskEvaluations: number;
}

// Tile codes; 0 (the initial value) means: evaluate the predicate per pair.
const ALLOWED = 1;
const MASKED = 2;

/**
 * Per tile: evaluate pairs (0), or take ALLOWED / MASKED for a full / empty tile whose corners
 * and centre agree with the reference. A disagreement means the classifier is unsound there: the
 * tile is evaluated pair by pair and counted, so a picture never hides a compiler bug.
 */
function tileCodes(q: Axis, k: Axis, f: FillInput): { codes: Uint8Array; unsound: number } {
  const codes = new Uint8Array(f.classes.length);
  let unsound = 0;
  if (f.exact) return { codes, unsound };
  f.classes.forEach((cls, t) => {
    if (cls === 'partial') return;
    const qt = Math.floor(t / f.tileCols);
    const kt = t % f.tileCols;
    const i0 = qt * q.block;
    const i1 = Math.min(i0 + q.block, q.n) - 1;
    const j0 = kt * k.block;
    const j1 = Math.min(j0 + k.block, k.n) - 1;
    const want = cls === 'full';
    const points: [number, number][] = [
      [i0, j0],
      [i0, j1],
      [i1, j0],
      [i1, j1],
      [(i0 + i1) >> 1, (j0 + j1) >> 1],
    ];
    if (points.every(([i, j]) => f.mask(i, j) === want)) codes[t] = want ? ALLOWED : MASKED;
    else unsound++;
  });
  return { codes, unsound };
}

/** firsts[t] = the first sample index at or after token t · step, for t in [0, groups]. */
function firsts(index: Int32Array, groups: number, step: number): Int32Array {
  const out = new Int32Array(groups + 1);
  let z = 0;
  for (let t = 0; t <= groups; t++) {
    while (z < index.length && index[z]! < t * step) z++;
    out[t] = z;
  }
  return out;
}

export function fillCells(q: Axis, k: Axis, f: FillInput): Filled {
  const qs = samples(q);
  const ks = samples(k);
  const cols = k.starts.length - 1;
  const rows = q.starts.length - 1;
  // Every predicate call, the tile-corner checks included: what the full/empty shortcut saves.
  let evaluations = 0;
  const mask = (i: number, j: number): boolean => (evaluations++, f.mask(i, j));
  const { codes, unsound } = tileCodes(q, k, { ...f, mask });
  // Sample-index ranges of each tile column and of each cell column: a full tile adds whole runs
  // to the cells it overlaps instead of visiting its pairs one by one.
  const tileFirst = firsts(ks.index, f.tileCols, k.block);
  const cellFirst = new Int32Array(cols + 1);
  for (let c = 0; c < cols; c++) cellFirst[c + 1] = cellFirst[c]! + ks.perCell[c]!;
  const allowed = new Float64Array(rows * cols);
  for (let a = 0; a < qs.index.length; a++) {
    const i = qs.index[a]!;
    const tileBase = Math.floor(i / q.block) * f.tileCols;
    const cellBase = qs.cell[a]! * cols;
    for (let kt = 0; kt < f.tileCols; kt++) {
      const code = codes[tileBase + kt];
      let z = tileFirst[kt]!;
      const end = tileFirst[kt + 1]!;
      if (code === MASKED || z === end) continue;
      if (code === ALLOWED) {
        for (let c = ks.cell[z]!; z < end; c++) {
          const stop = Math.min(end, cellFirst[c + 1]!);
          allowed[cellBase + c]! += stop - z;
          z = stop;
        }
      } else {
        for (; z < end; z++) if (mask(i, ks.index[z]!)) allowed[cellBase + ks.cell[z]!]!++;
      }
    }
  }
  const fraction = new Float32Array(rows * cols);
  let sum = 0;
  let total = 0;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const n = qs.perCell[r]! * ks.perCell[c]!;
      const got = allowed[r * cols + c]!;
      fraction[r * cols + c] = got / n;
      sum += got;
      total += n;
    }
  return {
    fraction,
    density: total ? sum / total : 0,
    unsoundTiles: unsound,
    maskEvaluations: evaluations,
  };
}
