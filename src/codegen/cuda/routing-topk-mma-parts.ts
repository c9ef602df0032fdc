// Parts of the tensor-core top-k (routing-topk-mma.ts): its names, the chunk classifier, the
// mma.sync wrapper, and the lambdas that stage a chunk of pooled keys as (hi, lo) 16-bit parts
// and multiply them with a warp's 16 query rows.
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

/** `stage_issue(c0, hkv)`, `split()` and `scores(h, acc)`, inside the kernel (lines indented for its body). */
export function stageAndScoreLambdas(): string[] {
  return [
    '  // Starts copying chunk c0 of kv head hkv (f32 pooled keys) into kst; blocks past nkb are 0.',
    '  // It lands while the block scores the chunk before (one f32 buffer: split() empties it first).',
    '  auto stage_issue = [&](const int c0, const int hkv) {',
    '    const float* src = a.route_scratch + (size_t)(b * a.Hkv + hkv) * route_nk_stride(a) * D;',
    '    for (int i = tid; i < ROUTE_KC * (D / 4); i += ROUTE_THREADS) {',
    '      const int j = i / (D / 4), d = (i % (D / 4)) * 4;',
    '      float* dst = kst + j * D + d;',
    '      if (c0 + j < nkb) route_cp16(dst, src + (size_t)(c0 + j) * D + d);',
    '      else *reinterpret_cast<float4*>(dst) = make_float4(0.f, 0.f, 0.f, 0.f);',
    '    }',
    '    route_cp_commit();',
    '  };',
    '  // The landed chunk as (hi, lo) 16-bit parts: hi = round(k), lo = round(k - hi).',
    '  auto split = [&]() {',
    '    for (int i = tid; i < ROUTE_KC * (D / 4); i += ROUTE_THREADS) {',
    '      const int j = i / (D / 4), d = (i % (D / 4)) * 4;',
    '      const float4 x = *reinterpret_cast<const float4*>(kst + j * D + d);',
    '      const float xs[4] = {x.x, x.y, x.z, x.w};',
    '      alignas(8) T h4[4], l4[4];',
    '#pragma unroll',
    '      for (int c = 0; c < 4; ++c) {',
    '        h4[c] = from_f32(xs[c]);',
    '        l4[c] = from_f32(xs[c] - to_f32(h4[c]));',
    '      }',
    '      if (route_qvec) {',
    '        // Dims 32p + 8t + o + {0,1} and {2,3} (o = 0 or 4) are columns 2t and 2t + 8 of k-step 2p + o / 4.',
    '        const int t = (d % 32) / 8, c = (d / 32 * 2 + (d % 8) / 4) * 16 + 2 * t;',
    '        const unsigned* hu = reinterpret_cast<const unsigned*>(h4);',
    '        const unsigned* lu = reinterpret_cast<const unsigned*>(l4);',
    '        *reinterpret_cast<unsigned*>(khi + j * ROUTE_KP + c) = hu[0];',
    '        *reinterpret_cast<unsigned*>(khi + j * ROUTE_KP + c + 8) = hu[1];',
    '        *reinterpret_cast<unsigned*>(klo + j * ROUTE_KP + c) = lu[0];',
    '        *reinterpret_cast<unsigned*>(klo + j * ROUTE_KP + c + 8) = lu[1];',
    '      } else {',
    '        *reinterpret_cast<float2*>(khi + j * ROUTE_KP + d) = *reinterpret_cast<const float2*>(h4); // 4 parts',
    '        *reinterpret_cast<float2*>(klo + j * ROUTE_KP + d) = *reinterpret_cast<const float2*>(l4);',
    '      }',
    '    }',
    '  };',
    '  // acc = a.scale · q_h · k over the staged chunk: the 16 rows of this warp × ROUTE_KC blocks.',
    '  auto scores = [&](const int h, float (&acc)[ROUTE_KC / 8][4]) {',
    '    const T* q = q_row(a, b, h, 0);',
    '    const int r0 = wr0 + gq, r1 = wr0 + gq + 8;',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;',
    "    // This lane's ldmatrix row: key (lane / 16) · 8 + lane % 8 of a pair of 8-key groups, and the",
    '    // first or second 8 of the 16 columns of a k-step.',
    '    const int lrow = ((lane >> 4) * 8 + (lane & 7)) * ROUTE_KP + ((lane >> 3) & 1) * 8;',
    '    // route_qvec: 128-bit loads need 16-byte aligned rows, else four 32-bit loads of the same dims.',
    '    const bool q16 = route_qvec && (reinterpret_cast<size_t>(q) & 15) == 0 && a.q_stride_n % 8 == 0;',
    '    const uint4 q0 = {0u, 0u, 0u, 0u};',
    '    uint4 qv[2] = {q0, q0}; // rows r0, r1: dims 32p + 8 t4 .. + 8 (route_qvec)',
    '#pragma unroll ROUTE_KUNROLL',
    '    for (int kk = 0; kk < D / 16; ++kk) {',
    '      unsigned qa[4];',
    '      if (route_qvec) {',
    '        if (kk % 2 == 0) {',
    '          const int d = kk * 16 + 8 * t4;',
    '#pragma unroll',
    '          for (int rr = 0; rr < 2; ++rr) {',
    '            const int r = rr == 0 ? r0 : r1;',
    '            const unsigned* p = reinterpret_cast<const unsigned*>(q + r * a.q_stride_n + d);',
    '            if (r >= a.Nq) qv[rr] = q0;',
    '            else if (q16) qv[rr] = __ldg(reinterpret_cast<const uint4*>(p));',
    '            else qv[rr] = make_uint4(__ldg(p), __ldg(p + 1), __ldg(p + 2), __ldg(p + 3));',
    '          }',
    '        }',
    '        const bool odd = kk % 2 != 0;',
    '        qa[0] = odd ? qv[0].z : qv[0].x;',
    '        qa[1] = odd ? qv[1].z : qv[1].x;',
    '        qa[2] = odd ? qv[0].w : qv[0].y;',
    '        qa[3] = odd ? qv[1].w : qv[1].y;',
    '      } else {',
    '        const int d = kk * 16 + 2 * t4;',
    '        qa[0] = r0 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r0 * a.q_stride_n + d)) : 0u;',
    '        qa[1] = r1 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r1 * a.q_stride_n + d)) : 0u;',
    '        qa[2] = r0 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r0 * a.q_stride_n + d + 8)) : 0u;',
    '        qa[3] = r1 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r1 * a.q_stride_n + d + 8)) : 0u;',
    '      }',
    '#pragma unroll',
    '      for (int j = 0; j < ROUTE_KC / 8; j += 2) {',
    '        unsigned bh[4], bl[4];',
    '        route_ldsm(bh, khi + j * 8 * ROUTE_KP + kk * 16 + lrow);',
    '        route_ldsm(bl, klo + j * 8 * ROUTE_KP + kk * 16 + lrow);',
    '        route_mma(acc[j], qa, bh[0], bh[1]);',
    '        route_mma(acc[j + 1], qa, bh[2], bh[3]);',
    '        route_mma(acc[j], qa, bl[0], bl[1]);',
    '        route_mma(acc[j + 1], qa, bl[2], bl[3]);',
    '      }',
    '    }',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '      for (int e = 0; e < 4; ++e) {',
    '        const float x = a.scale * acc[j][e];',
    '        acc[j][e] = isnan(x) ? -INFINITY : x; // NaN ranks as -inf',
    '      }',
    '  };',
  ];
}
