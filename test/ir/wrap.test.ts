// Int32 wrap and tile classification: the overflow guards are exact (against BigInt), and tile
// classes stay sound when index arithmetic wraps — pinned cases from issue #9 and random
// wrap-prone programs at offsets near the ends of int32, checked against the dense mask.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compile.js';
import { Graph, type Node } from '../../src/ir/graph.js';
import { evaluate } from '../../src/ir/interp.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import type { TileClass } from '../../src/ir/kernel.js';
import { wrapGuards, I32_MAX, I32_MIN } from '../../src/ir/passes/wrap-guards.js';
import { arbNearLimit, arbProgram, arbShape, type Shape } from '../support/arbitraries.js';
import { identitiesSource } from '../support/int-identities.js';
import { checkTiles } from '../support/tile-check.js';

/** Ints biased toward the cases that matter: 0, ±1, the limits, their neighbours, √2^31. */
const edgyInt = fc.oneof(
  fc.constantFrom(0, 1, -1, 2, -2, I32_MAX, I32_MIN, I32_MIN + 1, I32_MAX - 1, 46340, 46341, -46341, 65536),
  arbNearLimit(1 << 20),
  fc.integer({ min: I32_MIN, max: I32_MAX }),
  fc.integer({ min: -70000, max: 70000 }),
);

describe('overflow guards', () => {
  const g = new Graph();
  const w = wrapGuards(g);
  const [a, b] = [g.var('q_lo'), g.var('k_lo')];
  const guards: [string, Node, (x: bigint, y: bigint) => bigint][] = [
    ['add', w.addOverflows(a, b), (x, y) => x + y],
    ['sub', w.subOverflows(a, b), (x, y) => x - y],
    ['mul', w.mulOverflows(a, b), (x, y) => x * y],
  ];
  for (const [name, guard, exact] of guards)
    it(`${name}: says "overflows" exactly when the integer result leaves int32`, () => {
      fc.assert(
        fc.property(edgyInt, edgyInt, (x, y) => {
          const r = exact(BigInt(x), BigInt(y));
          const overflows = r > BigInt(I32_MAX) || r < BigInt(I32_MIN);
          expect(evaluate(guard, { vars: { q_lo: x, k_lo: y } }), `${x} ${name} ${y}`).toBe(overflows);
        }),
        { numRuns: 3000 },
      );
    });
});

/** A one-declaration source's tiles, checked; returns the class counts. */
function tilesOf(source: string, shape: Partial<Shape>, block = 16): Record<TileClass, number> {
  const { decl } = checkSource(source, 'wrap.attn');
  const full: Shape = { B: 1, Hq: 1, Hkv: 1, Nq: 16, Nk: 16, D: 16, Dv: 16, ...shape };
  return checkTiles(decl.decl, full, block, block, 1);
}

describe('tile classification under int32 wrap (pinned)', () => {
  it('issue #9: q + 2147483640 > 0 wraps inside the tile, so the tile is partial, not empty', () => {
    expect(tilesOf('attention m() { mask q + 2147483640 > 0 }', {})).toEqual({
      empty: 0,
      full: 0,
      partial: 1,
    });
  });
  const cases: [string, string, Partial<Shape>][] = [
    ['product wraps', 'attention m() { mask q * 1073741824 > 0 }', { qOffset: 4, kOffset: 0 }],
    ['negation of MIN', 'attention m() { mask -q > 0 }', { qOffset: I32_MIN, kOffset: 0 }],
    ['abs of MIN', 'attention m() { mask abs(q) >= 0 }', { qOffset: I32_MIN, kOffset: 0 }],
    ['MIN / -1', 'attention m() { mask q / -1 > 0 }', { qOffset: I32_MIN, kOffset: 0 }],
    ['q - k at the top', 'attention m() { mask q - k + 100 > 0 }', { qOffset: I32_MAX - 105, kOffset: 0 }],
    ['a param near the limit', 'attention m(w: int = 2147483647) { mask k + w >= q }', {}],
    ['lookup index wraps', 'attention m(doc: i32[kv]) { mask doc[q + 2147483647] == 0 }', {}],
    // Routing's candidate test classifies (q + 2k) % 3 at the top of the positions, where 2k and
    // q + 2k wrap (routing-wgsl program 4): no tile may be called empty or full wrongly there.
    [
      '(q + 2k) % 3 at the top',
      'attention m() { mask (q + 2 * k) % 3 != 1 }',
      { qOffset: I32_MAX - 15, kOffset: I32_MAX - 15 },
    ],
    // (a - k) % d == 0 is not a % d == k % d once a - k wraps (a = q + c here).
    [
      'dilation of a wrapping difference',
      'attention m() { mask (q + 2147483000 - k) % 3 == 0 }',
      { qOffset: 100, kOffset: -1000 },
    ],
    // f32: sqrt of a negative is NaN, and NaN compares false both ways.
    ['sqrt of a negative', 'attention m() { mask sqrt(float(q - k)) >= 0.0 }', {}],
    ['log of a negative', 'attention m() { mask !(log(float(k - q)) < 100.0) }', {}],
    ['inf - inf', 'attention m() { mask float(q) * 1e38 * 10.0 - float(k) * 1e38 * 10.0 < 1.0 }', {}],
  ];
  for (const [label, src, shape] of cases)
    it(label, () => {
      const counts = tilesOf(src, shape, 8);
      expect(counts.empty + counts.full + counts.partial).toBeGreaterThan(0);
    });
  it('keeps exact classes where nothing can wrap (a causal window at ordinary offsets)', () => {
    const counts = tilesOf('attention m() { mask causal && q - k < 32 }', { Nq: 64, Nk: 64 }, 8);
    expect(counts.empty).toBeGreaterThan(0);
    expect(counts.full).toBeGreaterThan(0);
  });
});

describe('tile classification under int32 wrap (random wrap-prone programs)', () => {
  it('never marks a tile empty or full wrongly, at ordinary and near-limit offsets', () => {
    fc.assert(
      fc.property(
        arbProgram({ wrap: true, depth: 2 }),
        fc.oneof(arbShape({ maxN: 24 }), arbShape({ maxN: 24, nearLimits: true })),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer(),
        (decl, shape, blockQ, blockK, seed) => void checkTiles(decl, shape, blockQ, blockK, seed),
      ),
      { numRuns: 80 },
    );
  });
});

describe('int edge cases in the reference and the IR (folded and at run time)', () => {
  for (const folded of [false, true])
    it(folded ? 'folded at compile time' : 'computed at run time', () => {
      const source = identitiesSource('ids', folded);
      // The reference holds every identity (causal && identities is true on the diagonal) ...
      const { decl } = checkSource(source, 'ids.attn');
      const sizes = { B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8, D: 16 };
      const ref = declPredicates(decl.decl, {
        params: Object.fromEntries(decl.defaults),
        tensors: {},
        sizes,
      });
      for (const p of [0, 5, -3]) expect(ref.mask(0, 0, p, p), `${source} at q = k = ${p}`).toBe(true);
      // ... and the lowered, simplified IR agrees with it pair for pair (checkTiles).
      expect(tilesOf(source, { Nq: 8, Nk: 8 }, 8).partial).toBe(1);
    });
});
