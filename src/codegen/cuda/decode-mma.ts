// Tensor-core split-KV decode (sm_80+, mma.sync m16n8k16): FlashInfer's / FlashDecoding++'s decode
// shape, beside decode.ts's SIMT split kernel. A block covers one (KV split, group of 16 packed
// rows, kv head, batch); the packed rows (the GQA group's query heads × Nq) are the MMA's M, padded
// to 16 with zero rows (at GQA 4, Nq 1: 12 of 16 rows are padding; tensor cores have the throughput
// to waste, the SIMT kernel spent 4 FMAs per element on CUDA cores). Each of the WARPS warps takes
// its own KEYS keys of every tile: S = Q·Kᵀ on mma (Q's A fragments held in registers for the whole
// split, K's B fragments by ldmatrix from row-major K rows), the online softmax (base 2) per row in
// registers, and O += P·V with P's C fragments repacked as A fragments and V's B fragments by
// ldmatrix.trans. K/V tiles stream through STAGES shared-memory buffers by 16-byte cp.async
// (decode-pipe.ts's dec_cp), rows padded by 16 bytes so ldmatrix's 8 row addresses fall in
// distinct bank groups. At the end the warps' states are combined through shared memory into the
// SIMT kernel's partial layout (part_slot: rows in tiles of MT), so merge.ts's kernel is shared.
//
// Rounding against the SIMT kernel: q·k sums in the MMA's f32 accumulation order (not the 8-lane
// shuffle order), the score is q·k · (scale · log2 e) (one rounding less), and p is rounded to the
// storage type (bf16/f16) before P·V, as every tensor-core attention kernel does (rel. error
// ≤ 2^-8 per weight, bf16). Compared with the float64 reference like the prefill mma engine.
//
// Masks and score modifiers apply to the S fragments (decode-elements.ts's tile_class, elem_mask,
// elem_score per element, as in the SIMT kernel); with dynamic tile classes a tile no row of the
// block may see is neither fetched nor computed (the block agrees through __syncthreads_or).
// Taken for 16-bit float K/V, D and Dv multiples of 16, 16-byte rows, and for the quantized caches
// of decode-mma-quant.ts, KIVI int4 / int2 caches (decode-mma-kivi.ts; -DATTNC_DEC_MMA_KIVI=0 gives
// them the SIMT kernel) and per-token int4 / int2 caches (decode-mma-tokint.ts; the key-major kernel
// only), each packed or paged (decode-mma-paged.ts); f32 and other quantized
// caches keep the SIMT kernel. The host takes
// it on devices of compute capability 8.0 and up (decode-host.ts) unless built with
// -DATTNC_DEC_MMA=0 or run with ATTNC_DECODE_MMA=0. The CPU emulator (test/cuda/decode-mma-emu.ts)
// runs it with warp-level C++ stand-ins for the PTX wrappers (same fragment layouts).
// Lean per-step code (rescale on a warp-voted max rise, one row half when rows 8..15 are padding):
// decode-mma-lean.ts, on by default for quantized caches (Schedule.decodeLean decides).
// This file assembles the kernel; its knobs and `#ifndef` defaults are in decode-mma-knobs.ts, the
// per-tile Q / score / softmax / P·V lines in decode-mma-step.ts, the key-tile loop in
// decode-mma-tiles.ts, the warps' combine in decode-mma-combine.ts.
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { mmaCacheLines, mmaCacheOf, type MmaCacheLines } from './decode-mma-kinds.js';
import { tileKnobMacros } from './decode-mma-quant.js';
import { kiviRescale, kiviVBias } from './decode-mma-kivi.js';
import { kiviTail } from './decode-mma-kivi-tail.js';
import { keyMajorKernel, keyMajorKind, kmHelpers, kmSwitch } from './decode-mma-km.js';
import { combineWarpStates } from './decode-mma-combine.js';
import { mmaKnobs } from './decode-mma-knobs.js';
import { decodeLeanOf, leanHelpers, leanStream } from './decode-mma-lean.js';
import { classifiedRows, laneRows, type MmaElements } from './decode-mma-step.js';
import {
  softmaxLines,
  splitKernelClose,
  splitKernelOpen,
  stageFetch,
  tileClassLines,
  tileLoopLines,
  warpStepLines,
} from './decode-mma-tiles.js';

export { mmaPtx } from './decode-mma-device.js';
export { MMA_KNOB_DEFAULTS, MMA_ROWS } from './decode-mma-knobs.js';
export type { MmaElements } from './decode-mma-step.js';

/** Whether the kernel has a tensor-core decode path: 16-bit float K/V, 16-byte rows, D, Dv multiples of 16. */
export function hasMmaDecode(k: AttentionKernel, vectorWidth: number): boolean {
  // int8 / fp8 per token, KIVI int4 / int2, per-token int4 / int2 (decode-mma-kinds.ts MmaCache).
  if (mmaCacheOf(k).kind !== 'dense') return true;
  if (k.formats.k.kind !== 'float' || k.formats.v.kind !== 'float') return false;
  const dtype = sharedStorage(k.formats);
  if (dtype === 'f32') return false;
  const s = k.schedule;
  // 16-byte copies of whole rows, ldmatrix pairs of 8-column tiles.
  return vectorWidth * 2 === 16 && s.headDim % 16 === 0 && s.valueDim % 16 === 0;
}

/** Defined by the CPU emulator's build (test/cuda/decode-mma-emu.ts), which swaps mmaPtx's wrappers for warp-level C++. */
export const MMA_EMU_MACRO = 'ATTNC_EMU_DECODE_MMA';
/** The dynamic shared memory declaration (the emulator replaces it). */
export const MMA_SMEM_DECL = 'extern __shared__ float4 dm_smem[];';

/** Device code of the tensor-core kernel (namespace dec, after part_slot and decode-pipe's helpers). */
export function mmaDecodeDevice(
  k: AttentionKernel,
  el: MmaElements,
  field: (key: string) => string,
): string[] {
  const cacheKind = mmaCacheOf(k);
  const quant = cacheKind.kind === 'quant' ? cacheKind.quant : undefined;
  const kivi = cacheKind.kind === 'kivi' ? cacheKind.kivi : undefined;
  const cache = mmaCacheLines(k, cacheKind, field);
  const knob = tileKnobMacros(cacheKind.kind !== 'dense');
  const { fetchBarrier, classify } = tileClassLines(el);
  const lean = decodeLeanOf(k) !== 'off';
  const sm = softmaxLines(el, lean);
  const km = keyMajorKind(k, cacheKind, el, field, classify); // the key-major kernel, behind its switch
  const smem = [`  ${MMA_SMEM_DECL}`, ...cache.smem];
  const fetch = stageFetch(fetchBarrier, cache.fetch);
  // Only where the kind has a query-major kernel (not per-token int4 / int2: km.only).
  const queryMajor = (): string[] => {
    const tileLoop = tileLoopLines(el.dynamic, classify, warpStepLines(quant, kivi, lean, sm));
    return [
      ...kernelHead(el.dynamic, cache, knob.minBlocks),
      ...smem,
      ...fetch,
      ...(lean ? leanStream(tileLoop) : tileLoop),
      ...(kivi && kivi.recent > 0
        ? kiviTail(field, classify, sm('kw + dmq_key(j, e & 1)', kiviRescale, '2'))
        : []),
      ...(kivi ? kiviVBias : []),
      ...combineWarpStates(cache.outColumn),
      ...splitKernelClose,
    ];
  };
  const frame = { minBlocks: knob.minBlocks, keys: cache.keys, smem, fetch, classify };
  return [
    '// ---- tensor-core split kernel (sm_80+): codegen/cuda/decode-mma.ts ----',
    ...(km ? kmSwitch(km) : []),
    ...mmaKnobs(k, cacheKind, km?.tiles),
    `constexpr int MMA_ROWS = ${km ? '(ATTNC_DEC_MMA_KM ? 8 : 16)' : '16'}, MMA_WARPS = ${knob.warps}, MMA_KEYS = ${knob.keys};`,
    `constexpr int MMA_THREADS = 32 * MMA_WARPS, MMA_TILE = MMA_WARPS * MMA_KEYS, MMA_STAGES = ${knob.stages};`,
    ...cache.constants,
    'constexpr size_t MMA_COMBINE = sizeof(float) * (size_t)MMA_WARPS * MMA_ROWS * (DV + 2);',
    'constexpr size_t MMA_SMEM = MMA_STREAM > MMA_COMBINE ? MMA_STREAM : MMA_COMBINE; // dynamic, per block',
    'static_assert(MMA_SMEM <= 227 * 1024, "decode mma: ATTNC_DEC_MMA_STAGES x WARPS x KEYS keys need more than 227 KiB of shared memory per block");',
    `#if defined(__CUDACC__) || defined(${MMA_EMU_MACRO}) // plain emulator builds skip it`,
    ...cache.helpers,
    ...(lean || km ? leanHelpers : []),
    ...(km ? ['#if ATTNC_DEC_MMA_KM', ...kmHelpers, ...km.helpers, '#endif'] : []),
    '',
    ...(km?.only
      ? keyMajorKernel(km, el, frame)
      : km
        ? ['#if ATTNC_DEC_MMA_KM', ...keyMajorKernel(km, el, frame), '#else', ...queryMajor(), '#endif']
        : queryMajor()),
    '#endif // __CUDACC__',
  ];
}

/**
 * The kernel's signature and its block's setup: Q's fragments, the rows this thread classifies
 * (dynamic tile classes), the warp's softmax state and output, the split's keys and row handles.
 */
function kernelHead(dynamic: boolean, cache: MmaCacheLines, minBlocks: string): string[] {
  return [
    ...splitKernelOpen(minBlocks, '  constexpr int NT = MMA_KEYS / 8; // key tiles of 8 per warp and tile'),
    ...cache.loadQ,
    ...laneRows,
    ...(dynamic ? classifiedRows : []),
    '  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 8][4];',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
    '  [[maybe_unused]] const float sl2 = a.scale * LOG2E; // identity scores: one multiply to base 2',
    ...cache.keys,
  ];
}
