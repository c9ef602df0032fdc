// The register-blocked tile of the coop engine (schedule.coopRegBlock), shaped like the
// register-tiled matmul that bench/wgsl/matmul.mjs times as the adapter's ceiling:
//   - Q (once) and each K tile are staged transposed, Qᵀ[d][row quad] and Kᵀ[d][key quad] as
//     vec4, so one vec4 load brings 4 rows (4 keys) of one dimension;
//   - invocation (group, lane) owns the row quads group + CO_RG·i and the key quads
//     lane + CO_LANES·c; S is its outer-product block, accumulated over d from one Qᵀ and one Kᵀ
//     vec4 per quad (no dot products, no per-element workgroup-memory reads);
//   - the row max is a vec4 max over its keys, then over the row's lanes (subgroupShuffleXor on
//     vec4, or workgroup memory); each lane keeps its own part of the row sum l (one reduction at
//     the end, not one per key);
//   - P is written once per tile, transposed (Pᵀ[key][row quad]), and O += P·V reads one Pᵀ vec4
//     (4 rows) and CO_OC V vec4s per key: the matmul's inner loop with P as A and V as B.
// Variables in scope (coop.ts): lid, lane, grp, row0, Nq, Nk, b, h, bh, d_loop, and per tile k0,
// k_end and cls.
import type { CoopParts } from './coop.js';
import { regBlockGeometry } from './coop-geometry.js';
import { pad } from './coop-tile.js';
import { kvRowAt, stageCoopKv } from './kv-load.js';

/** A vec4's components, for inner loops written out (constant component indices: registers, not local memory). */
const QUAD = ['x', 'y', 'z', 'w'] as const;

/** The rb constants and workgroup arrays (co_q: Qᵀ, co_kv: Kᵀ then V, co_v: V with coopSplitKv, co_p: Pᵀ). */
export function rbDeclarations(p: CoopParts): string[] {
  const s = p.schedule;
  const g = regBlockGeometry(s);
  const split = s.coopSplitKv === true;
  const chunked = s.coopQGlobal === true;
  return [
    `const CO_THREADS: u32 = ${s.threads}u;`,
    `const CO_LANES: u32 = ${g.lanes}u; // invocations per query row`,
    `const CO_RG: u32 = ${g.rowGroups}u; // row groups (invocations / CO_LANES)`,
    `const CO_RQ: u32 = ${g.rowQuads}u; // row quads per invocation (group + CO_RG·i)`,
    `const CO_KQ: u32 = ${g.keyQuads}u; // key quads of a tile per invocation (lane + CO_LANES·c)`,
    `const CO_OC: u32 = ${g.outVec4s}u; // vec4 output columns per invocation (lane + CO_LANES·c)`,
    `const CO_D4: u32 = ${s.headDim / 4}u;`,
    `const CO_DV4: u32 = ${s.valueDim / 4}u;`,
    `const CO_BQ4: u32 = ${s.blockQ / 4}u;`,
    `const CO_BK4: u32 = ${s.blockK / 4}u;`,
    `const CO_KVS: u32 = ${g.vStride}u; // row stride of the staged V tile`,
    `const CO_C4: u32 = ${g.chunk4}u; // vec4 columns of Q and K staged at a time`,
    '// NaN for rows with a NaN or +inf allowed score (a variable: constant NaN is a WGSL error).',
    'var<private> co_nan_bits: u32 = 0x7fc00000u;',
    `var<workgroup> co_q: array<vec4<f32>, ${g.qVec4s}>; // Qᵀ: [d][row quad]${chunked ? ' (a chunk of d)' : ''}`,
    `var<workgroup> co_kv: array<vec4<f32>, ${g.kvVec4s}>; // Kᵀ: [d][key quad]${split ? '' : ', then V: [key][vec4 column]'}`,
    ...(split ? [`var<workgroup> co_v: array<vec4<f32>, ${g.vVec4s}>; // V: [key][vec4 column]`] : []),
    `var<workgroup> co_p: array<vec4<f32>, ${(s.blockK * s.blockQ) / 4}>; // Pᵀ: [key][row quad] (or lanes’ maxima / sums)`,
    'var<workgroup> co_bad: array<atomic<u32>, BLOCK_Q>; // row saw a NaN or +inf allowed score',
    ...(p.mode === 'dynamic'
      ? ['var<workgroup> co_cls: array<u32, CO_THREADS>; // tile classes of a chunk of tiles']
      : []),
  ];
}

/**
 * Stages vec4 columns [c0, c0 + CO_C4) of Q transposed (rows past Nq are zero); the row index
 * runs fastest so the scalar stores hit distinct banks.
 */
const stageQT = (c0: string): string[] => [
  'for (var e = lid; e < BLOCK_Q * CO_C4; e += CO_THREADS) {',
  '  let r = e % BLOCK_Q;',
  '  let c = e / BLOCK_Q;',
  '  var x = vec4<f32>(0.0f);',
  `  if (row0 + r < Nq) { x = vec4<f32>(q_buf4[(bh * Nq + row0 + r) * CO_D4 + ${c0} + c]); }`,
  '  for (var t = 0u; t < 4u; t++) { co_q[(4u * c + t) * CO_BQ4 + r / 4u][r % 4u] = x[t]; }',
  '}',
];

/** Stages all of Qᵀ once, before the tile loop (unless coopQGlobal stages it per tile, by chunks). */
export const rbStageQ = (p: CoopParts): string[] =>
  p.schedule.coopQGlobal === true
    ? []
    : ['  // Stage Q transposed; the first tile\u2019s barrier publishes it.', ...pad(stageQT('0u'), 2)];

/** Per-invocation state: the running max and this lane's part of the sum (vec4: a row quad), O. */
export const rbState = [
  '  var m_run: array<vec4<f32>, CO_RQ>;',
  '  var l_run: array<vec4<f32>, CO_RQ>; // this lane\u2019s keys only: summed over lanes at the end',
  '  var acc: array<array<vec4<f32>, CO_OC>, 4 * CO_RQ>;',
  '  for (var i = 0u; i < CO_RQ; i++) {',
  '    m_run[i] = vec4<f32>(MASKED);',
  '    l_run[i] = vec4<f32>(0.0f);',
  '  }',
  '  for (var r = 0u; r < 4u * CO_RQ; r++) { for (var c = 0u; c < CO_OC; c++) { acc[r][c] = vec4<f32>(0.0f); } }',
];

/**
 * Stages vec4 columns [c0, c0 + CO_C4) of Kᵀ of rows [k0, k0 + BLOCK_K) (zero past Nk); the key
 * runs fastest (distinct banks on store).
 */
function stageKT(p: CoopParts, c0: string): string[] {
  const t = p.formats.k.kind === 'float' ? p.formats.k.dtype : undefined;
  if (t === undefined)
    throw new Error(
      'WGSL coop: coopRegBlock stages float K only (the schedule pass refuses it for quantized K)',
    );
  return [
    'for (var e = lid; e < BLOCK_K * CO_C4; e += CO_THREADS) {',
    '  let j = e % BLOCK_K;',
    '  let c = e / BLOCK_K;',
    '  var x = vec4<f32>(0.0f);',
    `  if (k0 + j < Nk) { x = vec4<f32>(k_buf4[(${kvRowAt('k', 'k0 + j')} >> 2u) + ${c0} + c]); }`,
    '  for (var t = 0u; t < 4u; t++) { co_kv[(4u * c + t) * CO_BK4 + j / 4u][j % 4u] = x[t]; }',
    '}',
  ];
}

/** S += the staged dims of Q·Kᵀ as outer products: per dimension one Qᵀ vec4 per row quad and one Kᵀ vec4 per key quad. */
const accumulateS = [
  'for (var d = 0u; d < d_loop; d++) {',
  '  var qa: array<vec4<f32>, CO_RQ>;',
  '  for (var i = 0u; i < CO_RQ; i++) { qa[i] = co_q[d * CO_BQ4 + grp + CO_RG * i]; }',
  '  for (var c = 0u; c < CO_KQ; c++) {',
  '    let kb = co_kv[d * CO_BK4 + lane + CO_LANES * c];',
  '    for (var i = 0u; i < CO_RQ; i++) {',
  ...QUAD.map((x, t) => `      sblk[4u * c + ${t}u][i] += kb.${x} * qa[i];`),
  '    }',
  '  }',
  '}',
];

/**
 * S = Q·Kᵀ: Kᵀ staged whole (Qᵀ was staged before the loop), or with coopQGlobal Qᵀ and Kᵀ by
 * chunks of CO_C4 vec4 columns (d_loop = 4·CO_C4), a barrier pair each. `kStaged` is the barrier
 * that publishes a whole Kᵀ; the caller's next barrier ends the reads of the last chunk.
 */
function scores(p: CoopParts, kStaged: string[]): string[] {
  const init = [
    '// S for this invocation: sblk[4c + t][i] holds key 4(lane + CO_LANES·c) + t of row quad grp + CO_RG·i.',
    '// Explicitly zeroed: some drivers do not re-zero a `var` declared inside a loop.',
    'var sblk: array<array<vec4<f32>, CO_RQ>, 4 * CO_KQ>;',
    'for (var j = 0u; j < 4u * CO_KQ; j++) { for (var i = 0u; i < CO_RQ; i++) { sblk[j][i] = vec4<f32>(0.0f); } }',
  ];
  if (p.schedule.coopQGlobal !== true) {
    return [...stageKT(p, '0u'), ...kStaged, ...init, ...accumulateS];
  }
  return [
    ...init,
    'for (var c0 = 0u; c0 < CO_D4; c0 += CO_C4) {',
    '  if (c0 > 0u) { workgroupBarrier(); } // the previous chunk is no longer read',
    ...pad([...stageQT('c0'), ...stageKT(p, 'c0')], 2),
    '  workgroupBarrier(); // the chunk of Qᵀ and Kᵀ (and V) is staged',
    ...pad(accumulateS, 2),
    '}',
  ];
}

/** Score expression and mask per element, the NaN flags, and the row quads' maxima over this lane's keys. */
function scoreBlock(p: CoopParts): string[] {
  const mask = p.mask;
  const evalMask = mask ? [...mask.stmts, `allowed = ${mask.roots[0]};`] : [];
  const masked =
    p.mode === 'full'
      ? []
      : p.mode === 'dynamic'
        ? ['if (allowed && cls == TILE_PARTIAL) {', ...pad(evalMask, 2), '}']
        : ['if (allowed) {', ...pad(evalMask, 2), '}'];
  return [
    'var m_tile: array<vec4<f32>, CO_RQ>;',
    'for (var i = 0u; i < CO_RQ; i++) { m_tile[i] = vec4<f32>(MASKED); }',
    'for (var j = 0u; j < 4u * CO_KQ; j++) {',
    '  let kj = k0 + 4u * (lane + CO_LANES * (j / 4u)) + j % 4u;',
    '  let k = u.k_offset + i32(kj);',
    '  for (var i = 0u; i < CO_RQ; i++) {',
    '    var sv = sblk[j][i];',
    '    for (var t = 0u; t < 4u; t++) {',
    '      let tr = 4u * (grp + CO_RG * i) + t; // the row within the tile',
    '      let row = row0 + tr;',
    '      let q = i32(row) + u.q_offset;',
    '      var s = MASKED;',
    '      var allowed = row < Nq && kj < Nk;',
    ...pad(masked, 6),
    '      if (allowed) {',
    '        let score = u.scale * sv[t];',
    ...pad(p.score.stmts, 8),
    `        s = ${p.score.roots[0]};`,
    '        let bits = bitcast<u32>(s);',
    '        if ((bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u) {',
    '          atomicOr(&co_bad[tr], 1u); // NaN or +inf: the row is NaN',
    '          s = MASKED;',
    '        }',
    '      }',
    '      sv[t] = s;',
    '    }',
    '    sblk[j][i] = sv;',
    '    m_tile[i] = max(m_tile[i], sv);',
    '  }',
    '}',
  ];
}

/** Sums (op '+') or maxima (op 'max') of `arr` (vec4 per row quad) over the row's lanes, through Pᵀ's memory. */
function acrossLanesViaMemory(arr: string, op: 'max' | '+'): string[] {
  const combine = op === 'max' ? 'acc4 = max(acc4, v);' : 'acc4 += v;';
  return [
    `for (var i = 0u; i < CO_RQ; i++) { co_p[(grp + CO_RG * i) * CO_LANES + lane] = ${arr}[i]; }`,
    'workgroupBarrier(); // the lanes\u2019 values are written',
    'for (var i = 0u; i < CO_RQ; i++) {',
    `  var acc4 = co_p[(grp + CO_RG * i) * CO_LANES];`,
    '  for (var x = 1u; x < lanes_loop; x++) {',
    '    let v = co_p[(grp + CO_RG * i) * CO_LANES + x];',
    `    ${combine}`,
    '  }',
    `  ${arr}[i] = acc4;`,
    '}',
    'workgroupBarrier(); // the values are read: co_p is free',
  ];
}

/** The row quads' maxima over the row's lanes (shuffles where every lane group is in one subgroup). */
function reduceRowMax(p: CoopParts, checked: boolean): string[] {
  if (p.schedule.subgroups !== true) return acrossLanesViaMemory('m_tile', 'max');
  const g = regBlockGeometry(p.schedule);
  const shuffles = [
    '// Lanes of a row are consecutive invocations: xor masks below CO_LANES stay in the row.',
    'for (var i = 0u; i < CO_RQ; i++) {',
    ...Array.from(
      { length: Math.log2(g.lanes) },
      (_, b) => `  m_tile[i] = max(m_tile[i], subgroupShuffleXor(m_tile[i], ${2 ** b}u));`,
    ),
    '}',
  ];
  if (!checked) return shuffles;
  return [
    'if (use_sg) {',
    ...pad(shuffles, 2),
    '} else {',
    ...pad(acrossLanesViaMemory('m_tile', 'max'), 2),
    '}',
  ];
}

/** Online softmax: rescale O and l to the new maxima, write Pᵀ and add this lane's P to l. */
const softmax = [
  'for (var i = 0u; i < CO_RQ; i++) {',
  '  let m_new = max(m_run[i], m_tile[i]);',
  '  let corr = exp(m_run[i] - m_new);',
  '  m_run[i] = m_new;',
  '  l_run[i] *= corr;',
  '  for (var c = 0u; c < CO_OC; c++) {',
  ...QUAD.map((x, t) => `    acc[4u * i + ${t}u][c] *= corr.${x};`),
  '  }',
  '  for (var j = 0u; j < 4u * CO_KQ; j++) {',
  '    let sv = sblk[j][i];',
  '    let pv = select(vec4<f32>(0.0f), exp(sv - m_new), sv > vec4<f32>(MASKED));',
  '    l_run[i] += pv;',
  '    co_p[(4u * (lane + CO_LANES * (j / 4u)) + j % 4u) * CO_BQ4 + grp + CO_RG * i] = pv;',
  '  }',
  '}',
];

/** O += P·V: per key, one Pᵀ vec4 per row quad and CO_OC V vec4s, an outer product. */
const productPV = (vTile: string): string[] => [
  'for (var j = 0u; j < k_end - k0; j++) {',
  '  var vv: array<vec4<f32>, CO_OC>;',
  `  for (var c = 0u; c < CO_OC; c++) { vv[c] = ${vTile}[j * CO_KVS + lane + CO_LANES * c]; }`,
  '  for (var i = 0u; i < CO_RQ; i++) {',
  '    let pq = co_p[j * CO_BQ4 + grp + CO_RG * i];',
  '    for (var c = 0u; c < CO_OC; c++) {',
  ...QUAD.map((x, t) => `      acc[4u * i + ${t}u][c] += pq.${x} * vv[c];`),
  '    }',
  '  }',
  '}',
];

/** One K/V tile of the register-blocked engine (the body of coop.ts's tile loop). */
export function rbTileBody(p: CoopParts, checkedShuffles: boolean): string[] {
  const rest = [...scoreBlock(p), ...reduceRowMax(p, checkedShuffles), ...softmax];
  if (p.schedule.coopSplitKv === true) {
    // V is staged first: the barrier that publishes Kᵀ (or its first chunk) publishes it too.
    return [
      ...stageCoopKv('v', p.formats, 'co_v'),
      ...scores(p, ['workgroupBarrier(); // Kᵀ and V are staged']),
      ...rest,
      'workgroupBarrier(); // Pᵀ is written',
      ...productPV('co_v'),
    ];
  }
  return [
    ...scores(p, ['workgroupBarrier(); // Kᵀ is staged']),
    ...rest,
    'workgroupBarrier(); // Pᵀ is written and Kᵀ is no longer read',
    ...stageCoopKv('v', p.formats),
    'workgroupBarrier(); // V is staged',
    ...productPV('co_kv'),
  ];
}

/** The lanes' sums of l, then out = O / l and lse per row (after the tile loop). */
export function rbEpilogue(p: CoopParts): string[] {
  const out = (x: string): string => (p.formats.out.dtype === 'f16' ? `vec4<f16>(${x})` : x);
  return [
    'workgroupBarrier(); // the last tile\u2019s Pᵀ is read; the rows\u2019 NaN flags are final',
    ...acrossLanesViaMemory('l_run', '+'),
    'let nan = bitcast<f32>(co_nan_bits);',
    'for (var i = 0u; i < CO_RQ; i++) {',
    '  for (var t = 0u; t < 4u; t++) {',
    '    let tr = 4u * (grp + CO_RG * i) + t;',
    '    let row = row0 + tr;',
    '    if (row < Nq) {',
    '      let bad = atomicLoad(&co_bad[tr]) != 0u;',
    '      let l = l_run[i][t];',
    '      // l > 0 iff the row saw an allowed key; otherwise the row is all zeros.',
    '      let inv_l = select(0.0f, 1.0f / l, l > 0.0f);',
    '      let o_base = (bh * Nq + row) * CO_DV4;',
    '      for (var c = 0u; c < CO_OC; c++) {',
    '        let c4 = lane + CO_LANES * c;',
    '        if (c4 < CO_DV4) {',
    `          out_buf4[o_base + c4] = ${out('select(acc[4u * i + t][c] * inv_l, vec4<f32>(nan), bad)')};`,
    '        }',
    '      }',
    ...(p.lse
      ? [
          '      if (lane == 0u) {',
          '        var lse = bitcast<f32>(neg_inf_bits);',
          '        if (l > 0.0f) { lse = m_run[i][t] + log(l); }',
          '        lse_buf[bh * Nq + row] = select(lse, nan, bad);',
          '      }',
        ]
      : []),
    '    }',
    '  }',
    '}',
  ];
}
