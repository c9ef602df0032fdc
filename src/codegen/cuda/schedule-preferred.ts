// The CUDA schedule defaults the H200 tables picked per family of kernels, tried before
// schedule-rules.ts's generic candidate table: gapped masks (ballot tile scans), tensor-summary
// masks (wgmma-ws, producer walk, FA3 consumers), dense masks (wsDense with its tweaks), 2-D
// neighbourhood patches, pooled block routing, staged prefill over quantized caches, and `qk
// int8`'s tensor-core pick.
// Kept apart from the candidate/fit rules because these are measurements (each cites its table)
// and change with every tuning round, while the rules only change with the renderers.
import { neighbourhoodDefault } from './patch-tweaks.js';
import { hasQuantizedKv } from '../../ir/formats.js';
import type { Schedule, WsTweak } from '../../ir/kernel.js';
import type { Candidate, ScheduleBase, ScheduleKernelFacts } from '../../ir/passes/schedule.js';
import { hasGappedTileRuns } from '../../ir/passes/tile-gaps.js';
import { pooledBlocks } from '../../ir/routing.js';

/** A default the H200 table picked for a family of masks: tiles plus wgmma-ws tuning fields. */
export type Preferred = Candidate &
  Pick<Schedule, 'wsProducerWalk' | 'wsConsumers' | 'wsTweaks' | 'patchTweaks'>;

const wsWalk: Preferred = {
  blockQ: 128,
  blockK: 128,
  threads: 384,
  stages: 2,
  engine: 'wgmma-ws',
  wsProducerWalk: true,
};
const wgmma64: Preferred = { blockQ: 64, blockK: 64, threads: 128, stages: 2, engine: 'wgmma' };

/**
 * Masks whose live key tiles come in runs far apart (tile-gaps.ts: sinks + window) take ballot
 * tile scans on the tensor-core engines; first wgmma-ws 128 × 128 with FlashAttention-3's consumers
 * and the dense default's tweaks (wsDense below), then wgmma 64 × 64. H100, round 17
 * (bench/results/device-calls-h100-2026-12-05-r17/c12-*, bf16 D = 128, same process): 0.724 /
 * 1.465 ms at 16K / 32K against 0.798 / 1.562 for round 2's H200 pick, the producer walking the
 * tiles for serial consumers (which had beaten wgmma 64 × 64, 0.99 / 2.04 on the H200); with the
 * walk the tweaked FA3 consumers were slower (0.99 / 2.36); the H200 read 0.712 / 1.486 (1.50× /
 * 1.34× Flex). Measured at D = 128 only.
 */
function gappedFirst(base: ScheduleBase, quantized: boolean): readonly Preferred[] {
  return base.headDim === 128 && base.valueDim === 128 && !quantized ? [wsDense, wgmma64] : [wgmma64];
}

/**
 * Masks classified through tensor summaries (document ids), at D = 128 where it was measured: the
 * producer walks the tiles and the consumers are FlashAttention-3's with the dense default's tweaks
 * but splitKv (which the walk does not combine with), over 96-key tiles in three stages. H100,
 * round 19 (device call 16, bench/cuda/doc-list.mjs, same process, memcheck and racecheck clean):
 * 0.929 / 3.526 ms at 16K / 32K (1.25× / 1.24× Flex) against 1.109 / 4.321 for round 17's
 * 128-key tiles in two stages (1.05× / 1.01×), 1.363 / 5.398 for 112-key and 1.459 / 5.814 for
 * 64-key tiles. Round 17 (H100): the 128-key pick 1.079 / 4.101 against 1.207 / 4.710 untweaked.
 * The 128-key pick stays second, for limits that refuse the third stage. Not for quantized K/V:
 * the producer warpgroup converts their tiles.
 */
function summaryFirst(base: ScheduleBase, kernel: ScheduleKernelFacts): readonly Preferred[] {
  if ((kernel.summaries?.length ?? 0) === 0 || hasQuantizedKv(kernel.formats)) return [];
  if (base.headDim !== 128 || base.valueDim !== 128) return [];
  const walked: Preferred = {
    ...wsWalk,
    wsConsumers: 'fa3',
    wsTweaks: wsDenseTweaks.filter((t) => t !== 'splitKv'),
  };
  return [{ ...walked, blockK: 96, stages: 3 }, walked];
}

/**
 * The dense prefill default (issue 13 item 5): FlashAttention-3's consumers with the wsTweaks that
 * carry its mainloop's details (wgmma-ws-tweaks.ts). H200 bf16 D = 128, 16K (dense5 tuning run,
 * 2026-12-04): full 6.63 ms (0.98× SDPA) vs 8.24 for the serial 128 × 176 tile, causal 3.32 (1.02×)
 * vs 3.80 for the serial 128 × 128; without foldScale 7.27 / 3.61, untweaked 9.69 / 5.59.
 */
export const wsDenseTweaks: readonly WsTweak[] = [
  'splitKv',
  'fastExp',
  'lazyRescale',
  'zeroInit',
  'pvN128',
  'rescaleInTurn',
  'foldScale',
];
const wsDense: Preferred = {
  blockQ: 128,
  blockK: 128,
  threads: 384,
  stages: 2,
  engine: 'wgmma-ws',
  wsConsumers: 'fa3',
  wsTweaks: wsDenseTweaks,
};

/**
 * Masks the consumers classify (no tensor summaries, no gapped runs) at D = 128, where it was
 * measured; not for quantized K/V (the producer converts whole tiles: no splitKv), not with
 * per-key hoists (heavy_hitter's kept[] spills 8 bytes in these consumers), and not when the user
 * tunes the wgmma-ws fields (then those fields on the plain candidates).
 */
function denseFirst(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  o: Partial<Schedule>,
): readonly Preferred[] {
  // Staged prefill (quant-stage.ts): the schedule is the float twin's, which attends over bf16/f16.
  const floatTiles = !hasQuantizedKv(kernel.formats) || stagesByDefault(kernel, o);
  if (base.headDim !== 128 || base.valueDim !== 128 || !floatTiles) return [];
  if ((kernel.hoists?.key.length ?? 0) > 0) return [];
  const tuned = [o.wsConsumers, o.wsProducerWalk, o.wsTweaks, o.wsDequant].some((f) => f !== undefined);
  return tuned ? [] : [wsDense];
}

/**
 * Pooled block routing over blocks of 128 keys or a multiple (BiFormer-style), D = 128, 16-bit K/V:
 * the dense default's wgmma-ws consumers. Every 128-row q-tile is then uniform (one selection) and
 * walks only its selected tiles; FA3's consumers hide the short walk's softmax under the matrix
 * products. H100 (round 17, bench/cuda/routing.sh, B 2 H 16, top 8 of 128-blocks), attention alone:
 * 0.619 / 1.255 ms at 16K / 32K against 0.956 / 1.916 for wgmma 128 × 128 and 0.839 / 1.572 for
 * FlexAttention with the same block mask; the serial wgmma-ws consumers took 1.658 / 3.274. The
 * H200: 0.622 / 1.248 ms against Flex's 0.852 / 1.666. Over 64-blocks wgmma 64 × 64 stays (208
 * TFLOP/s there against 149 for wgmma-ws 64 × 64, on both cards).
 */
function routedFirst(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  o: Partial<Schedule>,
): readonly Preferred[] {
  const size = kernel.routing && pooledBlocks(kernel.routing);
  if (size === undefined || size % 128 !== 0) return [];
  if (base.headDim !== 128 || base.valueDim !== 128 || hasQuantizedKv(kernel.formats)) return [];
  if ((kernel.hoists?.key.length ?? 0) > 0) return [];
  const tuned = [o.engine, o.wsConsumers, o.wsProducerWalk, o.wsTweaks].some((f) => f !== undefined);
  return tuned ? [] : [wsDense];
}

/**
 * Tensor-core prefill over a quantized cache is staged (quant-stage.ts: dequantize once into a
 * workspace, then the float engine) unless the schedule says 'fused': H200 16K int8, fused 3.3x
 * bf16's time, staged 1.3x with the serial float tile (the dequant pass 0.15 ms of it). Not paged
 * or routed kernels (stagedProblem refuses them).
 */
export function stagesByDefault(kernel: ScheduleKernelFacts, o: Partial<Schedule>): boolean {
  if (!hasQuantizedKv(kernel.formats) || o.quantPrefill === 'fused') return false;
  return kernel.formats.paged === undefined && kernel.routing === undefined;
}

/** The preferences apply unless the user or a layout pass chose tiles or an order. */
export function preferredFirst(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  o: Partial<Schedule>,
): { readonly gapped: boolean; readonly first: readonly Preferred[] } {
  const none = { gapped: false, first: [] };
  if (o.blockQ !== undefined || o.blockK !== undefined || o.tileScan !== undefined) return none;
  // 2-D neighbourhood patches: the H200's pick (patch-tweaks.ts), measured over 16-bit float K/V;
  // its row table gathers plain rows, not the dequantizing loaders of quantized caches.
  const patched =
    kernel.neighbourhood !== undefined &&
    kernel.residue === undefined &&
    kernel.routing === undefined &&
    !hasQuantizedKv(kernel.formats);
  const pick = patched ? neighbourhoodDefault(base.headDim, base.valueDim) : undefined;
  if (pick) return { gapped: false, first: [pick] };
  if (kernel.residue !== undefined || kernel.neighbourhood !== undefined) return none;
  if (kernel.routing !== undefined) return { gapped: false, first: routedFirst(base, kernel, o) };
  if (hasGappedTileRuns(kernel))
    return { gapped: true, first: gappedFirst(base, hasQuantizedKv(kernel.formats)) };
  if ((kernel.summaries?.length ?? 0) > 0) return { gapped: false, first: summaryFirst(base, kernel) };
  return { gapped: false, first: denseFirst(base, kernel, o) };
}

/**
 * `qk int8`'s tensor-core default (codegen/cuda/int8qk-wgmma.ts), tried first, unasked, at D = 128
 * over bf16/f16 K and V (elsewhere the SIMT engine stays the statement's default). Ping-pong
 * consumers with foldScale (the raw s32 sums into the max, the scale in the exp2's FFMA): call 44
 * (H100, bench/cuda/int8qk.sh, 16K, one process) checked every variant, then timed it at 0.99×
 * attnc bf16 full and 1.05× causal, where the same consumers without foldScale ran 0.80× / 0.75×,
 * round 25's I2F build 0.94× / 1.03×, FlashAttention-3's consumers 0.79–0.81× / 0.71–0.74×.
 */
export const int8QkWsDefault: Preferred = {
  blockQ: 128,
  blockK: 128,
  threads: 384,
  stages: 2,
  engine: 'wgmma-ws',
  wsConsumers: 'pingpong',
  wsTweaks: ['fastExp', 'lazyRescale', 'pvN128', 'regs240', 'foldScale'],
};

/** qk int8: the tensor-core schedule tried first when nothing is asked (int8QkWsDefault unless given). */
export function int8QkFirst(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  o: Partial<Schedule>,
  preferred: Preferred = int8QkWsDefault,
): readonly Preferred[] {
  if (o.engine !== undefined || o.blockQ !== undefined || o.blockK !== undefined) return [];
  // The s8 kernel's own limits (int8qk-wgmma.ts int8QkWsProblem): one 128-byte row of codes,
  // K and V read in place.
  if (base.headDim !== 128 || hasQuantizedKv(kernel.formats) || kernel.formats.paged !== undefined) return [];
  return [preferred];
}
