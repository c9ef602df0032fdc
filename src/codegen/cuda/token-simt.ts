// The SIMT form of the token attention (token-attn.ts): the same rows, walk, masking and softmax
// as the mma form, with FMA dot products over f32 copies in the warp's shared memory. It serves
// f32 storage and the simt engine, and it is the form the CPU emulator runs in CI. The scores
// keep the mma accumulator layout (thread: rows gq, gq + 8; columns j·8 + 2·t4 + {0, 1}); P goes
// through shared memory for P·V, whose output columns are t4 + 4u.
import type { AttentionKernel } from '../../ir/kernel.js';
import { kvHeadPtrDecls } from './kv-rows.js';
import type { TokenFormParts } from './token-attn.js';
import type { TokenPlan } from './token-form.js';

export function tokenSimtParts(k: AttentionKernel, _plan: TokenPlan): TokenFormParts {
  return {
    helpers: [
      '// Floats of one warp: q rows [16][D], K [TOK_BK][D], V [TOK_BK][DV], P [16][TOK_BK].',
      'constexpr int TOK_WARP_FLOATS = 16 * D + TOK_BK * (D + DV) + 16 * TOK_BK;',
      'constexpr int TOK_OC = (DV + 3) / 4; // output columns per thread: t4 + 4u',
    ],
    smemPerWarp: 'sizeof(float) * TOK_WARP_FLOATS',
    setup: [
      'float* Qs = reinterpret_cast<float*>(tok_smem) + (size_t)warp * TOK_WARP_FLOATS;',
      'float* Ks = Qs + 16 * D;',
      'float* Vs = Ks + TOK_BK * D;',
      'float* Ps = Vs + TOK_BK * DV;',
      ...kvHeadPtrDecls({ k: 'kg', v: 'vg' }, 'b', 'hkv', k.formats.paged !== undefined),
      'for (int c = lane; c < 16 * D; c += 32) {',
      '  const long long R = ((long long)blockIdx.x * TOK_WARPS + warp) * 16 + c / D;',
      '  const int i = R < rows_all ? (int)(R / G) : 0, h = hkv * G + (R < rows_all ? (int)(R % G) : 0);',
      '  const T* qrow = q_row(a, b, h, i);',
      '  Qs[c] = R < rows_all ? to_f32(qrow[c % D]) : 0.f;',
      '}',
      'float o[2][TOK_OC];',
      '#pragma unroll',
      'for (int u = 0; u < TOK_OC; ++u) o[0][u] = o[1][u] = 0.f;',
      '__syncwarp();',
    ],
    stage: [
      'for (int c = lane; c < TOK_BK * D; c += 32)',
      '  Ks[c] = kbase + c / D < a.Nk ? to_f32(kg.row(kbase + c / D)[c % D]) : 0.f;',
      'for (int c = lane; c < TOK_BK * DV; c += 32)',
      '  Vs[c] = kbase + c / DV < a.Nk ? to_f32(vg.row(kbase + c / DV)[c % DV]) : 0.f;',
      '__syncwarp();',
    ],
    scores: [
      '#pragma unroll',
      'for (int j = 0; j < TOK_BK / 8; ++j)',
      '#pragma unroll',
      '  for (int ee = 0; ee < 4; ++ee) {',
      '    const float* qv = Qs + (gq + 8 * (ee >> 1)) * D;',
      '    const float* kv = Ks + (j * 8 + 2 * t4 + (ee & 1)) * D;',
      '    float acc = 0.f;',
      '    for (int d = 0; d < D; ++d) acc = fmaf(qv[d], kv[d], acc);',
      '    s[j][ee] = acc;',
      '  }',
    ],
    rescale: ['#pragma unroll', 'for (int u = 0; u < TOK_OC; ++u) o[rr][u] *= alpha;'],
    accumulate: [
      '#pragma unroll',
      'for (int j = 0; j < TOK_BK / 8; ++j)',
      '#pragma unroll',
      '  for (int ee = 0; ee < 4; ++ee) Ps[(gq + 8 * (ee >> 1)) * TOK_BK + j * 8 + 2 * t4 + (ee & 1)] = s[j][ee];',
      '__syncwarp();',
      '#pragma unroll',
      'for (int rr = 0; rr < 2; ++rr)',
      '#pragma unroll',
      '  for (int u = 0; u < TOK_OC; ++u) {',
      '    const int c = t4 + 4 * u;',
      '    if (c >= DV) continue;',
      '    const float* p = Ps + (gq + 8 * rr) * TOK_BK;',
      '    float acc = o[rr][u];',
      '    for (int key = 0; key < TOK_BK; ++key) acc = fmaf(p[key], Vs[key * DV + c], acc);',
      '    o[rr][u] = acc;',
      '  }',
    ],
    store: [
      '#pragma unroll',
      'for (int u = 0; u < TOK_OC; ++u)',
      '  if (t4 + 4 * u < DV) orow[t4 + 4 * u] = from_f32(o[rr][u] * inv);',
    ],
  };
}
