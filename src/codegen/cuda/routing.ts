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
// This file: the shared helpers, the pooling kernels and the device-code assembly; the top-k is
// routing-topk.ts (routing-topk-mma.ts on tensor cores), the launcher's side routing-host.ts.
import { show, type Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { Op } from '../../ir/ops.js';
import {
  capacityShapeExpr,
  routingGroups,
  type PoolReducer,
  type RankedBlocksPlan,
} from '../../ir/routing.js';
import { cudaRoutingPath, rankedBlocksOf } from './routing-case.js';
import type { CudaLayout } from './layout.js';
import { ARGS, type CudaContext } from './rules.js';
import { K_ROWS, kvHead, pagedQuantRow } from './kv-rows.js';
import { hasTensorTopk, tensorTopkDeviceCode } from './routing-topk-mma.js';
import { keyMajorLayoutHelpers, TKM_CHUNK } from './token-keymajor-index.js';
import { tokenPlan } from './token-form.js';
import { ROUTE_THREADS, routeCandidateFn, routeTopkKernel, unitsPerBlock } from './routing-topk.js';

export const routePoolName = (k: AttentionKernel, side: 'k' | 'q'): string =>
  `attnc_${k.name}_route_pool_${side}`;
export const routeScratchElemsName = (k: AttentionKernel): string => `attnc_${k.name}_route_scratch_elems`;

/** Why this backend cannot run `k`'s routing (undefined when it can). */
export function cudaRoutingProblem(k: AttentionKernel): string | undefined {
  const r = k.routing;
  if (!r) return undefined;
  if (cudaRoutingPath(r) !== 'ranked-blocks')
    return 'CUDA backend: only `route blocks(n) topk(k) by …` routing is supported (not select, emit or from)';
  const engine = k.schedule.engine ?? 'simt';
  if (engine !== 'simt' && engine !== 'mma' && engine !== 'wgmma' && engine !== 'wgmma-ws')
    return `CUDA backend: block routing runs on the simt, mma, wgmma and wgmma-ws engines, not ${engine}`;
  // The attention keeps, per row and k-tile, a 32-bit mask of the routing blocks the tile touches.
  const size = rankedBlocksOf(k).unit.size;
  const span = Math.floor((k.schedule.blockK - 1) / size) + 2;
  if (span > 32)
    return `CUDA backend: routing blocks(${size}) are too small for ${k.schedule.blockK}-key tiles (a tile may touch at most 32 blocks; use blocks of at least ${Math.ceil(k.schedule.blockK / 30)} or a smaller blockK)`;
  if (capacityShapeExpr(r) === undefined)
    return 'CUDA backend: routing counts must be + - * of literals, params and sizes';
  return undefined;
}

/** A count (k, first or local) as C over the args struct, in 64-bit (host and device). */
export function countC(n: Node, layout: Pick<CudaLayout, 'field'>): string {
  if (n.op === Op.CONST) return `${Number(n.arg)}LL`;
  if (n.op === Op.PARAM) return `(long long)${ARGS}.${layout.field(`param:${String(n.arg)}`)}`;
  if (n.op === Op.VAR) return String(n.arg) === 'D' ? '(long long)D' : `(long long)${ARGS}.${String(n.arg)}`;
  const sym = n.op === Op.ADD ? '+' : n.op === Op.SUB ? '-' : n.op === Op.MUL ? '*' : undefined;
  if (sym === undefined || n.src.length !== 2) throw new Error(`CUDA: routing count ${show(n)} is not + - *`);
  return `(${countC(n.src[0]!, layout)} ${sym} ${countC(n.src[1]!, layout)})`;
}

/** Pooling reducers as C (fold over rows `p` of a block or chunk of `len` rows); select.ts too. */
export const reducers: Readonly<Record<PoolReducer, { init: string; fold: string; finish: string }>> = {
  mean: { init: '0.f', fold: 'acc += x', finish: 'acc / (float)len' },
  // DHSA's length normalisation: mean · sqrt(len).
  lnmean: { init: '0.f', fold: 'acc += x', finish: 'acc * (sqrtf((float)len) / (float)len)' },
  max: { init: '-INFINITY', fold: 'acc = fmaxf(acc, x)', finish: 'acc' },
  first: { init: '0.f', fold: 'if (p == 0) acc = x', finish: 'acc' },
};

function poolKernel(k: AttentionKernel, side: 'k' | 'q'): string[] {
  const { source } = rankedBlocksOf(k);
  const red = reducers[side === 'k' ? source.k : (source.q as PoolReducer)];
  const [N, off, heads, src, nb, base] =
    side === 'k'
      ? ['a.Nk', 'a.k_offset', 'a.Hkv', 'a.k', 'route_nk_stride(a)', '0']
      : ['a.Nq', 'a.q_offset', 'a.H', 'a.q', 'route_nq_stride(a)', 'route_q_base(a)'];
  // A quantized K cache is pooled from its dequantized values (<k>_dequant, defined with the core).
  if (side === 'k' && k.formats.k.kind === 'quant') return quantPoolKernel(k, red);
  return [
    `// Pools the ${side === 'k' ? 'keys' : 'queries'} of block id0 + blockIdx.x (its rows present in the call), per head.`,
    `extern "C" __global__ void __launch_bounds__(${ROUTE_THREADS}) ${routePoolName(k, side)}(const Args a) {`,
    `  const int id = route_floor_div(${off}, RB) + (int)blockIdx.x;`,
    `  const int p_lo = max(id * RB, ${off}), p_hi = min(id * RB + RB, ${off} + ${N});`,
    '  const int len = p_hi - p_lo;',
    '  if (len <= 0) return;',
    `  const size_t bh = (size_t)blockIdx.z * ${heads} + blockIdx.y;`,
    ...(side === 'k' && k.formats.paged
      ? [
          "  // A paged cache: the block's rows through the block table (kv-rows.ts).",
          `  const KvRows kh = ${kvHead(K_ROWS, 'blockIdx.z', 'blockIdx.y', true)};`,
          '  const int t0 = p_lo - a.k_offset;',
        ]
      : side === 'k'
        ? [
            `  const T* rows = static_cast<const T*>(${src}) + (bh * ${N} + (p_lo - ${off})) * D;`,
            '  const long long rs = D;',
          ]
        : [
            `  const T* rows = q_row(a, blockIdx.z, blockIdx.y, p_lo - ${off});`,
            '  const long long rs = a.q_stride_n;',
          ]),
    `  float* dst = a.route_scratch + ${base} + (bh * ${nb} + blockIdx.x) * D;`,
    ...poolRows(red, ROUTE_THREADS, side === 'k' && k.formats.paged ? 'kh.row(t0 + p)[d]' : undefined),
    '}',
  ];
}

/** route_pool_k over a quantized K cache: each element through k_dequant (dequant.ts). */
function quantPoolKernel(k: AttentionKernel, red: (typeof reducers)[PoolReducer]): string[] {
  return [
    '// The core defines it (after the routing passes): the dequantized element of the K cache.',
    '__device__ __forceinline__ float k_dequant(const Args& a, size_t row, int t, int c, size_t bh);',
    '// Pools the keys of block id0 + blockIdx.x (its rows present in the call), per kv head.',
    `extern "C" __global__ void __launch_bounds__(${ROUTE_THREADS}) ${routePoolName(k, 'k')}(const Args a) {`,
    '  const int id = route_floor_div(a.k_offset, RB) + (int)blockIdx.x;',
    '  const int p_lo = max(id * RB, a.k_offset), p_hi = min(id * RB + RB, a.k_offset + a.Nk);',
    '  const int len = p_hi - p_lo;',
    '  if (len <= 0) return;',
    '  const size_t bh = (size_t)blockIdx.z * a.Hkv + blockIdx.y;',
    "  const int t0 = p_lo - a.k_offset; // the block's first token of the head",
    '  float* dst = a.route_scratch + (bh * route_nk_stride(a) + blockIdx.x) * D;',
    `  for (int d = threadIdx.x; d < D; d += ${ROUTE_THREADS}) {`,
    `    float acc = ${red.init};`,
    '    for (int p = 0; p < len; ++p) {',
    `      const float x = k_dequant(a, ${k.formats.paged ? pagedQuantRow('a', 'bh', 't0 + p') : 'bh * (size_t)a.Nk + t0 + p'}, t0 + p, d, bh);`,
    `      ${red.fold};`,
    '    }',
    `    dst[d] = ${red.finish};`,
    '  }',
    '}',
  ];
}

/** The reduction of `len` rows at `rows` (stride rs; or `element`, of row p and dim d) into `dst[0, D)`, a thread per dim. */
export const poolRows = (
  red: (typeof reducers)[PoolReducer],
  threads: number,
  element = 'rows[p * rs + d]',
): string[] => [
  `  for (int d = threadIdx.x; d < D; d += ${threads}) {`,
  `    float acc = ${red.init};`,
  '    for (int p = 0; p < len; ++p) {',
  `      const float x = to_f32(${element});`,
  `      ${red.fold};`,
  '    }',
  `    dst[d] = ${red.finish};`,
  '  }',
];

/** Shared helpers: constants, counts, groups and scratch offsets (host and device). */
function helpers(k: AttentionKernel, layout: CudaLayout): string[] {
  const r = rankedBlocksOf(k);
  const { vote, q } = r.source;
  const HD = '__host__ __device__ __forceinline__';
  const groups = { H: 'a.H', Hkv: 'a.Hkv', '1': '1' }[routingGroups(r)];
  const keyMajor = tokenPlan(k)?.keyMajor === true;
  const groupOf = vote === 'heads' ? '0' : vote === 'groups' ? 'h / (a.H / a.Hkv)' : 'h';
  return [
    `constexpr int RB = ${r.unit.size}; // routing block size: key position p is in block floor(p / RB)`,
    `constexpr int ROUTE_UT = ${unitsPerBlock(r)}; // query units per top-k block`,
    `constexpr bool ROUTE_POOLED_Q = ${q !== 'raw'};`,
    `${HD} int route_floor_div(int x, int y) {`,
    '  const int t = x / y;',
    '  return (t * y != x && ((x < 0) != (y < 0))) ? t - 1 : t;',
    '}',
    '// The counts k, first, local (64-bit: the launcher checks they are in [0, INT_MAX)).',
    `${HD} long long route_count(const Args& a, const int which) {`,
    `  return which == 0 ? ${countC(r.source.count, layout)} : which == 1 ? ${countC(r.first, layout)} : ${countC(r.local, layout)};`,
    '}',
    `${HD} int route_cap(const Args& a) { return (int)(route_count(a, 0) + route_count(a, 1) + route_count(a, 2)); }`,
    `// G of indices [B, G, Nq, K], and the selection group a query head reads.`,
    `${HD} int route_groups(const Args& a) { (void)a; return ${groups}; }`,
    `${HD} int route_group(const Args& a, const int h) { (void)a; (void)h; return ${groupOf}; }`,
    '// Scratch strides: cdiv(N, RB) + 1 bounds the blocks a call of N positions touches.',
    `${HD} int route_nk_stride(const Args& a) { return (a.Nk + RB - 1) / RB + 1; }`,
    `${HD} int route_nq_stride(const Args& a) { return (a.Nq + RB - 1) / RB + 1; }`,
    `${HD} size_t route_q_base(const Args& a) { return (size_t)a.B * a.Hkv * route_nk_stride(a) * D; }`,
    // Key-major token attention: its lists and partials follow the pooled keys (token-keymajor-index.ts).
    ...(keyMajor
      ? [
          ...keyMajorLayoutHelpers(k),
          `${HD} size_t route_scratch_size(const Args& a) { return tkm_layout(a).end; }`,
        ]
      : [
          `${HD} size_t route_scratch_size(const Args& a) {`,
          `  return route_q_base(a)${q === 'raw' ? '' : ' + (size_t)a.B * a.H * route_nq_stride(a) * D'};`,
          '}',
        ]),
    '// Key blocks of the call: kb0 .. kb0 + nkb - 1; query units: blocks (pooled) or rows (raw).',
    `${HD} int route_kb0(const Args& a) { return route_floor_div(a.k_offset, RB); }`,
    `${HD} int route_nkb(const Args& a) { return a.Nk > 0 ? route_floor_div(a.k_offset + a.Nk - 1, RB) - route_kb0(a) + 1 : 0; }`,
    `${HD} int route_units(const Args& a) {`,
    '  if (!ROUTE_POOLED_Q) return a.Nq;',
    '  return a.Nq > 0 ? route_floor_div(a.q_offset + a.Nq - 1, RB) - route_floor_div(a.q_offset, RB) + 1 : 0;',
    '}',
    `${HD} size_t route_topk_smem(const Args& a) {`,
    `  return sizeof(float) * ((size_t)ROUTE_UT * D + (size_t)ROUTE_UT * route_nkb(a) * ${vote ? 2 : 1} + 2 * ROUTE_UT);`,
    '}',
  ];
}

/** Device code of the routing passes (inside the artifact's namespace, after the helpers). */
export function routingDeviceCode(
  k: AttentionKernel,
  layout: CudaLayout,
  cx: Omit<CudaContext, 'vars'>,
): string {
  const r = rankedBlocksOf(k);
  return [
    '// ---- block routing: pool keys (and queries), rank, write `indices` ----',
    ...helpers(k, layout),
    '',
    ...routeCandidateFn(k, cx),
    '',
    ...poolKernel(k, 'k'),
    ...(r.source.q === 'raw' ? [] : ['', ...poolKernel(k, 'q')]),
    '',
    ...routeTopkKernel(k),
    ...(hasTensorTopk(k) ? ['', tensorTopkDeviceCode(k, cx)] : []),
  ].join('\n');
}

/** Shape expression of the scratch buffer (an upper bound: strides of cdiv(N, n) + 1 blocks). */
export function routingScratchShape(r: RankedBlocksPlan, headDim: number, k?: AttentionKernel): string {
  const parts = [`B * Hkv * (cdiv(Nk, ${r.unit.size}) + 1) * ${headDim}`];
  if (r.source.q !== 'raw') parts.push(`B * H * (cdiv(Nq, ${r.unit.size}) + 1) * ${headDim}`);
  if (k && tokenPlan(k)?.keyMajor) parts.push(keyMajorScratchShape(k));
  return parts.join(' + ');
}

/**
 * The key-major scratch (tkm_layout) in floats, an upper bound: counts, list starts and units,
 * lists (one int per row and slot), and per partial its lse and O (16-bit: DV / 2 floats).
 */
function keyMajorScratchShape(k: AttentionKernel): string {
  const r = rankedBlocksOf(k);
  const blocks = `(cdiv(Nk, ${r.unit.size}) + 1)`;
  const parts = `B * H * Nq * (${capacityShapeExpr(r)})`;
  return [
    `B * Hkv * cdiv(Nq, ${TKM_CHUNK}) * ${blocks}`,
    `2 * B * Hkv * (${blocks} + 1)`,
    `${parts} * ${2 + k.schedule.valueDim / 2}`,
    '24',
  ].join(' + ');
}
