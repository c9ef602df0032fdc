// The picture's cost does not grow with Nq·Nk (issue 9, item 9: `viz --nq 1000000 --nk 1000000`
// ran past 60 s, `:mask 100000 100000` took 78 s): predicate calls stay within MAX_PAIRS plus the
// tile probes, tiles are classified in boxes beyond MAX_SHOWN_TILES, and both say so.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { GridError, maskGrid } from '../../src/viz/grid.js';
import { MAX_PAIRS } from '../../src/viz/sample.js';
import { densityText, tileText } from '../../src/viz/style.js';
import { MAX_SHOWN_TILES } from '../../src/viz/tiles.js';
import { readStdlib } from '../support/stdlib.js';

describe('mask grids of huge masks', () => {
  it('10^6 × 10^6 at 1024 × 1024 cells: bounded evaluations and tiles, sampled, and said so', () => {
    const compiled = compile(readStdlib('sink_window.attn'), { target: 'wgsl' });
    const g = maskGrid(compiled, { nq: 1e6, nk: 1e6, cols: 1024, rows: 1024, exact: true });
    expect(g.maskEvaluations).toBeLessThanOrEqual(MAX_PAIRS);
    expect(g.tiles.classes.length).toBeLessThanOrEqual(MAX_SHOWN_TILES);
    expect(g.sampled).toBe(true);
    expect(densityText(g)).toMatch(/estimated: [1-8] tokens sampled per cell and axis/);
    expect(tileText(g)).toMatch(/^tiles 64×24: 651046875 in all, classified in boxes of \d+×\d+ tiles/);
    expect(g.tiles.kernelCounts.full + g.tiles.kernelCounts.partial + g.tiles.kernelCounts.empty).toBe(
      651046875,
    );
  });

  it('the cost is the same at 10^5 and 10^7 tokens (terminal-sized grid)', () => {
    const compiled = compile('attention c() { mask causal }', { target: 'wgsl' });
    const at = (n: number) => maskGrid(compiled, { nq: n, nk: n, cols: 96, rows: 30 });
    const small = at(1e5);
    const huge = at(1e7);
    expect(huge.maskEvaluations).toBeLessThanOrEqual(small.maskEvaluations * 2);
    expect(huge.tiles.classes.length).toBeLessThanOrEqual(MAX_SHOWN_TILES);
    expect(huge.density).toBeCloseTo(0.5, 2);
  });

  it('boxes are classified soundly: their full/empty classes agree with the reference', () => {
    for (const file of ['sink_window.attn', 'document.attn', 'dilated.attn', 'prefix_lm.attn']) {
      const compiled = compile(readStdlib(file), { target: 'wgsl' });
      const g = maskGrid(compiled, { nq: 300_000, nk: 300_000, cols: 200, rows: 200 });
      expect(g.tiles.mergeQ * g.tiles.mergeK, file).toBeGreaterThan(1);
      expect(g.unsoundTiles, file).toBe(0);
    }
  });

  it('tensor params whose size follows a huge Nk are refused, not allocated', () => {
    const src = readStdlib('document.attn');
    expect(() => maskGrid(src, { nq: 8, nk: 2_000_000_000 })).toThrow(GridError);
    expect(() => maskGrid(src, { nq: 8, nk: 2_000_000_000 })).toThrow(
      /tensor `doc` \[2000000000\] would have 2000000000 elements/,
    );
    expect(() => maskGrid('attention c() { mask causal }', { nq: 2 ** 31, nk: 8 })).toThrow(/int32/);
  });
});
