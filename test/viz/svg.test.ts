// SVG pictures parsed back: well-formed, the heatmap rects reproduce the mask, one tile rect per
// tile with class counts equal to tileCounts, legend and density as text.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { tileCounts } from '../../src/ir/tile-stats.js';
import { cellState, maskGrid } from '../../src/viz/grid.js';
import { renderSvg, svgLayout, SVG_MERGE_TILES_ABOVE } from '../../src/viz/svg.js';

/** Tags balance, attributes are quoted, no stray `<` or `&`. */
function expectWellFormed(xml: string): void {
  const stack: string[] = [];
  const tags = xml.match(/<[^>]*>/g) ?? [];
  for (const tag of tags) {
    const m = /^<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    expect(m, tag).not.toBeNull();
    const [, close, name, , self] = m!;
    if (close) expect(stack.pop()).toBe(name);
    else if (!self) stack.push(name!);
  }
  expect(stack).toEqual([]);
  const text = xml.replace(/<[^>]*>/g, '');
  expect(text).not.toMatch(/[<>]|&(?!(amp|lt|gt|quot);)/);
}

const attr = (tag: string, name: string): number => Number(new RegExp(` ${name}="([^"]*)"`).exec(tag)![1]);

function tileRects(svg: string): Record<string, number> {
  const counts: Record<string, number> = { full: 0, partial: 0, empty: 0 };
  for (const m of svg.matchAll(/<rect class="tile (\w+)"[^>]*>/g))
    counts[m[1]!]! += / data-n="/.test(m[0]) ? attr(m[0], 'data-n') : 1;
  return counts;
}

describe('renderSvg', () => {
  const source = readFileSync('stdlib/sliding_window.attn', 'utf8');
  const compiled = compile(source, { target: 'wgsl' });
  const grid = maskGrid(compiled, { nq: 256, nk: 512, params: { window: 100 }, exact: true });
  const svg = renderSvg(grid);

  it('is well-formed XML', () => expectWellFormed(svg));

  it('has one rect per tile, by class equal to tileCounts', () => {
    const counts = tileCounts(compiled.kernel, {
      b: 0,
      h: 0,
      Nq: 256,
      Nk: 512,
      qOffset: 256,
      kOffset: 0,
      env: { params: { window: 100 }, tensors: {}, vars: { B: 1, H: 1, Hkv: 1, Nq: 256, Nk: 512, D: 64 } },
    });
    expect(tileRects(svg)).toEqual(counts);
    expect(counts.partial).toBeGreaterThan(0);
    expect(counts.empty).toBeGreaterThan(0);
    expect(svg).not.toContain('data-n=');
  });

  it('has the legend, the density and the tile counts as text', () => {
    for (const label of ['allowed', 'masked', 'full tile', 'partial tile', 'empty tile'])
      expect(svg).toContain(`>${label}</text>`);
    expect(svg).toMatch(/>mixed \(shade = allowed fraction\)<\/text>/);
    expect(svg).toContain(`<text id="density" x="24" y="`);
    expect(svg).toMatch(new RegExp(`>density ${(grid.density * 100).toFixed(1)}%</text>`));
    const { full, partial, empty } = grid.tiles.counts;
    expect(svg).toContain(`${full} full, ${partial} partial, ${empty} empty of ${full + partial + empty}`);
    expect(svg).toContain('<title>sliding_window  nq=256 nk=512  b=0 h=0  window=100</title>');
  });

  it('heatmap rects reproduce the mask cell by cell', () => {
    const l = svgLayout(grid);
    const drawn = new Uint8Array(grid.rows * grid.cols);
    for (const m of svg.matchAll(/<rect class="(allowed|mixed)"[^>]*>/g)) {
      const r = Math.round((attr(m[0], 'y') - l.heatY) / l.cell);
      const c0 = Math.round((attr(m[0], 'x') - l.heatX) / l.cell);
      const n = Math.round(attr(m[0], 'width') / l.cell);
      for (let c = c0; c < c0 + n; c++) drawn[r * grid.cols + c] = m[1] === 'allowed' ? 1 : 2;
    }
    const wrong: string[] = [];
    for (let r = 0; r < grid.rows; r++)
      for (let c = 0; c < grid.cols; c++) {
        const want = { masked: 0, allowed: 1, mixed: 2 }[cellState(grid, r, c)];
        const q = r + grid.qOffset;
        if (drawn[r * grid.cols + c] !== want || want !== (q >= c && q - c < 100 ? 1 : 0))
          wrong.push(`${r},${c}`);
      }
    expect(wrong).toEqual([]);
  });

  it('draws a selection layer (the extension point for routing programs) as outlined blocks', () => {
    const selected = new Uint8Array(Math.ceil(256 / 64) * Math.ceil(512 / 128));
    selected[0] = selected[5] = 1;
    const out = renderSvg({ ...grid, selection: { label: 'top-2', blockQ: 64, blockK: 128, selected } });
    expectWellFormed(out);
    expect(out).toContain('<g id="selection" data-label="top-2">');
    expect(out.match(/<rect class="selected"/g)).toHaveLength(2);
    expect(svg).not.toContain('id="selection"');
  });

  it('merges runs of equal tiles on very large grids; data-n still sums to the counts', () => {
    const big = maskGrid(compiled, { nq: 8192, nk: 8192, cols: 64, rows: 64, params: { window: 1000 } });
    expect(big.tiles.rows * big.tiles.cols).toBeGreaterThan(SVG_MERGE_TILES_ABOVE);
    const out = renderSvg(big);
    expectWellFormed(out);
    expect(out).toContain('data-n=');
    expect(tileRects(out)).toEqual(big.tiles.counts);
    expect(out).toContain('(estimated: 8 tokens sampled per cell and axis)');
  });
});
