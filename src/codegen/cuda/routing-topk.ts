// Block routing on CUDA, the SIMT top-k (`route_topk`; the pipeline is described in routing.ts):
// one block per (ROUTE_UT query units, selection group, batch). Every affinity of the units goes
// to shared memory (thread per key block, ROUTE_UT dots at once so a pooled key is read once per
// ROUTE_UT units; with `vote`, each voter's softmax-normalized affinities summed), then a warp per
// unit takes the forced blocks and k rounds of argmax in the order (metric desc, id asc) and
// writes the unit's rows of `indices` ascending, padded with -1. `route_candidate` (the static
// mask's verdict on a unit × block) is tested only for a block about to win a round.
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { RankedBlocksPlan } from '../../ir/routing.js';
import { rankedBlocksOf, voterRange } from './routing-case.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { cudaRenderer, type CudaContext } from './rules.js';

export const ROUTE_THREADS = 128;

/** Query units per top-k block: raw query rows share each pooled key read 16 ways. */
export const unitsPerBlock = (r: RankedBlocksPlan): number => (r.source.q === 'raw' ? 16 : 4);

export const routeTopkName = (k: AttentionKernel): string => `attnc_${k.name}_route_topk`;

/** `route_candidate`: whether the static mask allows some (row of the unit, key of block id) pair. */
export function routeCandidateFn(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string[] {
  const mode = classMode(k);
  const sizes = { B: 'a.B', H: 'a.H', Hkv: 'a.Hkv', Nq: 'a.Nq', Nk: 'a.Nk', D: 'D' };
  const render = (roots: readonly Node[], vars: Record<string, string>, prefix: string) =>
    linearize(roots, cudaRenderer({ ...cx, vars: { ...sizes, ...vars } }), prefix);
  const head = [
    '__device__ bool route_candidate(const Args& a, const int b, const int h, const int q_lo, const int q_hi, const int id) {',
    '  const int k_lo = max(id * RB, a.k_offset), k_hi = min(id * RB + RB, a.k_offset + a.Nk) - 1;',
    '  if (k_lo > k_hi) return false;',
    '  (void)b; (void)h;',
  ];
  if (mode === 'full') return [...head, '  return true;', '}'];
  if (mode === 'empty') return [...head, '  return false;', '}'];
  const byClass: string[] = [];
  if (k.tiles.kind === 'dynamic') {
    const tileVars = { b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
    const c = render([k.tiles.canBeTrue, k.tiles.canBeFalse], tileVars, 'c');
    byClass.push(
      ...c.stmts.map((s) => `  ${s}`),
      `  if (!(${c.roots[0]})) return false;`,
      `  if (!(${c.roots[1]})) return true;`,
    );
  }
  const m = render([k.mask], { b: 'b', h: 'h', q: 'q', k: 'kp' }, 'm');
  return [
    ...head,
    ...byClass,
    '  // Partial: look for one allowed pair.',
    '  for (int q = q_lo; q <= q_hi; ++q)',
    '    for (int kp = k_lo; kp <= k_hi; ++kp) {',
    ...m.stmts.map((s) => `      ${s}`),
    `      if (${m.roots[0]}) return true;`,
    '    }',
    '  return false;',
    '}',
  ];
}

/**
 * `dot[u]` = the units' query sides (`qs`) · pooled key j (`pk` rows of the scratch): float4
 * loads when D is a multiple of 4 (rows then stay 16-byte aligned), else scalar ones.
 */
function dotProducts(D: number): string[] {
  const row = 'a.route_scratch + ((size_t)(b * a.Hkv + h / (a.H / a.Hkv)) * route_nk_stride(a) + j) * D';
  const init = [
    '    float dot[ROUTE_UT];',
    '#pragma unroll',
    '    for (int u = 0; u < ROUTE_UT; ++u) dot[u] = 0.f;',
  ];
  if (D % 4 !== 0)
    return [
      `    const float* pk = ${row};`,
      ...init,
      '    for (int d = 0; d < D; ++d) {',
      '      const float kv = pk[d];',
      '#pragma unroll',
      '      for (int u = 0; u < ROUTE_UT; ++u) dot[u] = fmaf(qs[u * D + d], kv, dot[u]);',
      '    }',
    ];
  return [
    `    const float4* pk = reinterpret_cast<const float4*>(${row});`,
    ...init,
    '#pragma unroll 4',
    '    for (int d4 = 0; d4 < D / 4; ++d4) {',
    '      const float4 kv = pk[d4];',
    '#pragma unroll',
    '      for (int u = 0; u < ROUTE_UT; ++u) {',
    '        const float4 qv = reinterpret_cast<const float4*>(qs + u * D)[d4];',
    '        dot[u] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, dot[u]))));',
    '      }',
    '    }',
  ];
}

/** The top-k kernel (see the file comment). */
export function routeTopkKernel(k: AttentionKernel): string[] {
  const over = rankedBlocksOf(k).source.vote;
  const vote = over !== undefined;
  const voters = voterRange(over);
  return [
    `// One block per (ROUTE_UT query units, selection group g, batch b); ${ROUTE_THREADS} threads.`,
    `extern "C" __global__ void __launch_bounds__(${ROUTE_THREADS}) ${routeTopkName(k)}(const Args a) {`,
    '  extern __shared__ float4 route_smem4[];',
    '  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;',
    '  const int g = blockIdx.y, b = blockIdx.z;',
    '  const int U0 = blockIdx.x * ROUTE_UT, nu = min(ROUTE_UT, route_units(a) - U0);',
    '  const int kb0 = route_kb0(a), nkb = route_nkb(a), cap = route_cap(a);',
    "  float* qs = reinterpret_cast<float*>(route_smem4); // [ROUTE_UT][D] the units' query side, one voter",
    '  float* met = qs + ROUTE_UT * D;                   // [ROUTE_UT][nkb] ranking metric, NaN = no candidate',
    ...(vote
      ? ["  float* tmp = met + ROUTE_UT * nkb;                // [ROUTE_UT][nkb] one voter's affinities"]
      : []),
    ...(vote
      ? ["  float* stats = met + ROUTE_UT * nkb * 2; // [ROUTE_UT][2] a voter's softmax (max, sum)"]
      : []),
    ...UNIT_ROWS,
    ...(vote
      ? [
          '  for (int i = tid; i < ROUTE_UT * nkb; i += blockDim.x) met[i] = NAN;',
          `  for (int h = ${voters[0]}; h < ${voters[1]}; ++h) {`,
          ...affinities(k, 'tmp').map((l) => `  ${l}`),
          ...VOTE_STEPS.map((l) => `  ${l}`),
          '  }',
        ]
      : ['  {', `    const int h = ${voters[0]};`, ...affinities(k, 'met').map((l) => `  ${l}`), '  }']),
    '  __syncthreads();',
    ...SELECTION,
    '}',
  ];
}

/** Affinities of voter h for every (unit, block) into `dst`: NaN marks a non-candidate. */
function affinities(k: AttentionKernel, dst: string): string[] {
  const q = rankedBlocksOf(k).source.q;
  const qRow =
    q === 'raw'
      ? 'q_row(a, b, h, r_lo[u])'
      : 'a.route_scratch + route_q_base(a) + ((size_t)(b * a.H + h) * route_nq_stride(a) + (U0 + u)) * D';
  const qLoad = q === 'raw' ? 'to_f32(src[d])' : 'src[d]';
  return [
    "  __syncthreads(); // qs and the previous voter's arrays are free",
    '  for (int i = tid; i < ROUTE_UT * D; i += blockDim.x) {',
    '    const int u = i / D, d = i % D;',
    '    float x = 0.f;',
    '    if (u < nu) {',
    `      const auto* src = ${qRow};`,
    `      x = ${qLoad};`,
    '    }',
    '    qs[i] = x;',
    '  }',
    '  __syncthreads();',
    '  for (int j = tid; j < nkb; j += blockDim.x) {',
    '    const int id = kb0 + j;',
    ...dotProducts(k.schedule.headDim),
    '#pragma unroll',
    '    for (int u = 0; u < ROUTE_UT; ++u) {',
    '      if (u >= nu) break;',
    '      float m = a.scale * dot[u];',
    '      if (isnan(m)) m = -INFINITY; // NaN ranks as -inf',
    `      ${dst}[u * nkb + j] = route_candidate(a, b, h, q_lo[u], q_hi[u], id) ? m : NAN;`,
    '    }',
    '  }',
    '  __syncthreads();',
  ];
}

// The vote of one voter: its softmax over its candidates, added into each unit's metric.
const VOTE_STEPS = [
  '  for (int u = warp; u < nu; u += nwarps) {',
  "    // This voter's softmax over its candidates: max, then sum of exp.",
  '    float mx = -INFINITY;',
  '    for (int j = lane; j < nkb; j += 32) { const float x = tmp[u * nkb + j]; if (!isnan(x)) mx = fmaxf(mx, x); }',
  '    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));',
  '    float z = 0.f;',
  '    if (mx > -INFINITY)',
  '      for (int j = lane; j < nkb; j += 32) { const float x = tmp[u * nkb + j]; if (!isnan(x)) z += expf(x - mx); }',
  '    for (int o = 16; o > 0; o >>= 1) z += __shfl_xor_sync(0xffffffffu, z, o);',
  '    if (lane == 0) { stats[2 * u] = mx; stats[2 * u + 1] = z; }',
  '  }',
  '  __syncthreads();',
  '  for (int i = tid; i < nu * nkb; i += blockDim.x) {',
  '    const float x = tmp[i];',
  '    if (isnan(x)) continue; // not a candidate for this voter',
  '    const float mx = stats[2 * (i / nkb)], z = stats[2 * (i / nkb) + 1];',
  '    const float v = mx > -INFINITY ? expf(x - mx) / z : 0.f; // no finite affinity: no vote',
  '    met[i] = (isnan(met[i]) ? 0.f : met[i]) + v;',
  '  }',
];

// Each unit's rows [r_lo, r_hi), positions q_lo..q_hi and own block: a row, or a pooled block of rows.
const UNIT_ROWS = [
  '  // Rows [r_lo, r_hi) of each unit, its positions q_lo..q_hi and its own block.',
  '  int r_lo[ROUTE_UT], r_hi[ROUTE_UT], q_lo[ROUTE_UT], q_hi[ROUTE_UT], own[ROUTE_UT];',
  '#pragma unroll',
  '  for (int u = 0; u < ROUTE_UT; ++u) {',
  '    if (ROUTE_POOLED_Q) {',
  '      const int id = route_floor_div(a.q_offset, RB) + U0 + u;',
  '      r_lo[u] = max(id * RB, a.q_offset) - a.q_offset;',
  '      r_hi[u] = min(id * RB + RB, a.q_offset + a.Nq) - a.q_offset;',
  '      own[u] = id;',
  '    } else {',
  '      r_lo[u] = U0 + u;',
  '      r_hi[u] = U0 + u + 1;',
  '      own[u] = route_floor_div(U0 + u + a.q_offset, RB);',
  '    }',
  '    q_lo[u] = r_lo[u] + a.q_offset;',
  '    q_hi[u] = r_hi[u] - 1 + a.q_offset;',
  '  }',
];

// Per unit, a warp: the forced blocks, then k rounds of argmax, sorted ascending and padded with -1.
const SELECTION = [
  '  const long long c_first = route_count(a, 1), c_local = route_count(a, 2);',
  '  int c_top = (int)route_count(a, 0);',
  '  for (int u = warp; u < nu; u += nwarps) {',
  '    float* mu = met + u * nkb;',
  '    int* out = a.indices + ((size_t)(b * route_groups(a) + g) * a.Nq + r_lo[u]) * cap;',
  '    int n = 0;',
  '    // Forced blocks that are candidates, ascending; then out of the ranking.',
  '    for (int j0 = 0; j0 < nkb; j0 += 32) {',
  '      const int j = j0 + lane, id = kb0 + j;',
  '      const bool forced = j < nkb && (id < c_first || (id > own[u] - c_local && id <= own[u]));',
  '      const bool take = forced && !isnan(mu[j]);',
  '      const unsigned bits = __ballot_sync(0xffffffffu, take);',
  '      if (take) out[n + __popc(bits & ((1u << lane) - 1u))] = id;',
  '      if (forced) mu[j] = NAN;',
  '      n += __popc(bits);',
  '    }',
  '    __syncwarp();',
  '    // Ranked blocks: k rounds of argmax in the order (metric desc, id asc).',
  '    for (int round = 0; round < c_top; ++round) {',
  '      float bm = 0.f;',
  '      int bj = -1;',
  '      for (int j = lane; j < nkb; j += 32) {',
  '        const float x = mu[j];',
  '        if (isnan(x)) continue;',
  '        if (bj < 0 || x > bm) { bm = x; bj = j; } // j ascends: a tie keeps the lower id',
  '      }',
  '      for (int o = 16; o > 0; o >>= 1) {',
  '        const float om = __shfl_xor_sync(0xffffffffu, bm, o);',
  '        const int oj = __shfl_xor_sync(0xffffffffu, bj, o);',
  '        if (oj >= 0 && (bj < 0 || om > bm || (om == bm && oj < bj))) { bm = om; bj = oj; }',
  '      }',
  '      if (bj < 0) break; // no candidate left',
  '      // Lane j % 32 alone reads mu[j]: it clears the taken entry, so no lane writes shared memory',
  "      // another lane reads (racecheck's 280 hazards: lane 0 cleared it, ordered only by shuffles).",
  '      if (lane == 0) out[n] = kb0 + bj;',
  '      if (lane == (bj & 31)) mu[bj] = NAN;',
  '      ++n;',
  '      __syncwarp();',
  '    }',
  '    // Ascending order (insertion sort of at most cap ids), then -1 padding.',
  '    if (lane == 0) {',
  '      for (int i = 1; i < n; ++i) {',
  '        const int x = out[i];',
  '        int j = i;',
  '        for (; j > 0 && out[j - 1] > x; --j) out[j] = out[j - 1];',
  '        out[j] = x;',
  '      }',
  '    }',
  '    __syncwarp();',
  '    for (int i = n + lane; i < cap; i += 32) out[i] = -1;',
  '    __syncwarp();',
  '    // The other rows of the unit share the selection.',
  '    for (int i = lane; i < (r_hi[u] - r_lo[u] - 1) * cap; i += 32) out[cap + i] = out[i % cap];',
  '  }',
];
