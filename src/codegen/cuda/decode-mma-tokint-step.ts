// The per-tile lines of the key-major kernel (decode-mma-km.ts) for per-token int4 / int2 caches
// (decode-mma-tokint.ts says how scales and zero points fold): Sᵀ of the warp's keys with the code
// words as A fragments and the key's scale (and zero-point term) on the C elements, O += P′·codes
// per V scale group with KIVI's V layout (decode-mma-kivi-km-step.ts), the recent f16 tail.
import type { MmaTokenInt } from './decode-mma-tokint.js';

/** Σ q̂ per K scale group of the lane's query columns (the K zero points' term): the row's over its quad, then shuffled. */
export const tokenIntQSum: readonly string[] = [
  '  float qsum[KS][2]; // Σ_c q̂_c over group g of columns 2t, 2t + 1 (f16 q̂, summed in f32)',
  '  {',
  '    float r[KS];',
  '#pragma unroll',
  '    for (int g = 0; g < KS; ++g) r[g] = 0.f;',
  '#pragma unroll',
  '    for (int ks = 0; ks < D / 16; ++ks)',
  '#pragma unroll',
  '      for (int h = 0; h < 2; ++h) r[ks / KGS] += dk_lo(qb[ks][h]) + dk_hi(qb[ks][h]);',
  '#pragma unroll',
  '    for (int g = 0; g < KS; ++g) {',
  '      r[g] += __shfl_xor_sync(0xffffffffu, r[g], 1);',
  '      r[g] += __shfl_xor_sync(0xffffffffu, r[g], 2); // the quad holds row r0',
  '#pragma unroll',
  '      for (int c = 0; c < 2; ++c) qsum[g][c] = dm_shfl_from(r[g], 4 * (2 * (lane & 3) + c));',
  '    }',
  '  }',
];

/** Per-lane state beside m, l and o: Σ p′ z of each V scale group (with V zero points). */
export const tokenIntState = (t: MmaTokenInt): string[] =>
  t.v.zero
    ? [
        '  float vz[VS][4]; // Σ p′ z of each V scale group (columns 2t, 2t + 1; rows alike)',
        '#pragma unroll',
        '  for (int g = 0; g < VS; ++g) vz[g][0] = vz[g][1] = vz[g][2] = vz[g][3] = 0.f;',
      ]
    : [];

/** The V zero-point terms follow o through the rescale (corr, c in scope). */
export const tokenIntRescale = (t: MmaTokenInt): string[] =>
  t.v.zero ? ['#pragma unroll', '          for (int g = 0; g < VS; ++g) vz[g][c] *= corr;'] : [];

/**
 * Sᵀ of the warp's keys: per m-tile, the code words of rows r0 (v 0) and r0 + 8 (keys kr0, kr0 + 8)
 * as A fragments (KIVI's channel order, or the interleaved one where KS > 1) against Q's B
 * fragments, each K scale group's k-steps into their own accumulator, then each C element (key row,
 * query column) plus that times the key's group scale and the column's qinv, less z · Σ q̂ first
 * where K has zero points. Keys past t1 read the window's zero scales (their rows are masked after).
 */
export const tokenIntScores = (t: MmaTokenInt): string[] => [
  '      float s[KMT][4];',
  '      const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);',
  '#pragma unroll',
  '      for (int mt = 0; mt < KMT; ++mt) {',
  '        s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;',
  '        unsigned w[2][KWL];',
  '#pragma unroll',
  '        for (int v = 0; v < 2; ++v) {',
  '          const unsigned* kr = reinterpret_cast<const unsigned*>(kt + (16 * mt + kr0 + 8 * v) * KPB);',
  '#pragma unroll',
  "          for (int m = 0; m < KWL; ++m) w[v][m] = KS > 1 ? kr[4 * m + (lane & 3)] : kr[KWL * (lane & 3) + m]; // dk_chan's order",
  '        }',
  "        const int kr = kw - t0 + 16 * mt + kr0; // the window row of A row r0's key",
  '#pragma unroll',
  '        for (int g = 0; g < KS; ++g) {',
  '          float acc[4] = {0.f, 0.f, 0.f, 0.f};',
  '#pragma unroll',
  '          for (int ks = g * KGS; ks < (g + 1) * KGS; ++ks) {',
  '            const int w0 = (2 * ks) / KPPW, i0 = (2 * ks) % KPPW, w1 = (2 * ks + 1) / KPPW, i1 = (2 * ks + 1) % KPPW;',
  '            const unsigned ka[4] = {dt_kpair(w[0][w0], i0), dt_kpair(w[1][w0], i0), dt_kpair(w[0][w1], i1), dt_kpair(w[1][w1], i1)};',
  '            dm_mma_h(acc, ka, qb[ks][0], qb[ks][1]);',
  '          }',
  '#pragma unroll',
  '          for (int e = 0; e < 4; ++e) {',
  '            const int row = (kr + 8 * (e >> 1)) * KS + g;',
  t.k.zero
    ? '            s[mt][e] += (acc[e] - dec_half_bits(kzs[2 * KGW + row]) * qsum[g][e & 1]) * (dec_half_bits(kzs[row]) * qinv[e & 1]);'
    : '            s[mt][e] += acc[e] * (dec_half_bits(kzs[row]) * qinv[e & 1]);',
  '          }',
  '        }',
  '      }',
];

/**
 * O += P′·codes: per m-tile kk and V scale group sg, p′ = f16(p · s_t,sg) (keys kr0, kr0 + 8 of the
 * C layout) moved to B fragments by movmatrix, Σ p′ z into vz[sg] by one more MMA (zero points),
 * then the group's 32-channel blocks g: keys t, t + 4 / t + 8, t + 12's codes as A fragments
 * (channel rows 4 r0 + 2u, + 1 of the block; decode-mma-kivi-km-step.ts's layout).
 */
export const tokenIntPv = (t: MmaTokenInt): string[] => [
  '      const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);',
  '      const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8; // the byte of channel 32 g + 4 r0 in its word',
  '      const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;',
  '      const int vw = 4 * r0 * VBITS / 32; // its word in block 0',
  '#pragma unroll',
  '      for (int kk = 0; kk < KMT; ++kk) {',
  "        const int kr = kw - t0 + 16 * kk; // tile row of the m-tile's first key",
  "        const unsigned char* vr = vt + (16 * kk + (lane & 3)) * VPB; // k index 2t's code row (key t; 2t + 1: t + 4)",
  '#pragma unroll',
  '        for (int sg = 0; sg < VS; ++sg) {',
  '          const float sa = dec_half_bits(vzs[(kr + kr0) * VS + sg]), sb = dec_half_bits(vzs[(kr + kr0 + 8) * VS + sg]);',
  '          const unsigned pb0 = dm_movt(dm_h2(s[kk][0] * sa, s[kk][1] * sa));',
  '          const unsigned pb1 = dm_movt(dm_h2(s[kk][2] * sb, s[kk][3] * sb));',
  ...(t.v.zero
    ? [
        '          auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr + (lane & 3) + i) * VS + sg]; };',
        '          const unsigned z0 = z(0) | z(4) << 16, z8 = z(8) | z(12) << 16; // k indices 2t.. / 2t + 8..',
        '          const unsigned za[4] = {z0, z0, z8, z8};',
        '          dm_mma_h(vz[sg], za, pb0, pb1);',
      ]
    : []),
  '#pragma unroll',
  '          for (int g = sg * VGS; g < (sg + 1) * VGS; ++g) {',
  '            auto word = [&](int i) { return reinterpret_cast<const unsigned*>(vr + i * VPB)[g * (32 / VCPW) + vw]; };',
  '            const unsigned t01 = __byte_perm(word(0), word(4), vsel), t23 = __byte_perm(word(8), word(12), vsel);',
  '#pragma unroll',
  '            for (int u = 0; u < 2; ++u) {',
  '              const unsigned va[4] = {dt_vcode(t01, 2 * u), dt_vcode(t01, 2 * u + 1), dt_vcode(t23, 2 * u), dt_vcode(t23, 2 * u + 1)};',
  '              dm_mma_h(o[2 * g + u], va, pb0, pb1);',
  '            }',
  '          }',
  '        }',
  '      }',
];

/** o less its V zero-point terms, before the combine (V zero points only). */
export const tokenIntOut = (t: MmaTokenInt): string[] =>
  t.v.zero
    ? [
        '#pragma unroll',
        '  for (int n = 0; n < DV / 16; ++n)',
        '#pragma unroll',
        '    for (int e = 0; e < 4; ++e) o[n][e] -= vz[(n >> 1) / VGS][e & 1];',
      ]
    : [];
