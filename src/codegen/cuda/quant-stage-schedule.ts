// The fused path's schedule of a staged kernel (quant-stage.ts): apart so that renderCuda
// (kernel.ts) can render a staged kernel's fused part without importing the staged renderer.
import type { AttentionKernel, Schedule } from '../../ir/kernel.js';
import type { TensorFormats } from '../../ir/formats.js';
import { cudaLimits, type CudaLimits } from './plan.js';
import { wgmmaWsSharedBytes } from './wgmma-ws-plan.js';
import { wsStagingBytes } from './wgmma-ws-dq.js';

/**
 * The fused path's schedule: the kernel's (chosen for the float twin: the wgmma-ws code-word staging not
 * counted), with blockK lowered until the wgmma-ws producer's staging buffers fit beside it, and
 * the `keyHoists` per-key values (4 bytes a key each, static __shared__ arrays: wgmma-ws.ts) too —
 * without them a mask reading two tensors at k (`keep[k] != 0 && doc[k] == doc[q]`) at D = 128
 * took a blockK whose tiles left no room for its hoists, and compile() refused the program.
 */
export function fusedSchedule(
  s: Schedule,
  formats: TensorFormats,
  limits: CudaLimits = cudaLimits,
  keyHoists = 0,
): Schedule {
  if (s.engine !== 'wgmma-ws') return s;
  // The float twin's FlashAttention-3 consumers, tweaks and producer walk are not for converted
  // tiles (the producer converts them whole): the fused path keeps the plain wgmma-ws consumers.
  const { wsConsumers: _c, wsTweaks: _t, wsProducerWalk: _w, ...plain } = s;
  const fits = (b: number): boolean =>
    wgmmaWsSharedBytes({ ...plain, blockK: b }) +
      wsStagingBytes({ ...plain, blockK: b }, formats) +
      4 * b * keyHoists <=
    limits.maxSharedBytes;
  const blockK = [s.blockK, 128, 64].find((b) => b <= s.blockK && fits(b)) ?? s.blockK;
  return Object.freeze({ ...plain, blockK } as Schedule);
}

/** Values the attention hoists per key (of the residue classes' plan where that one runs). */
export function keyHoistCount(kernel: AttentionKernel): number {
  return Math.max(kernel.hoists.key.length, kernel.residue?.hoists?.key.length ?? 0);
}
