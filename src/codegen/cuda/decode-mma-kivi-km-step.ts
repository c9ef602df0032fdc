// The per-tile lines of the key-major KIVI decode kernel (decode-mma-kivi-km.ts says why keys are
// the MMA's M and lays out the fragments): S of the warp's keys per K group, the online softmax on
// the lane's two query columns, O += P′·codes per V group with P′ moved from C fragments to B
// fragments by movmatrix, the recent f16 tail, and the warps' combine.

import { kiviGroupScale } from './decode-mma-kivi-step.js';

/**
 * Sᵀ of the warp's keys (kt: its first K code row): per K group its keys touch, q̂ times the group's
 * scales (as decode-mma-kivi-step.ts: one f16 rounding, |q̂_g| < 2^14), the code MMAs with the codes
 * as A fragments (keys r0, r0 + 8 of m-tile mt), and the zero-point bias Σ q̂_g z by one more MMA a
 * k-step whose A rows are all z. s[mt][e] ends as q·k of key 16 mt + r0 + 8 (e / 2), query column
 * 2t + e % 2.
 */
export const kmScores: readonly string[] = [
  '      float s[KMT][4];',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  '      const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);',
  '      const int kwe = min(kw + MMA_KEYS, t1);',
  '      for (int g = kw / 32; g <= (kwe - 1) / 32; ++g) { // one group when the split is 32-aligned',
  ...kiviGroupScale,
  "        // Capped for two blocks an SM, the lane's scale / zero words are read again at each use.",
  '        const volatile unsigned* swv = reinterpret_cast<const volatile unsigned*>(gs + (lane & 3) * (D / 4));',
  "        // Code words of keys r0 (v 0) and r0 + 8 (v 1) of each m-tile; another group's keys read 0.",
  '        unsigned w[KMT][2][KWL];',
  '#pragma unroll',
  '        for (int mt = 0; mt < KMT; ++mt)',
  '#pragma unroll',
  '          for (int v = 0; v < 2; ++v) {',
  '            const int kc = 16 * mt + r0 + 8 * v;',
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
  '            const unsigned sp = dk_hmul2(dk_hmul2(KM_HELD ? dk_pair(sw, 2 * ks + h) : dk_pair_v(swv, 2 * ks + h), f2a), f2b);',
  '            zp[h] = KM_HELD ? dk_pair(zw, 2 * ks + h) : dk_pair_v(swv + KGW, 2 * ks + h);',
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
  '            if ((kw + 16 * mt + r0 + 8 * (e >> 1)) / 32 == g) s[mt][e] = (s[mt][e] - bz[e & 1]) * kinv[e & 1];',
  '      }',
];

/**
 * The online softmax on the lane's query columns (2t, 2t + 1): scores to base 2 (keys at or past t1
 * are -inf), the column max over the warp's keys (the eight lanes r0 hold one column's keys), the
 * rescale only when some column's max rose (decode-mma-lean.ts's vote), p = 2^(s - m); l sums the
 * lane's own p (the eight lanes' sums are added at the end). `rescale`: more lines under corr (c).
 */
export const kmSoftmax = (rescale: readonly string[]): string[] => [
  '      float mx[2] = {-INFINITY, -INFINITY};',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          const int kj = kw + 16 * mt + r0 + 8 * (e >> 1);',
  '          s[mt][e] = kj < t1 ? s[mt][e] * sl2 : -INFINITY;',
  '          mx[e & 1] = fmaxf(mx[e & 1], s[mt][e]);',
  '        }',
  '#pragma unroll',
  '      for (int c = 0; c < 2; ++c)',
  '#pragma unroll',
  '        for (int d = 4; d < 32; d <<= 1) mx[c] = fmaxf(mx[c], __shfl_xor_sync(0xffffffffu, mx[c], d));',
  '      if (dm_any(mx[0] > m[0] || mx[1] > m[1])) {',
  '#pragma unroll',
  '        for (int c = 0; c < 2; ++c) {',
  '          const bool up = mx[c] > -INFINITY;',
  '          const float mn = up ? fmaxf(m[c], mx[c]) : m[c], corr = up ? exp2f(m[c] - mn) : 1.f;',
  '          l[c] *= corr;',
  '#pragma unroll',
  '          for (int n = 0; n < DV / 16; ++n) o[n][c] *= corr, o[n][c + 2] *= corr;',
  ...rescale,
  '          m[c] = mn;',
  '        }',
  '      }',
  '      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the column.',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          s[mt][e] = s[mt][e] == -INFINITY ? 0.f : exp2f(s[mt][e] - m[e & 1]);',
  '          l[e & 1] += s[mt][e];',
  '        }',
];

/** The V zero-point terms follow o through the rescale (corr, c in scope). */
export const kmRescale: readonly string[] = [
  '#pragma unroll',
  '          for (int g = 0; g < VG; ++g) vz[g][c] *= corr;',
];

/**
 * O += P′·codes per V group g: p′ = f16(p · s_t,g) in the C layout (keys r0, r0 + 8 of the m-tile
 * kk, the lane's columns), moved to B fragments (keys 2t, 2t + 1 / 2t + 8, 2t + 9, column r0) by
 * movmatrix; the codes of keys 2t.. as A fragments (channel rows, decode-mma-kivi-km.ts); Σ p′ z by
 * one more MMA whose A rows are all the keys' z, into vz[g].
 */
export const kmPv: readonly string[] = [
  '      const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);',
  '      const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8; // the byte of channel 32 g + 4 r0 in its word',
  '      const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;',
  '      const int vw = 4 * r0 * VBITS / 32; // its word in group 0',
  '#pragma unroll',
  '      for (int kk = 0; kk < KMT; ++kk) {',
  "        const int kr = kw - t0 + 16 * kk; // tile row of the m-tile's first key",
  "        const unsigned char* vr = vt + (16 * kk + 2 * (lane & 3)) * VPB; // key 2t's code row",
  '        unsigned zk[2]; // z of keys (2t, 2t + 1) and (2t + 8, 2t + 9) in group g: set per g below',
  '#pragma unroll',
  '        for (int g = 0; g < VG; ++g) {',
  '          const float sa = dec_half_bits(vzs[(kr + r0) * VG + g]), sb = dec_half_bits(vzs[(kr + r0 + 8) * VG + g]);',
  '          const unsigned pb0 = dm_movt(dm_h2(s[kk][0] * sa, s[kk][1] * sa));',
  '          const unsigned pb1 = dm_movt(dm_h2(s[kk][2] * sb, s[kk][3] * sb));',
  '          auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr + 2 * (lane & 3) + i) * VG + g]; };',
  '          zk[0] = z(0) | z(1) << 16;',
  '          zk[1] = z(8) | z(9) << 16;',
  '          const unsigned za[4] = {zk[0], zk[0], zk[1], zk[1]};',
  '          dm_mma_h(vz[g], za, pb0, pb1);',
  '          auto word = [&](int i) { return reinterpret_cast<const unsigned*>(vr + i * VPB)[g * (32 / VCPW) + vw]; };',
  '          const unsigned t01 = __byte_perm(word(0), word(1), vsel), t23 = __byte_perm(word(8), word(9), vsel);',
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
 * V in O's channel rows), P moved to B fragments by movmatrix. `softmax`: kmSoftmax's lines.
 */
export const kmTail = (field: (key: string) => string, softmax: readonly string[]): string[] => [
  '  { // recent f16 tokens: the window rows of the split',
  '    const int r_begin = max(k_begin, qend);',
  `    const unsigned short* rk = a.${field('cache:k_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * D;`,
  `    const unsigned short* rv = a.${field('cache:v_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * DV;`,
  '    for (int kw = r_begin + warp * MMA_KEYS; kw < k_all; kw += MMA_TILE) { // warp-uniform',
  '      const int t1 = k_all;',
  '      float s[KMT][4];',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) {',
  '        s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  '        const unsigned short* kr[2];',
  '#pragma unroll',
  '        for (int v = 0; v < 2; ++v) {',
  '          const int key = kw + 16 * mt + r0 + 8 * v;',
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
  '          const int key = kw + 16 * kk + 2 * (lane & 3) + (i & 1) + 8 * (i >> 1);',
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

/**
 * The warps' states combined in shared memory into one partial per query column (part_slot): l
 * summed over the eight lanes of a column, o less its V zero-point terms, o[n][e]'s channel
 * 32 (n / 2) + 4 r0 + 2 (n % 2) + e / 2.
 */
export const kmCombine: readonly string[] = [
  '#pragma unroll',
  '  for (int n = 0; n < DV / 16; ++n)',
  '#pragma unroll',
  '    for (int e = 0; e < 4; ++e) o[n][e] -= vz[n >> 1][e & 1];',
  '#pragma unroll',
  '  for (int c = 0; c < 2; ++c)',
  '#pragma unroll',
  '    for (int d = 4; d < 32; d <<= 1) l[c] += __shfl_xor_sync(0xffffffffu, l[c], d);',
  '  dec_wait<0>();',
  '  __syncthreads(); // the stream buffers are free: they hold the combine now',
  '  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][ROWS] m, then l, then o [WARPS][ROWS][DV]',
  '  float* cl = cm + MMA_WARPS * MMA_ROWS;',
  '  float* co = cl + MMA_WARPS * MMA_ROWS;',
  '#pragma unroll',
  '  for (int c = 0; c < 2; ++c) {',
  '    const int r = 2 * (lane & 3) + c;',
  '    if (r0 == 0) {',
  '      cm[warp * MMA_ROWS + r] = l[c] != 0.f ? m[c] : -INFINITY; // l NaN: poisoned, kept',
  '      cl[warp * MMA_ROWS + r] = l[c];',
  '    }',
  '#pragma unroll',
  '    for (int n = 0; n < DV / 16; ++n)',
  '#pragma unroll',
  '      for (int v = 0; v < 2; ++v) co[((size_t)warp * MMA_ROWS + r) * DV + 32 * (n >> 1) + 4 * r0 + 2 * (n & 1) + v] = o[n][c + 2 * v];',
  '  }',
  '  __syncthreads();',
];
