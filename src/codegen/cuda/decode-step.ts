// The SIMT split kernel's step on one key tile (decode.ts): each lane group's KPG keys scored (the
// 8 lanes' dot products reduced by three xor-shuffles, then the mask and score modifier), the
// online softmax (base 2) per packed row, and p·v into the lane's accumulators. Kept apart from
// decode.ts, which lays out the kernel around it, as decode-mma-step.ts is from decode-mma.ts.
import type { AttentionKernel } from '../../ir/kernel.js';
import { chunkElem, chunkType } from './decode-loads.js';
import { isQuantChunk } from './decode-quant.js';
import { K_ROWS, V_ROWS } from './kv-rows.js';

/**
 * The lines of one tile (t0, t1, g, lane, qx, cls, m, l, acc in scope) given the chunk loads of
 * K and V (decode-pipe.ts's pipelinedLoop calls it). `needMask`: a per-element mask on partial
 * tiles; `identity`: no score modifier.
 */
export function simtTile(
  k: AttentionKernel,
  needMask: boolean,
  identity: boolean,
): (load: { k: string; v: string }) => string[] {
  // A float cache's V vectors are read with the K vectors (a round trip per tile, not two); a
  // quantized cache's V chunks, f32 after dequantizing, are read just before p·v, one key at a time
  // (16 f32 registers per key held instead of KPG · 16).
  const lateV = isQuantChunk(k.formats.v);
  const vDecl = `${chunkType(k, V_ROWS)} vx[KPG][CV];`;
  const vLoad = (load: string): string[] => [
    '#pragma unroll',
    '      for (int c = 0; c < CV; ++c)',
    `        vx[i][c] = ${load};`,
  ];
  return (load: { k: string; v: string }): string[] => [
    '    float sc[KPG][MT];',
    ...(lateV
      ? []
      : [
          '    // V rows are requested with the K rows (one memory round trip per tile, not two).',
          `    ${vDecl}`,
          '#pragma unroll',
          '    for (int i = 0; i < KPG; ++i) {',
          '      const int kj = t0 + g + GROUPS * i;',
          ...vLoad(load.v),
          '    }',
        ]),
    ...tileScores(k, needMask, identity, load.k),
    ...ROW_RESCALE,
    ...(lateV ? [`    ${vDecl}`] : []),
    '#pragma unroll',
    '    for (int i = 0; i < KPG; ++i) {',
    ...(lateV ? ['      const int kj = t0 + g + GROUPS * i;', ...vLoad(load.v)] : []),
    ...accumulatePv(k),
    '    }',
  ];
}

/** sc[i][r]: the scores (base 2, -inf where disallowed) of the lane group's keys for each row. */
function tileScores(k: AttentionKernel, needMask: boolean, identity: boolean, loadK: string): string[] {
  // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md).
  const scoreExpr = identity ? 'x' : '(isnan(x) ? x : elem_score(a, b, hr[r], qp[r], kpos, x))';
  const allowExpr = needMask
    ? 'valid && cls[r] != 0 && (cls[r] == 1 || elem_mask(a, b, hr[r], qp[r], kpos))'
    : 'valid && cls[r] != 0';
  return [
    '#pragma unroll',
    '    for (int i = 0; i < KPG; ++i) {',
    '      const int kj = t0 + g + GROUPS * i;',
    '      const bool valid = kj < t1;',
    `      ${chunkType(k, K_ROWS)} kx[CD];`,
    '#pragma unroll',
    '      for (int c = 0; c < CD; ++c)',
    `        kx[c] = ${loadK};`,
    '      [[maybe_unused]] const int kpos = kj + a.k_offset;',
    '#pragma unroll',
    '      for (int r = 0; r < MT; ++r) {',
    '        float dot = 0.f;',
    '#pragma unroll',
    '        for (int c = 0; c < CD; ++c)',
    '#pragma unroll',
    `          for (int e = 0; e < VW; ++e) dot = fmaf(to_f32(qx[r][c].v[e]), ${chunkElem(k, K_ROWS, 'kx[c]')}, dot);`,
    '        dot += __shfl_xor_sync(0xffffffffu, dot, 1);',
    '        dot += __shfl_xor_sync(0xffffffffu, dot, 2);',
    '        dot += __shfl_xor_sync(0xffffffffu, dot, 4);',
    '        const float x = a.scale * dot;',
    `        const bool ok = ${allowExpr};`,
    `        sc[i][r] = ok ? ${scoreExpr} * LOG2E : -INFINITY;`,
    '      }',
    '    }',
  ];
}

// Per row, the tile's max: where it raises the running max m, l and acc are rescaled to it.
const ROW_RESCALE = [
  '#pragma unroll',
  '    for (int r = 0; r < MT; ++r) {',
  '      float mt = sc[0][r];',
  '#pragma unroll',
  '      for (int i = 1; i < KPG; ++i) mt = fmaxf(mt, sc[i][r]);',
  '      if (mt > -INFINITY) {',
  '        const float mn = fmaxf(m[r], mt), corr = exp2f(m[r] - mn);',
  '        l[r] *= corr;',
  '#pragma unroll',
  '        for (int c = 0; c < CV; ++c)',
  '#pragma unroll',
  '          for (int e = 0; e < VW; ++e) acc[r][c][e] *= corr;',
  '        m[r] = mn;',
  '      }',
  '    }',
];

/** Key i's p = 2^(sc - m) per row, into l and, times its v row, into acc (inside the key loop). */
function accumulatePv(k: AttentionKernel): string[] {
  return [
    '#pragma unroll',
    '      for (int r = 0; r < MT; ++r) {',
    '        // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN (NaN - m, inf - inf), which',
    '        // makes l NaN: the row comes out NaN (docs/LANGUAGE.md "Non-finite values").',
    '        const float p = sc[i][r] == -INFINITY ? 0.f : exp2f(sc[i][r] - m[r]);',
    '        l[r] += p;',
    '#pragma unroll',
    '        for (int c = 0; c < CV; ++c)',
    '#pragma unroll',
    `          for (int e = 0; e < VW; ++e) acc[r][c][e] = fmaf(p, ${chunkElem(k, V_ROWS, 'vx[i][c]')}, acc[r][c][e]);`,
    '      }',
  ];
}
