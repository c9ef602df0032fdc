// Attention over each row's selection (select.ts pipeline; not for `emit`, whose attention is the
// engine's unrestricted one). SIMT, on every engine's schedule: block (split, query row, head,
// batch) of 128 threads = 16 groups of 8 lanes. A group takes one key at a time (lanes split the
// head dim into vectors, three xor-shuffles reduce the dot) and keeps its own online softmax;
// the groups merge through shared memory. Loop trip counts are warp-uniform (tokens: 4 ids per
// warp step; blocks and chunks: a warp walks one id's keys, 4 at a time), so every shuffle has the
// whole warp. A row's selection is cut into `sel_splits` pieces when rows are few (decoding);
// sel_merge then combines the pieces' (acc, max, sum) by log-sum-exp, in order (merge.ts).
// The static mask and the score modifier are evaluated per selected key (the selection is
// already sparse, so there is no tile classification).
import { elementBytes } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { Op } from '../../ir/ops.js';
import { linearize } from '../linearize.js';
import type { CudaLayout } from './layout.js';
import { K_ROWS, V_ROWS } from './kv-rows.js';
import { cudaMergeBody } from './merge.js';
import { cudaRenderer, type CudaContext } from './rules.js';
import { selName } from './select.js';
import { selectKvHeadDecls, selectKvVectorLoad } from './select-kv.js';

export const SEL_ATTN_THREADS = 128;

/** Elements per vector load: 16 bytes or less, dividing D and Dv into 8-lane chunks (else 1). */
export function vectorWidth(k: AttentionKernel): number {
  const s = k.schedule;
  const bytes = elementBytes(k.formats.k);
  for (const vw of [8, 4, 2]) {
    if (vw * bytes <= 16 && s.headDim % (8 * vw) === 0 && s.valueDim % (8 * vw) === 0) return vw;
  }
  return 1;
}

/** sel_attn: attention over a row's selected keys, one block per (row, split, head, batch). */
function attnKernel(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string[] {
  const r = k.routing!;
  const VW = vectorWidth(k);
  const s = k.schedule;
  const NC = Math.ceil(s.headDim / (8 * VW));
  const NCV = Math.ceil(s.valueDim / (8 * VW));
  const vars = {
    ...{ B: 'a.B', H: 'a.H', Hkv: 'a.Hkv', Nq: 'a.Nq', Nk: 'a.Nk', D: 'D' },
    ...{ b: 'b', h: 'h', q: 'qpos', k: 'kpos', score: 'x' },
  };
  const identity = k.score.op === Op.VAR && k.score.arg === 'score';
  const e = linearize([k.mask, ...(identity ? [] : [k.score])], cudaRenderer({ ...cx, vars }), 'se');
  const tokens = r.unit.kind === 'tokens';
  const readsQpos = /\bqpos\b/.test([...e.stmts, ...e.roots].join('\n'));
  const kx = selectKvVectorLoad(k.formats.k, K_ROWS, 'kp', 'kx');
  const vx = selectKvVectorLoad(k.formats.v, V_ROWS, 'vp', 'vx');
  return [
    ...attnHead(k, VW, NC, NCV, readsQpos),
    ...visitLambda(kx, vx, e, identity),
    '  if (cap > 0) {',
    ...idWalk(tokens).map((t) => `  ${t}`),
    '  }',
    ...groupMerge(k),
  ];
}

/** The kernel's head: the row's ids of this split, its kv head, q in registers, the state. */
function attnHead(k: AttentionKernel, VW: number, NC: number, NCV: number, readsQpos: boolean): string[] {
  return [
    `constexpr int SEL_VW = ${VW}, SEL_NC = ${NC}, SEL_NCV = ${NCV};`,
    `extern "C" __global__ void __launch_bounds__(${SEL_ATTN_THREADS}) ${selName(k, 'attn')}(const Args a) {`,
    '  __shared__ float gm[16], gl[16];',
    '  __shared__ float gacc[16][DV];',
    '  const int ns = sel_splits(a), tid = threadIdx.x, warp = tid >> 5, grp = tid >> 3, wg = grp & 3, ln = tid & 7;',
    '  const int i = blockIdx.x / ns, sp = blockIdx.x % ns, h = blockIdx.y, b = blockIdx.z;',
    '  const int cap = sel_cap(a), per = (cap + ns - 1) / ns;',
    '  const int p0 = min(cap, sp * per), p1 = min(cap, p0 + per);',
    '  const int* row = a.indices + ((size_t)(b * sel_groups(a) + sel_group(a, h)) * a.Nq + i) * cap;',
    // Declared only where read: nvcc -Werror all-warnings refuses an unused variable.
    `  const int kvh = h / (a.H / a.Hkv)${readsQpos ? ', qpos = i + a.q_offset' : ''};`,
    ...selectKvHeadDecls(k.formats, 'b', 'kvh').map((l) => `  ${l}`),
    '  const T* qp = q_row(a, b, h, i);',
    '  float qv[SEL_NC][SEL_VW], acc[SEL_NCV][SEL_VW];',
    '#pragma unroll',
    '  for (int c = 0; c < SEL_NC; ++c)',
    '#pragma unroll',
    '    for (int x = 0; x < SEL_VW; ++x) {',
    '      const int d = (c * 8 + ln) * SEL_VW + x;',
    '      qv[c][x] = d < D ? to_f32(qp[d]) : 0.f;',
    '    }',
    '#pragma unroll',
    '  for (int c = 0; c < SEL_NCV; ++c)',
    '#pragma unroll',
    '    for (int x = 0; x < SEL_VW; ++x) acc[c][x] = 0.f;',
    '  float m = -INFINITY, l = 0.f;',
  ];
}

/** A K or V vector load of the kernel's cache (select-kv.ts's selectKvVectorLoad). */
type KvVectorLoad = ReturnType<typeof selectKvVectorLoad>;

/** `visit(j, live)`: key row j's score (the warp reduces the dot), mask, online softmax, P·V. */
function visitLambda(
  kx: KvVectorLoad,
  vx: KvVectorLoad,
  e: { readonly stmts: readonly string[]; readonly roots: readonly string[] },
  identity: boolean,
): string[] {
  return [
    '  // Key row j for this lane group (live: the group has a key); the whole warp calls it.',
    '  auto visit = [&](const int j, const bool live) {',
    '    float dot = 0.f;',
    '    if (live) {',
    '#pragma unroll',
    '      for (int c = 0; c < SEL_NC; ++c) {',
    '        const int d = (c * 8 + ln) * SEL_VW;',
    '        if (d < D) {',
    `          ${kx.decl}`,
    '#pragma unroll',
    `          for (int x = 0; x < SEL_VW; ++x) dot = fmaf(qv[c][x], ${kx.at('x')}, dot);`,
    '        }',
    '      }',
    '    }',
    '    dot += __shfl_xor_sync(0xffffffffu, dot, 4);',
    '    dot += __shfl_xor_sync(0xffffffffu, dot, 2);',
    '    dot += __shfl_xor_sync(0xffffffffu, dot, 1);',
    '    if (!live) return;',
    '    const int kpos = j + a.k_offset;',
    '    const float x = a.scale * dot;',
    '    (void)kpos; (void)x;',
    ...e.stmts.map((t) => `    ${t}`),
    `    if (!(${e.roots[0]})) return;`,
    // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md).
    `    const float sc = ${identity ? 'x' : `isnan(x) ? x : ${e.roots[1]}`};`,
    '    if (sc == -INFINITY) return; // weighs nothing',
    '    // A NaN or +inf score makes pw (and so l) NaN: the row comes out NaN (docs/LANGUAGE.md).',
    '    const float mn = fmaxf(m, sc);',
    '    const float corr = expf(m - mn), pw = expf(sc - mn);',
    '    l = l * corr + pw;',
    '    m = mn;',
    '#pragma unroll',
    '    for (int c = 0; c < SEL_NCV; ++c) {',
    '      const int d = (c * 8 + ln) * SEL_VW;',
    '      if (d < DV) {',
    `        ${vx.decl}`,
    '#pragma unroll',
    `        for (int x = 0; x < SEL_VW; ++x) acc[c][x] = fmaf(pw, ${vx.at('x')}, acc[c][x] * corr);`,
    '      }',
    '    }',
    '  };',
  ];
}

/** The walk over the split's ids: a token per lane group, or an id's keys 4 at a time. */
function idWalk(tokens: boolean): string[] {
  return tokens
    ? [
        '  // Tokens: each warp step takes 4 ids, one per lane group.',
        '  for (int p = p0 + warp * 4; p < p1; p += 16) {',
        '    const int id = p + wg < p1 ? __ldg(row + p + wg) : -1;',
        '    int lo = 0, hi = 0;',
        '    if (id >= 0) sel_range(a, id, lo, hi);',
        '    visit(lo, lo < hi);',
        '  }',
      ]
    : [
        "  // Blocks and chunks: a warp walks one id's keys, 4 at a time (one per lane group).",
        '  for (int p = p0 + warp; p < p1; p += 4) {',
        '    const int id = __ldg(row + p);',
        '    int lo = 0, hi = 0;',
        '    if (id >= 0) sel_range(a, id, lo, hi);',
        '    for (int j = lo; j < hi; j += 4) visit(j + wg, j + wg < hi);',
        '  }',
      ];
}

/** The 16 lane groups merged in order; the row (one split) or this split's partial written. */
function groupMerge(k: AttentionKernel): string[] {
  return [
    "  // Merge the 16 groups (in order), then write the row or this split's partial.",
    '  if (ln == 0) { gm[grp] = m; gl[grp] = l; }',
    '#pragma unroll',
    '  for (int c = 0; c < SEL_NCV; ++c)',
    '#pragma unroll',
    '    for (int x = 0; x < SEL_VW; ++x) {',
    '      const int d = (c * 8 + ln) * SEL_VW + x;',
    '      if (d < DV) gacc[grp][d] = acc[c][x];',
    '    }',
    '  __syncthreads();',
    '  float M = -INFINITY, L = 0.f;',
    '  for (int t = 0; t < 16; ++t) M = fmaxf(M, gm[t]);',
    '  // A group with l == 0 saw no key; one with l NaN (poisoned, m maybe -inf) makes L NaN.',
    '  for (int t = 0; t < 16; ++t) if (gl[t] != 0.f) L += gl[t] * expf(gm[t] - M);',
    '  const size_t orow = (size_t)(b * a.H + h) * a.Nq + i;',
    '  float* part = a.route_scratch + sel_part_off(a) + (orow * ns + sp) * (DV + 2);',
    '  for (int d = tid; d < DV; d += blockDim.x) {',
    '    float o = 0.f;',
    '    for (int t = 0; t < 16; ++t) if (gl[t] != 0.f) o += gacc[t][d] * expf(gm[t] - M);',
    '    if (ns == 1) out_row(a, b, h, i)[d] = from_f32(L == 0.f ? 0.f : o / L);',
    '    else part[d] = o;',
    '  }',
    '  if (tid == 0) {',
    ...(k.outputs.lse
      ? ['    if (ns == 1 && a.lse != NULL) a.lse[orow] = L == 0.f ? -INFINITY : M + logf(L);']
      : []),
    '    if (ns > 1) { part[DV] = M; part[DV + 1] = L; }',
    '  }',
    '}',
  ];
}

function mergeKernel(k: AttentionKernel): string[] {
  return [
    `extern "C" __global__ void __launch_bounds__(${SEL_ATTN_THREADS}) ${selName(k, 'merge')}(const Args a) {`,
    '  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, ns = sel_splits(a);',
    '  const size_t orow = (size_t)(b * a.H + h) * a.Nq + i;',
    '  const float* part = a.route_scratch + sel_part_off(a) + orow * ns * (DV + 2);',
    ...cudaMergeBody({
      strategy: 'serial',
      base: 'ln',
      threads: 'blockDim.x',
      records: { first: 'part', stride: '(DV + 2)', count: 'ns' },
      sink: {
        at: (d) => `out_row(a, b, h, i)[${d}]`,
        lse: k.outputs.lse ? { ptr: 'a.lse', index: 'orow' } : undefined,
      },
    }),
    '}',
  ];
}

/** Device code of the restricted attention (nothing for `emit`). */
export function selectAttnCode(
  k: AttentionKernel,
  _layout: CudaLayout,
  cx: Omit<CudaContext, 'vars'>,
): string[] {
  if (k.routing!.attention === 'static-mask') return [];
  return ['', ...attnKernel(k, cx), '', ...mergeKernel(k)];
}
