// PNG pictures decoded back with pngjs: dimensions, and every cell's colour against the mask.
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { maskGrid, type MaskGrid } from '../../src/viz/grid.js';
import { renderPng, type PngLayout } from '../../src/viz/png.js';
import { cellColor, palette, type Rgb } from '../../src/viz/style.js';

function draw(source: string, opts: Parameters<typeof maskGrid>[1]) {
  const grid = maskGrid(source, { exact: true, ...opts });
  const { png, layout } = renderPng(grid);
  const image = PNG.sync.read(png);
  const at = (x: number, y: number): Rgb => {
    const i = (y * image.width + x) * 4;
    return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
  };
  /** The centre pixel of cell (r, c). */
  const cell = (r: number, c: number): Rgb =>
    at(
      layout.heatX + c * layout.scale + (layout.scale >> 1),
      layout.heatY + r * layout.scale + (layout.scale >> 1),
    );
  return { grid, layout, image, at, cell };
}

/** Checks every cell's centre colour: allowed / masked exactly as `allowed(q, k)` says. */
function expectCells(
  d: { grid: MaskGrid; cell: (r: number, c: number) => Rgb },
  allowed: (q: number, k: number) => boolean,
): void {
  const wrong: string[] = [];
  for (let r = 0; r < d.grid.rows; r++)
    for (let c = 0; c < d.grid.cols; c++) {
      const want = allowed(r + d.grid.qOffset, c) ? palette.allowed : palette.masked;
      if (d.cell(r, c).join() !== want.join()) wrong.push(`(${r}, ${c})`);
    }
  expect(wrong).toEqual([]);
}

const causal = 'attention c() { mask causal }';

describe('renderPng', () => {
  it('causal 64×64: allowed colour on and below the diagonal, masked above', () => {
    const d = draw(causal, { nq: 64, nk: 64 });
    const l: PngLayout = d.layout;
    expect([d.image.width, d.image.height]).toEqual([l.width, l.height]);
    expect(l.scale).toBe(10);
    expect(l.heatX + 64 * l.scale).toBeLessThanOrEqual(l.width);
    expect(l.heatY + 64 * l.scale).toBeLessThanOrEqual(l.height);
    expect(d.cell(0, 63)).toEqual(palette.masked); // top right
    expect(d.cell(63, 0)).toEqual(palette.allowed); // bottom left
    expectCells(d, (q, k) => q >= k);
  });

  it('sliding window: a band of width `window`', () => {
    const src = 'attention sw(window: int = 4) { mask causal && q - k < window }';
    const d = draw(src, { nq: 48, nk: 48, params: { window: 8 } });
    expectCells(d, (q, k) => q >= k && q - k < 8);
    expect(d.cell(47, 0)).toEqual(palette.masked);
    expect(d.cell(47, 40)).toEqual(palette.allowed);
  });

  it('nq < nk is bottom-right aligned (q_offset = nk − nq)', () => {
    const d = draw(causal, { nq: 16, nk: 64 });
    expectCells(d, (q, k) => q >= k);
    expect(d.cell(0, 48)).toEqual(palette.allowed);
    expect(d.cell(0, 49)).toEqual(palette.masked);
  });

  it('outlines tiles in their class colour', () => {
    const d = draw('attention sw() { mask causal && q - k < 64 }', { nq: 256, nk: 256 });
    expect(d.layout.tileBorders).toBe(true);
    const { blockQ, blockK, classes, cols } = d.grid.tiles;
    // The top-left pixel of every tile is its border, drawn in the tile's class colour.
    for (let qt = 0; qt < d.grid.tiles.rows; qt++)
      for (let kt = 0; kt < cols; kt++) {
        const x = d.layout.heatX + kt * blockK * d.layout.scale;
        const y = d.layout.heatY + qt * blockQ * d.layout.scale;
        expect(d.at(x, y)).toEqual(palette.tile[classes[qt * cols + kt]!]);
      }
    expect(new Set(classes)).toEqual(new Set(['partial', 'empty']));
  });

  it('downsampled: diagonal cells are mixed, neither colour; tile interiors keep exact colours', () => {
    const d = draw(causal, { nq: 2048, nk: 2048, cols: 256, rows: 256 });
    expect(d.layout.scale).toBe(2);
    // Tiles are 64×24 tokens = 8×3 cells; stay off their 1-pixel borders.
    for (let r = 1; r < 256; r += 8)
      for (const c of [1, 4, 7, 10, 13, 130, 250]) {
        const f = d.grid.fraction[r * 256 + c]!;
        const want = r > c ? palette.allowed : r < c ? palette.masked : cellColor(f);
        expect(d.cell(r, c), `cell ${r}, ${c}`).toEqual(want);
      }
    const diag = d.cell(10, 10);
    expect(diag).not.toEqual(palette.allowed);
    expect(diag).not.toEqual(palette.masked);
  });

  it('draws the legend swatches below the heatmap', () => {
    const d = draw(causal, { nq: 64, nk: 64 });
    const seen = new Set<string>();
    for (let y = d.layout.heatY + 64 * d.layout.scale + 1; y < d.image.height; y++)
      for (let x = 0; x < d.image.width; x++) seen.add(d.at(x, y).join());
    for (const c of [
      palette.allowed,
      palette.masked,
      cellColor(0.5),
      palette.text,
      ...Object.values(palette.tile),
    ])
      expect(seen.has(c.join()), c.join()).toBe(true);
  });
});
