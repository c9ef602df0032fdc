// The dK/dV(/dQ) kernel of the Hopper backward (backward-wgmma.ts): a CTA per (key tile of BN = 128
// keys, kv head, batch), two warpgroups of 64 keys each, over the q-tiles (BM = 64 queries) of
// every head of its GQA group, so dK and dV are summed over the group in registers. K and V stay
// in shared memory; Q, dO, lse and delta of the next non-empty q-tile stream in by cp.async while
// this one computes (double buffer). Tiles are 128B-swizzled 64-wide panels (wgmma's layout).
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { nextTile } from './backward-mma-kernels.js';
import { wgmmaTileLambda } from './backward-wgmma-tile.js';
import { NO_TUNE, type BackwardWgmmaTune } from './backward-wgmma-tune.js';

const indent = (lines: readonly string[], pad: string): string[] =>
  lines.map((l) => (l && !l.startsWith('#') ? pad + l : l));

/** Dynamic shared memory of the kernel (bytes), with 1024 bytes of slack for the alignment. */
export function wgmmaSmemBytes(d: number, dv: number, slots: number): number {
  const [BM, BN, THREADS] = [64, 128, 256];
  const tiles = 2 * (BN * d + BN * dv + 2 * BM * d + 2 * BM * dv + BM * BN);
  return 1024 + tiles + 4 * 4 * BM + 4 * slots * THREADS * (BM / 8) * 4;
}

export function wgmmaDkdvKernel(
  x: BackwardMmaExprs,
  deterministic: boolean,
  tune: BackwardWgmmaTune = NO_TUNE,
): string[] {
  const np = deterministic ? 0 : x.grad.params.length;
  const head = [
    ...headWalk(x),
    'auto load_q = [&](const int qt, const int buf) {',
    '  const int q0 = qt * BM;',
    '  load_panel<D, BM>(Qs + buf * (BM * D), a.q + (qrow0 + q0) * D, a.Nq - q0, tid);',
    '  load_panel<DV, BM>(Os + buf * (BM * DV), a.dout + (qrow0 + q0) * DV, a.Nq - q0, tid);',
    ...lseDeltaLoad('tid', 'THREADS'),
    '};',
    ...wgmmaTileLambda(x, deterministic, undefined, tune),
    'bool full, nfull;',
    'int qt = next_tile(0, full), buf = 0;',
    'if (qt < nqt) load_q(qt, 0);',
    'cp_commit();',
    'while (qt < nqt) {',
    '  const int nq = next_tile(qt + 1, nfull);',
    '  if (nq < nqt) load_q(nq, buf ^ 1); // the next q-tile streams in while this one computes',
    '  cp_commit();',
    '  cp_wait<1>();',
    '  proxy_fence(); // cp.async wrote through the generic proxy; wgmma reads through the async one',
    '  __syncthreads();',
    '  tile(!full || k_tail || (qt + 1) * BM > a.Nq, qt, buf); // full tiles skip the predicate',
    '  buf ^= 1;',
    '  qt = nq;',
    '  full = nfull;',
    '}',
  ];
  return [
    '__global__ void __launch_bounds__(THREADS, 1) bwd_dkdv(const Args a) {',
    '#if !ATTNC_SM90A',
    '  __trap(); // the compute_90 PTX image: no wgmma there',
    '#endif',
    '  extern __shared__ __align__(1024) unsigned char smem_raw[];',
    '  // wgmma swizzles by address bits: every tile starts on a 1024-byte boundary.',
    '  T* Ks = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u)); // [BN][D] panels',
    '  T* Vs = Ks + BN * D;                 // [BN][DV]',
    '  T* Qs = Vs + BN * DV;                // [2][BM][D]',
    '  T* Os = Qs + 2 * BM * D;             // [2][BM][DV]: dO',
    '  T* Ss = Os + 2 * BM * DV;            // [BM][BN]: dS, [query][key] panels',
    '  float* Ls = reinterpret_cast<float*>(Ss + BM * BN); // [2][BM]: lse·log2 e',
    '  float* Ds = Ls + 2 * BM;             // [2][BM]: delta',
    ...(x.slots
      ? ['  float* Xs = Ds + 2 * BM;             // [SLOTS][WARPS][NT][4][32]: carried per-element values']
      : []),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4, wg = warp / 4;',
    '  (void)wg;',
    '  const int b = blockIdx.z, hkv = blockIdx.y, k0 = blockIdx.x * BN, group = a.H / a.Hkv;',
    '  const size_t krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk + k0;',
    '  const int nqt = (a.Nq + BM - 1) / BM;',
    '  const int k_lo = a.k_offset + k0, k_hi = a.k_offset + min(k0 + BN, a.Nk) - 1;',
    '  const bool k_tail = k0 + BN > a.Nk;',
    '  (void)k_lo; (void)k_hi;',
    "  const T* Kw = Ks + wg * 64 * 64; // this warpgroup's 64 keys: rows 64·wg.. of each panel",
    '  const T* Vw = Vs + wg * 64 * 64;',
    '  load_panel<D, BN>(Ks, a.k + krow0 * D, a.Nk - k0, tid);',
    '  load_panel<DV, BN>(Vs, a.v + krow0 * DV, a.Nk - k0, tid);',
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
    ...dkdvEpilogue(np),
    '}',
  ];
}

/** The query head `h` of GQA step hg, its first row, and next_tile over its q-tiles. */
export function headWalk(x: BackwardMmaExprs): string[] {
  return [
    'const int h = hkv * group + hg;',
    'const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq;',
    ...nextTile(
      x,
      'nqt',
      'const int q_lo = a.q_offset + qt * BM, q_hi = a.q_offset + min((qt + 1) * BM, a.Nq) - 1;',
    ),
  ];
}

/** lse·log2 e and delta of q-tile q0's rows into buffer `buf`, thread `id` of `count`. */
export function lseDeltaLoad(id: string, count: string): string[] {
  return [
    `  for (int i = ${id}; i < BM; i += ${count}) {`,
    '    float l = INFINITY, d = 0.f; // +inf: exp2(score - l) = 0, no gradient (past Nq, or no allowed key)',
    '    if (q0 + i < a.Nq) {',
    '      const float x = a.lse[qrow0 + q0 + i];',
    '      l = x == -INFINITY ? INFINITY : x * LOG2E;',
    '      d = a.delta[qrow0 + q0 + i];',
    '    }',
    '    Ls[buf * BM + i] = l;',
    '    Ds[buf * BM + i] = d;',
    '  }',
  ];
}

/** dK and dV out of the accumulators (storage type), then the param gradients (`np` of them). */
export function dkdvEpilogue(np: number): string[] {
  return [
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
  ];
}
