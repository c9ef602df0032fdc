// The recent f16 tokens of a KIVI cache in the tensor-core decode kernel (decode-mma-kivi.ts says
// why they are a tail): after the code tiles, in the splits that reach the window, each warp takes
// MMA_KEYS of them at a time with f16 pairs read from global memory into the fragments.

/**
 * The recent f16 tokens [max(k_begin, qend), k_all) after the code tiles: each warp takes MMA_KEYS
 * of them at a time, f16 pairs read from global memory straight into the B fragments (K in Q's
 * channel order, V in O's). `classify` / `softmax`: decode-mma.ts's lines (t0, t1 in scope).
 */
export function kiviTail(
  field: (key: string) => string,
  classify: readonly string[],
  softmax: readonly string[],
): string[] {
  return [
    '  { // recent f16 tokens: the window rows of the split',
    '    const int r_begin = max(k_begin, qend);',
    `    const unsigned short* rk = a.${field('cache:k_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * D;`,
    `    const unsigned short* rv = a.${field('cache:v_recent')} + ((size_t)b * a.Hkv + hk) * RECENT * DV;`,
    '    for (int kw = r_begin + warp * MMA_KEYS; kw < k_all; kw += MMA_TILE) { // warp-uniform',
    '      const int t0 = r_begin, t1 = k_all;',
    ...classify.map((l) => `  ${l}`),
    '      float s[NT][4];',
    '#pragma unroll',
    '      for (int j = 0; j < NT; ++j) {',
    '        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
    '        const int key = kw + 16 * (j >> 1) + (r0 >> 1) + 4 * (2 * (j & 1) + (r0 & 1));',
    '        const bool ok = key < t1;',
    '        const unsigned short* kr = rk + (size_t)(ok ? key - qend : 0) * D;',
    '#pragma unroll',
    '        for (int ks = 0; ks < D / 16; ++ks) {',
    '          const int c0 = dk_chan(ks, 0), c1 = dk_chan(ks, 1);',
    '          const unsigned b0 = ok ? (unsigned)kr[c0] | ((unsigned)kr[c0 + KPPW] << 16) : 0u;',
    '          const unsigned b1 = ok ? (unsigned)kr[c1] | ((unsigned)kr[c1 + KPPW] << 16) : 0u;',
    '          dm_mma_h(s[j], qf[ks], b0, b1);',
    '        }',
    '#pragma unroll',
    '        for (int e = 0; e < 4; ++e) s[j][e] *= qinv[e >> 1];',
    '      }',
    ...softmax,
    '#pragma unroll',
    '      for (int kk = 0; kk < NT / 2; ++kk) {',
    '        const unsigned pa[4] = {dm_h2(s[2 * kk][0], s[2 * kk][1]), dm_h2(s[2 * kk][2], s[2 * kk][3]),',
    '                                dm_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]), dm_h2(s[2 * kk + 1][2], s[2 * kk + 1][3])};',
    '        const unsigned short* vr[4];',
    '        bool vok[4];',
    '#pragma unroll',
    '        for (int i = 0; i < 4; ++i) {',
    '          const int key = kw + 16 * kk + (lane & 3) + 4 * i;',
    '          vok[i] = key < t1;',
    '          vr[i] = rv + (size_t)(vok[i] ? key - qend : 0) * DV;',
    '        }',
    '#pragma unroll',
    '        for (int n = 0; n < DV / 8; ++n) {',
    '          const int c = 32 * (n >> 2) + 4 * r0 + (n & 3);',
    '          auto h = [&](int i) { return vok[i] ? (unsigned)vr[i][c] : 0u; };',
    '          dm_mma_h(o[n], pa, h(0) | (h(1) << 16), h(2) | (h(3) << 16));',
    '        }',
    '      }',
    '    }',
    '  }',
  ];
}
