// Epilogue of the tensor-core split-KV decode kernel (decode-mma.ts): after the last key tile the
// block's warps each hold an online-softmax state (m, l, o) for the same 16 packed rows; they are
// combined through shared memory (reusing the drained stream buffers) into one partial per packed
// row, written in the SIMT split kernel's layout (part_slot) so merge.ts's kernel is shared.
// Kept apart because it is the same for every cache kind (only o's column order differs).

/**
 * The warps' states combined in shared memory into one partial per packed row (part_slot).
 * oColumn: o[n][2 h8 + ee]'s channel where the kernel permutes them (quantized), else n * 8 + 2t + ee.
 */
export const combineWarpStates = (oColumn?: string): string[] => [
  '  dec_wait<0>();',
  '  __syncthreads(); // the stream buffers are free: they hold the combine now',
  '#pragma unroll',
  '  for (int h8 = 0; h8 < 2; ++h8) {',
  '    l[h8] += __shfl_xor_sync(0xffffffffu, l[h8], 1);',
  '    l[h8] += __shfl_xor_sync(0xffffffffu, l[h8], 2);',
  '  }',
  '  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][16] m, then l, then o [WARPS][16][DV]',
  '  float* cl = cm + MMA_WARPS * MMA_ROWS;',
  '  float* co = cl + MMA_WARPS * MMA_ROWS;',
  '#pragma unroll',
  '  for (int h8 = 0; h8 < 2; ++h8) {',
  '    const int r = r0 + 8 * h8;',
  '    if ((lane & 3) == 0) {',
  '      cm[warp * MMA_ROWS + r] = l[h8] != 0.f ? m[h8] : -INFINITY; // l NaN: poisoned, kept',
  '      cl[warp * MMA_ROWS + r] = l[h8];',
  '    }',
  '#pragma unroll',
  ...(oColumn === undefined
    ? [
        '    for (int n = 0; n < DV / 8; ++n) {',
        '      float* dst = co + ((size_t)warp * MMA_ROWS + r) * DV + n * 8 + 2 * (lane & 3);',
        '      dst[0] = o[n][2 * h8];',
        '      dst[1] = o[n][2 * h8 + 1];',
        '    }',
      ]
    : [
        '    for (int n = 0; n < DV / 8; ++n)',
        '#pragma unroll',
        `      for (int ee = 0; ee < 2; ++ee) co[((size_t)warp * MMA_ROWS + r) * DV + ${oColumn}] = o[n][2 * h8 + ee];`,
      ]),
  '  }',
  '  __syncthreads();',
  ...combineRows,
];

/**
 * The block's partials from the warps' states in shared memory (cm, cl, co: m, l and o of each warp
 * and packed row of the block), one per packed row, in part_slot's layout. Shared by the kernels
 * that lay the states out differently in registers (decode-mma-km.ts's key-major one).
 */
export const combineRows: readonly string[] = [
  '  for (int i = threadIdx.x; i < MMA_ROWS * (DV + 2); i += MMA_THREADS) {',
  '    const int r = i / (DV + 2), c = i % (DV + 2), p = rg * MMA_ROWS + r;',
  '    if (p >= packed) continue;',
  '    float M = -INFINITY;',
  '    for (int w = 0; w < MMA_WARPS; ++w) M = fmaxf(M, cm[w * MMA_ROWS + r]);',
  '    float x = 0.f;',
  '    if (c == DV) {',
  '      x = M;',
  '    } else {',
  '      for (int w = 0; w < MMA_WARPS; ++w) {',
  '        const float lw = cl[w * MMA_ROWS + r];',
  '        if (lw == 0.f) continue; // a NaN l carries on',
  '        const float f = exp2f(cm[w * MMA_ROWS + r] - M);',
  '        x += (c < DV ? co[((size_t)w * MMA_ROWS + r) * DV + c] : lw) * f;',
  '      }',
  '    }',
  '    part[part_slot(a, b, hk, p / MT, row_tiles, split, n_splits, p % MT) + c] = x;',
  '  }',
];
