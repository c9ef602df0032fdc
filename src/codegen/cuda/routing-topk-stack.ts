// Raw-query block routing with `vote groups` on tensor cores, the GQA group stacked (issue #16).
// routing-topk-mma.ts gives a warp 16 query tokens and walks the group's voters one by one: per
// chunk of pooled keys and per voter it reloads q from global memory, and every staged chunk
// (f32 converted to split 16-bit parts by each block) serves one voter at a time. Here a warp's 16
// rows are a run of tokens × the group's G heads, as in the token attention (row R: token R / G,
// head R % G), so that:
//   - q is loaded once into A fragments (registers) and every mma yields all voters' affinities;
//   - the pooled keys are split once, in place, by route_split (row of D floats -> D hi then D lo
//     16-bit values: the same 4·D bytes), and 8 warps share each chunk, staged by cp.async into
//     a double buffer (the next needed chunk lands while this one is multiplied);
//   - pass 0 keeps each row's softmax max and sum in registers (a row is one voter of one token);
//     pass 1 sums the voters of a token with shuffles (lanes whose gq differ in the low bits, then
//     the two halves for G = 16) and streams the sums into per-token top-k lists in shared memory;
//   - the end (forced blocks, ascending merge, -1 padding) is routing-topk-mma.ts's.
// The affinities are routing-topk-mma.ts's (split keys); exponentials are exp2 of prescaled differences
// and votes multiply by 1 / z (within a few ulp of expf and the division), the vote's sum order differs.
// The launcher takes it when 16 % G == 0, topk ≤ ROUTE_KMAX and q / route_scratch are aligned.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { EntryPoint } from '../artifact.js';
import { rankedBlocksOf } from './routing-case.js';
import { stackedPassLoop, stackedMergeLines } from './routing-topk-stack-parts.js';

export const ROUTE_ST_THREADS = 256;
export const routeTopkStackName = (k: AttentionKernel): string => `attnc_${k.name}_route_topk_st`;
export const routeSplitName = (k: AttentionKernel): string => `attnc_${k.name}_route_split`;

/** Whether `k` has the stacked ranking (raw queries on tensor cores, vote groups). */
export const hasStackedTopk = (k: AttentionKernel): boolean => rankedBlocksOf(k).source.vote === 'groups';

/** Device code of route_split and the stacked top-k (after routing-topk-mma.ts's helpers). */
export function stackedTopkDeviceCode(k: AttentionKernel): string {
  return [
    '// ---- block routing, raw queries, vote groups: the GQA group stacked as mma rows (routing-topk-stack.ts) ----',
    `constexpr int ROUTE_ST_THREADS = ${ROUTE_ST_THREADS}, ROUTE_ST_ROWS = ROUTE_ST_THREADS / 2; // 16 rows a warp`,
    '__host__ __device__ __forceinline__ bool route_stack_ok(const Args& a) {',
    '  const int G = a.Hkv > 0 ? a.H / a.Hkv : 0;',
    '  return G >= 1 && 16 % G == 0;',
    '}',
    '// Split keys double-buffered, then per-token lists (metric, id) and counts.',
    '__host__ __device__ __forceinline__ size_t route_st_smem(const Args& a, const int ktop) {',
    '  const size_t toks = ROUTE_ST_ROWS / (a.H / a.Hkv);',
    '  return 4 * sizeof(T) * ROUTE_KC * ROUTE_KP + 8 * toks * ktop + 4 * toks;',
    '}',
    '__device__ __forceinline__ void route_cp16(T* dst, const T* src) {',
    '  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);',
    '  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\\n" ::"r"(s), "l"(src) : "memory");',
    '}',
    '__device__ __forceinline__ void route_cp_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }',
    'template <int N> __device__ __forceinline__ void route_cp_wait() {',
    '  asm volatile("cp.async.wait_group %0;\\n" ::"n"(N) : "memory");',
    '}',
    '',
    '// In place, a warp per pooled row: D floats -> D hi then D lo 16-bit parts (hi = round(x), lo = round(x - hi)).',
    `extern "C" __global__ void __launch_bounds__(32) ${routeSplitName(k)}(const Args a) {`,
    '  float* row = a.route_scratch + ((size_t)(blockIdx.z * a.Hkv + blockIdx.y) * route_nk_stride(a) + blockIdx.x) * D;',
    '  constexpr int PER = (D + 31) / 32;',
    '  float x[PER];',
    '#pragma unroll',
    '  for (int u = 0; u < PER; ++u) x[u] = threadIdx.x + 32 * u < D ? row[threadIdx.x + 32 * u] : 0.f;',
    '  __syncwarp(); // every float is read before any is overwritten',
    '  T* out = reinterpret_cast<T*>(row);',
    '#pragma unroll',
    '  for (int u = 0; u < PER; ++u) {',
    '    const int d = threadIdx.x + 32 * u;',
    '    if (d >= D) continue;',
    '    const T hi = from_f32(x[u]);',
    '    out[d] = hi;',
    '    out[D + d] = from_f32(x[u] - to_f32(hi));',
    '  }',
    '}',
    '',
    `extern "C" __global__ void __launch_bounds__(ROUTE_ST_THREADS, 1) ${routeTopkStackName(k)}(const Args a) {`,
    '  extern __shared__ __align__(16) unsigned char route_st_smem_raw[];',
    '  T* kbuf = reinterpret_cast<T*>(route_st_smem_raw); // [2][hi, lo][ROUTE_KC][ROUTE_KP]',
    '  const int ktop = (int)route_count(a, 0), G = a.H / a.Hkv, TOKS = ROUTE_ST_ROWS / G;',
    '  float* lm = reinterpret_cast<float*>(kbuf + 4 * ROUTE_KC * ROUTE_KP); // [TOKS][ktop] sorted metrics',
    '  int* lid = reinterpret_cast<int*>(lm + TOKS * ktop);                   // [TOKS][ktop] their ids',
    '  int* lcnt = lid + TOKS * ktop;                                         // [TOKS] list lengths',
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane / 4, t4 = lane % 4;',
    '  // Last rows first: under causal-like masks they rank the most chunks.',
    '  const int hkv = blockIdx.y, b = blockIdx.z;',
    '  const long long row0 = (long long)(gridDim.x - 1 - blockIdx.x) * ROUTE_ST_ROWS;',
    '  const int tok0 = (int)(row0 / G);',
    '  const int kb0 = route_kb0(a), nkb = route_nkb(a), cap = route_cap(a), nch = (nkb + ROUTE_KC - 1) / ROUTE_KC;',
    '  const long long c_first = route_count(a, 1), c_local = route_count(a, 2);',
    '  const int c_first32 = (int)c_first;',
    '  for (int i = tid; i < TOKS; i += ROUTE_ST_THREADS) lcnt[i] = 0;',
    "  // This lane's rows gq and gq + 8 of the warp: token (block-local lt, query position lq) and head lh.",
    '  int lt[2], lq[2], lh[2], lown[2], flo[2];',
    '  bool lvalid[2];',
    '#pragma unroll',
    '  for (int rr = 0; rr < 2; ++rr) {',
    '    const int R = warp * 16 + gq + 8 * rr;',
    '    lt[rr] = R / G;',
    '    lvalid[rr] = tok0 + lt[rr] < a.Nq;',
    '    lq[rr] = tok0 + lt[rr] + a.q_offset;',
    '    lh[rr] = hkv * G + R % G;',
    '    lown[rr] = route_floor_div(lq[rr], RB);',
    '    flo[rr] = lown[rr] - (int)c_local + 1;',
    '  }',
    "  // The warp's tokens as query positions, and the head this lane classifies chunks for.",
    '  const int wt_lo = tok0 + warp * 16 / G, wt_hi = min(tok0 + (warp * 16 + 15) / G, a.Nq - 1);',
    '  const bool wany = wt_lo < a.Nq;',
    '  const int ch = hkv * G + lane % G;',
    '  // q as A fragments, once: rows gq and gq + 8 (zero for tokens past Nq).',
    '  unsigned qa[D / 16][4];',
    '  {',
    '    const T* q0 = q_row(a, b, lh[0], lvalid[0] ? tok0 + lt[0] : 0);',
    '    const T* q1 = q_row(a, b, lh[1], lvalid[1] ? tok0 + lt[1] : 0);',
    '#pragma unroll',
    '    for (int kk = 0; kk < D / 16; ++kk) {',
    '      const int d = kk * 16 + 2 * t4;',
    '      qa[kk][0] = lvalid[0] ? __ldg(reinterpret_cast<const unsigned*>(q0 + d)) : 0u;',
    '      qa[kk][1] = lvalid[1] ? __ldg(reinterpret_cast<const unsigned*>(q1 + d)) : 0u;',
    '      qa[kk][2] = lvalid[0] ? __ldg(reinterpret_cast<const unsigned*>(q0 + d + 8)) : 0u;',
    '      qa[kk][3] = lvalid[1] ? __ldg(reinterpret_cast<const unsigned*>(q1 + d + 8)) : 0u;',
    '    }',
    '  }',
    '  __syncthreads();',
    ...stackedPassLoop(),
    '  __syncthreads();',
    ...stackedMergeLines(),
    '}',
  ].join('\n');
}

/** Host launch of route_split and the stacked top-k when they apply, else falls through (`} else`). */
export function stackedTopkHostLaunch(k: AttentionKernel, ns: string): string[] {
  const [split, name] = [`${ns}::${routeSplitName(k)}`, `${ns}::${routeTopkStackName(k)}`];
  return [
    `if (a.Nq > 0 && ${ns}::route_cap(a) > 0 && ${ns}::route_count(a, 0) <= ${ns}::ROUTE_KMAX && ${ns}::route_stack_ok(a) &&`,
    `    (uintptr_t)a.q % 4 == 0 && (uintptr_t)a.route_scratch % 16 == 0) {`,
    `  // Vote groups, the group stacked as mma rows (routing-topk-stack.ts): split the pooled keys, then rank.`,
    `  if (${ns}::route_nkb(a) > 0) {`,
    `    ${split}<<<dim3(${ns}::route_nkb(a), a.Hkv, a.B), 32, 0, stream>>>(a);`,
    `    const cudaError_t e = cudaGetLastError();`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_split: %s", cudaGetErrorString(e));`,
    `  }`,
    `  const size_t ssmem = ${ns}::route_st_smem(a, (int)${ns}::route_count(a, 0));`,
    `  if (ssmem > 48 * 1024) {`,
    `    const cudaError_t e = cudaFuncSetAttribute(${name}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ssmem);`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk_st: cannot reserve %zu bytes of shared memory: %s", ssmem, cudaGetErrorString(e));`,
    `  }`,
    `  const long long srows = (long long)a.Nq * (a.H / a.Hkv);`,
    `  const dim3 sgrid((unsigned)((srows + ${ns}::ROUTE_ST_ROWS - 1) / ${ns}::ROUTE_ST_ROWS), a.Hkv, a.B);`,
    `  ${name}<<<sgrid, ${ROUTE_ST_THREADS}, ssmem, stream>>>(a);`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk_st: %s", cudaGetErrorString(e));`,
    `} else`,
  ];
}

/** Launch records of route_split and the stacked top-k (informational: the launcher picks). */
export function stackedTopkEntries(k: AttentionKernel): EntryPoint[] {
  return [
    {
      name: routeSplitName(k),
      role: 'routing',
      workgroupSize: [32, 1, 1],
      grid: [`cdiv(Nk, ${rankedBlocksOf(k).unit.size}) + 1`, 'Hkv', 'B'],
      bindings: ['route_scratch'],
    },
    {
      name: routeTopkStackName(k),
      role: 'routing',
      workgroupSize: [ROUTE_ST_THREADS, 1, 1],
      grid: [`cdiv(Nq * H, ${ROUTE_ST_THREADS / 2} * Hkv)`, 'Hkv', 'B'],
      bindings: ['q', 'route_scratch', 'indices', ...k.tensors.map((t) => t.name)],
    },
  ];
}
