// The kernels of the tensor-core CUDA backward besides the dK/dV tile body (backward-mma-tile.ts):
// the preprocess (delta = rowsum(dO∘O)), the dK/dV kernel around the tile body (one CTA per key
// tile, over the q-tiles of every head of its GQA group, skipping empty ones), and the dq
// conversion (dq = scale·dq_acc in the storage type).
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { tileLambda } from './backward-mma-tile.js';

const indent = (lines: readonly string[], pad: string): string[] =>
  lines.map((l) => (l && !l.startsWith('#') ? pad + l : l));

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

/** delta[row] = Σ dO·O over the row: DV/8 threads per row, 16-byte loads, a shuffle reduction. */
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
  '  if (r < rows && c == 0) a.delta[r] = acc;',
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

/**
 * `next_tile(qt, full)`: the first non-empty tile (of `count`) at or after qt, and whether it is
 * full; `bounds` defines q_lo q_hi k_lo k_hi of tile qt. Dynamic classifiers are asked 32 tiles at a time, a lane per tile (one
 * step per 32 tiles for runs of empty ones, and one latency for classifiers that read summaries).
 */
export function nextTile(x: BackwardMmaExprs, count: string, bounds: string): string[] {
  if (x.mode !== 'dynamic') {
    return [
      'auto next_tile = [&](const int qt, bool& full) {',
      `  full = ${x.mode === 'full'};`,
      `  return ${x.mode === 'empty' ? count : 'qt'};`,
      '};',
    ];
  }
  return [
    'auto classify = [&](const int qt, bool& full) -> bool {',
    `  ${bounds}`,
    '  (void)q_lo; (void)q_hi; (void)k_lo; (void)k_hi;',
    ...indent(x.classify, '  '),
    '  full = !can_false;',
    '  return can_true;',
    '};',
    'int scan = -32;',
    'unsigned ne_bits = 0u, full_bits = 0u; // q-tiles scan .. scan + 31: non-empty, full',
    'auto next_tile = [&](int qt, bool& full) {',
    `  while (qt < ${count}) {`,
    '    if (qt >= scan + 32) {',
    '      scan = qt;',
    '      bool f = false;',
    `      const bool ne = qt + lane < ${count} && classify(qt + lane, f);`,
    '      ne_bits = __ballot_sync(0xffffffffu, ne);',
    '      full_bits = __ballot_sync(0xffffffffu, ne && f);',
    '    }',
    '    const unsigned rest = ne_bits & (0xffffffffu << (qt - scan));',
    '    if (rest) {',
    '      const int i = __ffs(rest) - 1;',
    '      full = (full_bits >> i) & 1u;',
    '      return scan + i;',
    '    }',
    '    qt = scan + 32;',
    '  }',
    '  full = false;',
    `  return ${count};`,
    '};',
  ];
}

export function dkdvKernel(x: BackwardMmaExprs, deterministic: boolean): string[] {
  const np = deterministic ? 0 : x.grad.params.length;
  const head = [
    'const int h = hkv * group + hg;',
    'const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq;',
    ...nextTile(
      x,
      'nqt',
      'const int q_lo = a.q_offset + qt * BM, q_hi = a.q_offset + min((qt + 1) * BM, a.Nq) - 1;',
    ),
    'auto load_q = [&](const int qt, const int buf) {',
    '  const int q0 = qt * BM;',
    '  load_rows<D, BM>(Qs + buf * (BM * D), a.q + (qrow0 + q0) * D, a.Nq - q0, tid);',
    '  load_rows<DV, BM>(Os + buf * (BM * DV), a.dout + (qrow0 + q0) * DV, a.Nq - q0, tid);',
    '  for (int i = tid; i < BM; i += THREADS) {',
    '    float l = INFINITY, d = 0.f; // +inf: exp2(score - l) = 0, no gradient (past Nq, or no allowed key)',
    '    if (q0 + i < a.Nq) {',
    '      const float x = a.lse[qrow0 + q0 + i];',
    '      l = x == -INFINITY ? INFINITY : x * LOG2E;',
    '      d = a.delta[qrow0 + q0 + i];',
    '    }',
    '    Ls[buf * BM + i] = l;',
    '    Ds[buf * BM + i] = d;',
    '  }',
    '};',
    ...tileLambda(x, deterministic),
    'bool full, nfull;',
    'int qt = next_tile(0, full), buf = 0;',
    'if (qt < nqt) load_q(qt, 0);',
    'cp_commit();',
    'while (qt < nqt) {',
    '  const int nq = next_tile(qt + 1, nfull);',
    '  if (nq < nqt) load_q(nq, buf ^ 1); // the next q-tile streams in while this one computes',
    '  cp_commit();',
    '  cp_wait<1>();',
    '  __syncthreads();',
    '  if (!full || k_tail || (qt + 1) * BM > a.Nq) tile(Flag<true>{}, qt, buf);',
    '  else tile(Flag<false>{}, qt, buf); // full tile: no predicate',
    '  buf ^= 1;',
    '  qt = nq;',
    '  full = nfull;',
    '}',
  ];
  return [
    '__global__ void __launch_bounds__(THREADS) bwd_dkdv(const Args a) {',
    '  extern __shared__ float4 smem4[];',
    '  T* Ks = reinterpret_cast<T*>(smem4); // [BN][D], swizzled',
    '  T* Vs = Ks + BN * D;                 // [BN][DV]',
    '  T* Qs = Vs + BN * DV;                // [2][BM][D]',
    '  T* Os = Qs + 2 * BM * D;             // [2][BM][DV]: dO',
    '  T* Ss = Os + 2 * BM * DV;            // [BM][BN]: dS',
    '  float* Ls = reinterpret_cast<float*>(Ss + BM * BN); // [2][BM]: lse·log2 e',
    '  float* Ds = Ls + 2 * BM;             // [2][BM]: delta',
    ...(x.slots
      ? ['  float* Xs = Ds + 2 * BM;             // [SLOTS][WARPS][NT][4][32]: carried per-element values']
      : []),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    '  const int b = blockIdx.z, hkv = blockIdx.y, k0 = blockIdx.x * BN, group = a.H / a.Hkv;',
    '  const size_t krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk + k0;',
    '  const int nqt = (a.Nq + BM - 1) / BM;',
    '  const int k_lo = a.k_offset + k0, k_hi = a.k_offset + min(k0 + BN, a.Nk) - 1;',
    '  const bool k_tail = k0 + BN > a.Nk;',
    '  (void)k_lo; (void)k_hi;',
    '  load_rows<D, BN>(Ks, a.k + krow0 * D, a.Nk - k0, tid);',
    '  load_rows<DV, BN>(Vs, a.v + krow0 * DV, a.Nk - k0, tid);',
    '  cp_commit();',
    '  float dk[D / 8][4], dv[DV / 8][4];',
    '#pragma unroll',
    '  for (int n = 0; n < D / 8; ++n) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = 0.f;',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n) dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f;',
    ...(np ? [`  float gp[${np}] = {};`] : []),
    '  for (int hg = 0; hg < group; ++hg) {',
    ...indent(head, '    '),
    '  }',
    '  cp_wait<0>();',
    '  // dk = scale·Σ dSᵀ·Q, dv = Σ Pᵀ·dO (summed over the GQA group above).',
    '#pragma unroll',
    '  for (int r = 0; r < 2; ++r) {',
    '    const int kl = warp * 16 + g + 8 * r;',
    '    if (k0 + kl >= a.Nk) continue;',
    '    T* dkr = a.dk + (krow0 + kl) * D + t4 * 2;',
    '    T* dvr = a.dv + (krow0 + kl) * DV + t4 * 2;',
    '#pragma unroll',
    '    for (int n = 0; n < D / 8; ++n)',
    '      *reinterpret_cast<unsigned*>(dkr + n * 8) = pack2(a.scale * dk[n][2 * r], a.scale * dk[n][2 * r + 1]);',
    '#pragma unroll',
    '    for (int n = 0; n < DV / 8; ++n)',
    '      *reinterpret_cast<unsigned*>(dvr + n * 8) = pack2(dv[n][2 * r], dv[n][2 * r + 1]);',
    '  }',
    ...(np
      ? [
          "  // Param gradients: this thread's sums, reduced over the warp, one atomic per warp.",
          '#pragma unroll',
          `  for (int n = 0; n < ${np}; ++n) {`,
          '    float v = gp[n];',
          '#pragma unroll',
          '    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);',
          '    if (lane == 0) atomicAdd(a.grads + n, v);',
          '  }',
        ]
      : []),
    '}',
  ];
}
