// The flash-attention entry point of a WGSL module. Thread mapping: one workgroup per
// (q-tile, head, batch), invocation r owns query row qt*BLOCK_Q + r, with that row of q and its
// f32 accumulator in private arrays. Per k-tile: the workgroup classifies the tile, then
// stages the tile's K and V rows in workgroup memory (contiguous, so loads coalesce), then each
// row scores the tile's keys (pass 1, tile max) and folds them into its running softmax (pass 2).
// Barriers stay in uniform control flow: per-row and per-class work sits inside `if`s between them.
import type { StorageDType, TensorFormats } from '../../ir/formats.js';
import type { Schedule, TileClass } from '../../ir/kernel.js';
import type { Linearized } from '../linearize.js';
import { kvTiles, NAN_F32, queryRow, rowState, staticScoreKey, tileUpdate } from './attention-row.js';
import { attentionEntryHead, lseStore, pad } from './entry-lines.js';
import { stageKvTile } from './kv-load.js';

export type ClassMode = TileClass | 'dynamic';

export interface AttentionParts {
  readonly schedule: Schedule;
  /** Storage of q, k, v and out: each load widens its tensor's elements, the store narrows. */
  readonly formats: TensorFormats;
  readonly mode: ClassMode;
  readonly lse: boolean;
  /** Row-invariant subexpressions of mask and score (computed once per row). */
  readonly row: Linearized;
  /** The mask, for partial tiles (absent when no tile is partial). */
  readonly mask: Linearized | undefined;
  /** The score expression over `score` (= scale·<q,k>). */
  readonly score: Linearized;
  /**
   * Block routing (codegen/wgsl/routing.ts): a tile is visited only if some row selected one of
   * its blocks, and a key only if its row selected its block (on top of the static mask).
   */
  readonly routed?: boolean;
}

function store(dtype: StorageDType, expr: string): string {
  return dtype === 'f16' ? `f16(${expr})` : expr;
}

/** Writes this row's normalised output (0 and lse -inf when no key was allowed, NaN when poisoned). */
function epilogue(p: AttentionParts): string[] {
  const dt = p.formats.out.dtype;
  return [
    '  if (!row_ok) { return; }',
    '  let o_base = (bh * Nq + row) * VALUE_DIM;',
    '  // l_run > 0 iff the row saw an allowed key; otherwise the row is all zeros.',
    '  let inv_l = select(0.0f, 1.0f / l_run, l_run > 0.0f);',
    `  let nan = ${NAN_F32};`,
    '  for (var d = 0u; d < VALUE_DIM; d++) {',
    `    out_buf[o_base + d] = ${store(dt, 'select(acc[d] * inv_l, nan, row_nan)')};`,
    '  }',
    ...(p.lse
      ? pad(lseStore({ index: 'bh * Nq + row', poisoned: 'row_nan', nan: 'nan', m: 'm_run', l: 'l_run' }), 2)
      : []),
  ];
}

/** A kernel whose every tile is empty: no K/V reads at all. */
function emptyBody(p: AttentionParts): string {
  const dt = p.formats.out.dtype;
  return [
    '@compute @workgroup_size(BLOCK_Q)',
    'fn attention(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let Nq = u32(u.Nq);',
    '  let bh = wg.z * u32(u.H) + wg.y;',
    '  let row = wg.x * BLOCK_Q + lid;',
    '  if (row >= Nq) { return; }',
    '  for (var d = 0u; d < VALUE_DIM; d++) {',
    `    out_buf[(bh * Nq + row) * VALUE_DIM + d] = ${store(dt, '0.0f')};`,
    '  }',
    ...(p.lse ? ['  lse_buf[bh * Nq + row] = bitcast<f32>(neg_inf_bits); // -inf'] : []),
    '}',
  ].join('\n');
}

/** Scores the key in column j of the tile into `s` (MASKED when the mask rejects it). */
function scoreKey(p: AttentionParts): string[] {
  const inner = staticScoreKey(p);
  if (!p.routed) return inner;
  // Keys ascend, so the row's (ascending) selection is walked once per row, not searched.
  return [
    'let kid = u32(route_id(k));',
    'loop {',
    '  if (sel_id >= kid) { break; }',
    '  sel_p++;',
    '  sel_id = route_sel(sel_base, sel_p, sel_cap);',
    '}',
    'if (sel_id == kid) {',
    ...pad(inner, 2),
    '}',
  ];
}

/**
 * The start of one k-tile's visit, up to the `if` that stages it: the tile's class (dynamic
 * classes, routing) and the barrier that ends the previous tile's reads.
 */
function tileVisit(p: AttentionParts): string[] {
  const dynamic = p.mode === 'dynamic';
  const tileClass = 'tile_class(b, h, q_lo, q_hi, u.k_offset + i32(k0), u.k_offset + i32(k_end) - 1i)';
  if (p.routed === true) {
    const cls = dynamic ? tileClass : p.mode === 'full' ? 'TILE_FULL' : 'TILE_PARTIAL';
    return [
      '    // Routing: visit the tile only if some row selected one of its blocks.',
      '    let kid_lo = u32(route_id(u.k_offset + i32(k0)));',
      '    let kid_hi = u32(route_id(u.k_offset + i32(k_end) - 1i));',
      '    loop {',
      '      if (sel_id >= kid_lo) { break; }',
      '      sel_p++;',
      '      sel_id = route_sel(sel_base, sel_p, sel_cap);',
      '    }',
      '    if (lid == 0u) { tile_hit = 0u; }',
      '    workgroupBarrier();',
      '    if (sel_id <= kid_hi) { tile_hit = 1u; }',
      '    workgroupBarrier();',
      `    let cls = select(TILE_EMPTY, ${cls}, tile_hit != 0u);`,
      '    workgroupBarrier(); // the previous tile is no longer read',
      '    if (cls != TILE_EMPTY) {',
    ];
  }
  // Every invocation classifies the tile itself (same inputs, same class): no workgroup variable
  // or extra barrier is needed to share it, and the class costs a few ALU ops and cached reads.
  return dynamic
    ? [
        `    let cls = ${tileClass};`,
        '    workgroupBarrier(); // the previous tile is no longer read',
        '    if (cls != TILE_EMPTY) {',
      ]
    : ['    workgroupBarrier(); // the previous tile is no longer read', '    {'];
}

/** This row's selected block ids (ascending), walked as the keys ascend. */
const routedSelection = [
  "  // This row's selected block ids (ascending), walked as the keys ascend.",
  '  let sel_cap = route_cap();',
  '  let sel_base = (route_group_row(wg.z, wg.y) * Nq + row) * sel_cap;',
  '  var sel_p = 0u;',
  '  var sel_id = ROUTE_END;',
  '  if (row_ok) { sel_id = route_sel(sel_base, 0u, sel_cap); }',
];

export function attentionBody(p: AttentionParts): string {
  if (p.mode === 'empty') return emptyBody(p);
  const routed = p.routed === true;
  return [
    ...(routed ? ['var<workgroup> tile_hit: u32; // some row selected a block of the tile'] : []),
    ...kvTiles(p.schedule),
    '',
    ...attentionEntryHead('BLOCK_Q'),
    '  let row = wg.x * BLOCK_Q + lid;',
    '  let row_ok = row < Nq;',
    '  let q = i32(row) + u.q_offset;',
    '  let q_lo = u.q_offset + i32(wg.x * BLOCK_Q);',
    '  let q_hi = u.q_offset + i32(min((wg.x + 1u) * BLOCK_Q, Nq)) - 1i;',
    '',
    ...queryRow(p),
    ...(routed ? routedSelection : []),
    '',
    ...rowState,
    '  for (var kt = 0u; kt < n_tiles; kt++) {',
    '    let k0 = kt * BLOCK_K;',
    '    // Key loops run over [k0, k_end), not over a length min(BLOCK_K, ...): the same trips, but',
    '    // LLVM-based drivers (lavapipe) then do not fully unroll them, which cut compile time ~10x.',
    '    let k_end = min(k0 + BLOCK_K, Nk);',
    ...tileVisit(p),
    ...pad(stageKvTile(p.formats, 'BLOCK_Q'), 6),
    '    }',
    '    workgroupBarrier(); // the tile is staged',
    // No `continue` here: it would make the barriers of later iterations non-uniform.
    `    if (${p.mode === 'dynamic' || routed ? 'cls != TILE_EMPTY && ' : ''}row_ok) {`,
    ...tileUpdate(scoreKey(p), { first: 'k0', step: 'kj++', notes: true }),
    '    }',
    '  }',
    '',
    ...epilogue(p),
    '}',
  ].join('\n');
}
