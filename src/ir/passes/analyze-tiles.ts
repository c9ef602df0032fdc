// analyze-tiles: decide, per (q-tile, k-tile), whether the mask is empty, full or partial —
// without a dense mask. Interval analysis (intervals.ts) turns the mask into two bool expressions
// over the tile bounds; simplify then folds them. If they fold to constants the class is static
// (e.g. no mask → every tile full); otherwise the kernel evaluates them once per tile (O(1)), and
// 1-D i32 tensor lookups are bounded by an O(N) per-block min/max summary computed at run time.
import type { TileClassifier } from '../kernel.js';
import { Op } from '../ops.js';
import type { AttentionIR } from '../program.js';
import { analyzeIntervals, boolOf } from './intervals.js';
import { simplifyExpr } from './simplify.js';

export function analyzeTiles(ir: AttentionIR): AttentionIR {
  const g = ir.graph;
  const used = new Set<string>();
  const oneDimInt = new Set(
    ir.tensors.filter((t) => t.dtype === 'i32' && t.dims.length === 1).map((t) => t.name),
  );
  const range = analyzeIntervals(ir.mask, {
    g,
    summarizable: (t) => oneDimInt.has(t),
    useSummary: (t) => used.add(t),
  });
  const b = boolOf(g, range);
  const canBeTrue = simplifyExpr(g, b.t);
  const canBeFalse = simplifyExpr(g, b.f);
  let tiles: TileClassifier;
  if (canBeTrue.op === Op.CONST && canBeTrue.arg === false) tiles = { kind: 'static', value: 'empty' };
  else if (canBeFalse.op === Op.CONST && canBeFalse.arg === false) tiles = { kind: 'static', value: 'full' };
  else if (canBeTrue.op === Op.CONST && canBeFalse.op === Op.CONST)
    tiles = { kind: 'static', value: 'partial' };
  else tiles = { kind: 'dynamic', canBeTrue, canBeFalse };
  // Only summaries the simplified classifier still reads are computed.
  const reads = new Set<string>();
  if (tiles.kind === 'dynamic') {
    const stack = [tiles.canBeTrue, tiles.canBeFalse];
    const seen = new Set<number>();
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      if (n.op === Op.RANGE_MIN || n.op === Op.RANGE_MAX) reads.add(String(n.arg));
      stack.push(...n.src);
    }
  }
  return { ...ir, tiles, summaries: [...used].filter((t) => reads.has(t)).map((tensor) => ({ tensor })) };
}
