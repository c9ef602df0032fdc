// Tile classification must never call a tile empty when some pair in it is allowed, nor full when
// some pair is masked — checked against the dense mask on random programs, shapes, tile sizes and
// offsets (test/support/tile-check.ts). It also checks that the lowered IR's mask agrees
// pair-for-pair with the independent AST interpreter behind the reference.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { arbProgram, arbShape } from '../support/arbitraries.js';
import { checkTiles } from '../support/tile-check.js';

describe('tile classification', () => {
  it('never marks a tile empty or full wrongly (random programs)', () => {
    fc.assert(
      fc.property(
        arbProgram({ extended: true }),
        arbShape({ maxN: 48 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer(),
        (decl, shape, blockQ, blockK, seed) => void checkTiles(decl, shape, blockQ, blockK, seed),
      ),
      { numRuns: 200 },
    );
  });
});
