// One K/V tile of the coop attention entry point (coop.ts): S = Q·Kᵀ for the invocation's
// register block, score and mask, the row max over the row's lanes, the online-softmax update,
// P to workgroup memory and O += P·V. Renders lines for the body of the tile loop; `cls` (the
// tile class), `k0`, `k_end`, `lane`, `r0` and `row0` are in scope there.
import { pad } from './entry-lines.js';
import type { CoopParts } from './coop.js';
import { bySubgroupPath } from './coop-subgroup.js';
import { coopF16, coopGeometry, halfTiles, type CoopGeometry } from './coop-geometry.js';
import { productPV } from './coop-pv.js';
import { loadKvRegsVec4, stageCoopKv, storeKvRegsVec4 } from './kv-load.js';

/** Scores of this invocation's block: the score expression, then the mask (partial tiles). */
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
    'var m_tile: array<f32, CO_RM>;',
    'for (var i = 0u; i < CO_RM; i++) {',
    '  let row = row0 + r0 + i;',
    '  let q = i32(row) + u.q_offset;',
    '  var mx = MASKED;',
    '  for (var c = 0u; c < CO_SC; c++) {',
    '    let kj = k0 + lane + CO_LANES * c;',
    '    let k = u.k_offset + i32(kj);',
    '    var s = MASKED;',
    '    var allowed = row < Nq && kj < Nk;',
    ...pad(masked, 4),
    ...(p.routed ? pad(p.routed.render.routedKeyCheck, 4) : []),
    '    if (allowed) {',
    '      let score = u.scale * sblk[i][c];',
    ...pad(p.score.stmts, 6),
    `      s = ${p.score.roots[0]};`,
    '      let bits = bitcast<u32>(s);',
    '      if ((bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u) {',
    '        atomicOr(&co_bad[r0 + i], 1u); // NaN or +inf: the row is NaN',
    '        s = MASKED;',
    '      }',
    '    }',
    '    sblk[i][c] = s;',
    '    mx = max(mx, s);',
    '  }',
    '  m_tile[i] = mx;',
    '}',
  ];
}

/** The row max through workgroup memory (co_p is free until P is written; two barriers). */
const rowMaxViaMemory = [
  'for (var i = 0u; i < CO_RM; i++) { co_p[(r0 + i) * CO_LANES + lane] = m_tile[i]; }',
  'workgroupBarrier(); // the lanes\u2019 maxima are written',
  'for (var i = 0u; i < CO_RM; i++) {',
  '  var mx = MASKED;',
  '  for (var x = 0u; x < lanes_loop; x++) { mx = max(mx, co_p[(r0 + i) * CO_LANES + x]); }',
  '  m_tile[i] = mx;',
  '}',
  'workgroupBarrier(); // the maxima are read: co_p takes P',
];

/** The row max over the row's CO_LANES invocations. */
function reduceRowMax(p: CoopParts): string[] {
  const g = coopGeometry(p.schedule);
  if (!g.subgroups) return rowMaxViaMemory;
  const shuffles = [
    '// Lanes of a row are consecutive invocations: xor masks below CO_LANES stay in the row.',
    'for (var i = 0u; i < CO_RM; i++) {',
    ...Array.from({ length: Math.log2(g.lanes) }, (_, b) => {
      return `  m_tile[i] = max(m_tile[i], subgroupShuffleXor(m_tile[i], ${2 ** b}u));`;
    }),
    '}',
  ];
  // Four lanes fit every subgroup size WebGPU allows; more are checked at run time (use_sg).
  return bySubgroupPath(p, shuffles, rowMaxViaMemory);
}

/** The S product line as an fma() chain (schedule.coopFma, f32 tiles): four instructions a dot. */
const FMA_SCORE =
  'for (var c = 0u; c < CO_SC; c++) { let k4 = kk[c]; sblk[i][c] = fma(qq.w, k4.w, fma(qq.z, k4.z, fma(qq.y, k4.y, fma(qq.x, k4.x, sblk[i][c])))); }';
const DOT_SCORE = 'for (var c = 0u; c < CO_SC; c++) { sblk[i][c] += dot(qq, kk[c]); }';

/**
 * S = Q·Kᵀ; Q from the staged tile, or from storage (schedule.coopQGlobal; q_row: rows past Nq
 * clamped); fma chains under schedule.coopFma where the tiles are f32 (f16 tiles widen in dot).
 */
const scores = (qGlobal: boolean, f16: boolean, fma: boolean): string[] =>
  halfTiles(scoresF32(qGlobal), f16).map((l) =>
    f16
      ? l.replace('+= dot(qq, kk[c]);', '+= dot(vec4<f32>(qq), vec4<f32>(kk[c]));')
      : fma
        ? l.replace(DOT_SCORE, FMA_SCORE)
        : l,
  );
const scoresF32 = (qGlobal: boolean): string[] => [
  '// S = Q·K^T for this invocation\u2019s rows r0.. and keys lane + CO_LANES·c.',
  '// Explicitly zeroed: some drivers do not re-zero a `var` declared inside a loop.',
  'var sblk: array<array<f32, CO_SC>, CO_RM>;',
  'for (var i = 0u; i < CO_RM; i++) { for (var c = 0u; c < CO_SC; c++) { sblk[i][c] = 0.0f; } }',
  'for (var d = 0u; d < d4_loop; d++) {',
  '  var kk: array<vec4<f32>, CO_SC>;',
  '  for (var c = 0u; c < CO_SC; c++) { kk[c] = co_kv[(lane + CO_LANES * c) * CO_KVS + d]; }',
  '  for (var i = 0u; i < CO_RM; i++) {',
  qGlobal ? '    let qq = vec4<f32>(q_buf4[q_row[i] + d]);' : '    let qq = co_q[(r0 + i) * CO_QS + d];',
  `    ${DOT_SCORE}`,
  '  }',
  '}',
];

/** The online-softmax update; P to workgroup memory, or kept in sblk (schedule.coopPShuffle). */
const softmax = (pShuffle: boolean): string[] =>
  pShuffle
    ? softmaxLines.map((l) => l.replace(P_TO_MEMORY, 'sblk[i][c] =').replace('write P', 'keep P'))
    : softmaxLines;
const P_TO_MEMORY = 'co_p[(r0 + i) * CO_PS + lane + CO_LANES * c] =';
const softmaxLines = [
  '// Online softmax: rescale to the new row max, write P for the P·V step.',
  'for (var i = 0u; i < CO_RM; i++) {',
  '  let m_new = max(m_run[i], m_tile[i]);',
  '  let corr = exp(m_run[i] - m_new);',
  '  m_run[i] = m_new;',
  '  l_run[i] *= corr;',
  '  for (var c = 0u; c < CO_OC; c++) { acc[i][c] *= corr; }',
  '  for (var c = 0u; c < CO_SC; c++) {',
  '    let s = sblk[i][c];',
  '    co_p[(r0 + i) * CO_PS + lane + CO_LANES * c] = select(0.0f, exp(s - m_new), s > MASKED);',
  '  }',
  '}',
];

const loadK = (tile: string, f16: boolean): string[] =>
  halfTiles(loadKvRegsVec4('k', 'CO_D4', 'pk', 'CO_KR', tile), f16);
const loadV = (tile: string, f16: boolean): string[] =>
  halfTiles(loadKvRegsVec4('v', 'CO_DV4', 'pv', 'CO_VR', tile), f16);

/**
 * The tile with prefetch (schedule.coopPrefetch): K and V of the next tile to compute are loaded
 * into registers (pk, pv) while this one is computed, and stored to workgroup memory when its
 * turn comes; `pf_tile` names the tile they hold (CO_NONE: none, the tile loads directly).
 * `nextTile` renders `let nt = …` (the next tile with work, or CO_NONE).
 */
function prefetchedTileBody(p: CoopParts, middle: string[], nextTile: readonly string[]): string[] {
  const h = coopF16(p.formats);
  const g = coopGeometry(p.schedule);
  const direct = [
    'if (pf_tile != kt) { // not prefetched: load it now',
    ...pad([...loadK('kt', h), ...loadV('kt', h)], 2),
    '}',
  ];
  const storeK = storeKvRegsVec4('CO_D4', 'pk', 'CO_KR', 'co_kv');
  const next = [...nextTile, 'pf_tile = nt;'];
  if (g.splitKv) {
    return [
      ...direct,
      ...storeK,
      ...storeKvRegsVec4('CO_DV4', 'pv', 'CO_VR', 'co_v'),
      'workgroupBarrier(); // K and V are staged',
      ...next,
      'if (nt != CO_NONE) {',
      ...pad([...loadK('nt', h), ...loadV('nt', h)], 2),
      '}',
      ...middle,
      ...pWritten(g),
      ...productPV('co_v', p),
    ];
  }
  return [
    ...direct,
    ...storeK,
    'workgroupBarrier(); // K is staged',
    ...next,
    'if (nt != CO_NONE) {',
    ...pad(loadK('nt', h), 2),
    '}',
    ...middle,
    ...kFreed(g),
    ...storeKvRegsVec4('CO_DV4', 'pv', 'CO_VR', 'co_kv'),
    'workgroupBarrier(); // V is staged',
    'if (nt != CO_NONE) {',
    ...pad(loadV('nt', h), 2),
    '}',
    ...productPV('co_kv', p),
  ];
}

/** The barrier after P with split K/V buffers: P in registers (coopPShuffle) needs none. */
const pWritten = (g: CoopGeometry): string[] => (g.pShuffle ? [] : ['workgroupBarrier(); // P is written']);
/** The barrier before V takes K's buffer (and, unless P stays in registers, after P is written). */
const kFreed = (g: CoopGeometry): string[] => [
  g.pShuffle
    ? 'workgroupBarrier(); // K is no longer read'
    : 'workgroupBarrier(); // P is written and K is no longer read',
];

/** The tile: stage K (and V), S, scores, row max, softmax, P, then V (unless staged) and P·V. */
export function coopTileBody(p: CoopParts, nextTile: readonly string[]): string[] {
  const body = singleKvTileBody(p, nextTile);
  if (!coopGeometry(p.schedule).doubleKv) return body;
  // coopDoubleKv: every K/V tile index is offset into the buffer this tile takes.
  return [
    'let kvb = kv_turn * (BLOCK_K * CO_KVS); // this tile\u2019s K/V buffer',
    'kv_turn ^= 1u;',
    ...body.map((l) => l.replace(/\bco_(kv|v)\[/g, 'co_$1[kvb + ')),
  ];
}

function singleKvTileBody(p: CoopParts, nextTile: readonly string[]): string[] {
  const h = coopF16(p.formats);
  const g = coopGeometry(p.schedule);
  const middle = [
    ...scores(g.qGlobal, h, g.fma),
    ...scoreBlock(p),
    ...reduceRowMax(p),
    ...softmax(g.pShuffle),
  ];
  if (g.prefetch) return prefetchedTileBody(p, middle, nextTile);
  if (g.splitKv) {
    return [
      ...halfTiles(stageCoopKv('k', p.formats), h),
      ...halfTiles(stageCoopKv('v', p.formats, 'co_v'), h),
      'workgroupBarrier(); // K and V are staged',
      ...middle,
      ...pWritten(g),
      ...productPV('co_v', p),
    ];
  }
  return [
    ...halfTiles(stageCoopKv('k', p.formats), h),
    'workgroupBarrier(); // K is staged',
    ...middle,
    ...kFreed(g),
    ...halfTiles(stageCoopKv('v', p.formats), h),
    'workgroupBarrier(); // V is staged',
    ...productPV('co_kv', p),
  ];
}
