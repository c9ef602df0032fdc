// Read-K-once vote statistics for decoding (few rows, many keys): sel_vote_kv replaces
// sel_vote_stats when the launcher's sel_wide(a) holds and the round keeps its affinities
// (sel_keep_aff), so sel_score turns the kept affinities into votes without reading K again.
// sel_vote_stats gives a block one key span and ALL the group's voters, so it walks the group's
// kv heads one after another with 2 block reductions per voter; at 128K keys that is 512 blocks
// that each read 8 kv heads' keys serially (0.24 ms on an H200, K itself is ~0.065 ms). Here a
// block is (key span, kv head of the group): 8× the blocks, each reads its span of ONE kv head
// once — every 16-byte load of the row issued before the FMAs — scores all voters of that head
// per loaded key, and reduces their (max, Σ exp) together (2 barriers per SEL_VPC voters). It
// writes exactly what sel_vote_stats writes (the per-span statistics and the kept affinities,
// same reduction order), so sel_score and the top-k are unchanged.
import type { AttentionKernel } from '../../ir/kernel.js';
import { pooledSides, routingVote } from '../../ir/routing.js';
import { selName } from './select.js';
import { selDequantizes } from './select-kv.js';
import { wideTopk } from './select-wide.js';

/** Whether the plan gets sel_vote_kv: a voting token ranking over raw, unpaged keys. */
export function voteKv(k: AttentionKernel): boolean {
  const r = k.routing!;
  return (
    wideTopk(r) &&
    routingVote(r) !== undefined &&
    !pooledSides(r).k &&
    !selDequantizes(k.formats.k) &&
    k.formats.paged === undefined
  );
}

/** The key loads and dot products of one batch of up to SEL_VPC voters (`xs[u]` per voter). */
function dots(wideLoads: boolean): string[] {
  const scalar = [
    '      for (int d = 0; d < D; ++d) {',
    '        const float kx = to_f32(kr[d]);',
    '#pragma unroll',
    '        for (int u = 0; u < SEL_VPC; ++u)',
    '          if (u < nu) xs[u] = fmaf(qs[(v0 + u) * D + d], kx, xs[u]);',
    '      }',
  ];
  if (!wideLoads) return scalar;
  return [
    '      if constexpr (D % 8 == 0) {',
    '        // Up to 16 loads of 16 bytes in flight per thread before the first FMA.',
    // D < 8 makes NV 0 and this branch dead, but nvcc still rejects a zero-sized k8 in it
    // (a discarded if-constexpr branch outside a template is checked): CH is at least 1.
    '        constexpr int NV = D / 8, CH = NV < 1 ? 1 : NV < 16 ? NV : 16;',
    '        for (int c0 = 0; c0 < NV; c0 += CH) {',
    '          VecT<8> k8[CH];',
    '#pragma unroll',
    '          for (int c = 0; c < CH; ++c)',
    '            if (c0 + c < NV) k8[c] = *reinterpret_cast<const VecT<8>*>(kr + (c0 + c) * 8);',
    '#pragma unroll',
    '          for (int c = 0; c < CH; ++c) {',
    '            if (c0 + c >= NV) break;',
    '            const int d = (c0 + c) * 8;',
    ...keyRowFma8('k8[c]', '            '),
    '          }',
    '        }',
    '      } else {',
    ...scalar.map((l) => `  ${l}`),
    '      }',
  ];
}

/**
 * One 8-channel chunk `k8` of a key row (channels d..d+7) into the scores xs[u] of the (up to
 * SEL_VPC) voters u < nu, whose q rows sit in shared memory (qs); `pad` indents it.
 */
export const keyRowFma8 = (k8: string, pad: string): string[] => [
  `${pad}float kf[8];`,
  `#pragma unroll`,
  `${pad}for (int e = 0; e < 8; ++e) kf[e] = to_f32(${k8}.v[e]);`,
  `#pragma unroll`,
  `${pad}for (int u = 0; u < SEL_VPC; ++u)`,
  `${pad}  if (u < nu) {`,
  `${pad}    const float4 q0 = *reinterpret_cast<const float4*>(qs + (v0 + u) * D + d);`,
  `${pad}    const float4 q1 = *reinterpret_cast<const float4*>(qs + (v0 + u) * D + d + 4);`,
  `${pad}    xs[u] = fmaf(q0.x, kf[0], fmaf(q0.y, kf[1], fmaf(q0.z, kf[2], fmaf(q0.w, kf[3], xs[u]))));`,
  `${pad}    xs[u] = fmaf(q1.x, kf[4], fmaf(q1.y, kf[5], fmaf(q1.z, kf[6], fmaf(q1.w, kf[7], xs[u]))));`,
  `${pad}  }`,
];

/** sel_vote_kv: block (row li, span, part) = blockIdx.x, group g, batch b. */
function voteKvKernel(k: AttentionKernel): string[] {
  const wideLoads = k.formats.k.dtype !== 'f32';
  return [
    `extern "C" __global__ void __launch_bounds__(SEL_SPAN) ${selName(k, 'vote_kv')}(const Args a) {`,
    ...VOTE_SETUP,
    '  for (int v0 = 0; v0 < vhi - vlo; v0 += SEL_VPC) {',
    '    const int nu = min(SEL_VPC, vhi - vlo - v0);',
    '    float xs[SEL_VPC];',
    '    bool cs[SEL_VPC], anyc = false;',
    '#pragma unroll',
    '    for (int u = 0; u < SEL_VPC; ++u) {',
    '      cs[u] = u < nu && slot && sel_candidate(a, b, vlo + v0 + u, i, i1, j, j1);',
    '      xs[u] = 0.f;',
    '      anyc = anyc || cs[u];',
    '    }',
    '    if (anyc) {',
    ...dots(wideLoads),
    '    }',
    ...VOTER_STATISTICS,
    ...VOTE_STORE,
    '    __syncthreads(); // red is reused by the next voters',
    '  }',
    '}',
  ];
}

// The block's query row, key span and voter part; its voters' q rows staged; this thread's key.
const VOTE_SETUP = [
  '  extern __shared__ float4 smem4[];',
  "  float* qs = reinterpret_cast<float*>(smem4); // [this part's voters][D]",
  '  __shared__ float red[2][SEL_VPC][SEL_SPAN / 32]; // per warp: max, then Σ exp',
  '  const int nspan = sel_nspan(a), parts = sel_vparts(a), tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;',
  '  const int part = blockIdx.x % parts, bs = blockIdx.x / parts;',
  '  const int rows = sel_rows(a), li = bs / nspan, span = bs % nspan;',
  '  const int i = a.sel_row0 + li, g = blockIdx.y, b = blockIdx.z;',
  '  if (i >= a.Nq || !sel_unit_starts(a, i)) return; // a whole block',
  '  const int i1 = sel_unit_end(a, i), nv = sel_voters(a), h0 = sel_voter0(a, g);',
  '  // This part: the voters of the group that share kv head kvh.',
  '  const int per = a.H / a.Hkv, kvh = h0 / per + part;',
  '  const int vlo = max(h0, kvh * per), vhi = min(h0 + nv, (kvh + 1) * per);',
  '  if (vlo >= vhi) return; // a whole block',
  '  for (int t = tid; t < (vhi - vlo) * D; t += blockDim.x)',
  '    qs[t] = to_f32(q_row(a, b, vlo + t / D, i)[t % D]);',
  '  __syncthreads();',
  '  const int j = span * SEL_SPAN + tid;',
  '  const bool slot = j < a.Nk && sel_starts(a, a.k_offset, j);',
  '  const int j1 = slot ? sel_end(a, a.k_offset, a.Nk, j) : j;',
  '  const T* kr = static_cast<const T*>(a.k) + ((size_t)(b * a.Hkv + kvh) * a.Nk + (j < a.Nk ? j : 0)) * D;',
];

// Per voter of the chunk: the key's affinity, then the block max and the per-warp Σ exp.
const VOTER_STATISTICS = [
  '    // Affinities (NaN: no candidate; NaN scores rank as -inf), then per-warp max.',
  '#pragma unroll',
  '    for (int u = 0; u < SEL_VPC; ++u) {',
  '      if (u >= nu) break; // block-uniform',
  '      float x = NAN;',
  '      if (cs[u]) {',
  '        x = a.scale * xs[u];',
  '        if (isnan(x)) x = -INFINITY;',
  '      }',
  '      xs[u] = x;',
  '      float m = cs[u] ? x : -INFINITY;',
  '      for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));',
  '      if (lane == 0) red[0][u][warp] = m;',
  '    }',
  '    __syncthreads();',
  '    // The block max per voter (warps in order), then per-warp Σ exp, as sel_block_max/sum.',
  '#pragma unroll',
  '    for (int u = 0; u < SEL_VPC; ++u) {',
  '      if (u >= nu) break;',
  '      float mx = -INFINITY;',
  '      for (int w = 0; w < SEL_SPAN / 32; ++w) mx = fmaxf(mx, red[0][u][w]);',
  '      float z = cs[u] && mx > -INFINITY ? expf(xs[u] - mx) : 0.f;',
  '      for (int o = 16; o > 0; o >>= 1) z += __shfl_xor_sync(0xffffffffu, z, o);',
  '      if (lane == 0) red[1][u][warp] = z;',
  '    }',
  '    __syncthreads();',
];

// Per voter: the span's (max, Σ exp) and each key's affinity into the route scratch.
const VOTE_STORE = [
  '    const size_t vrow = (size_t)(b * a.H + vlo + v0) * rows + li; // voter vlo + v0 + u: + u * rows',
  '#pragma unroll',
  '    for (int u = 0; u < SEL_VPC; ++u) {',
  '      if (u >= nu) break;',
  '      if (tid == 0) {',
  '        float mx = -INFINITY, z = 0.f;',
  '        for (int w = 0; w < SEL_SPAN / 32; ++w) mx = fmaxf(mx, red[0][u][w]);',
  '        for (int w = 0; w < SEL_SPAN / 32; ++w) z += red[1][u][w];',
  '        float* vst = a.route_scratch + sel_vst_off(a) + ((vrow + (size_t)u * rows) * nspan + span) * 2;',
  '        vst[0] = mx;',
  '        vst[1] = z;',
  '      }',
  '      if (j < a.Nk) a.route_scratch[sel_aff_off(a) + (vrow + (size_t)u * rows) * a.Nk + j] = xs[u];',
  '    }',
];

/** Helpers and device code of sel_vote_kv (select-score.ts emits them for plans voteKv accepts). */
export function voteKvCode(k: AttentionKernel): string[] {
  if (!voteKv(k)) return [];
  const HD = '__host__ __device__ __forceinline__';
  return [
    '',
    '// sel_vote_kv blocks per (row, span): the kv heads the group`s voters use.',
    `${HD} int sel_vparts(const Args& a) {`,
    '  const int per = a.H / a.Hkv, nv = sel_voters(a);',
    '  return nv == 1 ? 1 : (nv + per - 1) / per;',
    '}',
    ...voteKvKernel(k),
  ];
}
