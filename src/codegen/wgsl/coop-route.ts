// Block routing on the coop engine (coop.ts): the attention visits only the tiles that hold a key
// some row of the workgroup selected, and a key only where its own row selected its unit — the
// row engine's rule (attention.ts), with the per-row state spread over the invocation's CO_RM rows.
// The routing passes (routing.ts) have filled `indices` with each row's selected unit ids,
// ascending and padded with -1; route_id, route_sel, route_cap and route_group_row come from there.
//   - Tiles: with each chunk of tiles (one tile per invocation, coop-loop.ts coopTileLoop), every
//     invocation marks the tiles its rows' selected units cover (the lanes of a row take turns
//     over the list); the marks then gate the tile classes, which the loop reads uniformly.
//   - Keys: each invocation walks each of its rows' ascending lists as its keys ascend (tiles in
//     order, columns lane + CO_LANES·c in order within a tile), so a key is checked in O(1).
import type { RoutingPlan } from '../../ir/routing.js';
import { pad } from './entry-lines.js';

/** Per-row selection state, after q_lo/q_hi: list base, walk position and current id. */
export const routedRowState = [
  '  // Each row\u2019s selected unit ids (ascending), walked as its keys ascend.',
  '  let sel_cap = route_cap();',
  '  var sel_base: array<u32, CO_RM>;',
  '  var sel_p: array<u32, CO_RM>;',
  '  var sel_id: array<u32, CO_RM>;',
  '  for (var i = 0u; i < CO_RM; i++) {',
  '    let row = row0 + r0 + i;',
  '    sel_base[i] = (route_group_row(wg.z, wg.y) * Nq + row) * sel_cap;',
  '    sel_p[i] = 0u;',
  '    sel_id[i] = ROUTE_END;',
  '    if (row < Nq) { sel_id[i] = route_sel(sel_base[i], 0u, sel_cap); }',
  '  }',
];

/** `allowed` narrowed to the keys row i selected (inside the key loop: k, i in scope). */
export const routedKeyCheck = [
  'if (allowed) {',
  '  let kid = u32(route_id(k));',
  '  loop {',
  '    if (sel_id[i] >= kid) { break; }',
  '    sel_p[i]++;',
  '    sel_id[i] = route_sel(sel_base[i], sel_p[i], sel_cap);',
  '  }',
  '  allowed = sel_id[i] == kid;',
  '}',
];

/**
 * WGSL `co_unit_keys(id)`: the keys [x, y) of unit `id` as rows of this call (0 .. Nk), not
 * positions: the end position k_offset + Nk, or a block's (id + 1) · ROUTE_BLOCK, is 2^31 when
 * the last key is at 2^31 − 1 (it wrapped negative and the unit looked empty). Arithmetic for
 * blocks (tokens are one-key blocks; ids far outside the call are clamped before multiplying), a
 * binary search of the non-decreasing chunk ids for `chunks(t)`.
 */
export function unitKeysFn(r: RoutingPlan): string[] {
  const head = 'fn co_unit_keys(id: i32) -> vec2<i32> {';
  if (r.unit.kind !== 'chunks') {
    return [
      head,
      '  let first = route_floor_div(u.k_offset, ROUTE_BLOCK);',
      '  let rb = clamp(id - first, -1i, u.Nk / ROUTE_BLOCK + 2i);',
      '  let lo = rb * ROUTE_BLOCK - (u.k_offset - first * ROUTE_BLOCK);',
      '  return vec2<i32>(clamp(lo, 0i, u.Nk), clamp(lo + ROUTE_BLOCK, 0i, u.Nk));',
      '}',
    ];
  }
  return [
    head,
    '  // Chunk I32_MAX ends at Nk: id + 1 would wrap to I32_MIN, and the chunk look empty.',
    '  return vec2<i32>(co_first_key_at_least(id), select(co_first_key_at_least(id + 1i), u.Nk, id == I32_MAX));',
    '}',
    '',
    '// The first key row whose chunk id is >= id (Nk if none).',
    'fn co_first_key_at_least(id: i32) -> i32 {',
    '  var lo = 0i;',
    '  var hi = u.Nk;',
    '  while (lo < hi) {',
    '    let mid = lo + (hi - lo) / 2i;',
    '    if (route_id(u.k_offset + mid) < id) { lo = mid + 1i; } else { hi = mid; }',
    '  }',
    '  return lo;',
    '}',
  ];
}

/**
 * The chunk's classes gated by the marks (replaces `co_cls[lid] = own_cls;` after the chunk's
 * first barrier). co_cls holds the marks first (racing stores all write 1, as the row engine's
 * tile_hit), then each invocation's own tile class, or TILE_EMPTY where no row selected a key.
 */
export const routedChunkClasses = (): string[] => [
  'co_cls[lid] = 0u;',
  'workgroupBarrier(); // the marks are cleared',
  'for (var i = 0u; i < CO_RM; i++) {',
  '  if (row0 + r0 + i >= Nq) { continue; }',
  '  for (var p = lane; p < sel_cap; p += CO_LANES) {',
  '    let id = route_sel(sel_base[i], p, sel_cap);',
  '    if (id == ROUTE_END) { break; }',
  ...pad(markUnitTiles(), 4),
  '  }',
  '}',
  'workgroupBarrier(); // the marks are written',
  'let hit = co_cls[lid] != 0u;',
  'workgroupBarrier(); // the marks are read',
  'co_cls[lid] = select(TILE_EMPTY, own_cls, hit);',
];

/** Marks the tiles of the chunk [kc, kc + CO_THREADS) that unit `id`'s keys fall in. */
function markUnitTiles(): string[] {
  return [
    'let keys = co_unit_keys(i32(id));',
    'if (keys.x < keys.y) {',
    '  let t_lo = max(u32(keys.x) / BLOCK_K, kc);',
    '  let t_hi = min(u32(keys.y - 1i) / BLOCK_K + 1u, min(kc + CO_THREADS, n_tiles));',
    '  for (var t = t_lo; t < t_hi; t++) { co_cls[t - kc] = 1u; }',
    '}',
  ];
}
