// Per-step line builders of the tensor-core split-KV decode kernel (decode-mma.ts) for 16-bit float
// K/V caches, and the pieces every cache kind shares: Q's A fragments, the lane's two rows (head and
// query position for the mask and score functions), S = Q·Kᵀ by ldmatrix, the masks / score
// modifier turning S into base-2 scores, the online softmax, and O += P·V by ldmatrix.trans.
// Kept apart from the kernel assembly: these are the arithmetic of one key tile, which the
// quantized (decode-mma-qtile.ts), KIVI (decode-mma-kivi.ts) and lean (decode-mma-lean.ts) variants
// replace or wrap piece by piece.

/** What decode-elements.ts found of the kernel's mask and score (its device functions are emitted before). */
export interface MmaElements {
  readonly dynamic: boolean;
  readonly staticClass: 1 | 2;
  readonly needMask: boolean;
  readonly identity: boolean;
}

/** Loads Q's A fragments from 16-bit float q (rows of row group rg; padding rows zero). */
export const denseLoadQ: string[] = [
  '  unsigned qf[D / 16][4];',
  '  {',
  '#pragma unroll',
  '    for (int h8 = 0; h8 < 2; ++h8) { // rows r0 (a0, a2) and r0 + 8 (a1, a3)',
  '      const int p = rg * MMA_ROWS + r0 + 8 * h8;',
  '      const bool ok = p < packed;',
  '      const int pp = ok ? p : 0;',
  '      const unsigned short* qs = reinterpret_cast<const unsigned short*>(q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq));',
  '#pragma unroll',
  '      for (int ks = 0; ks < D / 16; ++ks) {',
  '        const int c = ks * 16 + 2 * (lane & 3);',
  '        qf[ks][h8] = ok ? (unsigned)qs[c] | ((unsigned)qs[c + 1] << 16) : 0u;',
  '        qf[ks][h8 + 2] = ok ? (unsigned)qs[c + 8] | ((unsigned)qs[c + 9] << 16) : 0u;',
  '      }',
  '    }',
  '  }',
];

/** S = Q·Kᵀ on the warp's keys (16-bit float K rows by ldmatrix). */
export const denseScores: string[] = [
  '      float s[NT][4];',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
  '#pragma unroll',
  '      for (int ks = 0; ks < D / 16; ++ks)',
  '#pragma unroll',
  '        for (int jj = 0; jj < NT / 2; ++jj) {',
  '          unsigned kb[4]; // keys jj*16 + 0..7 (cols 0-7, 8-15), 8..15 (cols 0-7, 8-15)',
  '          dm_ldsm(kb, kt + (jj * 16 + (lane >> 4) * 8 + (lane & 7)) * KP + ks * 16 + ((lane >> 3) & 1) * 8);',
  '          dm_mma(s[2 * jj], qf[ks], kb[0], kb[1]);',
  '          dm_mma(s[2 * jj + 1], qf[ks], kb[2], kb[3]);',
  '        }',
];

/** The masks / score modifier and the online softmax on S (the key of s[j][e]: KJ). */
export const onlineSoftmax = (
  SCORE: readonly string[],
  KJ: string,
  rescale: readonly string[] = [],
): string[] => [
  '      float mt[2] = {-INFINITY, -INFINITY};',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  `          const int kj = ${KJ};`,
  ...SCORE,
  '          mt[e >> 1] = fmaxf(mt[e >> 1], s[j][e]);',
  '        }',
  '#pragma unroll',
  '      for (int h8 = 0; h8 < 2; ++h8) {',
  '        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 1));',
  '        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 2));',
  '        if (mt[h8] > -INFINITY) {',
  '          const float mn = fmaxf(m[h8], mt[h8]), corr = exp2f(m[h8] - mn);',
  '          l[h8] *= corr;',
  '#pragma unroll',
  '          for (int n = 0; n < DV / 8; ++n) o[n][2 * h8] *= corr, o[n][2 * h8 + 1] *= corr;',
  ...rescale,
  '          m[h8] = mn;',
  '        }',
  '      }',
  '      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e >> 1]);',
  '          l[e >> 1] += s[j][e];',
  '        }',
];

/** O += P·V on the warp's keys (16-bit float V rows by ldmatrix.trans). */
export const densePv: string[] = [
  '#pragma unroll',
  '      for (int kk = 0; kk < NT / 2; ++kk) {',
  "        // P's C fragments of key tiles 2kk, 2kk + 1 are the A fragment of keys kk*16..+15.",
  '        const unsigned pa[4] = {dm_pack(s[2 * kk][0], s[2 * kk][1]), dm_pack(s[2 * kk][2], s[2 * kk][3]),',
  '                                dm_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), dm_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};',
  '#pragma unroll',
  '        for (int nn = 0; nn < DV / 16; ++nn) {',
  '          unsigned vb[4]; // keys 0-7, 8-15 of columns nn*16 + 0..7, then of + 8..15',
  '          dm_ldsm_t(vb, vt + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * VP + nn * 16 + (lane >> 4) * 8);',
  '          dm_mma(o[2 * nn], pa, vb[0], vb[1]);',
  '          dm_mma(o[2 * nn + 1], pa, vb[2], vb[3]);',
  '        }',
  '      }',
];

/**
 * s[j][e] of key kj becomes its base-2 score, or -inf where masked; `h` indexes the lane's query
 * (hr2, qp2, cls2): its row half e >> 1, or its column e & 1 in the key-major kernel.
 */
export function scoreLines(el: MmaElements, h = 'e >> 1'): string[] {
  const allow = ['kj < t1'];
  if (el.needMask)
    allow.push(`cls2[${h}] != 0`, `(cls2[${h}] == 1 || elem_mask(a, b, hr2[${h}], qp2[${h}], kpos))`);
  // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md).
  const score = el.identity
    ? 's[j][e] * sl2'
    : `(isnan(a.scale * s[j][e]) ? a.scale * s[j][e] : elem_score(a, b, hr2[${h}], qp2[${h}], kpos, a.scale * s[j][e])) * LOG2E`;
  return [
    '          [[maybe_unused]] const int kpos = kj + a.k_offset;',
    `          s[j][e] = ${allow.join(' && ')} ? ${score} : -INFINITY;`,
  ];
}

/**
 * The lane's two queries, rows r0 and r0 + 8 (or, `row` given, e.g. the key-major kernel's columns
 * 2t, 2t + 1): head and query position for the mask and score functions.
 */
export const laneQueries = (row = 'r0 + 8 * h8'): string[] => [
  '  [[maybe_unused]] int hr2[2], qp2[2];',
  '#pragma unroll',
  '  for (int h8 = 0; h8 < 2; ++h8) {',
  `    const int p = rg * MMA_ROWS + ${row}, pp = p < packed ? p : 0; // padding rows: discarded`,
  '    hr2[h8] = hk * group + pp / a.Nq;',
  '    qp2[h8] = pp % a.Nq + a.q_offset;',
  '  }',
];

/** Rows r0, r0 + 8 of the lane (the query-major kernel). */
export const laneRows: readonly string[] = laneQueries();

/** Dynamic tile classes: the packed row each thread classifies for the fetch's vote, and the stage bits. */
export const classifiedRows: readonly string[] = [
  '  const int crow = rg * MMA_ROWS + (int)(threadIdx.x % MMA_ROWS); // the row this thread classifies',
  '  const bool crow_ok = crow < packed;',
  '  const int crow_h = hk * group + (crow_ok ? crow : 0) / a.Nq, crow_q = (crow_ok ? crow : 0) % a.Nq + a.q_offset;',
  '  unsigned fetched = 0; // bit s: stage buffer s holds its tile',
];
