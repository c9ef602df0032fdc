// Parts of the tensor-core top-k (routing-topk-mma.ts): its names, the chunk classifier, the
// mma.sync wrapper, and the lambdas that stage a chunk of pooled keys as (hi, lo) 16-bit parts
// and multiply them with a warp's 16 query rows.
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { cudaRenderer, type CudaContext } from './rules.js';

export const ROUTE_TC_THREADS = 128;
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
    '// c += a·b, m16n8k16, 16-bit inputs, f32 accumulators (the PTX of mma-device.ts, own name).',
    '__device__ __forceinline__ void route_mma(float (&c)[4], const unsigned (&x)[4], const unsigned b0, const unsigned b1) {',
    `  asm("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "`,
    '      "{%0, %1, %2, %3};\\n"',
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(x[0]), "r"(x[1]), "r"(x[2]), "r"(x[3]), "r"(b0), "r"(b1));',
    '}',
  ];
}

/** `stage(c0, hkv)` and `scores(h, acc)`, inside the kernel (lines indented for its body). */
export function stageAndScoreLambdas(): string[] {
  return [
    '  // Stages pooled keys of chunk c0 of kv head hkv as (hi, lo) 16-bit parts; blocks past nkb are 0.',
    '  auto stage = [&](const int c0, const int hkv) {',
    '    const float* src = a.route_scratch + (size_t)(b * a.Hkv + hkv) * route_nk_stride(a) * D;',
    `    constexpr int PER = ROUTE_KC * (D / 4) / ${ROUTE_TC_THREADS}, BATCH = PER < 4 ? PER : 4;`,
    '#pragma unroll 1',
    '    for (int it0 = 0; it0 < PER; it0 += BATCH) {',
    '      float4 x[BATCH]; // BATCH loads in flight before the first conversion',
    '#pragma unroll',
    '      for (int u = 0; u < BATCH; ++u) {',
    `        const int i = tid + (it0 + u) * ${ROUTE_TC_THREADS}, j = i / (D / 4), d = (i % (D / 4)) * 4;`,
    '        x[u] = c0 + j < nkb ? __ldg(reinterpret_cast<const float4*>(src + (size_t)(c0 + j) * D + d))',
    '                            : make_float4(0.f, 0.f, 0.f, 0.f);',
    '      }',
    '#pragma unroll',
    '      for (int u = 0; u < BATCH; ++u) {',
    `        const int i = tid + (it0 + u) * ${ROUTE_TC_THREADS}, j = i / (D / 4), d = (i % (D / 4)) * 4;`,
    '        const float xs[4] = {x[u].x, x[u].y, x[u].z, x[u].w};',
    '#pragma unroll',
    '        for (int c = 0; c < 4; ++c) {',
    '          const T hi = from_f32(xs[c]);',
    '          khi[j * ROUTE_KP + d + c] = hi;',
    '          klo[j * ROUTE_KP + d + c] = from_f32(xs[c] - to_f32(hi));',
    '        }',
    '      }',
    '    }',
    '  };',
    '  // acc = a.scale · q_h · k over the staged chunk: the 16 rows of this warp × 64 blocks.',
    '  auto scores = [&](const int h, float (&acc)[ROUTE_KC / 8][4]) {',
    '    const T* q = q_row(a, b, h, 0);',
    '    const int r0 = wr0 + gq, r1 = wr0 + gq + 8;',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;',
    '#pragma unroll 2',
    '    for (int kk = 0; kk < D / 16; ++kk) {',
    '      const int d = kk * 16 + 2 * t4;',
    '      unsigned qa[4];',
    '      qa[0] = r0 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r0 * a.q_stride_n + d)) : 0u;',
    '      qa[1] = r1 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r1 * a.q_stride_n + d)) : 0u;',
    '      qa[2] = r0 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r0 * a.q_stride_n + d + 8)) : 0u;',
    '      qa[3] = r1 < a.Nq ? __ldg(reinterpret_cast<const unsigned*>(q + r1 * a.q_stride_n + d + 8)) : 0u;',
    '#pragma unroll',
    '      for (int j = 0; j < ROUTE_KC / 8; ++j) {',
    '        const int o = (j * 8 + gq) * ROUTE_KP + d;',
    '        route_mma(acc[j], qa, *reinterpret_cast<const unsigned*>(khi + o), *reinterpret_cast<const unsigned*>(khi + o + 8));',
    '        route_mma(acc[j], qa, *reinterpret_cast<const unsigned*>(klo + o), *reinterpret_cast<const unsigned*>(klo + o + 8));',
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
