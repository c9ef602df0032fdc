// The tensor-core CUDA backward (issue 14; sm_80+, mma.sync m16n8k16, f16/bf16 in, f32
// accumulate), FlashAttention-2's algorithm:
//   bwd_pre     delta = rowsum(dO∘O);
//   bwd_dkdv    a CTA per key tile of BN keys (a warp per 16 keys) over the q-tiles of every head
//               of its GQA group (so dK and dV are summed over the group in registers): S recomputed
//               from q·kᵀ and the saved lse, P = exp(score′ − lse), dV += Pᵀ·dO, dP = dO·Vᵀ,
//               dS = P∘(dP − delta)∘∂score′/∂score (derive.ts), dK += dSᵀ·Q, and dQ += dS·K added
//               with f32 atomics into dq_acc; q-tiles are classified as in the forward (empty ones
//               skipped, full ones without the predicate);
//   bwd_dq_out  dq = scale·dq_acc in the storage type.
// Param and tensor gradients (f32) are added with atomics into `grads` (order-dependent in the last
// bits, as dq is). The deterministic mode (backward-mma-dq.ts) replaces the dq atomics by bwd_dq, a
// kernel per q-tile over key tiles (two more GEMMs), and sums the param gradients in a fixed order;
// tensor gradients have no deterministic tensor-core path (the SIMT backward, backward.ts, has one).
import type { AttentionKernel } from '../../ir/kernel.js';
import { sharedStorage } from '../../ir/formats.js';
import { dkdvKernel } from './backward-mma-kernels.js';
import { mmaDeviceHelpers, ROWS_LOADER } from './mma-device.js';
import {
  renderTensorCoreBackward,
  type CudaBackwardMmaArtifact,
  type TensorCoreBackwardEngine,
} from './backward-tensor-core.js';
import { hoistBytes, type SmemNeeds } from './backward-mask-hoists.js';

export type { CudaBackwardMmaArtifact } from './backward-tensor-core.js';

/**
 * Queries per step of the dK/dV loop: 64 at D = 64; 32 at D = 128, where the dK and dV
 * accumulators take 128 registers a thread and 64-query Sᵀ and dPᵀ blocks (32 registers each)
 * would spill (measured: 280 bytes).
 */
export const bwdBlockQ = (headDim: number): number => (headDim <= 64 ? 64 : 32);
/**
 * Keys per CTA (a warp per 16): each (q-tile, key-tile) pair adds its BM × D block of dQ with
 * atomics, so wider key tiles mean fewer atomics per FLOP (S²·D / BN in all).
 */
export const BWD_BN = 128;
export const BWD_WARPS = BWD_BN / 16;
const THREADS = BWD_WARPS * 32;

/** Why the mma backward cannot run `kernel` (undefined when it can). */
export function backwardMmaUnsupported(kernel: AttentionKernel): string | undefined {
  if (kernel.routing)
    return 'the tensor-core CUDA backward does not take routing/selection kernels; the SIMT backward does (--backward-engine simt)';
  const f = kernel.formats;
  if (f.paged) return 'the tensor-core CUDA backward does not read paged caches yet';
  for (const name of ['q', 'k', 'v', 'out'] as const) {
    if (f[name].kind !== 'float')
      return `the tensor-core CUDA backward does not read quantized caches (${name})`;
  }
  const dtype = sharedStorage(f);
  if (dtype === 'f32')
    return 'the tensor-core CUDA backward needs f16 or bf16 storage (the SIMT backward is f32)';
  const s = kernel.schedule;
  if (s.headDim !== s.valueDim)
    return `the tensor-core CUDA backward needs valueDim = headDim (got ${s.valueDim} and ${s.headDim})`;
  for (const [key, d] of [
    ['headDim', s.headDim],
    ['valueDim', s.valueDim],
  ] as const) {
    if (d !== 64 && d !== 128) return `the tensor-core CUDA backward needs ${key} 64 or 128 (got ${d})`;
  }
  return undefined;
}

export function backwardMmaSmemBytes(s: { headDim: number; valueDim: number }, x: SmemNeeds): number {
  const [BM, BN, D, DV] = [bwdBlockQ(Math.max(s.headDim, s.valueDim)), BWD_BN, s.headDim, s.valueDim];
  const tiles = 2 * (BN * D + BN * DV + 2 * BM * D + 2 * BM * DV + BM * BN);
  const stats = 4 * 4 * BM + hoistBytes(x.dkdvMask, BM, BN) + x.order.positionBytes(BM, BN);
  return tiles + stats + 4 * x.slots * BWD_WARPS * (BM / 8) * 4 * 32;
}

const mmaEngine: TensorCoreBackwardEngine = {
  unsupported: backwardMmaUnsupported,
  title: (dtype) => `(CUDA tensor cores, mma.sync ${dtype}, sm_80+): see codegen/cuda/backward-mma.ts.`,
  warps: BWD_WARPS,
  threads: THREADS,
  smemBytes: (s, x) => backwardMmaSmemBytes(s, x),
  tiling: (s) => [
    `constexpr int BM = ${bwdBlockQ(Math.max(s.headDim, s.valueDim))}, BN = ${BWD_BN}, WARPS = ${BWD_WARPS}, THREADS = ${THREADS};`,
    'static_assert(BM % 16 == 0 && BN == 16 * WARPS && WARPS % (BM / 16) == 0 && (D / 8) % (WARPS / (BM / 16)) == 0, "tiling");',
  ],
  flagNote: [],
  includes: [],
  dkdv: (x, deterministic) => dkdvKernel(x, deterministic),
  deviceHelpers: (_s, dtype) => mmaDeviceHelpers(dtype),
  loader: ROWS_LOADER,
};

/** The tensor-core backward of a compiled (forward, f16/bf16) kernel; throws when it has none. */
export function renderCudaBackwardMma(
  kernel: AttentionKernel,
  options: { readonly deterministic?: boolean } = {},
): CudaBackwardMmaArtifact {
  return { kind: 'cuda-backward-mma', ...renderTensorCoreBackward(kernel, mmaEngine, options) };
}
