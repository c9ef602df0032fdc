// Evaluates a kernel's tile classifier on the CPU over a concrete tile grid: `attnc run` reports
// the tile counts, and the classification property test compares each class with the dense mask.
import { evaluate, type InterpEnv } from './interp.js';
import type { AttentionKernel, TileClass } from './kernel.js';

export interface TileGridOptions {
  readonly b: number;
  readonly h: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset: number;
  readonly kOffset: number;
  readonly env: InterpEnv; // params, tensors, sizes (vars B H Hkv Nq Nk D)
}

/** Class of the tile (qt, kt), exactly as the kernels compute it. */
export function classifyTile(kernel: AttentionKernel, o: TileGridOptions, qt: number, kt: number): TileClass {
  const { blockQ, blockK } = kernel.schedule;
  const tiles = kernel.tiles;
  if (tiles.kind === 'static') return tiles.value;
  const vars = {
    ...o.env.vars,
    b: o.b,
    h: o.h,
    q_lo: o.qOffset + qt * blockQ,
    q_hi: o.qOffset + Math.min((qt + 1) * blockQ, o.Nq) - 1,
    k_lo: o.kOffset + kt * blockK,
    k_hi: o.kOffset + Math.min((kt + 1) * blockK, o.Nk) - 1,
  };
  const env = { ...o.env, vars };
  if (!evaluate(tiles.canBeTrue, env)) return 'empty';
  if (!evaluate(tiles.canBeFalse, env)) return 'full';
  return 'partial';
}

export function tileCounts(kernel: AttentionKernel, o: TileGridOptions): Record<TileClass, number> {
  const counts = { empty: 0, full: 0, partial: 0 };
  const nqt = Math.ceil(o.Nq / kernel.schedule.blockQ);
  const nkt = Math.ceil(o.Nk / kernel.schedule.blockK);
  for (let qt = 0; qt < nqt; qt++) for (let kt = 0; kt < nkt; kt++) counts[classifyTile(kernel, o, qt, kt)]++;
  return counts;
}
