// The dynamic tile classifier `tile_class` (kernel.tiles): the forward module (kernel.ts) and the
// backward one (backward.ts) define the same function over the tile-bound variables.
import type { AttentionKernel } from '../../ir/kernel.js';
import { linearize } from '../linearize.js';
import { wgslRenderer, type WgslContext } from './rules.js';

/**
 * `tile_class(b, h, q_lo, q_hi, k_lo, k_hi)`: TILE_EMPTY unless canBeTrue, TILE_FULL unless
 * canBeFalse, else TILE_PARTIAL; no lines for static classes. `cx` names the tile variables.
 */
export function tileClassFn(kernel: AttentionKernel, cx: WgslContext): string[] {
  if (kernel.tiles.kind !== 'dynamic') return [];
  const c = linearize([kernel.tiles.canBeTrue, kernel.tiles.canBeFalse], wgslRenderer(cx), 'tc');
  return [
    'fn tile_class(b: i32, h: i32, q_lo: i32, q_hi: i32, k_lo: i32, k_hi: i32) -> u32 {',
    ...c.stmts.map((l) => (l ? '  ' + l : l)),
    `  if (!${c.roots[0]!}) { return TILE_EMPTY; }`,
    `  if (!${c.roots[1]!}) { return TILE_FULL; }`,
    '  return TILE_PARTIAL;',
    '}',
  ];
}
