// Parts of the tensor-core top-k (routing-topk-mma.ts): its names, the chunk classifier, and the
// mma.sync, ldmatrix, cp.async and f16 conversion helpers. (Staging and scoring: routing-topk-mma-scores.ts.)
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
    ...f16Helpers(dtype),
  ];
}

/**
 * ROUTE_F16's helpers: the mma on f16 inputs whatever the storage type, two f32 as an f16 pair,
 * a query fragment register (two storage values) scaled by a power of two into an f16 pair, its
 * largest magnitude, and the power-of-two shifts (route_f16_shift) that keep every converted value
 * finite in f16 and above its normal floor (see routing-topk-mma-scores.ts's header).
 */
function f16Helpers(dtype: 'f16' | 'bf16'): string[] {
  const unpack =
    dtype === 'f16'
      ? [
          '  __half h[2];',
          '  memcpy(h, &u, sizeof h);',
          '  f[0] = __half2float(h[0]);',
          '  f[1] = __half2float(h[1]);',
        ]
      : [
          '  const unsigned w[2] = {u << 16, u & 0xffff0000u}; // bf16 bits are the high half of an f32',
          '  memcpy(f, w, sizeof w);',
        ];
  return [
    '// c += a·b, m16n8k16, f16 inputs, f32 accumulators (ROUTE_F16: one f16 key part, f16 queries).',
    '__device__ __forceinline__ void route_mma_h(float (&c)[4], const unsigned (&x)[4], const unsigned b0, const unsigned b1) {',
    '  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "',
    '      "{%0, %1, %2, %3};\\n"',
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(x[0]), "r"(x[1]), "r"(x[2]), "r"(x[3]), "r"(b0), "r"(b1));',
    '}',
    '// (lo, hi) rounded to f16, lo in the low 16 bits (the order of a fragment register): one cvt.',
    '__device__ __forceinline__ unsigned route_h2(const float lo, const float hi) {',
    '  unsigned r;',
    '  asm("cvt.rn.f16x2.f32 %0, %1, %2;\\n" : "=r"(r) : "f"(hi), "f"(lo)); // a (hi) goes to the upper half',
    '  return r;',
    '}',
    '// The two storage values of a fragment register as f32 (exact).',
    '__device__ __forceinline__ void route_q2f(const unsigned u, float (&f)[2]) {',
    ...unpack,
    '}',
    '// A fragment register of two storage values, times up (a power of two: exact), as two f16.',
    '__device__ __forceinline__ unsigned route_qh(const unsigned u, const float up) {',
    '  float f[2];',
    '  route_q2f(u, f);',
    '  return route_h2(f[0] * up, f[1] * up);',
    '}',
    "// The larger magnitude of a fragment register's two values.",
    '__device__ __forceinline__ float route_qabs(const unsigned u) {',
    '  float f[2];',
    '  route_q2f(u, f);',
    '  return fmaxf(fabsf(f[0]), fabsf(f[1]));',
    '}',
    '// The shift s for values of largest magnitude mx (>= 0, not NaN): mx · 2^s in [2^14, 2^15), so every',
    '// value · 2^s is finite in f16 (< 65504) and a value is subnormal there only below 2^-28 · mx;',
    '// s is clamped to [-113, smax]: 2^s and 2^-s (the undo) are then normal f32. mx = inf: s = -113',
    '// (the finite values still fit, inf stays inf); mx = 0: s = smax (zeros stay zeros).',
    '__device__ __forceinline__ int route_f16_shift(const float mx, const int smax) {',
    '  unsigned bits;',
    '  memcpy(&bits, &mx, sizeof bits);',
    '  return ROUTE_F16_SCALE ? min(max(141 - (int)(bits >> 23), -113), smax) : 0; // 141 = 127 + 14',
    '}',
    '// 2^s as an f32, s in [-126, 127].',
    '__device__ __forceinline__ float route_pow2(const int s) {',
    '  const unsigned bits = (unsigned)(127 + s) << 23;',
    '  float f;',
    '  memcpy(&f, &bits, sizeof f);',
    '  return f;',
    '}',
    '// 1 / p for p = 2^s, s in [-126, 127] (the biased exponent 127 + s becomes 127 - s).',
    '__device__ __forceinline__ float route_inv_pow2(const float p) {',
    '  unsigned bits;',
    '  memcpy(&bits, &p, sizeof bits);',
    '  return route_pow2(127 - (int)(bits >> 23));',
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
