// The per-tile lines of the key-major decode kernel (decode-mma-km.ts) for int8 / fp8 caches with
// per-token scales (decode-mma-quant.ts's formats and folds): Sᵀ of the warp's keys with the code
// words as A fragments, O += P′·codes with p′ = p · s_v moved to B fragments by movmatrix.
// Channel orders: K as decode-mma-qtile.ts has it (a lane's K word pairs are Q's pairs); V: lane r0
// reads channels r0 · DV / 8 .. + DV / 8 - 1 of a code row, and O's m-tile n, row r0 + 8 v is
// channel r0 · DV / 8 + 16 (n / 8) + 2 (n % 8) + v.
import { kmLoadQ } from './decode-mma-km-parts.js';
import { quantQRow } from './decode-mma-qtile.js';
import type { MmaQuant } from './decode-mma-quant.js';
import { scaleLoads } from './decode-mma-scales.js';

/** Q's B fragments (row r0's pairs, as the query-major kernel's A fragments) and the columns' qinv. */
export const kmQuantLoadQ = (q: MmaQuant): string[] => kmLoadQ(quantQRow(q, (h) => `qb[ks][${h}]`));

/** O's channel of m-tile n, row r0 + 8 v (kmQuantPv's layout). */
export const kmQuantChannel = 'r0 * (DV / 8) + 16 * (n >> 3) + 2 * (n & 7) + v';

/** Scales of the lane's keys (16 mt + kr0 + 8 v: sk[mt][v], sv[mt][v]), then Sᵀ = codes · q̂ to q·k. */
export const kmQuantScores = (q: MmaQuant): string[] => [
  ...scaleLoads(q, 'KMT', 'kw + 16 * j + kr0 + 8 * e'),
  '      float s[KMT][4];',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) {',
  '        s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  "        const unsigned char* kr = kt + (16 * mt + kr0) * KPB + 16 * (lane & 3); // row r0's key; row r0 + 8 is 8 keys on",
  '#pragma unroll',
  '        for (int m = 0; m < D / 64; ++m) {',
  '          const DmW4 x = *reinterpret_cast<const DmW4*>(kr + 64 * m), y = *reinterpret_cast<const DmW4*>(kr + 8 * KPB + 64 * m);',
  '          const unsigned wa[4] = {x.x, x.y, x.z, x.w}, wb[4] = {y.x, y.y, y.z, y.w};',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) {',
  '            const unsigned ka[4] = {dmq_k(wa[i], 0), dmq_k(wb[i], 0), dmq_k(wa[i], 1), dmq_k(wb[i], 1)};',
  '            dm_mma_h(s[mt], ka, qb[4 * m + i][0], qb[4 * m + i][1]);',
  '          }',
  '        }',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) s[mt][e] *= sk[mt][e >> 1] * qinv[e & 1];',
  '      }',
];

/** O += (p · s_v)·codes: keys 2t, 2t + 1 / 2t + 8, 2t + 9 of m-tile kk as the A fragments' k. */
export const kmQuantPv: readonly string[] = [
  '#pragma unroll',
  '      for (int kk = 0; kk < KMT; ++kk) {',
  '        const unsigned pb0 = dm_movt(dm_h2(s[kk][0] * sv[kk][0], s[kk][1] * sv[kk][0]));',
  '        const unsigned pb1 = dm_movt(dm_h2(s[kk][2] * sv[kk][1], s[kk][3] * sv[kk][1]));',
  "        const unsigned char* vr = vt + (16 * kk + (lane & 3)) * VPB + r0 * (DV / 8); // k index 2t's channels (key t)",
  '#pragma unroll',
  '        for (int m = 0; m < DV / 128; ++m) {',
  '          DmW4 w4[4]; // k indices 2t, 2t + 1, 2t + 8, 2t + 9: keys t, t + 4, t + 8, t + 12',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) w4[i] = *reinterpret_cast<const DmW4*>(vr + (4 * (i & 1) + 8 * (i >> 1)) * VPB + 16 * m);',
  '          auto word = [&](int i, int x) { const unsigned* p = &w4[i].x; return p[x >> 2]; };',
  '#pragma unroll',
  '          for (int x = 0; x < 8; ++x) { // m-tile 8 m + x: bytes 2x (row r0), 2x + 1 (row r0 + 8)',
  '            const int b0 = 2 * x, b1 = 2 * x + 1;',
  '            const unsigned va[4] = {dmq_v(word(0, b0), word(1, b0), b0 & 3), dmq_v(word(0, b1), word(1, b1), b1 & 3),',
  '                                    dmq_v(word(2, b0), word(3, b0), b0 & 3), dmq_v(word(2, b1), word(3, b1), b1 & 3)};',
  '            dm_mma_h(o[8 * m + x], va, pb0, pb1);',
  '          }',
  '        }',
  '      }',
];
