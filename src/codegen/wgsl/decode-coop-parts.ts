// Pieces of the coop decode module (decode-coop.ts) kept apart from the split pass's main body
// (decode-coop-split.ts): the geometry both entry points share, the per-row tile classifier, and
// the end of attention_split that combines its lane groups and writes the partials.

/** WGSL shared by both entry points: derived constants and the partials' layout. */
export function coopDecodeGeometry(): string {
  return [
    'const DC_GROUPS: u32 = DC_THREADS / DC_LANES; // lane groups (key rows in flight per key slot)',
    'const DC_STEP: u32 = DC_GROUPS * DC_CHUNK; // keys per workgroup step',
    'const DC_D4: u32 = HEAD_DIM / 4u;',
    'const DC_DV4: u32 = VALUE_DIM / 4u;',
    'const DC_KC: u32 = (DC_D4 + DC_LANES - 1u) / DC_LANES; // vec4 columns of K per lane',
    'const DC_VC: u32 = (DC_DV4 + DC_LANES - 1u) / DC_LANES; // vec4 columns of V per lane',
    '',
    'struct DcGeom {',
    '  group: u32, // query heads per kv head',
    '  packed: u32, // group * Nq packed rows per kv head',
    '  n_splits: u32,',
    '}',
    'fn dc_geom() -> DcGeom {',
    '  let group = u32(u.H) / u32(u.Hkv);',
    '  return DcGeom(group, group * u32(u.Nq), (u32(u.Nk) + DC_SPLIT_KEYS - 1u) / DC_SPLIT_KEYS);',
    '}',
    '// Partial of packed row pk in split sp: acc at decode_part[slot * VALUE_DIM ..], then (m, l) at',
    '// decode_part[dc_ml_base(g) + 2 * slot ..] (l = 0: no allowed key; l NaN: the row is poisoned).',
    'fn dc_slot(g: DcGeom, b: u32, hk: u32, sp: u32, pk: u32) -> u32 {',
    '  return ((b * u32(u.Hkv) + hk) * g.n_splits + sp) * g.packed + pk;',
    '}',
    'fn dc_ml_base(g: DcGeom) -> u32 { return u32(u.B) * u32(u.Hkv) * g.n_splits * g.packed * VALUE_DIM; }',
    '// The same class for the first `rows` rows, 2 bits each.',
    'fn dc_all(rows: u32, c: u32) -> u32 {',
    '  var bits = 0u;',
    '  for (var i = 0u; i < rows; i++) { bits |= c << (2u * i); }',
    '  return bits;',
    '}',
  ].join('\n');
}

/** Per-row tile classes of a key range (dynamic classification only: tile_class exists then). */
export const classifier = [
  '// Tile classes of rows rt*DC_ROWS .. + rows over key positions [k_lo, k_hi], 2 bits per row.',
  'fn dc_classify(g: DcGeom, b: i32, hk: u32, rt: u32, rows: u32, k_lo: i32, k_hi: i32) -> u32 {',
  '  let Nq = u32(u.Nq);',
  '  var bits = 0u;',
  '  for (var i = 0u; i < rows; i++) {',
  '    let pk = rt * DC_ROWS + i;',
  '    let h = i32(hk * g.group + pk / Nq);',
  '    let q = i32(pk % Nq) + u.q_offset;',
  '    bits |= tile_class(b, h, q, q, k_lo, k_hi) << (2u * i);',
  '  }',
  '  return bits;',
  '}',
];

/** The vec4 column of acc[i][c] (lane, lane + DC_LANES, … unless a wide V cache's run says otherwise). */
const STRIDED_COL = 'lane + c * DC_LANES';

/** Sums the weighted acc of the lane groups into dc_acc, one group at a time (a barrier each). */
const sumGroupsSerially = (col: string): string[] => [
  'for (var gi = 0u; gi < DC_GROUPS; gi++) {',
  '  if (grp == gi) {',
  '    for (var i = 0u; i < DC_ROWS; i++) {',
  '      for (var c = 0u; c < DC_VC; c++) {',
  `        let col = ${col};`,
  '        if (col < DC_DV4) {',
  '          let e = i * DC_DV4 + col;',
  '          dc_acc[e] = select(vec4<f32>(0.0f), dc_acc[e], gi > 0u) + acc[i][c];',
  '        }',
  '      }',
  '    }',
  '  }',
  '  workgroupBarrier();',
  '}',
];

/**
 * With subgroups: the groups of a subgroup are summed by shuffles first (xor masks from DC_LANES
 * up pair lanes that hold the same columns), then one group per subgroup adds its sum to dc_acc:
 * THREADS / subgroup size barriers instead of DC_GROUPS (4 instead of 16 at 128 invocations).
 */
const sumGroupsBySubgroup = (col: string): string[] => [
  '// Whole subgroups of two groups or more only (a workgroup smaller than a subgroup has none).',
  'if (use_sg && sg_size >= 2u * DC_LANES && DC_THREADS % sg_size == 0u) {',
  '  for (var x = DC_LANES; x < sg_size; x <<= 1u) {',
  '    for (var i = 0u; i < DC_ROWS; i++) {',
  '      for (var c = 0u; c < DC_VC; c++) { acc[i][c] += subgroupShuffleXor(acc[i][c], x); }',
  '    }',
  '  }',
  '  let n_sg = DC_THREADS / sg_size;',
  '  for (var si = 0u; si < n_sg; si++) {',
  '    if (lid / sg_size == si && sg_id < DC_LANES) { // the subgroup\u2019s first group holds its sum',
  '      for (var i = 0u; i < DC_ROWS; i++) {',
  '        for (var c = 0u; c < DC_VC; c++) {',
  `          let col = ${col};`,
  '          if (col < DC_DV4) {',
  '            let e = i * DC_DV4 + col;',
  '            dc_acc[e] = select(vec4<f32>(0.0f), dc_acc[e], si > 0u) + acc[i][c];',
  '          }',
  '        }',
  '      }',
  '    }',
  '    workgroupBarrier();',
  '  }',
  '} else {',
  ...sumGroupsSerially(col).map((l) => '  ' + l),
  '}',
];

/** Combines the lane groups' states per row and writes the workgroup's partials (`col`: acc[i][c]'s column). */
export const combineGroups = (subgroups: boolean, col = STRIDED_COL): string[] => [
  '// Combine the lane groups: the row max over groups that saw an allowed key, then their weights.',
  'for (var i = 0u; i < DC_ROWS; i++) {',
  '  if (((bad >> i) & 1u) != 0u) { l_run[i] = bitcast<f32>(neg_inf_bits | 0x00400000u); } // NaN',
  '}',
  'if (lane == 0u) {',
  '  for (var i = 0u; i < DC_ROWS; i++) { dc_ml[grp * DC_ROWS + i] = vec2<f32>(m_run[i], l_run[i]); }',
  '}',
  'workgroupBarrier(); // the groups\u2019 (m, l) are written',
  'for (var i = 0u; i < DC_ROWS; i++) {',
  '  var m = MASKED;',
  '  var poisoned = false;',
  '  for (var gi = 0u; gi < DC_GROUPS; gi++) {',
  '    let ml = dc_ml[gi * DC_ROWS + i];',
  '    if ((bitcast<u32>(ml.y) & 0x7fffffffu) > 0x7f800000u) { poisoned = true; }',
  '    if (ml.y > 0.0f) { m = max(m, ml.x); }',
  '  }',
  '  var l = 0.0f;',
  '  for (var gi = 0u; gi < DC_GROUPS; gi++) {',
  '    let ml = dc_ml[gi * DC_ROWS + i];',
  '    if (ml.y > 0.0f) { l += ml.y * exp(ml.x - m); }',
  '  }',
  '  let w = select(0.0f, exp(m_run[i] - m), l_run[i] > 0.0f);',
  '  for (var c = 0u; c < DC_VC; c++) { acc[i][c] *= w; }',
  '  m_run[i] = m;',
  '  l_run[i] = select(l, bitcast<f32>(neg_inf_bits | 0x00400000u), poisoned);',
  '}',
  '// Sum the weighted acc of the groups in dc_acc.',
  ...(subgroups ? sumGroupsBySubgroup(col) : sumGroupsSerially(col)),
  'for (var e = lid; e < rows * DC_DV4; e += DC_THREADS) {',
  '  let i = e / DC_DV4;',
  '  let o = dc_slot(g, wg.z, wg.y, split, rt * DC_ROWS + i) * VALUE_DIM + 4u * (e % DC_DV4);',
  '  let a = dc_acc[e];',
  '  decode_part[o] = a.x;',
  '  decode_part[o + 1u] = a.y;',
  '  decode_part[o + 2u] = a.z;',
  '  decode_part[o + 3u] = a.w;',
  '}',
  'for (var i = 0u; i < DC_ROWS; i++) {',
  '  if (lid == i % DC_THREADS && i < rows) { // fewer invocations than rows: some write several',
  '    let o = dc_ml_base(g) + 2u * dc_slot(g, wg.z, wg.y, split, rt * DC_ROWS + i);',
  '    decode_part[o] = m_run[i];',
  '    decode_part[o + 1u] = l_run[i];',
  '  }',
  '}',
];
