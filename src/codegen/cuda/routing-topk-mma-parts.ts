// Parts of the tensor-core top-k (routing-topk-mma.ts): its names, the chunk classifier, and the
// mma.sync, ldmatrix and cp.async helpers. (Staging and scoring: routing-topk-mma-scores.ts.)
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
