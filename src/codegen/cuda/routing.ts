// Block routing on CUDA (ir/routing.ts RoutingPlan; semantics in docs/LANGUAGE.md "Pooling,
// routing and selection", oracle runtime/reference-routing.ts). The launcher runs, before the
// attention kernel:
//   route_pool_k  one block per (key block present in the call, kv head, batch): the pooled keys,
//                 f32, into the caller's `route_scratch` ([B, Hkv, cdiv(Nk, n) + 1, D]);
//   route_pool_q  the same for query blocks (pooled query sides only), after the pooled keys;
//   route_topk    one block per (UT query units, selection group, batch): every affinity of the
//                 units into shared memory (thread per key block, UT dots at once so a pooled key
//                 is read once per UT units), then a warp per unit takes forced blocks and k
//                 rounds of argmax — order (metric desc, id asc), so ties go to the lower id —
//                 and writes the unit's rows of `indices` ascending, padded with -1.
// The attention (routing-attn.ts) then visits only the key tiles some row of its q-tile selected.
import { show, type Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { Op } from '../../ir/ops.js';
import { capacityShapeExpr, routingGroups, type RoutingPlan } from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import type { CudaLayout } from './layout.js';
import { ARGS, cudaRenderer, type CudaContext } from './rules.js';
import {
  hasTensorTopk,
  tensorTopkDeviceCode,
  tensorTopkEntry,
  tensorTopkHostLaunch,
} from './routing-topk-mma.js';

export const ROUTE_THREADS = 128;

/** Query units per top-k block: raw query rows share each pooled key read 16 ways. */
const unitsPerBlock = (r: RoutingPlan): number => (r.q === 'raw' ? 16 : 4);

export const routePoolName = (k: AttentionKernel, side: 'k' | 'q'): string =>
  `attnc_${k.name}_route_pool_${side}`;
export const routeTopkName = (k: AttentionKernel): string => `attnc_${k.name}_route_topk`;
export const routeScratchElemsName = (k: AttentionKernel): string => `attnc_${k.name}_route_scratch_elems`;

/** Why this backend cannot run `k`'s routing (undefined when it can). */
export function cudaRoutingProblem(k: AttentionKernel): string | undefined {
  const r = k.routing;
  if (!r) return undefined;
  if (r.unit === 'tokens' || r.from || r.restrict === false)
    return 'CUDA backend: only `route blocks(n) topk(k) by …` routing is supported (not select, emit or from)';
  const engine = k.schedule.engine ?? 'simt';
  if (engine !== 'simt' && engine !== 'mma' && engine !== 'wgmma')
    return `CUDA backend: block routing runs on the simt, mma and wgmma engines, not ${engine}`;
  // The attention keeps, per row and k-tile, a 32-bit mask of the routing blocks the tile touches.
  const span = Math.floor((k.schedule.blockK - 1) / r.blockSize) + 2;
  if (span > 32)
    return `CUDA backend: routing blocks(${r.blockSize}) are too small for ${k.schedule.blockK}-key tiles (a tile may touch at most 32 blocks; use blocks of at least ${Math.ceil(k.schedule.blockK / 30)} or a smaller blockK)`;
  if (capacityShapeExpr(r) === undefined)
    return 'CUDA backend: routing counts must be + - * of literals, params and sizes';
  return undefined;
}

/** A count (k, first or local) as C over the args struct, in 64-bit (host and device). */
export function countC(n: Node, layout: CudaLayout): string {
  if (n.op === Op.CONST) return `${Number(n.arg)}LL`;
  if (n.op === Op.PARAM) return `(long long)${ARGS}.${layout.field(`param:${String(n.arg)}`)}`;
  if (n.op === Op.VAR) return String(n.arg) === 'D' ? '(long long)D' : `(long long)${ARGS}.${String(n.arg)}`;
  const sym = n.op === Op.ADD ? '+' : n.op === Op.SUB ? '-' : n.op === Op.MUL ? '*' : undefined;
  if (sym === undefined || n.src.length !== 2) throw new Error(`CUDA: routing count ${show(n)} is not + - *`);
  return `(${countC(n.src[0]!, layout)} ${sym} ${countC(n.src[1]!, layout)})`;
}

/** Pooling reducers as C (fold over rows `p` of a block or chunk of `len` rows); select.ts too. */
export const reducers: Readonly<Record<RoutingPlan['k'], { init: string; fold: string; finish: string }>> = {
  mean: { init: '0.f', fold: 'acc += x', finish: 'acc / (float)len' },
  // DHSA's length normalisation: mean · sqrt(len).
  lnmean: { init: '0.f', fold: 'acc += x', finish: 'acc * (sqrtf((float)len) / (float)len)' },
  max: { init: '-INFINITY', fold: 'acc = fmaxf(acc, x)', finish: 'acc' },
  first: { init: '0.f', fold: 'if (p == 0) acc = x', finish: 'acc' },
};

function poolKernel(k: AttentionKernel, side: 'k' | 'q'): string[] {
  const r = k.routing!;
  const red = reducers[side === 'k' ? r.k : (r.q as RoutingPlan['k'])];
  const [N, off, heads, src, nb, base] =
    side === 'k'
      ? ['a.Nk', 'a.k_offset', 'a.Hkv', 'a.k', 'route_nk_stride(a)', '0']
      : ['a.Nq', 'a.q_offset', 'a.H', 'a.q', 'route_nq_stride(a)', 'route_q_base(a)'];
  return [
    `// Pools the ${side === 'k' ? 'keys' : 'queries'} of block id0 + blockIdx.x (its rows present in the call), per head.`,
    `extern "C" __global__ void __launch_bounds__(${ROUTE_THREADS}) ${routePoolName(k, side)}(const Args a) {`,
    `  const int id = route_floor_div(${off}, RB) + (int)blockIdx.x;`,
    `  const int p_lo = max(id * RB, ${off}), p_hi = min(id * RB + RB, ${off} + ${N});`,
    '  const int len = p_hi - p_lo;',
    '  if (len <= 0) return;',
    `  const size_t bh = (size_t)blockIdx.z * ${heads} + blockIdx.y;`,
    `  const T* rows = static_cast<const T*>(${src}) + (bh * ${N} + (p_lo - ${off})) * D;`,
    `  float* dst = a.route_scratch + ${base} + (bh * ${nb} + blockIdx.x) * D;`,
    `  for (int d = threadIdx.x; d < D; d += ${ROUTE_THREADS}) {`,
    `    float acc = ${red.init};`,
    '    for (int p = 0; p < len; ++p) {',
    '      const float x = to_f32(rows[(size_t)p * D + d]);',
    `      ${red.fold};`,
    '    }',
    `    dst[d] = ${red.finish};`,
    '  }',
    '}',
  ];
}

/** `route_candidate`: whether the static mask allows some (row of the unit, key of block id) pair. */
function candidateFn(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string[] {
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

/** Shared helpers: constants, counts, groups and scratch offsets (host and device). */
function helpers(k: AttentionKernel, layout: CudaLayout): string[] {
  const r = k.routing!;
  const HD = '__host__ __device__ __forceinline__';
  const groups = { H: 'a.H', Hkv: 'a.Hkv', '1': '1' }[routingGroups(r)];
  const groupOf = r.vote === 'heads' ? '0' : r.vote === 'groups' ? 'h / (a.H / a.Hkv)' : 'h';
  return [
    `constexpr int RB = ${r.blockSize}; // routing block size: key position p is in block floor(p / RB)`,
    `constexpr int ROUTE_UT = ${unitsPerBlock(r)}; // query units per top-k block`,
    `constexpr bool ROUTE_POOLED_Q = ${r.q !== 'raw'};`,
    `${HD} int route_floor_div(int x, int y) {`,
    '  const int t = x / y;',
    '  return (t * y != x && ((x < 0) != (y < 0))) ? t - 1 : t;',
    '}',
    '// The counts k, first, local (64-bit: the launcher checks they are in [0, INT_MAX)).',
    `${HD} long long route_count(const Args& a, const int which) {`,
    `  return which == 0 ? ${countC(r.topk, layout)} : which == 1 ? ${countC(r.first, layout)} : ${countC(r.local, layout)};`,
    '}',
    `${HD} int route_cap(const Args& a) { return (int)(route_count(a, 0) + route_count(a, 1) + route_count(a, 2)); }`,
    `// G of indices [B, G, Nq, K], and the selection group a query head reads.`,
    `${HD} int route_groups(const Args& a) { (void)a; return ${groups}; }`,
    `${HD} int route_group(const Args& a, const int h) { (void)a; (void)h; return ${groupOf}; }`,
    '// Scratch strides: cdiv(N, RB) + 1 bounds the blocks a call of N positions touches.',
    `${HD} int route_nk_stride(const Args& a) { return (a.Nk + RB - 1) / RB + 1; }`,
    `${HD} int route_nq_stride(const Args& a) { return (a.Nq + RB - 1) / RB + 1; }`,
    `${HD} size_t route_q_base(const Args& a) { return (size_t)a.B * a.Hkv * route_nk_stride(a) * D; }`,
    `${HD} size_t route_scratch_size(const Args& a) {`,
    `  return route_q_base(a)${r.q === 'raw' ? '' : ' + (size_t)a.B * a.H * route_nq_stride(a) * D'};`,
    '}',
    '// Key blocks of the call: kb0 .. kb0 + nkb - 1; query units: blocks (pooled) or rows (raw).',
    `${HD} int route_kb0(const Args& a) { return route_floor_div(a.k_offset, RB); }`,
    `${HD} int route_nkb(const Args& a) { return a.Nk > 0 ? route_floor_div(a.k_offset + a.Nk - 1, RB) - route_kb0(a) + 1 : 0; }`,
    `${HD} int route_units(const Args& a) {`,
    '  if (!ROUTE_POOLED_Q) return a.Nq;',
    '  return a.Nq > 0 ? route_floor_div(a.q_offset + a.Nq - 1, RB) - route_floor_div(a.q_offset, RB) + 1 : 0;',
    '}',
    `${HD} size_t route_topk_smem(const Args& a) {`,
    `  return sizeof(float) * ((size_t)ROUTE_UT * D + (size_t)ROUTE_UT * route_nkb(a) * ${r.vote ? 2 : 1} + 2 * ROUTE_UT);`,
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
function topkKernel(k: AttentionKernel): string[] {
  const r = k.routing!;
  const vote = r.vote !== undefined;
  const voters =
    r.vote === 'heads'
      ? ['0', 'a.H']
      : r.vote === 'groups'
        ? ['g * (a.H / a.Hkv)', '(g + 1) * (a.H / a.Hkv)']
        : ['g', 'g + 1'];
  const qRow =
    r.q === 'raw'
      ? 'static_cast<const T*>(a.q) + ((size_t)(b * a.H + h) * a.Nq + r_lo[u]) * D'
      : 'a.route_scratch + route_q_base(a) + ((size_t)(b * a.H + h) * route_nq_stride(a) + (U0 + u)) * D';
  const qLoad = r.q === 'raw' ? 'to_f32(src[d])' : 'src[d]';
  // Affinities of voter h for every (unit, block) into `dst`: NaN marks a non-candidate.
  const affinities = (dst: string): string[] => [
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
  const voteSteps = vote
    ? [
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
      ]
    : [];
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
    ...(vote
      ? [
          '  for (int i = tid; i < ROUTE_UT * nkb; i += blockDim.x) met[i] = NAN;',
          `  for (int h = ${voters[0]}; h < ${voters[1]}; ++h) {`,
          ...affinities('tmp').map((l) => `  ${l}`),
          ...voteSteps.map((l) => `  ${l}`),
          '  }',
        ]
      : ['  {', `    const int h = ${voters[0]};`, ...affinities('met').map((l) => `  ${l}`), '  }']),
    '  __syncthreads();',
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
    '}',
  ];
}

/** Device code of the routing passes (inside the artifact's namespace, after the helpers). */
export function routingDeviceCode(
  k: AttentionKernel,
  layout: CudaLayout,
  cx: Omit<CudaContext, 'vars'>,
): string {
  const r = k.routing!;
  return [
    '// ---- block routing: pool keys (and queries), rank, write `indices` ----',
    ...helpers(k, layout),
    '',
    ...candidateFn(k, cx),
    '',
    ...poolKernel(k, 'k'),
    ...(r.q === 'raw' ? [] : ['', ...poolKernel(k, 'q')]),
    '',
    ...topkKernel(k),
    ...(hasTensorTopk(k) ? ['', tensorTopkDeviceCode(k, cx)] : []),
  ].join('\n');
}

/** Host checks of the launcher (inside `attnc_<name>_launch`, `a` the args). */
export function routingHostChecks(k: AttentionKernel, ns: string): string[] {
  return [
    `for (int c = 0; c < 3; ++c) {`,
    `  const long long n = ${ns}::route_count(a, c);`,
    `  if (n < 0 || n > (1 << 20)) return fail(ATTNC_ERR_ARGS, "routing count %s is %lld, must be in [0, 2^20]", c == 0 ? "topk" : c == 1 ? "first" : "local", n);`,
    `}`,
    `if (a.k_offset < 0) return fail(ATTNC_ERR_ARGS, "routing needs key positions >= 0 (k_offset = %d)", a.k_offset);`,
    `if ((long long)a.B * ${ns}::route_groups(a) * a.Nq * ${ns}::route_cap(a) > 0 && a.indices == NULL) return fail(ATTNC_ERR_ARGS, "indices is NULL (int[B, ${routingGroups(k.routing!)}, Nq, ${capacityShapeExpr(k.routing!)}])");`,
    `if (a.Nk > 0 && a.route_scratch == NULL) return fail(ATTNC_ERR_ARGS, "route_scratch is NULL (${routeScratchElemsName(k)}() floats)");`,
  ];
}

/** Host launches of the routing passes, on `stream`, before the attention. */
export function routingHostLaunch(k: AttentionKernel, ns: string): string[] {
  const r = k.routing!;
  const pool = (side: 'k' | 'q'): string[] => {
    const [n, heads] = side === 'k' ? ['a.Nk', 'a.Hkv'] : ['a.Nq', 'a.H'];
    const off = side === 'k' ? 'a.k_offset' : 'a.q_offset';
    return [
      `if (${n} > 0) {`,
      `  const int nb = ${ns}::route_floor_div(${off} + ${n} - 1, ${ns}::RB) - ${ns}::route_floor_div(${off}, ${ns}::RB) + 1;`,
      `  ${ns}::${routePoolName(k, side)}<<<dim3(nb, ${heads}, a.B), ${ROUTE_THREADS}, 0, stream>>>(a);`,
      `  const cudaError_t e = cudaGetLastError();`,
      `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_pool_${side}: %s", cudaGetErrorString(e));`,
      `}`,
    ];
  };
  return [
    '// Block routing: pool, then rank (indices), then the attention reads the selection.',
    ...pool('k'),
    ...(r.q === 'raw' ? [] : pool('q')),
    ...(hasTensorTopk(k) ? tensorTopkHostLaunch(k, ns) : []),
    `if (${ns}::route_units(a) > 0 && ${ns}::route_cap(a) > 0) {`,
    `  const size_t rsmem = ${ns}::route_topk_smem(a);`,
    `  if (rsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: %d key blocks need %zu bytes of top-k shared memory, the limit is 232448", ${ns}::route_nkb(a), rsmem);`,
    `  if (rsmem > 48 * 1024) {`,
    `    const cudaError_t e = cudaFuncSetAttribute(${ns}::${routeTopkName(k)}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem);`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: cannot reserve %zu bytes of shared memory: %s", rsmem, cudaGetErrorString(e));`,
    `  }`,
    `  const dim3 rgrid((${ns}::route_units(a) + ${ns}::ROUTE_UT - 1) / ${ns}::ROUTE_UT, ${ns}::route_groups(a), a.B);`,
    `  ${ns}::${routeTopkName(k)}<<<rgrid, ${ROUTE_THREADS}, rsmem, stream>>>(a);`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: %s", cudaGetErrorString(e));`,
    `}`,
  ];
}

/** `size_t attnc_<name>_route_scratch_elems(const Args*)`: floats of `route_scratch`. */
export function routingHostFns(k: AttentionKernel, struct: string, ns: string): string[] {
  return [
    `extern "C" size_t ${routeScratchElemsName(k)}(const ${struct}* args) {`,
    `  return ${ns}::route_scratch_size(*args);`,
    '}',
  ];
}

/** Header prototype of the scratch-size function. */
export function routingHeaderLines(k: AttentionKernel, struct: string): string[] {
  return [
    '/* Floats of the route_scratch buffer (pooled keys and queries) for these sizes. */',
    `size_t ${routeScratchElemsName(k)}(const ${struct}* args);`,
  ];
}

/** Shape expression of the scratch buffer (an upper bound: strides of cdiv(N, n) + 1 blocks). */
export function routingScratchShape(r: RoutingPlan, headDim: number): string {
  const parts = [`B * Hkv * (cdiv(Nk, ${r.blockSize}) + 1) * ${headDim}`];
  if (r.q !== 'raw') parts.push(`B * H * (cdiv(Nq, ${r.blockSize}) + 1) * ${headDim}`);
  return parts.join(' + ');
}

/** Launch records of the routing passes (informational for CUDA: the launcher runs them). */
export function routingEntryPoints(k: AttentionKernel): EntryPoint[] {
  const r = k.routing!;
  const units = r.q === 'raw' ? 'Nq' : `cdiv(Nq, ${r.blockSize}) + 1`;
  const pool = (side: 'k' | 'q'): EntryPoint => ({
    name: routePoolName(k, side),
    role: 'routing',
    workgroupSize: [ROUTE_THREADS, 1, 1],
    grid:
      side === 'k'
        ? [`cdiv(Nk, ${r.blockSize}) + 1`, 'Hkv', 'B']
        : [`cdiv(Nq, ${r.blockSize}) + 1`, 'H', 'B'],
    bindings: [side, 'route_scratch'],
  });
  return [
    pool('k'),
    ...(r.q === 'raw' ? [] : [pool('q')]),
    {
      name: routeTopkName(k),
      role: 'routing',
      workgroupSize: [ROUTE_THREADS, 1, 1],
      grid: [`cdiv(${units}, ${unitsPerBlock(r)})`, routingGroups(r), 'B'],
      bindings: [
        ...(r.q === 'raw' ? ['q'] : []),
        'route_scratch',
        'indices',
        ...k.tensors.map((t) => t.name),
      ],
    },
    ...(hasTensorTopk(k) ? [tensorTopkEntry(k)] : []),
  ];
}

/** The manifest's routing record: what a caller needs to size `indices` and `route_scratch`. */
export function routingManifest(k: AttentionKernel): object {
  const r = k.routing!;
  return {
    blockSize: r.blockSize,
    q: r.q,
    k: r.k,
    vote: r.vote ?? null,
    topk: show(r.topk),
    first: show(r.first),
    local: show(r.local),
    indices: { dtype: 'i32', shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)] },
    scratch: {
      dtype: 'f32',
      elemsFunction: routeScratchElemsName(k),
      shape: [routingScratchShape(r, k.schedule.headDim)],
    },
  };
}

/** The attention's dynamic shared memory: the core's, then two tile bitmaps (selected, gaps). */
export function routedSmem(entry: string, ns: string, blockK: number): string[] {
  return [
    `const size_t smem = ${ns}::ROUTE_SMEM_OFF + 8 * (size_t)(((a.Nk + ${blockK - 1}) / ${blockK} + 31) / 32);`,
    `if (smem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: Nk = %d needs %zu bytes of attention shared memory, the limit is 232448", a.Nk, smem);`,
    `if (smem > 44 * 1024) {`,
    `  const cudaError_t e = cudaFuncSetAttribute(${entry}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));`,
    `}`,
  ];
}

/** Header comment of the `indices` and `route_scratch` fields. */
export function routingFieldDoc(k: AttentionKernel, role: 'indices' | 'scratch'): string {
  const r = k.routing!;
  return role === 'indices'
    ? `int[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r)}], written: selected block ids (ascending, -1 padded)`
    : `scratch: ${routeScratchElemsName(k)}() floats (pooled blocks)`;
}
