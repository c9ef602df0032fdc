// Parts of the tensor-core top-k (routing-topk-mma.ts): its names, the chunk classifier, the
// mma.sync, ldmatrix and cp.async helpers, and the device code's constants and shared helpers.
// (Staging and scoring: routing-topk-mma-scores.ts.)
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { cudaRenderer, type CudaContext } from './rules.js';

/** Warps per block (16 query rows each); the emitted ROUTE_WARPS (the bench's variants may change it there). */
export const ROUTE_TC_WARPS = 8;
export const ROUTE_TC_THREADS = 32 * ROUTE_TC_WARPS;
export const routeTopkTcName = (k: AttentionKernel): string => `attnc_${k.name}_route_topk_tc`;

/** `route_chunk_class`: 0 no (row, key) pair of the ranges is allowed, 1 all are, 2 some. */
export function chunkClassFn(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string[] {
  const mode = classMode(k);
  const head = [
    '__device__ int route_chunk_class(const Args& a, const int b, const int h, const int q_lo, const int q_hi, const int id_lo, const int id_hi) {',
    '  const int k_lo = max(id_lo * RB, a.k_offset), k_hi = min(id_hi * RB + RB, a.k_offset + a.Nk) - 1;',
    '  if (k_lo > k_hi || q_lo > q_hi) return 0;',
    '  (void)b; (void)h;',
  ];
  if (mode === 'full') return [...head, '  return 1;', '}'];
  if (mode === 'empty') return [...head, '  return 0;', '}'];
  if (mode === 'partial' || k.tiles.kind !== 'dynamic') return [...head, '  return 2;', '}'];
  const sizes = { B: 'a.B', H: 'a.H', Hkv: 'a.Hkv', Nq: 'a.Nq', Nk: 'a.Nk', D: 'D' };
  const vars = { ...sizes, b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
  const roots: Node[] = [k.tiles.canBeTrue, k.tiles.canBeFalse];
  const c = linearize(roots, cudaRenderer({ ...cx, vars }), 'cc');
  return [
    ...head,
    ...c.stmts.map((s) => `  ${s}`),
    `  if (!(${c.roots[0]})) return 0;`,
    `  return (${c.roots[1]}) ? 2 : 1;`,
    '}',
  ];
}

export function mmaHelper(dtype: 'f16' | 'bf16'): string[] {
  return [
    '// Four 8x8 16-bit matrices from shared memory: lane l gives the address of row l % 8 of matrix',
    '// l / 8; register m of lane t holds row t / 4, columns 2 (t % 4) and 2 (t % 4) + 1 of matrix m',
    '// (an m16n8k16 B fragment pair b0, b1 for two 8-key groups).',
    '__device__ __forceinline__ void route_ldsm(unsigned (&r)[4], const T* p) {',
    '  const unsigned s = (unsigned)__cvta_generic_to_shared(p);',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s) : "memory");',
    '}',
    '// c += a·b, m16n8k16, 16-bit inputs, f32 accumulators (the PTX of mma-device.ts, own name).',
    '__device__ __forceinline__ void route_mma(float (&c)[4], const unsigned (&x)[4], const unsigned b0, const unsigned b1) {',
    `  asm("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "`,
    '      "{%0, %1, %2, %3};\\n"',
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(x[0]), "r"(x[1]), "r"(x[2]), "r"(x[3]), "r"(b0), "r"(b1));',
    '}',
  ];
}

/** cp.async for the pooled-key chunks (16-byte copies; a group per chunk). */
export const cpAsyncHelpers: readonly string[] = [
  "// 16-byte asynchronous global → shared copy; commit closes the chunk's group, wait_all lands it.",
  '__device__ __forceinline__ void route_cp16(float* dst, const float* src) {',
  '  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);',
  '  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\\n" ::"r"(s), "l"(src) : "memory");',
  '}',
  '__device__ __forceinline__ void route_cp_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }',
  '__device__ __forceinline__ void route_cp_wait_all() { asm volatile("cp.async.wait_all;\\n" ::: "memory"); }',
];

/** The tuning constants: tile, chunk and list sizes and the opt-in variants (routing-topk-mma.ts, file comment). */
export function topkConstants(vote: boolean): string[] {
  return [
    '// ---- block routing, raw queries: affinities on tensor cores + streaming top-k (routing-topk-mma.ts) ----',
    `constexpr int ROUTE_WARPS = ${ROUTE_TC_WARPS}; // warps per block, 16 query rows each`,
    'constexpr int ROUTE_THREADS = 32 * ROUTE_WARPS;',
    'constexpr int ROUTE_MQ = 16 * ROUTE_WARPS; // query rows per block',
    'constexpr int ROUTE_MINB = 2;  // blocks per SM the registers are bounded for (128 each)',
    'constexpr int ROUTE_KC = 32;   // pooled key blocks per chunk',
    'constexpr int ROUTE_KMAX = 64; // the largest topk kept per row (larger: the SIMT pass)',
    'constexpr int ROUTE_KP = D + 8; // padded row of a split key (16-bit elements): conflict-free reads',
    "// 1: the k dimension is permuted within each 32 so that a lane's query fragments of two k-steps are",
    '// 16 contiguous bytes (one 128-bit load per row instead of four 32-bit ones); keys are split into',
    '// the same order (a dot product does not depend on the order of its terms).',
    'constexpr int ROUTE_QVEC = 0;',
    'constexpr bool route_qvec = ROUTE_QVEC != 0 && D % 32 == 0;',
    '// k-steps unrolled in scores() (their query loads in flight at once): fully unrolled, the loads',
    '// hoisted ahead spill.',
    'constexpr int ROUTE_KUNROLL = 2;',
    `constexpr bool ROUTE_VOTE = ${vote};`,
    "// n > 0: the vote's statistics pass voter-outer, n voters' query fragments held in registers across",
    '// chunks, each staged chunk scored for all n (routing-topk-mma-voter.ts; D <= 128: D / 16 × 4 a voter).',
    '// 1 by default: H200, 64K, NSA-style top-13 of 64-key blocks, 4 kv heads: ranking 6.82 → 6.06 ms at',
    '// 16 query heads, 22.5 → 19.1 ms at 64 (0: the statistics pass re-read every voter from L2 per chunk).',
    'constexpr int ROUTE_QREG = 1;',
    'constexpr bool route_qreg = ROUTE_QREG != 0 && ROUTE_VOTE && D <= 128;',
    'constexpr int ROUTE_QSET = ROUTE_QREG > 1 ? ROUTE_QREG : 1; // voters held at once',
    'constexpr int ROUTE_QF = D / 16; // k-steps of a held query fragment',
  ];
}

/**
 * Mask-independent helpers: the voter count, the shared-memory size (the launcher asks it too),
 * and the ranking order of (metric, id) pairs.
 */
export function sharedHelpers(nvoters: string): string[] {
  return [
    `__host__ __device__ __forceinline__ int route_voters(const Args& a) { (void)a; return ${nvoters}; }`,
    '// Dynamic shared memory: the f32 chunk in flight, split keys (hi, lo), four lists per row',
    '// (metric, id) and their lengths, vote statistics.',
    '__host__ __device__ __forceinline__ size_t route_tc_smem(const Args& a, const int ktop) {',
    '  return sizeof(float) * ROUTE_KC * D + 2 * sizeof(T) * ROUTE_KC * ROUTE_KP + 8 * (size_t)ROUTE_MQ * 4 * ktop +',
    '         4 * 4 * ROUTE_MQ + (ROUTE_VOTE ? 8 * (size_t)ROUTE_MQ * route_voters(a) : 0);',
    '}',
    '// (m1, id1) ranks before (m2, id2): larger metric first, then the lower id.',
    '__device__ __forceinline__ bool route_before(const float m1, const int id1, const float m2, const int id2) {',
    '  return m1 > m2 || (m1 == m2 && id1 < id2);',
    '}',
  ];
}
