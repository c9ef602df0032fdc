// The mask grid against a brute-force count over declPredicates, its tile classes against
// tileCounts, and the fast path (classifier shortcut) against the exact one on every stdlib kernel.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { tileCounts } from '../../src/ir/tile-stats.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { randomTensor, rng, tensorLength } from '../../src/runtime/inputs.js';
import type { TensorSlot } from '../../src/ir/kernel.js';
import { cellState, GridError, maskGrid, type MaskGrid } from '../../src/viz/grid.js';
import { readStdlib, staticStdlib } from '../support/stdlib.js';
import { cellText } from '../../src/viz/style.js';

const stdlib = staticStdlib;
const read = readStdlib;

/** Allowed fraction per cell by evaluating every pair. */
function bruteForce(source: string, g: MaskGrid, tensors: Record<string, Int32Array | Float32Array> = {}) {
  const { decl, kernel } = compile(source, { target: 'wgsl' });
  const sizes = { B: 1, H: 1, Hkv: 1, Nq: g.nq, Nk: g.nk, D: 64 };
  const shape = (t: TensorSlot): number[] =>
    t.dims.map((d) =>
      d.kind === 'literal' ? d.value : d.kind === 'param' ? Number(g.params[d.name]) : sizes[d.name],
    );
  const env = Object.fromEntries(
    kernel.tensors.map((t) => [t.name, { data: tensors[t.name]!, shape: shape(t) }]),
  );
  const pred = declPredicates(decl.decl, { params: g.params, tensors: env, sizes });
  const out = new Float64Array(g.rows * g.cols);
  for (let r = 0; r < g.rows; r++)
    for (let c = 0; c < g.cols; c++) {
      let n = 0;
      let allowed = 0;
      for (let i = g.rowStart[r]!; i < g.rowStart[r + 1]!; i++)
        for (let j = g.colStart[c]!; j < g.colStart[c + 1]!; j++) {
          n++;
          if (pred.mask(0, 0, i + g.qOffset, j)) allowed++;
        }
      out[r * g.cols + c] = allowed / n;
    }
  return out;
}

describe('maskGrid', () => {
  it('counts every pair of a causal mask, bottom-right aligned, and downsamples into mixed cells', () => {
    const src = 'attention c() { mask causal }';
    const g = maskGrid(src, { nq: 40, nk: 100, cols: 25, rows: 10 });
    expect([g.rows, g.cols, g.qOffset]).toEqual([10, 25, 60]);
    expect(Array.from(g.fraction)).toEqual(Array.from(bruteForce(src, g)).map(Math.fround));
    // Row 0 holds queries 0..3 at positions 60..63; column 0 (keys 0..3) is allowed for all.
    expect(cellState(g, 0, 0)).toBe('allowed');
    expect(cellState(g, 0, 24)).toBe('masked');
    expect(cellState(g, 0, 15)).toBe('mixed'); // keys 60..63 against positions 60..63
    let allowed = 0;
    for (let i = 0; i < 40; i++) allowed += Math.min(100, i + 61);
    expect(g.density).toBeCloseTo(allowed / 4000, 12);
  });

  it.each(stdlib)('%s: fast and exact paths agree with each other and with brute force', (file) => {
    const src = read(file);
    const opts = { nq: 150, nk: 300, cols: 60, rows: 30, params: { window: 37, dilation: 3 } };
    const { kernel } = compile(src, { target: 'wgsl' });
    const params = Object.fromEntries(
      Object.entries(opts.params).filter(([k]) => kernel.params.some((p) => p.name === k)),
    );
    const fast = maskGrid(src, { ...opts, params });
    const exact = maskGrid(src, { ...opts, params, exact: true });
    expect(fast.unsoundTiles).toBe(0);
    expect(Array.from(fast.fraction)).toEqual(Array.from(exact.fraction));
    expect(fast.density).toBe(exact.density);
    // The random tensors the grid drew (seed 1, declaration order), drawn again.
    const rand = rng(1);
    const sizes = { B: 1, H: 1, Hkv: 1, Nq: 150, Nk: 300 };
    const tensors = Object.fromEntries(
      kernel.tensors.map((t) => [t.name, randomTensor(t, tensorLength(t, sizes, exact.params), rand)]),
    );
    expect(Array.from(exact.fraction)).toEqual(Array.from(bruteForce(src, exact, tensors)).map(Math.fround));
  });

  it('reports the tile classes of the kernel schedule, as tileCounts does', () => {
    const src = read('sliding_window.attn');
    const compiled = compile(src, { target: 'wgsl' });
    const g = maskGrid(compiled, { nq: 512, nk: 1024, params: { window: 100 } });
    const counts = tileCounts(compiled.kernel, {
      b: 0,
      h: 0,
      Nq: 512,
      Nk: 1024,
      qOffset: 512,
      kOffset: 0,
      env: { params: { window: 100 }, tensors: {}, vars: { B: 1, H: 1, Hkv: 1, Nq: 512, Nk: 1024, D: 64 } },
    });
    expect(g.tiles.counts).toEqual(counts);
    expect(g.tiles.classes.length).toBe(g.tiles.rows * g.tiles.cols);
    expect(g.tiles.rows).toBe(512 / compiled.kernel.schedule.blockQ);
  });

  it('evaluates the predicate only inside partial tiles (the full/empty shortcut)', () => {
    const compiled = compile(read('sink_window.attn'), { target: 'wgsl' });
    const opts = { nq: 1024, nk: 1024, cols: 116, rows: 31, params: { window: 128 } };
    const fast = maskGrid(compiled, opts);
    const exact = maskGrid(compiled, { ...opts, exact: true });
    const { blockQ, blockK, counts } = fast.tiles;
    const probes = 5 * (counts.full + counts.empty);
    expect(exact.maskEvaluations).toBe(1024 * 1024);
    expect(fast.maskEvaluations).toBeLessThanOrEqual(counts.partial * blockQ * blockK + probes);
    expect(fast.maskEvaluations).toBeLessThan(exact.maskEvaluations / 4);
    // (Wall-clock time of this path is measured in bench/host.mjs, not asserted here.)
  });

  it('samples long axes and says so', () => {
    const g = maskGrid('attention c() { mask causal }', { nq: 8192, nk: 8192, cols: 64, rows: 64 });
    expect(g.sampled).toBe(true);
    expect(g.density).toBeCloseTo(0.5, 1);
    expect(cellState(g, 63, 0)).toBe('allowed');
    expect(cellState(g, 0, 63)).toBe('masked');
    expect(cellState(g, 10, 10)).toBe('mixed');
  });

  it('gives tensor params deterministic random content unless given', () => {
    const src = read('document.attn');
    const a = maskGrid(src, { nq: 256, nk: 256, cols: 64, rows: 64 });
    const b = maskGrid(src, { nq: 256, nk: 256, cols: 64, rows: 64 });
    expect(Array.from(a.fraction)).toEqual(Array.from(b.fraction));
    const oneDoc = maskGrid(src, {
      nq: 256,
      nk: 256,
      cols: 64,
      rows: 64,
      tensors: { doc: new Int32Array(256) },
    });
    expect(oneDoc.density).toBeCloseTo((256 * 257) / 2 / 256 ** 2, 12);
  });

  it('refuses a param with no default, or of the wrong type, with a GridError', () => {
    const src = 'attention w(window: int) { mask q - k < window }';
    expect(() => maskGrid(src, { nq: 8, nk: 8 })).toThrow(GridError);
    expect(() => maskGrid(src, { nq: 8, nk: 8, params: { window: 1.5 } })).toThrow(/int/);
    expect(maskGrid(src, { nq: 8, nk: 8, params: { window: 2 } }).density).toBeGreaterThan(0);
  });
});

describe('the cell caption', () => {
  const causal = 'attention c() { mask causal }';
  it('says 1 token pair only when every cell is one', () => {
    // :mask 9 9 drew 5 rows for 9 queries under "1 cell = 1 token pair": the first cell's extent.
    expect(cellText(maskGrid(causal, { nq: 9, nk: 9, rows: 5, cols: 9 }))).toBe(
      '1 cell ≈ 1.8×1 tokens (q×k)',
    );
    expect(cellText(maskGrid(causal, { nq: 9, nk: 9, rows: 9, cols: 9 }))).toBe('1 cell = 1 token pair');
    expect(cellText(maskGrid(causal, { nq: 100000, nk: 1024, rows: 48, cols: 96 }))).toBe(
      '1 cell ≈ 2083×11 tokens (q×k)',
    );
  });
});
