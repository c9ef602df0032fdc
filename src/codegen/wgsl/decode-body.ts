// The two entry points of a WGSL decode module (flash-decoding: few queries over a long KV).
//
// attention_split: one workgroup per (KV split, row tile, kv head, batch). Its rows are the GQA
// group's query heads × the Nq query rows ("packed rows" p = head_in_group·Nq + row), so one K/V
// tile staged in workgroup memory serves every query head that reads it. When there are fewer
// packed rows than invocations, the spare lanes split the tile's keys: lane = t·rows + p takes
// keys k0+t, k0+t+T, … (T lanes per row). Every lane keeps its own online softmax and writes an
// unnormalised partial (acc[Dv], m, l) to `decode_part`.
//
// attention_merge: one workgroup per (query row, head, batch) combines the row's partials with
// the backend's log-sum-exp merge (merge.ts).
import type { AttentionParts } from './attention.js';
import { kvTiles, NAN_F32, queryRow, rowState, staticScoreKey, tileUpdate } from './attention-row.js';
import { pad } from './entry-lines.js';
import { kvEntry, stageKvTile } from './kv-load.js';
import { wgslMergeBody } from './merge.js';

/** K/V tiles per split: a split covers DECODE_SPLIT_TILES·BLOCK_K keys. */
export const DECODE_SPLIT_TILES = 32;
/** Invocations of the merge workgroup (they share the Dv columns of one row). */
export const MERGE_THREADS = 64;

/**
 * WGSL helpers both entry points use to agree on the partials' layout:
 * decode_part[((((b·Hkv + hk)·row_tiles + rt)·n_splits + split)·BLOCK_Q + lane)·(Dv + 2) + c].
 */
export function decodeGeometry(): string {
  return [
    '// Decode geometry, shared by attention_split and attention_merge (they must agree).',
    'struct DecodeGeom {',
    '  group: u32, // query heads per kv head',
    '  packed: u32, // group * Nq rows per kv head',
    '  row_tiles: u32, // workgroups of BLOCK_Q packed rows',
    '  n_splits: u32,',
    '}',
    'fn decode_geom() -> DecodeGeom {',
    '  let group = u32(u.H) / u32(u.Hkv);',
    '  let packed = group * u32(u.Nq);',
    '  let n_tiles = (u32(u.Nk) + BLOCK_K - 1u) / BLOCK_K;',
    '  return DecodeGeom(group, packed, (packed + BLOCK_Q - 1u) / BLOCK_Q,',
    '                    (n_tiles + DECODE_SPLIT_TILES - 1u) / DECODE_SPLIT_TILES);',
    '}',
    '// Packed rows in row tile rt, and the lanes that share each of them (the key stride).',
    'fn decode_rows(g: DecodeGeom, rt: u32) -> u32 { return min(g.packed - rt * BLOCK_Q, BLOCK_Q); }',
    'fn decode_lanes(rows: u32) -> u32 { return clamp(BLOCK_Q / rows, 1u, BLOCK_K); }',
    'fn decode_slot(g: DecodeGeom, b: u32, hk: u32, rt: u32, split: u32, lane: u32) -> u32 {',
    '  return ((((b * u32(u.Hkv) + hk) * g.row_tiles + rt) * g.n_splits + split) * BLOCK_Q + lane) * (VALUE_DIM + 2u);',
    '}',
  ].join('\n');
}

/**
 * Dynamic classes: one classification of the whole split per lane first; a split that no lane
 * needs (most of a long KV under a sliding window) skips its tile loop. kt_end stays uniform: it
 * changes only on a value read by workgroupUniformLoad.
 */
const skipEmptySplit = [
  '  // Skip the split if it is empty for every lane.',
  '  if (row_ok && kt_begin < kt_end) {',
  '    let k_last = min(kt_end * BLOCK_K, Nk) - 1u;',
  '    let c = tile_class(b, h, q, q, u.k_offset + i32(kt_begin * BLOCK_K), u.k_offset + i32(k_last));',
  '    if (c != TILE_EMPTY) { decode_hit = 1u; }',
  '  }',
  '  if (workgroupUniformLoad(&decode_hit) == 0u) { kt_end = kt_begin; }',
  '  workgroupBarrier(); // every lane has read decode_hit',
  '  if (lid == 0u) { decode_hit = 0u; }',
];

/**
 * Dynamic classes: lanes hold different heads and rows, so each classifies its own (h, q) against
 * the tile; the workgroup stages the tile if any lane needs it (a flag read back uniformly).
 */
const dynamicVisit = [
  '    var cls = TILE_EMPTY;',
  '    if (row_ok) {',
  '      cls = tile_class(b, h, q, q, u.k_offset + i32(k0), u.k_offset + i32(k_end) - 1i);',
  '    }',
  '    workgroupBarrier(); // the previous tile is no longer read',
  '    if (cls != TILE_EMPTY) { decode_hit = 1u; }',
  '    if (workgroupUniformLoad(&decode_hit) != 0u) {',
];

/** The lane's unnormalised partial (acc, m, l) to its decode_part slot. */
const storePartial = [
  '  if (!row_ok) { return; }',
  '  let slot = decode_slot(g, wg.z, wg.y, rt, split, lid);',
  `  if (row_nan) { l_run = ${NAN_F32}; } // the merge makes the row NaN`,
  '  if (l_run > 0.0f) { // the merge reads acc only where l > 0',
  '    for (var d = 0u; d < VALUE_DIM; d++) {',
  '      decode_part[slot + d] = acc[d];',
  '    }',
  '  }',
  '  decode_part[slot + VALUE_DIM] = m_run;',
  '  decode_part[slot + VALUE_DIM + 1u] = l_run; // 0: the lane saw no allowed key; NaN: poisoned',
];

export function decodeSplitBody(p: AttentionParts): string {
  const f = p.formats;
  const dynamic = p.mode === 'dynamic';
  return [
    ...kvTiles(p.schedule),
    ...(dynamic ? ['var<workgroup> decode_hit: u32; // some lane needs the tile'] : []),
    '',
    '// grid: (n_splits * row_tiles, Hkv, B)',
    '@compute @workgroup_size(BLOCK_Q)',
    'fn attention_split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let Nq = u32(u.Nq);',
    '  let Nk = u32(u.Nk);',
    '  let g = decode_geom();',
    '  let split = wg.x / g.row_tiles;',
    '  let rt = wg.x % g.row_tiles;',
    '  let rows = decode_rows(g, rt);',
    '  let lanes = decode_lanes(rows);',
    '  let t = lid / rows; // this lane takes keys k0 + t, k0 + t + lanes, ...',
    '  let pk = rt * BLOCK_Q + lid % rows;',
    '  let row_ok = t < lanes;',
    '  let row = pk % Nq;',
    '  let b = i32(wg.z);',
    '  let h = i32(wg.y * g.group + pk / Nq);',
    '  let bh = wg.z * u32(u.H) + u32(h);',
    ...kvEntry('wg.z', 'wg.y'),
    '  let q = i32(row) + u.q_offset;',
    '',
    ...queryRow(p),
    '',
    ...rowState,
    '  let kt_begin = split * DECODE_SPLIT_TILES;',
    `  ${dynamic ? 'var' : 'let'} kt_end = min(kt_begin + DECODE_SPLIT_TILES, n_tiles);`,
    ...(dynamic ? skipEmptySplit : []),
    '  for (var kt = kt_begin; kt < kt_end; kt++) {',
    '    let k0 = kt * BLOCK_K;',
    '    let k_end = min(k0 + BLOCK_K, Nk);',
    ...(dynamic ? dynamicVisit : ['    workgroupBarrier(); // the previous tile is no longer read', '    {']),
    ...pad(stageKvTile(f, 'BLOCK_Q'), 6),
    '    }',
    '    workgroupBarrier(); // the tile is staged (and every lane has read decode_hit)',
    ...(dynamic ? ['    if (lid == 0u) { decode_hit = 0u; }'] : []),
    `    if (${dynamic ? 'cls != TILE_EMPTY && ' : ''}row_ok) {`,
    ...tileUpdate(staticScoreKey(p), { first: 'k0 + t', step: 'kj += lanes', notes: false }),
    '    }',
    '  }',
    '',
    ...storePartial,
    '}',
  ].join('\n');
}

/** The row's records: one per split and per lane that shared the row's keys. */
function eachDecodeRecord(indent: number, body: readonly string[]): string[] {
  return pad(
    [
      'for (var sp = 0u; sp < g.n_splits; sp++) {',
      '  for (var t = 0u; t < lanes; t++) {',
      '    let slot = decode_slot(g, wg.z, hk, rt, sp, first + t * rows);',
      ...pad(body, 4),
      '  }',
      '}',
    ],
    indent,
  );
}

export function decodeMergeBody(p: AttentionParts): string {
  const dt = p.formats.out.dtype;
  return [
    '// grid: (Nq, H, B); the workgroup shares the Dv columns of one output row.',
    `@compute @workgroup_size(${MERGE_THREADS})`,
    'fn attention_merge(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let Nq = u32(u.Nq);',
    '  let g = decode_geom();',
    '  let row = wg.x;',
    '  let h = wg.y;',
    '  let bh = wg.z * u32(u.H) + h;',
    '  let pk = (h % g.group) * Nq + row;',
    '  let rt = pk / BLOCK_Q;',
    '  let rows = decode_rows(g, rt);',
    '  let lanes = decode_lanes(rows);',
    '  let first = pk % BLOCK_Q; // lane t of this row is first + t * rows',
    '  let hk = h / g.group;',
    ...wgslMergeBody({
      records: { buffer: 'decode_part', each: eachDecodeRecord },
      dtype: dt,
      threads: MERGE_THREADS,
      outBase: '(bh * Nq + row) * VALUE_DIM',
      lseIndex: p.lse ? 'bh * Nq + row' : undefined,
    }),
    '}',
  ].join('\n');
}
