// Tests of the routing/selection oracle: hand-computed pooling, affinity, top-k, forcing, voting
// and index layouts, then properties on random shapes — the selection is a valid top-k of an
// affinity recomputed here from the dense score matrix, and emitted indices read back `from` a
// tensor give the same attention.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttentionDecl } from '../src/dsl/ast.js';
import { frontend } from '../src/dsl/index.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';
import {
  checkSelection,
  nearTieGap,
  referenceDecl,
  referenceRouting,
  type PoolReducer,
  type RoutingSpec,
} from '../src/runtime/reference-routing.js';
import { arbShape, makeInputs, type Shape } from './support/arbitraries.js';
import { readStdlib, routedStdlib } from './support/stdlib.js';

const E = Math.E;
const causal = (_b: number, _h: number, q: number, k: number): boolean => q >= k;

function inputs(over: Partial<RefInputs> & Pick<RefInputs, 'q' | 'k'>): RefInputs {
  const base = { B: 1, Hq: 1, Hkv: 1, Nq: over.q.length, Nk: over.k.length, D: 1, Dv: 1, scale: 1 };
  const all = { ...base, ...over };
  return { v: over.v ?? Array.from({ length: all.B * all.Hkv * all.Nk * all.Dv }, (_, i) => i + 1), ...all };
}

const topk = (k: number, q: PoolReducer | 'raw', key: PoolReducer | 'raw') =>
  ({ kind: 'topk', k, q, key }) as const;
const blocks = (size: number) => ({ kind: 'blocks', size }) as const;

/** The selected ids of every query row of batch 0, group 0. */
const rowsOf = (r: ReturnType<typeof referenceRouting>, Nq: number, g = 0): number[][] =>
  Array.from({ length: Nq }, (_, i) => [...r.unitOf(0, g, i).selected]);

describe('referenceRouting: hand-computed cases', () => {
  // k = [1, 3 | -2, 0]: block 0 has mean 2, block 1 mean −1. q = [1, 1 | −1, −1]: pooled ±1.
  const twoBlocks = inputs({ q: [1, 1, -1, -1], k: [1, 3, -2, 0], v: [10, 20, 30, 40] });

  it('2 blocks, mean · mean, top-1: each query block keeps its own block', () => {
    const r = referenceRouting(twoBlocks, { unit: blocks(2), source: topk(1, 'mean', 'mean') });
    expect([...r.unitOf(0, 0, 0).metric]).toEqual([
      [0, 2],
      [1, -1],
    ]);
    expect([...r.unitOf(0, 0, 2).metric]).toEqual([
      [0, -2],
      [1, 1],
    ]);
    expect([...r.indices]).toEqual([0, 0, 1, 1]); // [B, G, Nq, K = 1]
    expect(r.density).toBe(0.5);
    const out = referenceAttention(twoBlocks, { mask: r.mask }).out;
    // Row 0 sees keys 0, 1 with scores 1, 3; row 2 sees keys 2, 3 with scores 2, 0.
    expect(out[0]).toBeCloseTo((10 * E + 20 * E ** 3) / (E + E ** 3), 12);
    expect(out[2]).toBeCloseTo((30 * E ** 2 + 40) / (E ** 2 + 1), 12);
  });

  it('the static mask decides the candidates: a future block is never chosen', () => {
    const r = referenceRouting(twoBlocks, { unit: blocks(2), source: topk(1, 'mean', 'mean') }, causal);
    expect(r.unitOf(0, 0, 0).candidates).toEqual([0]);
    expect(rowsOf(r, 4)).toEqual([[0], [0], [1], [1]]);
    // Row 2 (position 2) keeps block 1 but the mask still hides key 3 from it.
    expect(r.mask(0, 0, 2, 2)).toBe(true);
    expect(r.mask(0, 0, 2, 3)).toBe(false);
    expect(r.pairDensity).toBe(6 / 16); // rows see 1, 2, 1 and 2 keys
  });

  it('max, lnmean and first pooling', () => {
    const inp = inputs({ q: [2, 0], k: [1, 3, -2, 0, 5], Nq: 2 });
    const metric = (r: PoolReducer): number[] => [
      ...referenceRouting(inp, { unit: blocks(2), source: topk(3, 'raw', r) })
        .unitOf(0, 0, 0)
        .metric.values(),
    ];
    // Blocks {1, 3}, {−2, 0} and the ragged {5}; the query row 0 is 2.
    expect(metric('max')).toEqual([6, 0, 10]);
    expect(metric('first')).toEqual([2, -4, 10]);
    const ln = metric('lnmean');
    [2 * 2 * Math.SQRT2, 2 * -1 * Math.SQRT2, 2 * 5].forEach((x, i) => expect(ln[i]).toBeCloseTo(x, 12));
    // A pooled query block of one row (query position 3 with Nq = 2 is alone in block 1).
    const r = referenceRouting(inp, { unit: blocks(2), source: topk(1, 'mean', 'mean') });
    expect(r.unitOf(0, 0, 0).rows).toEqual([0]);
    expect(r.unitOf(0, 0, 1).rows).toEqual([1]);
  });

  it('ties go to the lower id', () => {
    const inp = inputs({ q: [1], k: [1, 1, 1, 1, 1, 1] });
    const r = referenceRouting(inp, { unit: blocks(2), source: topk(2, 'raw', 'mean') });
    expect(rowsOf(r, 1)).toEqual([[0, 1]]);
    expect(r.unitOf(0, 0, 0).ranked).toEqual([0, 1, 2]);
    expect(nearTieGap(r).gap).toBe(0);
  });

  it('k larger than the number of candidates keeps them all', () => {
    const r = referenceRouting(twoBlocks, { unit: blocks(2), source: topk(9, 'mean', 'mean') }, causal);
    expect(rowsOf(r, 4)).toEqual([[0], [0], [0, 1], [0, 1]]);
    expect(r.K).toBe(9);
    expect([...r.indices.slice(18, 27)]).toEqual([0, 1, -1, -1, -1, -1, -1, -1, -1]);
    expect(nearTieGap(r).gap).toBe(Infinity);
  });

  it('forced blocks come on top of the top-k, only where they are candidates', () => {
    const inp = inputs({ q: [1, 1, 1, 1, 1, 1], k: [0, 0, 5, 5, 9, 9] });
    const spec: RoutingSpec = { unit: blocks(2), source: topk(0, 'mean', 'mean'), first: 1, local: 1 };
    const r = referenceRouting(inp, spec, causal);
    // Block 0 is forced by first(1); the query's own block by local(1); nothing is ranked in.
    expect(rowsOf(r, 6)).toEqual([[0], [0], [0, 1], [0, 1], [0, 2], [0, 2]]);
    const r1 = referenceRouting(inp, { ...spec, source: topk(1, 'mean', 'mean') }, causal);
    expect(rowsOf(r1, 6)).toEqual([[0], [0], [0, 1], [0, 1], [0, 1, 2], [0, 1, 2]]);
    expect(r1.unitOf(0, 0, 4).forced).toEqual([0, 2]);
    expect(r1.K).toBe(3);
  });

  it('all candidates forced: nothing left to rank', () => {
    const inp = inputs({ q: [1, 1, 1, 1], k: [3, 1, 2, 4] });
    const r = referenceRouting(inp, { unit: blocks(2), source: topk(2, 'mean', 'mean'), local: 2 }, causal);
    expect(r.unitOf(0, 0, 3)).toMatchObject({ forced: [0, 1], ranked: [], selected: [0, 1] });
    expect(checkSelection(r, 0, 0, 3, [1, 0, -1, -1], 0)).toBeUndefined();
  });

  it('chunks: variable lengths, ragged last chunk, lnmean by each chunk’s own length', () => {
    // Chunks {0}, {1, 2, 3}, {4, 5}; q row at position 5 is 1.
    const ids = [0, 1, 1, 1, 2, 2];
    const inp = inputs({ q: [1], k: [4, 1, 2, 3, 6, 2] });
    const r = referenceRouting(inp, { unit: { kind: 'chunks', ids }, source: topk(1, 'raw', 'lnmean') });
    const m = [...r.unitOf(0, 0, 0).metric.values()];
    [4, 2 * Math.sqrt(3), 4 * Math.SQRT2].forEach((x, i) => expect(m[i]).toBeCloseTo(x, 12));
    expect(rowsOf(r, 1)).toEqual([[2]]);
    const local = referenceRouting(inp, {
      unit: { kind: 'chunks', ids },
      source: topk(1, 'raw', 'mean'),
      local: 1,
    });
    expect(rowsOf(local, 1)).toEqual([[0, 2]]); // chunk 2 is forced, chunk 0 (mean 4) ranks first
    expect(() =>
      referenceRouting(inp, {
        unit: { kind: 'chunks', ids: [0, 1, 0, 1, 1, 1] },
        source: topk(1, 'raw', 'mean'),
      }),
    ).toThrow(/decrease/);
  });

  // Head 0 (q = 3) strongly prefers key 2; head 1 (q = −0.5) mildly prefers key 0.
  const twoHeads = inputs({ q: [3, -0.5], k: [0, 1, 2], Hq: 2, Nq: 1 });

  it('per-head selection vs soft voting across heads (TokenSelect)', () => {
    const own = referenceRouting(twoHeads, { unit: { kind: 'tokens' }, source: topk(1, 'raw', 'raw') });
    expect([own.G, ...own.indices]).toEqual([2, 2, 0]);
    const voted = referenceRouting(twoHeads, {
      unit: { kind: 'tokens' },
      source: topk(1, 'raw', 'raw'),
      vote: 'heads',
    });
    const soft = (qv: number): number[] => {
      const z = 1 + Math.exp(qv) + Math.exp(2 * qv);
      return [1 / z, Math.exp(qv) / z, Math.exp(2 * qv) / z];
    };
    const want = soft(3).map((x, i) => x + (soft(-0.5)[i] as number));
    const got = [...voted.unitOf(0, 0, 0).metric.values()];
    want.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 12));
    expect([voted.G, ...voted.indices]).toEqual([1, 2]);
    expect(voted.mask(0, 1, 2, 2)).toBe(true); // head 1 attends the voted key
    expect(voted.mask(0, 1, 2, 0)).toBe(false);
  });

  it('GQA: vote groups shares one selection per kv head', () => {
    // Hq = 4, Hkv = 2: heads 0, 1 read kv head 0 (k = 0 1 2), heads 2, 3 kv head 1 (k = 2 1 0).
    const inp = inputs({ q: [3, -0.5, 1, 1], k: [0, 1, 2, 2, 1, 0], Hq: 4, Hkv: 2, Nq: 1, Nk: 3 });
    const r = referenceRouting(inp, {
      unit: { kind: 'tokens' },
      source: topk(1, 'raw', 'raw'),
      vote: 'groups',
    });
    expect([r.G, r.group(0), r.group(1), r.group(2), r.group(3)]).toEqual([2, 0, 0, 1, 1]);
    expect([...r.indices]).toEqual([2, 0]);
    const perHead = referenceRouting(inp, { unit: { kind: 'tokens' }, source: topk(1, 'raw', 'raw') });
    expect([...perHead.indices]).toEqual([2, 0, 0, 0]);
  });

  it('emit: the selection is written, attention is not restricted', () => {
    const r = referenceRouting(twoBlocks, {
      unit: blocks(2),
      source: topk(1, 'mean', 'mean'),
      restrict: false,
    });
    expect([...r.indices]).toEqual([0, 0, 1, 1]);
    expect(r.selected(0, 0, 0, 3)).toBe(false);
    expect(r.mask(0, 0, 0, 3)).toBe(true);
    expect(r.pairDensity).toBe(1);
  });

  it('from: ids per query row, padding and unknown ids ignored, forced added', () => {
    const indices = [1, -1, 0, 7, -1, -1, 1, 1]; // [B=1, G=1, Nq=4, K=2]
    const r = referenceRouting(twoBlocks, {
      unit: blocks(2),
      source: { kind: 'from', indices, groups: 1, capacity: 2 },
      first: 1,
    });
    expect(rowsOf(r, 4)).toEqual([[0, 1], [0], [0], [0, 1]]);
    expect(r.K).toBe(3);
    expect(checkSelection(r, 0, 0, 0, [1, 0, -1], 0)).toBeUndefined(); // exact: nothing was ranked
    expect(checkSelection(r, 0, 0, 0, [1], 0)).toBe('selected [1], expected [0, 1]');
  });

  it('decode: one query row over many blocks', () => {
    const k = Array.from({ length: 40 }, (_, j) => Math.sin(j));
    const r = referenceRouting(
      inputs({ q: [1], k }),
      { unit: blocks(8), source: topk(2, 'raw', 'mean'), local: 1 },
      causal,
    );
    const means = [0, 1, 2, 3, 4].map((c) => k.slice(8 * c, 8 * c + 8).reduce((a, b) => a + b) / 8);
    const best = [0, 1, 2, 3].sort((a, b) => (means[b] as number) - (means[a] as number)).slice(0, 2);
    expect(rowsOf(r, 1)).toEqual([[...best, 4].sort((x, y) => x - y)]);
  });
});

describe('checkSelection and nearTieGap', () => {
  const inp = inputs({ q: [1], k: [5, 4, 3, 2.5, 1] });
  const r = referenceRouting(inp, { unit: { kind: 'tokens' }, source: topk(2, 'raw', 'raw'), first: 1 });

  it('accepts the oracle’s selection in any order, rejects wrong ones', () => {
    expect(rowsOf(r, 1)).toEqual([[0, 1, 2]]);
    expect(checkSelection(r, 0, 0, 0, [2, 1, 0], 0)).toBeUndefined();
    expect(checkSelection(r, 0, 0, 0, [1, 2], 0)).toBe('forced ids 0 are missing');
    expect(checkSelection(r, 0, 0, 0, [0, 1], 0)).toBe('1 ranked ids selected, expected 2');
    expect(checkSelection(r, 0, 0, 0, [0, 1, 3], 0)).toBe('id 2 ranks above a selected id by more than 0');
    expect(checkSelection(r, 0, 0, 0, [0, 1, 3], 0.5)).toBeUndefined(); // within tolerance
  });

  it('reports the gap between the k-th and (k+1)-th ranked candidates', () => {
    expect(nearTieGap(r)).toEqual({ gap: 0.5, relative: 0.5 / 3, at: { b: 0, g: 0, row: 0 } });
  });
});

// ---- properties on random shapes ----

interface Case {
  shape: Shape;
  seed: number;
  unit: 'blocks' | 'chunks' | 'tokens';
  size: number;
  q: PoolReducer | 'raw';
  key: PoolReducer | 'raw';
  k: number;
  first: number;
  local: number;
  vote: 'heads' | 'groups' | undefined;
  mask: 'none' | 'causal' | 'window';
}

const reducer = fc.constantFrom<PoolReducer | 'raw'>('raw', 'mean', 'max', 'lnmean', 'first');
const arbCase: fc.Arbitrary<Case> = fc
  .record({
    shape: arbShape({ maxN: 12 }),
    seed: fc.integer(),
    unit: fc.constantFrom('blocks' as const, 'chunks' as const, 'tokens' as const),
    size: fc.integer({ min: 1, max: 5 }),
    q: reducer,
    key: reducer.filter((r) => r !== 'raw'),
    k: fc.integer({ min: 0, max: 6 }),
    first: fc.integer({ min: 0, max: 2 }),
    local: fc.integer({ min: 0, max: 2 }),
    vote: fc.constantFrom(undefined, 'heads' as const, 'groups' as const),
    mask: fc.constantFrom('none' as const, 'causal' as const, 'window' as const),
  })
  .map((c) => {
    // Chunk ids are indexed by position: keep every position inside the tensor.
    const shape =
      c.unit === 'chunks'
        ? { ...c.shape, qOffset: c.shape.Nk - Math.min(c.shape.Nq, c.shape.Nk), kOffset: 0 }
        : c.shape;
    return c.unit === 'tokens' ? { ...c, shape, q: 'raw', key: 'raw' } : { ...c, shape };
  });

function build(c: Case): {
  inp: RefInputs;
  spec: RoutingSpec;
  mask: (b: number, h: number, q: number, k: number) => boolean;
  idOf: (p: number) => number;
} {
  const s = c.shape;
  const data = makeInputs(s, c.seed);
  const inp: RefInputs = { ...s, q: data.q, k: data.k, v: data.v, qOffset: s.qOffset, kOffset: s.kOffset };
  const len = Math.max((s.qOffset ?? s.Nk - s.Nq) + s.Nq, s.Nk + (s.kOffset ?? 0));
  const ids = Array.from({ length: len }, (_, p) => Math.floor((p * p) / (3 * c.size + 1)));
  const unit: RoutingSpec['unit'] =
    c.unit === 'blocks'
      ? { kind: 'blocks', size: c.size }
      : c.unit === 'chunks'
        ? { kind: 'chunks', ids }
        : { kind: 'tokens' };
  const idOf = (p: number): number =>
    c.unit === 'blocks' ? Math.floor(p / c.size) : c.unit === 'chunks' ? (ids[p] as number) : p;
  const mask =
    c.mask === 'none'
      ? () => true
      : c.mask === 'causal'
        ? causal
        : (_b: number, h: number, q: number, k: number) => q >= k && q - k < 3 + h;
  const spec: RoutingSpec = {
    unit,
    source: topk(c.k, c.q, c.key),
    first: c.first,
    local: c.local,
    ...(c.vote ? { vote: c.vote } : {}),
  };
  return { inp, spec, mask, idOf };
}

/** The affinity recomputed from dense scores: pooling by mean is bilinear, first picks a pair. */
function denseAffinity(
  c: Case,
  inp: RefInputs,
  h: number,
  rows: readonly number[],
  keys: readonly number[],
): number | undefined {
  const scale = Math.fround(1 / Math.sqrt(inp.D));
  const kvh = Math.floor(h / (inp.Hq / inp.Hkv));
  const score = (i: number, j: number): number => {
    let s = 0;
    for (let d = 0; d < inp.D; d++)
      s +=
        (inp.q[(h * inp.Nq + i) * inp.D + d] as number) * (inp.k[(kvh * inp.Nk + j) * inp.D + d] as number);
    return scale * s;
  };
  const side = (
    r: PoolReducer | 'raw',
    xs: readonly number[],
  ): { xs: readonly number[]; f: number } | undefined =>
    r === 'max'
      ? undefined
      : r === 'first' || r === 'raw'
        ? { xs: xs.slice(0, 1), f: 1 }
        : { xs, f: r === 'lnmean' ? Math.sqrt(xs.length) : 1 };
  const a = side(c.q, rows);
  const b = side(c.key, keys);
  if (!a || !b) return undefined;
  let sum = 0;
  for (const i of a.xs) for (const j of b.xs) sum += score(i, j);
  return (sum / (a.xs.length * b.xs.length)) * a.f * b.f;
}

describe('referenceRouting: properties', () => {
  it('selects forced ∪ a valid top-k of the candidates, with ties to the lower id', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { inp, spec, mask, idOf } = build(c);
        const r = referenceRouting({ ...inp, B: 1 }, spec, mask);
        const qOff = inp.qOffset ?? inp.Nk - inp.Nq;
        const kOff = inp.kOffset ?? 0;
        for (let g = 0; g < r.G; g++)
          for (let i = 0; i < inp.Nq; i++) {
            const u = r.unitOf(0, g, i);
            const heads = [...Array(inp.Hq).keys()].filter((h) => r.group(h) === g);
            // Candidates: ids with an allowed pair for some voting head, recomputed densely.
            const keysOf = (id: number): number[] =>
              [...Array(inp.Nk).keys()].filter((j) => idOf(j + kOff) === id);
            const cands = [...new Set([...Array(inp.Nk).keys()].map((j) => idOf(j + kOff)))].filter((id) =>
              heads.some((h) =>
                u.rows.some((row) => keysOf(id).some((j) => mask(0, h, row + qOff, j + kOff))),
              ),
            );
            expect(u.candidates).toEqual(cands);
            expect(u.rows).toContain(i);
            const forced = cands.filter(
              (id) => id < c.first || (id <= idOf(i + qOff) && id > idOf(i + qOff) - c.local),
            );
            expect(u.forced).toEqual(forced);
            const picked = u.selected.filter((id) => !forced.includes(id));
            expect(picked.length).toBe(Math.min(c.k, cands.length - forced.length));
            expect(u.selected.length).toBe(forced.length + picked.length);
            expect(checkSelection(r, 0, g, i, u.selected, 0)).toBeUndefined();
            // Among equal metrics, a selected id is lower than an unselected one.
            for (const s of picked)
              for (const o of u.ranked.filter((x) => !picked.includes(x)))
                if (u.metric.get(s) === u.metric.get(o)) expect(s).toBeLessThan(o);
            // Without a vote the metric is the affinity, recomputed from dense scores.
            for (const id of c.vote === undefined ? cands : []) {
              const want = denseAffinity(c, inp, g, u.rows, keysOf(id));
              if (want !== undefined) expect(u.metric.get(id)).toBeCloseTo(want, 9);
            }
          }
        expect(nearTieGap(r).gap).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it('indices read back `from` a tensor give the same selection and attention', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { inp, spec, mask, idOf } = build(c);
        const r = referenceRouting(inp, spec, mask);
        const source = { kind: 'from', indices: r.indices, groups: r.G, capacity: r.K } as const;
        const again = referenceRouting(inp, { ...spec, source, first: 0, local: 0 }, mask);
        const a = referenceAttention(inp, { mask: r.mask });
        const b = referenceAttention(inp, { mask: again.mask });
        expect([...b.mask]).toEqual([...a.mask]);
        expect([...b.out]).toEqual([...a.out]);
        // The emitted layout is [B, G, Nq, K], ascending ids, −1 padded, and decodes to the mask.
        const qOff = inp.qOffset ?? inp.Nk - inp.Nq;
        const kOff = inp.kOffset ?? 0;
        for (let b0 = 0; b0 < inp.B; b0++)
          for (let h = 0; h < inp.Hq; h++)
            for (let i = 0; i < inp.Nq; i++) {
              const at = ((b0 * r.G + r.group(h)) * inp.Nq + i) * r.K;
              const row = [...r.indices.slice(at, at + r.K)];
              const ids = row.filter((x) => x >= 0);
              expect(row).toEqual([...ids, ...Array(r.K - ids.length).fill(-1)]);
              expect(ids).toEqual([...ids].sort((x, y) => x - y));
              for (let j = 0; j < inp.Nk; j++) {
                const want = mask(b0, h, i + qOff, j + kOff) && ids.includes(idOf(j + kOff));
                expect(a.mask[((b0 * inp.Hq + h) * inp.Nq + i) * inp.Nk + j]).toBe(want ? 1 : 0);
              }
            }
      }),
      { numRuns: 150 },
    );
  });
});

// ---- whole declarations: the stdlib routing sources through the oracle ----

describe('referenceDecl: stdlib routing sources', () => {
  const shape: Shape = { B: 1, Hq: 4, Hkv: 2, Nq: 3, Nk: 150, D: 8, Dv: 8 };
  const data = makeInputs(shape, 7);
  const inp: RefInputs = { ...shape, q: data.q, k: data.k, v: data.v };
  const sizes = { B: 1, H: 4, Hkv: 2, Nq: 3, Nk: 150, D: 8 };
  const load = (file: string): Map<string, AttentionDecl> => {
    const fe = frontend(readStdlib(file), file);
    expect(fe.diagnostics).toEqual([]);
    return new Map(fe.decls.map((d) => [d.decl.name, d.decl]));
  };
  const chunk = {
    data: Int32Array.from({ length: 150 }, (_, p) => Math.floor(Math.sqrt(p * 3))),
    shape: [150],
  };

  it.each(routedStdlib)('%s runs', (file) => {
    for (const decl of load(file).values()) {
      const budget = 5;
      const idx = {
        data: new Int32Array(3 * 2 * budget).fill(-1).map((_, i) => (i * 7) % 150),
        shape: [1, 2, 3, budget],
      };
      const params = Object.fromEntries(
        decl.params
          .filter((p) => ['top', 'budget'].includes(p.name))
          .map((p) => [p.name, p.name === 'top' ? 2 : budget]),
      );
      const r = referenceDecl(decl, inp, { params, tensors: { chunk, idx }, sizes });
      expect(r.out.every(Number.isFinite)).toBe(true);
      if (r.routing) {
        expect(r.routing.density).toBeGreaterThan(0);
        expect(r.routing.density).toBeLessThanOrEqual(1);
      }
    }
  });

  it('TidalDecode: the reuse layer attends exactly what the selection layer emitted', () => {
    const decls = load('tidaldecode.attn');
    const env = { params: { budget: 6 }, tensors: {}, sizes };
    const sel = referenceDecl(decls.get('tidal_select')!, inp, env);
    const routing = sel.routing!;
    // Full causal attention: rows at positions 147–149 see 148, 149 and 150 keys.
    expect([routing.G, routing.K, routing.pairDensity]).toEqual([2, 6, 447 / 450]);
    const idx = { data: routing.indices, shape: [1, routing.G, 3, routing.K] };
    const reuse = referenceDecl(decls.get('tidal_reuse')!, inp, { ...env, tensors: { idx } });
    for (let h = 0; h < 4; h++)
      for (let i = 0; i < 3; i++) {
        const kept = [...routing.unitOf(0, routing.group(h), i).selected];
        expect(kept.length).toBe(6);
        const row = [...reuse.mask.slice((h * 3 + i) * 150, (h * 3 + i + 1) * 150)];
        expect(row.flatMap((m, j) => (m ? [j] : []))).toEqual(kept);
      }
  });

  it('Recycled attention: a step keeps the full step’s tokens plus the newest `stride`', () => {
    const decls = load('recycled.attn');
    const full = referenceDecl(decls.get('recycled_full')!, inp, {
      params: { budget: 4 },
      tensors: {},
      sizes,
    }).routing!;
    const idx = { data: full.indices, shape: [1, full.G, 3, full.K] };
    const env = { params: { budget: 4, stride: 3 }, tensors: { idx }, sizes };
    const step = referenceDecl(decls.get('recycled_step')!, inp, env);
    const row0 = [...step.mask.slice(0, 150)].flatMap((m, j) => (m ? [j] : []));
    // Query row 0 is position 147: local(3) keeps 145–147.
    expect(row0).toEqual(
      [...new Set([...full.unitOf(0, 0, 0).selected, 145, 146, 147])].sort((a, b) => a - b),
    );
  });
});
