// O += P·V of the coop engine's tile (coop-tile.ts renders the rest): each invocation adds its rows'
// P times the staged V tile to its register block of O, P read from workgroup memory or, under
// schedule.coopPShuffle, from the lane that holds it in registers.
import type { CoopParts } from './coop.js';
import { bySubgroupPath } from './coop-subgroup.js';
import { coopF16, coopGeometry, halfTiles } from './coop-geometry.js';
import { pad } from './entry-lines.js';

/**
 * O += P·V; an fma per vec4 under schedule.coopFma where the tiles are f32; over every key of the
 * tile under schedule.coopUnroll where K/V are float (their staging zeroes keys past Nk, and P is
 * 0 there: a constant bound the driver can unroll).
 */
export function productPV(vTile: string, p: CoopParts): string[] {
  const f16 = coopF16(p.formats);
  const g = coopGeometry(p.schedule);
  const fullTile = g.unroll && p.formats.k.kind === 'float' && p.formats.v.kind === 'float';
  const lines = g.pShuffle ? shuffledPV(vTile, p, fullTile) : productPVF32(vTile);
  return halfTiles(lines, f16).map((l) => {
    if (fullTile) l = l.replace('j < k_end - k0;', 'j < BLOCK_K;');
    if (f16) return l.replace('+= pj * vv[c];', '+= vec4<f32>(f16(pj) * vv[c]);');
    return g.fma
      ? l.replace('acc[i][c] += pj * vv[c];', 'acc[i][c] = fma(vec4<f32>(pj), vv[c], acc[i][c]);')
      : l;
  });
}
const productPVF32 = (vTile: string): string[] => [
  '// O += P·V; every lane of a row reads the whole P row, so each sums l itself.',
  'for (var j = 0u; j < k_end - k0; j++) {',
  ...pad(pvKey(vTile, 'co_p[(r0 + i) * CO_PS + j]'), 2),
  '}',
];

/** One key j of P·V for the invocation's rows; `pj` reads P[row i][key j]. */
const pvKey = (vTile: string, pj: string): string[] => [
  'var vv: array<vec4<f32>, CO_OC>;',
  `for (var c = 0u; c < CO_OC; c++) { vv[c] = ${vTile}[j * CO_KVS + lane + CO_LANES * c]; }`,
  'for (var i = 0u; i < CO_RM; i++) {',
  `  let pj = ${pj};`,
  '  l_run[i] += pj;',
  '  for (var c = 0u; c < CO_OC; c++) { acc[i][c] += pj * vv[c]; }',
  '}',
];

/**
 * O += P·V with P in registers (schedule.coopPShuffle): key j = x + CO_LANES·sc of a row is lane
 * x's sblk[i][sc]. With the row's lanes in one subgroup (use_sg) every lane reads it by
 * subgroupShuffle; otherwise P goes through co_p a score column at a time (two barriers each).
 * Keys in ascending order either way. Under unroll the bounds are constants (the driver unrolls);
 * where productPV keeps the tile's key bound (not `fullTile`), each key is checked against it.
 */
function shuffledPV(vTile: string, p: CoopParts, fullTile: boolean): string[] {
  const g = coopGeometry(p.schedule);
  const scLoop = g.unroll ? 'CO_SC' : 'select(CO_SC, 0u, u.Nk < 0i)';
  const xLoop = g.unroll ? 'CO_LANES' : 'lanes_loop';
  const key = (pj: string): string[] => [
    '  let j = x + CO_LANES * sc;',
    ...(fullTile
      ? pad(pvKey(vTile, pj), 2)
      : ['  if (j < k_end - k0) {', ...pad(pvKey(vTile, pj), 4), '  }']),
  ];
  const shuffled = [
    'let p_lane0 = sg_id - lane; // the row\u2019s first lane in the subgroup',
    `for (var sc = 0u; sc < ${scLoop}; sc++) {`,
    `  for (var x = 0u; x < ${xLoop}; x++) {`,
    ...pad(key('subgroupShuffle(sblk[i][sc], p_lane0 + x)'), 2),
    '  }',
    '}',
  ];
  // A column per block with constant indices: a loop with barriers stays rolled, and indexing
  // sblk by its counter would put sblk in memory for the whole kernel.
  const viaMemory = Array.from({ length: g.scoreCols }, (_, sc) => [
    '{',
    `  let sc = ${sc}u;`,
    '  workgroupBarrier(); // the previous column of P (or the row maxima) is read',
    `  for (var i = 0u; i < CO_RM; i++) { co_p[(r0 + i) * CO_LANES + lane] = sblk[i][${sc}u]; }`,
    '  workgroupBarrier(); // column sc of P is written',
    `  for (var x = 0u; x < ${xLoop}; x++) {`,
    ...pad(key('co_p[(r0 + i) * CO_LANES + x]'), 2),
    '  }',
    '}',
  ]).flat();
  return [
    '// O += P·V with P in registers: key x + CO_LANES·sc of row i is lane x\u2019s sblk[i][sc].',
    ...bySubgroupPath(p, shuffled, viaMemory),
  ];
}
