// Colours and captions shared by the SVG and PNG pictures (and the REPL's legend wording), so the
// two formats read the same and tests can look colours up instead of repeating them.
import type { TileClass } from '../ir/kernel.js';
import type { RoutingPlan } from '../ir/routing.js';
import type { MaskGrid } from './grid.js';

export type Rgb = readonly [number, number, number];

export const palette = {
  background: [255, 255, 255] as Rgb,
  text: [17, 24, 39] as Rgb,
  allowed: [37, 99, 235] as Rgb,
  masked: [241, 245, 249] as Rgb,
  selection: [220, 38, 38] as Rgb,
  tile: {
    full: [22, 163, 74] as Rgb,
    partial: [234, 88, 12] as Rgb,
    empty: [148, 163, 184] as Rgb,
  } satisfies Record<TileClass, Rgb>,
};

export const tileClassOrder: readonly TileClass[] = ['full', 'partial', 'empty'];

/** Mixed cells: between the two colours by allowed fraction, kept visibly apart from both. */
export function cellColor(fraction: number): Rgb {
  if (fraction >= 1) return palette.allowed;
  if (fraction <= 0) return palette.masked;
  return mix(palette.masked, palette.allowed, 0.2 + 0.6 * fraction);
}

export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * t)) as unknown as Rgb;
}

export const hex = (c: Rgb): string => '#' + c.map((x) => x.toString(16).padStart(2, '0')).join('');

export function titleText(g: MaskGrid): string {
  const params = Object.entries(g.params).map(([k, v]) => `${k}=${String(v)}`);
  return [`${g.name}`, `nq=${g.nq} nk=${g.nk}`, `b=${g.b} h=${g.h}`, ...params].join('  ');
}

export function densityText(g: MaskGrid): string {
  const pct = `density ${(g.density * 100).toFixed(1)}%`;
  return g.sampled ? `${pct} (estimated: ${g.samplesPerCell} tokens sampled per cell and axis)` : pct;
}

/**
 * A kernel that attends only what its `route`/`select` picks visits a subset of the drawn mask,
 * chosen from q and k at run time; without this line `viz stdlib/biformer.attn` (and the REPL's
 * `:mask`, `:stats`) read as a dense kernel (density 100%). `emit` attends the whole mask, so the
 * picture is exact there.
 */
export function routedNote(routing: RoutingPlan | undefined, name: string): string | undefined {
  if (!routing || routing.attention !== 'selected') return undefined;
  const unit = routing.unit.kind === 'tokens' ? 'keys' : routing.unit.kind;
  return (
    `note: ${name} attends only the ${unit} its selection picks from q and k; the picture is the ` +
    'static mask, an upper bound (`attnc run` reports the routed density)'
  );
}

export function tileText(g: MaskGrid): string {
  const t = g.tiles;
  const { counts } = t;
  const total = counts.full + counts.partial + counts.empty;
  const bad = g.unsoundTiles ? `; ${g.unsoundTiles} tile(s) contradict the reference!` : '';
  const classes = `${counts.full} full, ${counts.partial} partial, ${counts.empty} empty of ${total}`;
  if (t.mergeQ === 1 && t.mergeK === 1) return `tiles ${t.blockQ}×${t.blockK}: ${classes}${bad}`;
  const all = Math.ceil(g.nq / t.kernelBlockQ) * Math.ceil(g.nk / t.kernelBlockK);
  return (
    `tiles ${t.kernelBlockQ}×${t.kernelBlockK}: ${all} in all, classified in boxes of ` +
    `${t.mergeQ}×${t.mergeK} tiles (too many to show one by one): ${classes} boxes${bad}`
  );
}

/** Tokens per cell on one axis: the mean (cells differ by ≤ 1), one decimal below 10. */
const perCell = (n: number, cells: number): string => {
  const x = n / cells;
  return x >= 10 ? String(Math.round(x)) : String(Number(x.toFixed(1)));
};

/**
 * "1 cell = 1 token pair" only when every cell is one (9 queries in 5 rows were captioned so, by
 * the first cell's extent); otherwise "1 cell ≈ 1.8×1 tokens", the mean extent on each axis.
 */
export function cellText(g: MaskGrid): string {
  return g.rows === g.nq && g.cols === g.nk
    ? '1 cell = 1 token pair'
    : `1 cell ≈ ${perCell(g.nq, g.rows)}×${perCell(g.nk, g.cols)} tokens (q×k)`;
}

/** Tile (qt, kt)'s bounds in cell coordinates (fractional when a cell holds several tokens). */
export function tileCellBounds(
  g: MaskGrid,
  qt: number,
  kt: number,
): { r0: number; r1: number; c0: number; c1: number } {
  const { blockQ, blockK } = g.tiles;
  const rowsPerToken = g.rows / g.nq;
  const colsPerToken = g.cols / g.nk;
  return {
    r0: qt * blockQ * rowsPerToken,
    r1: Math.min((qt + 1) * blockQ, g.nq) * rowsPerToken,
    c0: kt * blockK * colsPerToken,
    c1: Math.min((kt + 1) * blockK, g.nk) * colsPerToken,
  };
}
