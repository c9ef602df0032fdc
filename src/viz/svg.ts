// The mask as SVG: the heatmap as row runs of equal colour over a masked background, one rect per
// tile with its class (tinted fill and border), a legend, and density / tile counts as real text.
import type { TileClass } from '../ir/kernel.js';
import { cellState, type MaskGrid } from './grid.js';
import {
  cellColor,
  cellText,
  densityText,
  hex,
  palette,
  tileCellBounds,
  tileClassOrder,
  tileText,
  titleText,
} from './style.js';

/** Above this many tiles, runs of equal class along a tile row become one rect (with data-n). */
export const SVG_MERGE_TILES_ABOVE = 16384;

const MARGIN = 24;
const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number): string => String(Math.round(x * 100) / 100);

export interface SvgLayout {
  readonly heatX: number;
  readonly heatY: number;
  /** Size of one cell in SVG units. */
  readonly cell: number;
  readonly width: number;
  readonly height: number;
}

export function svgLayout(g: MaskGrid): SvgLayout {
  const cell = Math.min(16, 640 / Math.max(g.rows, g.cols));
  const heatX = MARGIN + 20;
  const heatY = 56;
  const width = Math.max(heatX + g.cols * cell + MARGIN, 560);
  const height = heatY + g.rows * cell + 24 + 3 * 22 + 2 * 20 + MARGIN;
  return { heatX, heatY, cell, width, height };
}

function heatmap(g: MaskGrid, l: SvgLayout): string[] {
  const out = [
    `<rect id="heat-bg" class="masked" x="${l.heatX}" y="${l.heatY}" width="${num(g.cols * l.cell)}" height="${num(g.rows * l.cell)}"/>`,
  ];
  for (let r = 0; r < g.rows; r++) {
    let c = 0;
    while (c < g.cols) {
      const f = g.fraction[r * g.cols + c]!;
      const color = hex(cellColor(f));
      let end = c + 1;
      while (end < g.cols && hex(cellColor(g.fraction[r * g.cols + end]!)) === color) end++;
      if (f > 0) {
        const cls = cellState(g, r, c);
        const fill = cls === 'mixed' ? ` fill="${color}"` : '';
        out.push(
          `<rect class="${cls}"${fill} x="${num(l.heatX + c * l.cell)}" y="${num(l.heatY + r * l.cell)}" width="${num((end - c) * l.cell)}" height="${num(l.cell)}"/>`,
        );
      }
      c = end;
    }
  }
  return out;
}

function tiles(g: MaskGrid, l: SvgLayout): string[] {
  const { rows, cols, classes } = g.tiles;
  const merge = rows * cols > SVG_MERGE_TILES_ABOVE;
  const out: string[] = [];
  for (let qt = 0; qt < rows; qt++) {
    let kt = 0;
    while (kt < cols) {
      const cls = classes[qt * cols + kt]!;
      let end = kt + 1;
      while (merge && end < cols && classes[qt * cols + end] === cls) end++;
      const a = tileCellBounds(g, qt, kt);
      const b = tileCellBounds(g, qt, end - 1);
      const n = merge ? ` data-n="${end - kt}"` : '';
      out.push(
        `<rect class="tile ${cls}" data-qt="${qt}" data-kt="${kt}"${n} x="${num(l.heatX + a.c0 * l.cell)}" y="${num(l.heatY + a.r0 * l.cell)}" width="${num((b.c1 - a.c0) * l.cell)}" height="${num((a.r1 - a.r0) * l.cell)}"/>`,
      );
      kt = end;
    }
  }
  return out;
}

function selection(g: MaskGrid, l: SvgLayout): string[] {
  const s = g.selection;
  if (!s) return [];
  const bcols = Math.ceil(g.nk / s.blockK);
  const out = [`<g id="selection" data-label="${esc(s.label)}">`];
  s.selected.forEach((v, i) => {
    if (!v) return;
    const qb = Math.floor(i / bcols);
    const kb = i % bcols;
    const x0 = (kb * s.blockK * g.cols) / g.nk;
    const x1 = (Math.min((kb + 1) * s.blockK, g.nk) * g.cols) / g.nk;
    const y0 = (qb * s.blockQ * g.rows) / g.nq;
    const y1 = (Math.min((qb + 1) * s.blockQ, g.nq) * g.rows) / g.nq;
    out.push(
      `<rect class="selected" x="${num(l.heatX + x0 * l.cell)}" y="${num(l.heatY + y0 * l.cell)}" width="${num((x1 - x0) * l.cell)}" height="${num((y1 - y0) * l.cell)}"/>`,
    );
  });
  out.push('</g>');
  return out;
}

function legend(g: MaskGrid, l: SvgLayout): string[] {
  const y0 = l.heatY + g.rows * l.cell + 24;
  const out = ['<g id="legend">'];
  const swatch = (x: number, y: number, cls: string, label: string, fill?: string): void => {
    const f = fill ? ` fill="${fill}"` : '';
    out.push(`<rect class="swatch ${cls}"${f} x="${x}" y="${y}" width="14" height="14"/>`);
    out.push(`<text x="${x + 20}" y="${y + 12}">${esc(label)}</text>`);
  };
  swatch(MARGIN, y0, 'allowed', 'allowed');
  swatch(MARGIN + 110, y0, 'masked', 'masked');
  swatch(MARGIN + 220, y0, 'mixed', 'mixed (shade = allowed fraction)', hex(cellColor(0.5)));
  tileClassOrder.forEach((cls: TileClass, i) =>
    swatch(MARGIN + 110 * i, y0 + 22, `tile ${cls}`, `${cls} tile`),
  );
  out.push(`<text id="density" x="${MARGIN}" y="${y0 + 56}">${esc(densityText(g))}</text>`);
  out.push(`<text id="tile-counts" x="${MARGIN}" y="${y0 + 76}">${esc(tileText(g))}</text>`);
  out.push(`<text id="cells" x="${MARGIN}" y="${y0 + 96}">${esc(cellText(g))}</text>`);
  out.push('</g>');
  return out;
}

function css(): string {
  const t = palette.tile;
  return [
    `text{font:13px sans-serif;fill:${hex(palette.text)}}`,
    `.allowed{fill:${hex(palette.allowed)}}`,
    `.masked{fill:${hex(palette.masked)}}`,
    `.tile{fill-opacity:.12;stroke-width:1}`,
    ...tileClassOrder.map((c) => `.tile.${c}{fill:${hex(t[c])};stroke:${hex(t[c])}}`),
    `.swatch.tile{fill-opacity:.25;stroke-width:2}`,
    `.selected{fill:none;stroke:${hex(palette.selection)};stroke-width:2}`,
  ].join('\n');
}

export function renderSvg(g: MaskGrid): string {
  const l = svgLayout(g);
  const axisY = l.heatY - 8;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${num(l.width)}" height="${num(l.height)}" viewBox="0 0 ${num(l.width)} ${num(l.height)}">`,
    `<title>${esc(titleText(g))}</title>`,
    `<style>\n${css()}\n</style>`,
    `<rect width="100%" height="100%" fill="${hex(palette.background)}"/>`,
    `<text id="title" x="${MARGIN}" y="${MARGIN}">${esc(titleText(g))}</text>`,
    `<text x="${l.heatX}" y="${axisY}">k (key) →</text>`,
    `<text x="${MARGIN}" y="${l.heatY + 12}" transform="rotate(90 ${MARGIN} ${l.heatY + 12})">q (query) →</text>`,
    // crispEdges: rows of rects at fractional coordinates would otherwise show anti-aliased seams.
    '<g id="heatmap" shape-rendering="crispEdges">',
    ...heatmap(g, l),
    '</g>',
    '<g id="tiles">',
    ...tiles(g, l),
    '</g>',
    ...selection(g, l),
    ...legend(g, l),
    '</svg>',
    '',
  ].join('\n');
}
