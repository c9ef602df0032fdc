// The kernels of the tensor-core CUDA backward besides the dK/dV tile body (backward-mma-tile.ts):
// the preprocess (delta = rowsum(dO∘O)), the dK/dV kernel around the tile body (one CTA per key
// tile, over the q-tiles of every head of its GQA group, skipping empty ones), and the dq
// conversion (dq = scale·dq_acc in the storage type).
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { dkdvOverGroup, keyTileLoads, keyTileSetup, statsSmemDecls } from './backward-dkdv-parts.js';
import { qTileLoop } from './backward-dkdv-loop.js';
import { tileLambda } from './backward-mma-tile.js';

/** dst[0] += x, dst[1] += y: one 8-byte atomic on sm_90 (dst is 8-byte aligned), two before. */
export const add2Helper = [
  '__device__ __forceinline__ void add2(float* dst, float x, float y) {',
  '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900',
  '  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(x, y));',
  '#else',
  '  atomicAdd(dst, x);',
  '  atomicAdd(dst + 1, y);',
  '#endif',
  '}',
];

/** delta[row] = Σ dO·O − dlse over the row: DV/8 threads per row, 16-byte loads, a shuffle reduction. */
export const preprocessKernel = [
  '__global__ void __launch_bounds__(THREADS) bwd_pre(const Args a) {',
  '  constexpr int TPR = DV / 8, RPB = THREADS / TPR; // threads per row, rows per block',
  '  const long long rows = (long long)a.B * a.H * a.Nq;',
  '  const long long r = (long long)blockIdx.x * RPB + threadIdx.x / TPR;',
  '  const int c = threadIdx.x % TPR;',
  '  float acc = 0.f;',
  '  if (r < rows) {',
  '    const uint4 go = *reinterpret_cast<const uint4*>(a.dout + r * DV + c * 8);',
  '    const uint4 o = *reinterpret_cast<const uint4*>(a.out + r * DV + c * 8);',
  '    const T* gp = reinterpret_cast<const T*>(&go);',
  '    const T* op = reinterpret_cast<const T*>(&o);',
  '#pragma unroll',
  '    for (int i = 0; i < 8; ++i) acc += to_f32(gp[i]) * to_f32(op[i]);',
  '  }',
  '#pragma unroll',
  '  for (int m = TPR / 2; m > 0; m >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, m);',
  "  // lse's gradient (∂lse/∂score′ = P) enters as dscore′ = P (dP − (delta − dlse)).",
  '  if (r < rows && c == 0) a.delta[r] = a.dlse ? acc - a.dlse[r] : acc;',
  '}',
];

/** dq = scale·dq_acc, 8 elements a thread. */
export const dqOutKernel = [
  '__global__ void __launch_bounds__(THREADS) bwd_dq_out(const Args a) {',
  '  const long long n8 = (long long)a.B * a.H * a.Nq * D / 8;',
  '  const long long i = (long long)blockIdx.x * THREADS + threadIdx.x;',
  '  if (i >= n8) return;',
  '  const float4 x0 = reinterpret_cast<const float4*>(a.dq_acc)[2 * i];',
  '  const float4 x1 = reinterpret_cast<const float4*>(a.dq_acc)[2 * i + 1];',
  '  const float s = a.scale;',
  '  uint4 o;',
  '  o.x = pack2(s * x0.x, s * x0.y); o.y = pack2(s * x0.z, s * x0.w);',
  '  o.z = pack2(s * x1.x, s * x1.y); o.w = pack2(s * x1.z, s * x1.w);',
  '  reinterpret_cast<uint4*>(a.dq)[i] = o;',
  '}',
];

export function dkdvKernel(x: BackwardMmaExprs, deterministic: boolean): string[] {
  const np = deterministic ? 0 : x.grad.params.length;
  const o = x.order;
  const head = qTileLoop(x, {
    loader: 'load_rows',
    tile: () => tileLambda(x, deterministic),
    afterWait: [],
    call: [
      `if (!full || k_tail || (qt + 1) * BM > ${o.nq}) tile(Flag<true>{}, qt, buf);`,
      'else tile(Flag<false>{}, qt, buf); // full tile: no predicate',
    ],
  });
  return [
    '__global__ void __launch_bounds__(THREADS) bwd_dkdv(const Args a) {',
    '  extern __shared__ float4 smem4[];',
    '  T* Ks = reinterpret_cast<T*>(smem4); // [BN][D], swizzled',
    '  T* Vs = Ks + BN * D;                 // [BN][DV]',
    '  T* Qs = Vs + BN * DV;                // [2][BM][D]',
    '  T* Os = Qs + 2 * BM * D;             // [2][BM][DV]: dO',
    '  T* Ss = Os + 2 * BM * DV;            // [BM][BN]: dS',
    ...statsSmemDecls(x),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    ...keyTileSetup(x),
    ...keyTileLoads(x, 'load_rows', 'tid'),
    '  cp_commit();',
    ...dkdvOverGroup(head, np, o),
    '}',
  ];
}
