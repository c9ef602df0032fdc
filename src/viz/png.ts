// The mask as PNG (pngjs): pixels drawn here. Each cell is a square of `scale` pixels in its exact
// state colour; tiles get a 1-pixel inset border in their class colour when they are at least
// 6 pixels wide and tall, else a light tint of it; the legend is colour swatches with captions
// in a built-in bitmap font.
import { PNG } from 'pngjs';
import type { TileClass } from '../ir/kernel.js';
import type { MaskGrid } from './grid.js';
import { advance, drawText, GLYPH_H } from './font.js';
import {
  cellColor,
  cellText,
  densityText,
  mix,
  palette,
  tileCellBounds,
  tileClassOrder,
  tileText,
  titleText,
  type Rgb,
} from './style.js';

export interface PngLayout {
  readonly heatX: number;
  readonly heatY: number;
  /** Pixels per cell side. */
  readonly scale: number;
  readonly width: number;
  readonly height: number;
  /** Whether tiles are outlined (else tinted). */
  readonly tileBorders: boolean;
}

const MARGIN = 24;
const TEXT = 2; // font scale
const LINE = 22;

class Canvas {
  readonly png: PNG;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.fill(0, 0, width, height, palette.background);
  }
  set(x: number, y: number, c: Rgb, alpha = 1): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    const d = this.png.data;
    const [r, g, b] = alpha >= 1 ? c : mix([d[i]!, d[i + 1]!, d[i + 2]!], c, alpha);
    d[i] = r;
    d[i + 1] = g;
    d[i + 2] = b;
    d[i + 3] = 255;
  }
  fill(x: number, y: number, w: number, h: number, c: Rgb, alpha = 1): void {
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) this.set(xx, yy, c, alpha);
  }
  outline(x: number, y: number, w: number, h: number, c: Rgb, t = 1): void {
    this.fill(x, y, w, t, c);
    this.fill(x, y + h - t, w, t, c);
    this.fill(x, y, t, h, c);
    this.fill(x + w - t, y, t, h, c);
  }
  text(s: string, x: number, y: number): void {
    drawText(s, x, y, TEXT, (px, py) => this.set(px, py, palette.text));
  }
}

const textWidth = (s: string): number => s.length * advance(TEXT);

export function pngLayout(g: MaskGrid): PngLayout {
  const scale = Math.max(1, Math.min(32, Math.floor(640 / Math.max(g.rows, g.cols))));
  const heatX = MARGIN + 16;
  const heatY = MARGIN + 2 * LINE;
  const captions = [titleText(g), densityText(g), tileText(g), cellText(g)];
  const width = Math.max(
    heatX + g.cols * scale + MARGIN,
    ...captions.map((c) => MARGIN * 2 + textWidth(c)),
    640,
  );
  const height = heatY + g.rows * scale + 16 + 5 * LINE + MARGIN;
  const { blockQ, blockK } = g.tiles;
  const tilePx = Math.min((blockQ * g.rows * scale) / g.nq, (blockK * g.cols * scale) / g.nk);
  return { heatX, heatY, scale, width, height, tileBorders: tilePx >= 6 };
}

function drawTiles(cv: Canvas, g: MaskGrid, l: PngLayout): void {
  const { rows, cols, classes } = g.tiles;
  for (let qt = 0; qt < rows; qt++)
    for (let kt = 0; kt < cols; kt++) {
      const b = tileCellBounds(g, qt, kt);
      const x0 = l.heatX + Math.round(b.c0 * l.scale);
      const y0 = l.heatY + Math.round(b.r0 * l.scale);
      const w = l.heatX + Math.round(b.c1 * l.scale) - x0;
      const h = l.heatY + Math.round(b.r1 * l.scale) - y0;
      const color = palette.tile[classes[qt * cols + kt]!];
      if (l.tileBorders) cv.outline(x0, y0, w, h, color);
      else cv.fill(x0, y0, w, h, color, 0.35);
    }
}

function drawSelection(cv: Canvas, g: MaskGrid, l: PngLayout): void {
  const s = g.selection;
  if (!s) return;
  const bcols = Math.ceil(g.nk / s.blockK);
  const px = (tokens: number, n: number, cells: number): number =>
    Math.round(((tokens * cells) / n) * l.scale);
  s.selected.forEach((v, i) => {
    if (!v) return;
    const qb = Math.floor(i / bcols);
    const kb = i % bcols;
    const x0 = px(kb * s.blockK, g.nk, g.cols);
    const x1 = px(Math.min((kb + 1) * s.blockK, g.nk), g.nk, g.cols);
    const y0 = px(qb * s.blockQ, g.nq, g.rows);
    const y1 = px(Math.min((qb + 1) * s.blockQ, g.nq), g.nq, g.rows);
    cv.outline(l.heatX + x0, l.heatY + y0, x1 - x0, y1 - y0, palette.selection, 2);
  });
}

function drawLegend(cv: Canvas, g: MaskGrid, l: PngLayout): void {
  let y = l.heatY + g.rows * l.scale + 16;
  const ty = (yy: number): number => yy + Math.floor((14 - GLYPH_H * TEXT) / 2);
  const row = (items: [string, (x: number, y: number) => void][]): void => {
    let x = MARGIN;
    for (const [label, swatch] of items) {
      swatch(x, y);
      cv.text(label, x + 20, ty(y));
      x += 20 + textWidth(label) + 24;
    }
    y += LINE;
  };
  const solid = (c: Rgb) => (x: number, yy: number) => {
    cv.fill(x, yy, 14, 14, c);
    cv.outline(x, yy, 14, 14, palette.text);
  };
  row([
    ['allowed', solid(palette.allowed)],
    ['masked', solid(palette.masked)],
    ['mixed', solid(cellColor(0.5))],
  ]);
  row(
    tileClassOrder.map((c: TileClass): [string, (x: number, y: number) => void] => [
      `${c} tile`,
      (x, yy) => {
        cv.fill(x, yy, 14, 14, palette.tile[c], 0.25);
        cv.outline(x, yy, 14, 14, palette.tile[c], 2);
      },
    ]),
  );
  for (const caption of [densityText(g), tileText(g), cellText(g)]) {
    cv.text(caption, MARGIN, ty(y));
    y += LINE;
  }
}

export function renderPng(g: MaskGrid): { png: Buffer; layout: PngLayout } {
  const l = pngLayout(g);
  const cv = new Canvas(l.width, l.height);
  cv.text(titleText(g), MARGIN, MARGIN - 8);
  cv.text('k', l.heatX, l.heatY - LINE + 2);
  cv.text('q', MARGIN - 8, l.heatY);
  for (let r = 0; r < g.rows; r++)
    for (let c = 0; c < g.cols; c++)
      cv.fill(
        l.heatX + c * l.scale,
        l.heatY + r * l.scale,
        l.scale,
        l.scale,
        cellColor(g.fraction[r * g.cols + c]!),
      );
  drawTiles(cv, g, l);
  drawSelection(cv, g, l);
  drawLegend(cv, g, l);
  return { png: PNG.sync.write(cv.png), layout: l };
}
