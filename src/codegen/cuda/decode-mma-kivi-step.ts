// KIVI's step on one key tile in the tensor-core decode kernel (decode-mma-kivi.ts says how the
// scales and zero points fold into the MMAs, and lays out the stage's code rows and scale windows):
// S of the warp's keys per K group, and O += P·V per V group with the zero-point bias in vb.
// Apart from decode-mma-kivi.ts as decode-mma-qtile.ts is from decode-mma-quant.ts: these are the
// lines decode-mma-tiles.ts's loop runs per tile.

/**
 * Group g's scale windows (gs) and the fold of its scales into q̂: the lane's scale / zero words sw,
 * zw (16-byte reads), the exponent es of the group's largest |s| over the row, s′'s two exact f16
 * factors f2a, f2b, and kinv, which takes S back to q·k (qinv: the row's, or the column's in the
 * key-major kernel). Shared by both KIVI kernels (g, kzs, t0, lane in scope).
 */
export const kiviGroupScale: readonly string[] = [
  '        const unsigned short* gs = kzs + (g - t0 / 32) * D; // scales; zeros 2 KGW halves on',
  "        // The largest |s| of the lane's D / 4 channels (contiguous), then of the row: f16 bits order as values.",
  "        // sw / zw: the lane's scale / zero words (16-byte reads); a pair (c, c + KPPW) is dk_pair's.",
  '        unsigned sw[D / 8], zw[D / 8], mb = 0u;',
  '#pragma unroll',
  '        for (int m = 0; m < D / 32; ++m) {',
  '          const DmW4 x = reinterpret_cast<const DmW4*>(gs + (lane & 3) * (D / 4))[m];',
  '          const DmW4 y = reinterpret_cast<const DmW4*>(gs + 2 * KGW + (lane & 3) * (D / 4))[m];',
  '          sw[4 * m] = x.x, sw[4 * m + 1] = x.y, sw[4 * m + 2] = x.z, sw[4 * m + 3] = x.w;',
  '          zw[4 * m] = y.x, zw[4 * m + 1] = y.y, zw[4 * m + 2] = y.z, zw[4 * m + 3] = y.w;',
  '          mb = dk_vmax2(mb, dk_vmax2(dk_vmax2(x.x & 0x7fff7fffu, x.y & 0x7fff7fffu), dk_vmax2(x.z & 0x7fff7fffu, x.w & 0x7fff7fffu)));',
  '        }',
  '        mb = max(mb & 0xffffu, mb >> 16);',
  '        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 1));',
  '        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 2));',
  '        // e: the exponent of the largest scale (0 for zeros, inf or NaN: they stay what they are).',
  '        int es = 1;',
  '        if (mb != 0u && mb < 0x7c00u) frexpf(dec_half_bits((unsigned short)mb), &es); // max in [2^(es-1), 2^es)',
  '        es -= 1;',
  '        // s′ = s · 2^-(es+1) by two exact f16 factors (2^-(es+1) reaches 2^23 for tiny scales).',
  '        const int fa = min(-es - 1, 15), fb = -es - 1 - fa;',
  '        const unsigned f2a = dk_pow2h(fa) * 0x10001u, f2b = dk_pow2h(fb) * 0x10001u;',
  '        const float kinv[2] = {qinv[0] * ldexpf(1.f, es + 1), qinv[1] * ldexpf(1.f, es + 1)};',
];

/**
 * S of the warp's keys from the stage's code rows (kt): per K group the warp's keys touch, q̂ times
 * the group's scales (f16 s′ = s · 2^-(e+1), e the exponent of the group's largest |s| over the
 * row: |q̂_g| < 2^14, no overflow; one rounding, __hmul2), the code MMAs, and the bias Σ q̂_g z by
 * one more MMA per k-step (z is an f16: exact operands, f32 accumulation); s[j][e] ends as q·k.
 * `halves`: the row halves the loop computes (HALVES in the lean loop, else 2). With one, rows
 * 8..15 are padding: their A registers are 0 (not 0 · s′, which a non-finite scale would make
 * NaN in rows nobody reads) and their C elements keep the MMA's sums unscaled.
 */
export const kiviScores = (halves: string): string[] => [
  '      float s[NT][4];',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
  '      const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);',
  '      const int kwe = min(kw + MMA_KEYS, t1);',
  '      for (int g = kw / 32; g <= (kwe - 1) / 32; ++g) { // one group when the split is 32-aligned',
  ...kiviGroupScale,
  '        // The code words of every tile j (column r0: the key dmq_key(j, ·) of lane 4 (r0 / 2) + ...);',
  "        // a key of another group reads codes 0, so its S stays exactly as the other group's pass left it.",
  '        unsigned w[NT][KWL];',
  '#pragma unroll',
  '        for (int j = 0; j < NT; ++j) {',
  '          const int kc = 16 * (j >> 1) + (r0 >> 1) + 4 * (2 * (j & 1) + (r0 & 1));',
  '          const bool in = (kw + kc) / 32 == g;',
  '          const unsigned* kr = reinterpret_cast<const unsigned*>(kt + kc * KPB) + KWL * (lane & 3);',
  '#pragma unroll',
  '          for (int m = 0; m < KWL; ++m) w[j][m] = in ? kr[m] : 0u;',
  '        }',
  '        float bz[4] = {0.f, 0.f, 0.f, 0.f}; // Σ q̂_g z: every column the same',
  "        // k-step by k-step: the group's A fragment of q̂_g (one k-step live), then every tile's MMA.",
  '#pragma unroll',
  '        for (int ks = 0; ks < D / 16; ++ks) {',
  '          unsigned qk[4], zp[2];',
  '#pragma unroll',
  '          for (int h = 0; h < 2; ++h) {',
  '            const unsigned sp = dk_hmul2(dk_hmul2(dk_pair(sw, 2 * ks + h), f2a), f2b);',
  '            zp[h] = dk_pair(zw, 2 * ks + h);',
  '            qk[2 * h] = dk_hmul2(qf[ks][2 * h], sp);',
  `            qk[2 * h + 1] = ${halves} > 1 ? dk_hmul2(qf[ks][2 * h + 1], sp) : 0u;`,
  '          }',
  '          dm_mma_h(bz, qk, zp[0], zp[1]);',
  '#pragma unroll',
  '          for (int j = 0; j < NT; ++j)',
  '            dm_mma_h(s[j], qk, dk_kpair(w[j][(2 * ks) / KPPW], (2 * ks) % KPPW), dk_kpair(w[j][(2 * ks + 1) / KPPW], (2 * ks + 1) % KPPW));',
  '        }',
  '#pragma unroll',
  '        for (int j = 0; j < NT; ++j)',
  '#pragma unroll',
  `          for (int e = 0; e < 2 * ${halves}; ++e)`,
  '            if ((kw + dmq_key(j, e & 1)) / 32 == g) s[j][e] = (s[j][e] - bz[e & 2]) * kinv[e >> 1];',
  '      }',
];

/**
 * O += p′·codes per V group g (p′ = f16(p · s_t,g), one A fragment a group); Σ p′ z by one more MMA
 * a group into column g of vb (lanes r0 == g give the B column: their keys' z, exact f16 operands).
 * `halves` as kiviScores's: with one, the padding rows' A registers are 0 (their p are 0 already).
 */
export const kiviPv = (halves: string): string[] => [
  '      const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);',
  "      // The lane's first V code in a word starts byte vb0 = VBITS ((4 r0) % VCPW) / 8; the byte_perm",
  "      // selector puts bytes vb0, vb0 + 1 of key a's word in the low half and key b's in the high one",
  "      // (int2's vb0 3 reads another byte above its 4 codes, and dk_vcode masks it off).",
  '      const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8;',
  '      const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;',
  '#pragma unroll',
  '      for (int kk = 0; kk < NT / 2; ++kk) {',
  "        const int kr0 = kw - t0 + 16 * kk + (lane & 3); // tile row of the lane's key 0; keys +4, +8, +12",
  '        const float p[2][4] = {{s[2 * kk][0], s[2 * kk][1], s[2 * kk + 1][0], s[2 * kk + 1][1]},',
  '                               {s[2 * kk][2], s[2 * kk][3], s[2 * kk + 1][2], s[2 * kk + 1][3]}};',
  "        unsigned zb[2] = {0u, 0u}; // z of group r0 at the lane's keys (t, t + 4), (t + 8, t + 12)",
  '        if (r0 < VG) {',
  '          auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr0 + 4 * i) * VG + r0]; };',
  '          zb[0] = z(0) | (z(1) << 16);',
  '          zb[1] = z(2) | (z(3) << 16);',
  '        }',
  '#pragma unroll',
  '        for (int g = 0; g < VG; ++g) {',
  '          unsigned w[4];',
  '          float sc[4];',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) {',
  '            w[i] = reinterpret_cast<const unsigned*>(vt + (16 * kk + (lane & 3) + 4 * i) * VPB)[g * (32 / VCPW) + 4 * r0 / VCPW];',
  '            const unsigned sw = reinterpret_cast<const unsigned*>(vzs + (kr0 + 4 * i) * VG)[g >> 1]; // VG even',
  '            sc[i] = dec_half_bits((unsigned short)(g & 1 ? sw >> 16 : sw & 0xffffu));',
  '          }',
  '          unsigned pa[4];',
  '#pragma unroll',
  '          for (int h8 = 0; h8 < 2; ++h8) {',
  `            pa[h8] = h8 < ${halves} ? dm_h2(p[h8][0] * sc[0], p[h8][1] * sc[1]) : 0u;`,
  `            pa[h8 + 2] = h8 < ${halves} ? dm_h2(p[h8][2] * sc[2], p[h8][3] * sc[3]) : 0u;`,
  '          }',
  '          dm_mma_h(vb, pa, r0 == g ? zb[0] : 0u, r0 == g ? zb[1] : 0u);',
  "          // Codes 4 r0 % VCPW + nq (channels 32 g + 4 r0 + nq) of keys (a, b) in a word's two halves.",
  '          const unsigned t01 = __byte_perm(w[0], w[1], vsel);',
  '          const unsigned t23 = __byte_perm(w[2], w[3], vsel);',
  '#pragma unroll',
  '          for (int nq = 0; nq < 4; ++nq) dm_mma_h(o[4 * g + nq], pa, dk_vcode(t01, nq), dk_vcode(t23, nq));',
  '        }',
  '      }',
];
