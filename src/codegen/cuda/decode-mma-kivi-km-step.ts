// The per-tile lines of the key-major KIVI decode kernel (decode-mma-km.ts says why keys are
// the MMA's M and lays out the fragments): S of the warp's keys per K group, the online softmax on
// the lane's two query columns, O += P′·codes per V group with P′ moved from C fragments to B
// fragments by movmatrix, the recent f16 tail, and what the combine needs of KIVI (decode-mma-km-parts.ts
// holds the shared softmax and combine).

import { kiviGroupScale } from './decode-mma-kivi-step.js';
import { kiviQRow } from './decode-mma-kivi.js';
import { kmLoadQ } from './decode-mma-km-parts.js';

/**
 * Sᵀ of the warp's keys (kt: its first K code row): per K group its keys touch, q̂ times the group's
 * scales (as decode-mma-kivi-step.ts: one f16 rounding, |q̂_g| < 2^14), the code MMAs with the codes
 * as A fragments (rows r0, r0 + 8 of m-tile mt: keys kr0, kr0 + 8), and the zero-point bias Σ q̂_g z by one more MMA a
 * k-step whose A rows are all z. s[mt][e] ends as q·k of key 16 mt + kr0 + 8 (e / 2), query column
 * 2t + e % 2.
 */
export const kmKiviScores: readonly string[] = [
  '      float s[KMT][4];',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  '      const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);',
  '      const int kwe = min(kw + MMA_KEYS, t1);',
  '      for (int g = kw / 32; g <= (kwe - 1) / 32; ++g) { // one group when the split is 32-aligned',
  ...kiviGroupScale,
  "        // Capped for two blocks an SM, the lane's scale / zero words are read again at each use.",
  '        const volatile unsigned* swv = reinterpret_cast<const volatile unsigned*>(gs + (lane & 3) * (D / 4));',
  "        // Code words of rows r0 (v 0) and r0 + 8 (v 1) of each m-tile; another group's keys read 0.",
  '        unsigned w[KMT][2][KWL];',
  '#pragma unroll',
  '        for (int mt = 0; mt < KMT; ++mt)',
  '#pragma unroll',
  '          for (int v = 0; v < 2; ++v) {',
  '            const int kc = 16 * mt + kr0 + 8 * v;',
  '            const bool in = (kw + kc) / 32 == g;',
  '            const unsigned* kr = reinterpret_cast<const unsigned*>(kt + kc * KPB) + KWL * (lane & 3);',
  '#pragma unroll',
  '            for (int m = 0; m < KWL; ++m) w[mt][v][m] = in ? kr[m] : 0u;',
  '          }',
  '        float bz[4] = {0.f, 0.f, 0.f, 0.f}; // Σ q̂_g z of columns 2t, 2t + 1 (rows all alike)',
  '#pragma unroll',
  '        for (int ks = 0; ks < D / 16; ++ks) {',
  '          unsigned qk[2], zp[2];',
  '#pragma unroll',
  '          for (int h = 0; h < 2; ++h) {',
  '            const unsigned sp = dk_hmul2(dk_hmul2(KM_HELD ? dk_pair(sw, 2 * ks + h) : dk_pair(swv, 2 * ks + h), f2a), f2b);',
  '            zp[h] = KM_HELD ? dk_pair(zw, 2 * ks + h) : dk_pair(swv + KGW, 2 * ks + h);',
  '            qk[h] = dk_hmul2(qb[ks][h], sp);',
  '          }',
  '          const unsigned za[4] = {zp[0], zp[0], zp[1], zp[1]};',
  '          dm_mma_h(bz, za, qk[0], qk[1]);',
  '          const int w0 = (2 * ks) / KPPW, i0 = (2 * ks) % KPPW, w1 = (2 * ks + 1) / KPPW, i1 = (2 * ks + 1) % KPPW;',
  '#pragma unroll',
  '          for (int mt = 0; mt < KMT; ++mt) {',
  '            const unsigned ka[4] = {dk_kpair(w[mt][0][w0], i0), dk_kpair(w[mt][1][w0], i0), dk_kpair(w[mt][0][w1], i1), dk_kpair(w[mt][1][w1], i1)};',
  '            dm_mma_h(s[mt], ka, qk[0], qk[1]);',
  '          }',
  '        }',
  '#pragma unroll',
  '        for (int mt = 0; mt < KMT; ++mt)',
  '#pragma unroll',
  '          for (int e = 0; e < 4; ++e)',
  '            if ((kw + 16 * mt + kr0 + 8 * (e >> 1)) / 32 == g) s[mt][e] = (s[mt][e] - bz[e & 1]) * kinv[e & 1];',
  '      }',
];

/** The V zero-point terms follow o through the rescale (corr, c in scope). */
export const kmKiviRescale: readonly string[] = [
  '#pragma unroll',
  '          for (int g = 0; g < VG; ++g) vz[g][c] *= corr;',
];

/**
 * O += P′·codes per V group g: p′ = f16(p · s_t,g) in the C layout (rows r0, r0 + 8 of the m-tile
 * kk: keys kr0, kr0 + 8; the lane's columns), moved to B fragments (k indices 2t, 2t + 1 / 2t + 8,
 * 2t + 9: keys t, t + 4 / t + 8, t + 12; column r0) by movmatrix; those keys' codes as A fragments
 * (channel rows, decode-mma-km.ts); Σ p′ z by one more MMA whose A rows are all the keys' z, into vz[g].
 */
export const kmKiviPv: readonly string[] = [
  '      const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);',
  '      const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8; // the byte of channel 32 g + 4 r0 in its word',
  '      const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;',
  '      const int vw = 4 * r0 * VBITS / 32; // its word in group 0',
  '#pragma unroll',
  '      for (int kk = 0; kk < KMT; ++kk) {',
  "        const int kr = kw - t0 + 16 * kk; // tile row of the m-tile's first key",
  "        const unsigned char* vr = vt + (16 * kk + (lane & 3)) * VPB; // k index 2t's code row (key t; 2t + 1: t + 4)",
  '#pragma unroll',
  '        for (int g = 0; g < VG; ++g) {',
  '          const float sa = dec_half_bits(vzs[(kr + kr0) * VG + g]), sb = dec_half_bits(vzs[(kr + kr0 + 8) * VG + g]);',
  '          const unsigned pb0 = dm_movt(dm_h2(s[kk][0] * sa, s[kk][1] * sa));',
  '          const unsigned pb1 = dm_movt(dm_h2(s[kk][2] * sb, s[kk][3] * sb));',
  '          auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr + (lane & 3) + i) * VG + g]; };',
  '          const unsigned z0 = z(0) | z(4) << 16, z8 = z(8) | z(12) << 16; // k indices 2t.. / 2t + 8..',
  '          const unsigned za[4] = {z0, z0, z8, z8};',
  '          dm_mma_h(vz[g], za, pb0, pb1);',
  '          auto word = [&](int i) { return reinterpret_cast<const unsigned*>(vr + i * VPB)[g * (32 / VCPW) + vw]; };',
  '          const unsigned t01 = __byte_perm(word(0), word(4), vsel), t23 = __byte_perm(word(8), word(12), vsel);',
  '#pragma unroll',
  '          for (int u = 0; u < 2; ++u) {',
  '            const unsigned va[4] = {dk_vcode(t01, 2 * u), dk_vcode(t01, 2 * u + 1), dk_vcode(t23, 2 * u), dk_vcode(t23, 2 * u + 1)};',
  '            dm_mma_h(o[2 * g + u], va, pb0, pb1);',
  '          }',
  '        }',
  '      }',
];

/**
 * The recent f16 tokens [max(k_begin, qend), k_all) after the code tiles, MMA_KEYS a warp at a
 * time: f16 pairs read from global memory straight into the A fragments (K in Q's channel order,
 * V in O's channel rows), P moved to B fragments by movmatrix. `classify`, `softmax`: the lane's tile
 * classes and kmSoftmax's lines.
 */
export const kmKiviTail = (
  field: (key: string) => string,
  classify: readonly string[],
  softmax: readonly string[],
): string[] => [
  '  { // recent f16 tokens: the window rows of the split',
  '    const int r_begin = max(k_begin, qend);',
  `    const unsigned short* rk = a.${field('cache:k_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * D;`,
  `    const unsigned short* rv = a.${field('cache:v_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * DV;`,
  '    for (int kw = r_begin + warp * MMA_KEYS; kw < k_all; kw += MMA_TILE) { // warp-uniform',
  '      [[maybe_unused]] const int t0 = r_begin, t1 = k_all;',
  ...classify.map((l) => `  ${l}`),
  '      float s[KMT][4];',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) {',
  '        s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  '        const unsigned short* kr[2];',
  '#pragma unroll',
  '        for (int v = 0; v < 2; ++v) {',
  '          const int key = kw + 16 * mt + kr0 + 8 * v;',
  '          kr[v] = key < t1 ? rk + (size_t)(key - qend) * D : nullptr;',
  '        }',
  '        auto pair = [&](int v, int c) { return kr[v] ? (unsigned)kr[v][c] | ((unsigned)kr[v][c + KPPW] << 16) : 0u; };',
  '#pragma unroll',
  '        for (int ks = 0; ks < D / 16; ++ks) {',
  '          const int c0 = dk_chan(ks, 0), c1 = dk_chan(ks, 1);',
  '          const unsigned ka[4] = {pair(0, c0), pair(1, c0), pair(0, c1), pair(1, c1)};',
  '          dm_mma_h(s[mt], ka, qb[ks][0], qb[ks][1]);',
  '        }',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) s[mt][e] *= qinv[e & 1];',
  '      }',
  ...softmax,
  '#pragma unroll',
  '      for (int kk = 0; kk < KMT; ++kk) {',
  '        const unsigned pb0 = dm_movt(dm_h2(s[kk][0], s[kk][1])), pb1 = dm_movt(dm_h2(s[kk][2], s[kk][3]));',
  '        const unsigned short* vr[4];',
  '#pragma unroll',
  '        for (int i = 0; i < 4; ++i) {',
  '          const int key = kw + 16 * kk + (lane & 3) + 4 * (i & 1) + 8 * (i >> 1);',
  '          vr[i] = key < t1 ? rv + (size_t)(key - qend) * DV : nullptr;',
  '        }',
  '        auto h = [&](int i, int c) { return vr[i] ? (unsigned)vr[i][c] : 0u; };',
  '#pragma unroll',
  '        for (int n = 0; n < DV / 16; ++n) {',
  '          const int c = 32 * (n >> 1) + 4 * r0 + 2 * (n & 1); // channel rows r0 (c), r0 + 8 (c + 1)',
  '          const unsigned va[4] = {h(0, c) | h(1, c) << 16, h(0, c + 1) | h(1, c + 1) << 16, h(2, c) | h(3, c) << 16, h(2, c + 1) | h(3, c + 1) << 16};',
  '          dm_mma_h(o[n], va, pb0, pb1);',
  '        }',
  '      }',
  '    }',
  '  }',
];

/** KIVI's o less its V zero-point terms, before the combine. */
export const kmKiviOut: readonly string[] = [
  '#pragma unroll',
  '  for (int n = 0; n < DV / 16; ++n)',
  '#pragma unroll',
  '    for (int e = 0; e < 4; ++e) o[n][e] -= vz[n >> 1][e & 1];',
];

/** KIVI's channel of O's m-tile n, row r0 + 8 v (kmKiviPv's layout). */
export const kmKiviChannel = '32 * (n >> 1) + 4 * r0 + 2 * (n & 1) + v';

/** Q's B fragments: row r0's q̂ = q · 2^(14 - e) in the K channel order; qinv of the lane's columns. */
export const kmKiviLoadQ: readonly string[] = kmLoadQ(kiviQRow('qb[ks][h]'));

/** Device constants of the KIVI step: whether the K group's scale words are held in registers. */
export const kmKiviHelpers: readonly string[] = [
  "// Under a register cap for two blocks an SM (QMIN_BLOCKS 2 or more) the K group's scale and zero",
  '// words stay in shared memory, read at each use (volatile: nvcc would keep all 32 in registers;',
  '// 128 registers then spill 8 bytes where holding them spilt 148); else they are held.',
  'constexpr bool KM_HELD = ATTNC_DEC_MMA_QMIN_BLOCKS < 2; // dk_pair takes either',
];
