// attention_split of the coop decode module (decode-coop.ts): one workgroup per (KV split, row
// tile, kv head, batch) over DC_ROWS packed rows (the GQA group's query heads × the query rows), so
// each K/V row of the split is read once for all of them, straight from global memory.
//   - DC_LANES consecutive invocations (a lane group) share a key row: lane owns the vec4 columns
//     lane, lane + DC_LANES, …, so the group's load of a row is one coalesced read. Per step each
//     group loads K and V of DC_CHUNK keys at once (keys k0 + ci·DC_GROUPS + grp; decode-coop-kv.ts);
//   - the lanes' partial dots are summed with subgroupShuffleXor (when the adapter has subgroups
//     and, checked at run time, every lane group lies in one subgroup) or through workgroup memory;
//     every lane then holds the same scores, so all lanes of a group agree on the online softmax
//     state (m, l per row) and each keeps the acc of its own columns only;
//   - at the end the groups' states are combined in workgroup memory and the workgroup writes one
//     unnormalised partial (acc, m, l) per row to decode_part, which attention_merge combines.
// Tile classes are per row (2 bits each in a u32, read uniformly through workgroupUniformLoad): a
// split empty for every row is skipped, a step empty for every row loads nothing, full rows
// evaluate no mask. Barriers and subgroup operations stay in uniform control flow.
import { sharedStorage } from '../../ir/formats.js';
import { kvEntry } from './kv-load.js';
import type { WidePlan } from './dequant-run-plan.js';
import type { AttentionParts } from './attention.js';
import { pad } from './entry-lines.js';
import { kvRegs, loadStep, stepKv } from './decode-coop-kv.js';
import { classifier, combineGroups } from './decode-coop-parts.js';

const partialDots = [
  "// This lane's share of q·k, per row and key.",
  'var dots: array<array<f32, DC_CHUNK>, DC_ROWS>;',
  'for (var i = 0u; i < DC_ROWS; i++) {',
  '  for (var ci = 0u; ci < DC_CHUNK; ci++) {',
  '    var d = 0.0f;',
  '    for (var c = 0u; c < DC_KC; c++) { d += dot(qv[i][c], kk[ci][c]); }',
  '    dots[i][ci] = d;',
  '  }',
  '}',
];

/** Sums the lanes' partial dots of each row; afterwards every lane of a group holds the full dots. */
function reduceDots(subgroups: boolean): string[] {
  // lanes_loop: a trip count LLVM-based drivers (lavapipe) cannot fold, so they do not unroll the
  // sum (they unroll constant loops whole, which made compiles slow). The row loop stays constant:
  // `dots` must stay in registers on GPUs (a run-time index anywhere would put it in memory).
  const viaMemory = [
    'for (var i = 0u; i < DC_ROWS; i++) {',
    '  if (i < rows) {',
    '    for (var ci = 0u; ci < DC_CHUNK; ci++) { dc_red[ci * DC_THREADS + lid] = dots[i][ci]; }',
    '    workgroupBarrier(); // the lanes\u2019 partial dots are written',
    '    for (var ci = 0u; ci < DC_CHUNK; ci++) {',
    '      var t = 0.0f;',
    '      for (var x = 0u; x < lanes_loop; x++) { t += dc_red[ci * DC_THREADS + grp * DC_LANES + x]; }',
    '      dots[i][ci] = t;',
    '    }',
    '    workgroupBarrier(); // dc_red is read',
    '  }',
    '}',
  ];
  if (!subgroups) return viaMemory;
  return [
    'if (use_sg) {',
    '  // The group is DC_LANES aligned invocations of one subgroup: xor masks below DC_LANES stay in it.',
    '  for (var i = 0u; i < DC_ROWS; i++) {',
    '    if (i < rows) {',
    '      for (var ci = 0u; ci < DC_CHUNK; ci++) {',
    '        for (var x = 1u; x < DC_LANES; x <<= 1u) { dots[i][ci] += subgroupShuffleXor(dots[i][ci], x); }',
    '      }',
    '    }',
    '  }',
    '} else {',
    ...pad(viaMemory, 2),
    '}',
  ];
}

/** Scores (mask, score expression, poison flags) and the online-softmax update of each row. */
function rowUpdates(p: AttentionParts): string[] {
  const identity = p.score.stmts.length === 0 && p.score.roots[0] === 'score';
  const evalMask = p.mask ? [...p.mask.stmts, `allowed = ${p.mask.roots[0]};`] : [];
  const masked =
    p.mode === 'full' ? [] : ['if (allowed && cls_i == TILE_PARTIAL) {', ...pad(evalMask, 2), '}'];
  return [
    'for (var i = 0u; i < DC_ROWS; i++) {',
    '  let cls_i = (cls >> (2u * i)) & 3u;',
    '  if (cls_i != TILE_EMPTY) { // rows past `rows` are empty',
    '    let pk = rt * DC_ROWS + i;',
    '    let h = i32(wg.y * g.group + pk / Nq);',
    '    let q = i32(pk % Nq) + u.q_offset;',
    ...pad(p.row.stmts, 4),
    '    var m_step = MASKED;',
    '    for (var ci = 0u; ci < DC_CHUNK; ci++) {',
    '      let kj = k0 + ci * DC_GROUPS + grp;',
    '      let k = u.k_offset + i32(kj);',
    '      var s = MASKED;',
    '      var allowed = kj < k_end;',
    ...pad(masked, 6),
    '      if (allowed) {',
    '        let score = u.scale * dots[i][ci];',
    ...(identity
      ? []
      : ['        if ((bitcast<u32>(score) & 0x7fffffffu) > 0x7f800000u) { bad |= 1u << i; }']),
    ...pad(p.score.stmts, 8),
    `        s = ${p.score.roots[0]};`,
    '        let s_bits = bitcast<u32>(s);',
    '        if ((s_bits & 0x7fffffffu) > 0x7f800000u || s_bits == 0x7f800000u) {',
    '          bad |= 1u << i; // NaN or +inf: the row is NaN',
    '          s = MASKED;',
    '        }',
    '      }',
    '      dots[i][ci] = s;',
    '      m_step = max(m_step, s);',
    '    }',
    '    if (m_step > MASKED) {',
    '      let m_new = max(m_run[i], m_step);',
    '      let corr = exp(m_run[i] - m_new);',
    '      l_run[i] *= corr;',
    '      for (var c = 0u; c < DC_VC; c++) { acc[i][c] *= corr; }',
    '      for (var ci = 0u; ci < DC_CHUNK; ci++) {',
    '        let s = dots[i][ci];',
    '        if (s > MASKED) { // a masked key adds nothing, not even 0 * NaN',
    '          let pj = exp(s - m_new);',
    '          l_run[i] += pj;',
    '          for (var c = 0u; c < DC_VC; c++) { acc[i][c] += pj * vv[ci][c]; }',
    '        }',
    '      }',
    '      m_run[i] = m_new;',
    '    }',
    '  }',
    '}',
  ];
}

/** The step's per-row classes into `cls` (uniform). */
function stepClasses(p: AttentionParts): string[] {
  if (p.mode !== 'dynamic') {
    return [`let cls = dc_all(rows, ${p.mode === 'full' ? 'TILE_FULL' : 'TILE_PARTIAL'});`];
  }
  return [
    'var cls = split_cls; // a sub-range of a full (or empty) range is full (or empty)',
    'if (split_partial) {',
    '  // Double-buffered by step parity: the load below is a barrier between writes two steps apart.',
    '  if (lid == 0u) {',
    '    dc_cls[n_step & 1u] = dc_classify(g, b, wg.y, rt, rows, u.k_offset + i32(k0), u.k_offset + i32(k_end) - 1i);',
    '  }',
    '  cls = workgroupUniformLoad(&dc_cls[n_step & 1u]);',
    '}',
  ];
}

/**
 * The split pass. `wide` (Schedule.coopDecodeCodes 'wide', dequant-run.ts): a wide cache's lane owns
 * the run of columns lane·DC_KC .. (K) or lane·DC_VC .. (V) instead of lane, lane + DC_LANES, ….
 */
export function coopDecodeSplitBody(p: AttentionParts, subgroups: boolean, wide?: WidePlan): string {
  const dynamic = p.mode === 'dynamic';
  return [
    ...(dynamic ? classifier : []),
    ...workgroupVars(dynamic, subgroups),
    '',
    ...splitEntryHead(subgroups),
    '',
    ...rowState(p, wide),
    '  let k_begin = split * DC_SPLIT_KEYS;',
    '  let k_stop = min(k_begin + DC_SPLIT_KEYS, Nk);',
    ...splitClasses(dynamic),
    ...keySteps(p, subgroups, wide),
    '',
    ...pad(combineGroups(subgroups, wide?.v ? 'lane * DC_VC + c' : undefined), 2),
    '}',
  ].join('\n');
}

/** The workgroup memory: lane reductions, the groups' states, and (dynamic) the row classes. */
function workgroupVars(dynamic: boolean, subgroups: boolean): string[] {
  return [
    `var<workgroup> dc_red: array<f32, ${'DC_CHUNK * DC_THREADS'}>; // lanes' partial dots (no subgroups)`,
    'var<workgroup> dc_ml: array<vec2<f32>, DC_GROUPS * DC_ROWS>; // lane groups\u2019 (m, l) per row',
    'var<workgroup> dc_acc: array<vec4<f32>, DC_ROWS * DC_DV4>; // the rows\u2019 combined acc',
    ...(dynamic
      ? [
          'var<workgroup> dc_split: u32; // the split\u2019s row classes',
          'var<workgroup> dc_cls: array<u32, 2>; // the step\u2019s row classes, by step parity',
        ]
      : []),
    ...(subgroups ? ['var<workgroup> dc_nosg: u32; // some lane group is not inside one subgroup'] : []),
  ];
}

/** The entry point's signature, its split, row tile and lane, and whether shuffles may be used. */
function splitEntryHead(subgroups: boolean): string[] {
  const sgArgs = subgroups
    ? ', @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_id: u32'
    : '';
  return [
    '// grid: (n_splits * row_tiles, Hkv, B)',
    '@compute @workgroup_size(DC_THREADS)',
    `fn attention_split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sgArgs}) {`,
    '  let Nq = u32(u.Nq);',
    '  let Nk = u32(u.Nk);',
    '  let g = dc_geom();',
    '  let row_tiles = (g.packed + DC_ROWS - 1u) / DC_ROWS;',
    '  let split = wg.x / row_tiles;',
    '  let rt = wg.x % row_tiles;',
    '  let rows = min(g.packed - rt * DC_ROWS, DC_ROWS);',
    '  let lane = lid % DC_LANES;',
    '  let grp = lid / DC_LANES;',
    '  let b = i32(wg.z);',
    ...kvEntry('wg.z', 'wg.y'),
    '  let lanes_loop = select(DC_LANES, 0u, u.Nk < 0i); // DC_LANES, not folded (see reduceDots)',
    ...(subgroups
      ? [
          '  // Shuffles need each lane group inside one subgroup, in order (not promised by WebGPU).',
          '  if (sg_size < DC_LANES || sg_id != lid % sg_size) { dc_nosg = 1u; }',
          '  let use_sg = workgroupUniformLoad(&dc_nosg) == 0u;',
        ]
      : []),
  ];
}

/** This lane's columns of the rows' q, and each row's online-softmax state, reset. */
function rowState(p: AttentionParts, wide: WidePlan | undefined): string[] {
  // q, k and v share one float type here (vec4 views of one element type).
  const f32 = (x: string): string => (sharedStorage(p.formats) === 'f16' ? `vec4<f32>(${x})` : x);
  return [
    "  // This lane's columns of the rows' q.",
    '  var qv: array<array<vec4<f32>, DC_KC>, DC_ROWS>;',
    '  for (var i = 0u; i < DC_ROWS; i++) {',
    '    let pk = rt * DC_ROWS + i;',
    '    let bh = wg.z * u32(u.H) + wg.y * g.group + pk / Nq;',
    '    for (var c = 0u; c < DC_KC; c++) {',
    `      let col = ${wide?.k ? 'lane * DC_KC + c' : 'lane + c * DC_LANES'};`,
    '      var x = vec4<f32>(0.0f);',
    `      if (i < rows && col < DC_D4) { x = ${f32('q_buf4[(bh * Nq + pk % Nq) * DC_D4 + col]')}; }`,
    '      qv[i][c] = x;',
    '    }',
    '  }',
    '  var m_run: array<f32, DC_ROWS>; // running max of allowed scores, per row',
    '  var l_run: array<f32, DC_ROWS>; // running sum of exp(score - m_run)',
    '  var acc: array<array<vec4<f32>, DC_VC>, DC_ROWS>; // this lane\u2019s columns of the rows\u2019 acc',
    '  var bad = 0u; // bit i: row i saw a NaN or +inf allowed score',
    '  for (var i = 0u; i < DC_ROWS; i++) {',
    '    m_run[i] = MASKED;',
    '    l_run[i] = 0.0f;',
    '    for (var c = 0u; c < DC_VC; c++) { acc[i][c] = vec4<f32>(0.0f); }',
    '  }',
  ];
}

/** The split's row classes (dynamic tiles) and the last key its steps must reach. */
function splitClasses(dynamic: boolean): string[] {
  if (!dynamic) return ['  let k_last = k_stop;'];
  return [
    '  // The split for every row: skipped when empty for all, classified per step when some row is partial.',
    '  if (lid == 0u && k_begin < k_stop) {',
    '    dc_split = dc_classify(g, b, wg.y, rt, rows, u.k_offset + i32(k_begin), u.k_offset + i32(k_stop) - 1i);',
    '  }',
    '  let split_cls = workgroupUniformLoad(&dc_split);',
    '  let split_partial = (split_cls & 0xaaaaaaaau) != 0u;',
    '  let k_last = select(k_begin, k_stop, split_cls != 0u);',
    '  var n_step = 0u;',
  ];
}

/** The split's key steps: K/V loaded (prefetched a step ahead when DC_PREFETCH), dots, softmax. */
function keySteps(p: AttentionParts, subgroups: boolean, wide: WidePlan | undefined): string[] {
  const dt = sharedStorage(p.formats);
  return [
    ...pad(kvRegs('kk_next', 'vv_next'), 2),
    '  if (DC_PREFETCH && k_begin < k_last) { // the first step\u2019s K and V',
    ...pad(
      loadStep(dt, p.formats, 'k_begin', 'min(k_begin + DC_STEP, k_stop)', 'kk_next', 'vv_next', wide),
      4,
    ),
    '  }',
    '  for (var k0 = k_begin; k0 < k_last; k0 += DC_STEP) {',
    '    let k_end = min(k0 + DC_STEP, k_stop);',
    ...pad(stepClasses(p), 4),
    ...pad(stepKv(dt, p.formats, wide), 4),
    '    if (cls != 0u) { // some row has an allowed key in the step',
    '      if (!DC_PREFETCH) {',
    ...pad(loadStep(dt, p.formats, 'k0', 'k_end', 'kk', 'vv', wide), 8),
    '      }',
    ...pad([...partialDots, ...reduceDots(subgroups), ...rowUpdates(p)], 6),
    '    }',
    ...(p.mode === 'dynamic' ? ['    n_step++;'] : []),
    '  }',
  ];
}
