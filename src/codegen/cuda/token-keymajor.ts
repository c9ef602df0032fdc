// Key-major token attention (Schedule.tokenOrder 'key', issue 16), part 2: attention and merge.
// The query-major walk (token-attn.ts) gathers every row's selected K/V blocks, so at 64K each
// block is read from L2 once per row that chose it (~115-137 GB of gathers, H200 round 6). Here
// the selection is inverted first (token-keymajor-index.ts) and
//   tkm_attn   a block per work unit = (key block, kv head, batch, run of TKM_ROWS of its rows)
//              stages the routing block's K and V once (cp.async, rows padded to whole k-steps)
//              and runs the mma.sync form's q·k, element step, softmax and P·V (token-attn.ts,
//              token-mma.ts: the same renderers) over its rows in 16-row tiles per warp, Q rows
//              gathered; each row leaves a partial record: O / l in T and log2(l) + m (f32);
//   tkm_merge  a warp per row (b, h, i): combines its valid slots' records by their log2-sum-exp
//              into out and lse (skipping l = 0; a NaN record poisons the row, as in one pass).
// Partial bytes per (row, slot): DV·sizeof(T) + 4 (bf16, DV 128: 260), written once, read once;
// merge.ts's records are f32 [acc, m, l] (516 bytes), hence this merge.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';
import { elementStep, softmaxStep } from './token-steps.js';
import { keyMajorTileKeys, type TokenPlan } from './token-form.js';
import { keyMajorIndexCode, tkmName } from './token-keymajor-index.js';
import { tokenMmaParts, tokenQFragments } from './token-mma.js';
import { kvHeadPtrDecls } from './kv-rows.js';
import { rankedBlocksOf } from './routing-case.js';

/** Warps of the merge block, a row each. */
export const TKM_MERGE_WARPS = 4;

/** The key test of a block's element: a padding column, or a key outside the call. */
const outsideBlock = 'kidx - kbase >= RB || kidx < 0 || kidx >= a.Nk';

/** Finds this block's work unit: key block j (binary search in the unit prefix) and its rows. */
const findUnit = [
  'const int nkbs = route_nk_stride(a);',
  'const TkmLayout L = tkm_layout(a);',
  'const size_t bh = (size_t)b * a.Hkv + hkv;',
  'const int* units = tkm_ints(a, L.units) + bh * (nkbs + 1);',
  'const int* start = tkm_ints(a, L.start) + bh * (nkbs + 1);',
  'const int u = (int)blockIdx.x;',
  'if (u >= units[nkbs]) return; // the grid is an upper bound on the units',
  'int lo = 0, hi = nkbs; // units[lo] <= u < units[hi]',
  'while (hi - lo > 1) {',
  '  const int mid = (lo + hi) / 2;',
  '  if (units[mid] <= u) lo = mid;',
  '  else hi = mid;',
  '}',
  'const int first = start[lo] + (u - units[lo]) * TKM_ROWS, last = min(start[lo + 1], first + TKM_ROWS);',
  'const int* list = tkm_ints(a, L.list) + bh * (size_t)tkm_list_cap(a);',
  '// Key row r of the tile is key index kbase + r of the call (the block may start before it).',
  'const int kbase = (route_kb0(a) + lo) * RB - a.k_offset;',
];

/** Stages the block's K and V (rows outside the block or the call are zero). */
const stageBlock = [
  'T* Ks = reinterpret_cast<T*>(tok_smem);',
  'T* Vs = Ks + TOK_BK * TOK_KP;',
  '{',
  '  constexpr int KC = D / 8, VC = DV / 8; // 16-byte chunks per row',
  '  for (int c = threadIdx.x; c < TOK_BK * KC; c += TKM_THREADS) {',
  '    const int r = c / KC, d = (c % KC) * 8, kidx = kbase + r;',
  '    if (r < RB && kidx >= 0 && kidx < a.Nk) tok_cp16(Ks + r * TOK_KP + d, kg.row(kidx) + d);',
  '    else memset(Ks + r * TOK_KP + d, 0, 16);',
  '  }',
  '  for (int c = threadIdx.x; c < TOK_BK * VC; c += TKM_THREADS) {',
  '    const int r = c / VC, d = (c % VC) * 8, kidx = kbase + r;',
  '    if (r < RB && kidx >= 0 && kidx < a.Nk) tok_cp16(Vs + r * TOK_VP + d, vg.row(kidx) + d);',
  '    else memset(Vs + r * TOK_VP + d, 0, 16);',
  '  }',
  '  tok_cp_commit();',
  '  tok_cp_wait<0>();',
  '  __syncthreads();',
  '}',
];

/** A tile's 16 rows: entry R·cap + p of the list -> token, head, partial record; Q fragments. */
const tileRows = [
  'int row_i[2], row_q[2], row_h[2];',
  'bool row_ok[2];',
  'size_t row_part[2];',
  '#pragma unroll',
  'for (int rr = 0; rr < 2; ++rr) {',
  '  const int at = first + tile * 16 + gq + 8 * rr;',
  '  row_ok[rr] = at < last;',
  '  const int e = row_ok[rr] ? list[at] : 0, R = e / cap;',
  '  row_i[rr] = R / G;',
  '  row_h[rr] = hkv * G + R % G;',
  '  row_q[rr] = row_i[rr] + a.q_offset;',
  '  row_part[rr] = ((size_t)(b * a.H + row_h[rr]) * a.Nq + row_i[rr]) * cap + e % cap;',
  '}',
];

/** The partial record of each valid row: O / l (T) and log2(l) + m (-inf: no allowed key). */
const storePartials = [
  '#pragma unroll',
  'for (int rr = 0; rr < 2; ++rr) {',
  '  l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);',
  '  l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);',
  '  if (!row_ok[rr]) continue;',
  '  const float inv = l[rr] == 0.f ? 0.f : 1.f / l[rr];',
  '  T* po = part_o + row_part[rr] * DV;',
  '#pragma unroll',
  '  for (int n = 0; n < DV / 8; ++n) {',
  '    const int c = n * 8 + 2 * t4;',
  '    po[c] = from_f32(o[n][2 * rr] * inv);',
  '    po[c + 1] = from_f32(o[n][2 * rr + 1] * inv);',
  '  }',
  '  if (t4 == 0) part_lse[row_part[rr]] = l[rr] == 0.f ? -INFINITY : m[rr] + log2f(l[rr]);',
  '}',
];

function attentionKernel(k: AttentionKernel, plan: TokenPlan, e: CoreExprs): string[] {
  const p = tokenMmaParts(k, plan);
  const rowHoists = e.rowHoists.map((x) => `${x.type} ${x.name}[2];`);
  const rowStmts = e.rowStmts.length
    ? [
        '#pragma unroll',
        'for (int r = 0; r < 2; ++r) {',
        '  const int qpos = row_q[r], h = row_h[r];',
        '  (void)qpos; (void)h;',
        ...indent(e.rowStmts, '  '),
        '}',
      ]
    : [];
  const tile = [
    ...tileRows,
    ...rowStmts,
    ...tokenQFragments,
    'float o[DV / 8][4];',
    '#pragma unroll',
    'for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
    'float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};',
    'float s[TOK_BK / 8][4];',
    ...p.scores,
    ...elementStep(e, outsideBlock),
    ...softmaxStep(p.rescale),
    ...p.accumulate,
    ...storePartials,
  ];
  return [
    `constexpr int TKM_BK = ${keyMajorTileKeys(rankedBlocksOf(k).unit.size)}; // a routing block's keys, padded to k-steps`,
    'constexpr int TKM_THREADS = 32 * TKM_WARPS;',
    '// Blocks an SM must hold (__launch_bounds__): 1 leaves ptxas its registers (131 at D 128: three',
    '// 4-warp blocks an SM); 4 caps them at 128 (a bench variant, routing-token-emit.mjs).',
    'constexpr int TKM_MINB = 1;',
    '__host__ __device__ __forceinline__ size_t tkm_smem_bytes() { return sizeof(T) * TKM_BK * (TOK_KP + TOK_VP); }',
    `extern "C" __global__ void __launch_bounds__(TKM_THREADS, TKM_MINB) ${tkmName(k, 'attn')}(const Args a, const float qscale) {`,
    '  extern __shared__ __align__(16) unsigned char tok_smem[];',
    "  // The shared renderers (token-mma.ts, token-attn.ts) size their tile by TOK_BK: here the block's.",
    '  constexpr int TOK_BK = TKM_BK;',
    '  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, gq = lane / 4, t4 = lane % 4;',
    '  const int hkv = blockIdx.y, b = blockIdx.z, cap = route_cap(a), G = a.H / a.Hkv;',
    ...indent(findUnit, '  '),
    ...indent(kvHeadPtrDecls({ k: 'kg', v: 'vg' }, 'b', 'hkv', k.formats.paged !== undefined), '  '),
    ...indent(stageBlock, '  '),
    '  float* part_lse = a.route_scratch + L.lse;',
    '  T* part_o = reinterpret_cast<T*>(a.route_scratch + L.o);',
    ...indent(rowHoists, '  '),
    '#pragma unroll 1',
    '  for (int tile = warp; first + tile * 16 < last; tile += TKM_WARPS) {',
    ...indent(tile, '    '),
    '  }',
    '}',
  ];
}

function mergeKernel(k: AttentionKernel): string[] {
  const W = TKM_MERGE_WARPS;
  return [
    "// A warp per row (b, h, i): its valid slots' partials weighed by 2^(lse_p - M).",
    `extern "C" __global__ void __launch_bounds__(${32 * W}) ${tkmName(k, 'merge')}(const Args a) {`,
    '  constexpr int OC = (DV + 31) / 32; // output columns per lane: lane + 32 u',
    `  const long long row = (long long)blockIdx.x * ${W} + threadIdx.x / 32;`,
    '  const int lane = threadIdx.x % 32;',
    '  if (row >= (long long)a.B * a.H * a.Nq) return;',
    '  const int i = (int)(row % a.Nq), h = (int)(row / a.Nq % a.H), b = (int)(row / a.Nq / a.H);',
    '  const int cap = route_cap(a);',
    '  const int* sel = cap > 0 ? tkm_sel(a, b, route_group(a, h), i) : nullptr;',
    '  const TkmLayout L = tkm_layout(a);',
    '  const float* lse = a.route_scratch + L.lse + (size_t)row * cap;',
    '  const T* po = reinterpret_cast<const T*>(a.route_scratch + L.o) + (size_t)row * cap * DV;',
    '  float M = -INFINITY;',
    '  for (int p = lane; p < cap; p += 32)',
    '    if (tkm_in_call(a, sel[p])) M = fmaxf(M, lse[p]);',
    '  for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));',
    '  float acc[OC], L2 = 0.f;',
    '#pragma unroll',
    '  for (int u = 0; u < OC; ++u) acc[u] = 0.f;',
    '  for (int p = 0; p < cap; ++p) {',
    '    if (!tkm_in_call(a, sel[p])) continue;',
    '    const float x = lse[p];',
    '    if (x == -INFINITY) continue; // no allowed key in that block',
    '    const float w = exp2f(x - M); // NaN for a NaN record: the row becomes NaN',
    '    L2 += w;',
    '#pragma unroll',
    '    for (int u = 0; u < OC; ++u)',
    '      if (lane + 32 * u < DV) acc[u] = fmaf(w, to_f32(po[(size_t)p * DV + lane + 32 * u]), acc[u]);',
    '  }',
    '  T* orow = out_row(a, b, h, i);',
    '  const float inv = L2 == 0.f ? 0.f : 1.f / L2;',
    '#pragma unroll',
    '  for (int u = 0; u < OC; ++u)',
    '    if (lane + 32 * u < DV) orow[lane + 32 * u] = from_f32(acc[u] * inv);',
    ...(k.outputs.lse
      ? [
          '  if (a.lse != nullptr && lane == 0)',
          '    a.lse[row] = L2 == 0.f ? -INFINITY : (M + log2f(L2)) * LN2; // lse stays packed [B, H, Nq]',
        ]
      : []),
    '}',
  ];
}

/** Device code of the key-major passes (after the query-major kernel, whose helpers it uses). */
export function keyMajorDeviceCode(k: AttentionKernel, plan: TokenPlan, e: CoreExprs): string {
  return [
    '// ---- key-major token attention: inverted selection, attention per key block, merge ----',
    ...keyMajorIndexCode(k),
    ...attentionKernel(k, plan, e),
    ...mergeKernel(k),
  ].join('\n');
}
