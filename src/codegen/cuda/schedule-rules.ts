// The CUDA backend's part of the schedule pass (ir/passes/schedule.ts): its candidates, preferred
// first, and its fit rule, which is the renderer's own check (plan.ts, mma-plan.ts, wgmma-plan.ts,
// wgmma-ws-plan.ts) under the user's limits, so the pass never picks what the renderer refuses.
import { describeSchedule } from '../common.js';
import { neighbourhoodDefault } from './patch-tweaks.js';
import { hasQuantizedKv, sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Engine, Schedule, WsTweak } from '../../ir/kernel.js';
import {
  wants64Tiles,
  type Candidate,
  type ScheduleBase,
  type ScheduleKernelFacts,
  type ScheduleMisfit,
  type ScheduleRules,
  type TargetLimits,
} from '../../ir/passes/schedule.js';
import { hasGappedTileRuns } from '../../ir/passes/tile-gaps.js';
import { cudaLimitsOf, cudaScheduleProblem, cudaSharedBytes } from './plan.js';
import { wsStagingBytes } from './wgmma-ws-dq.js';

/**
 * Preferred first: 64-query blocks of 4 warps over 64-key tiles and up. The tensor-core engines
 * are offered for 16-bit storage at the head dims they are tuned for (tensorCoreTuned).
 */
const candidates: readonly Candidate[] = [
  // Warp-specialized Hopper engine (wgmma-ws): the wgmma tiles plus a TMA producer warpgroup
  // (threads = 2·blockQ + 128) over a 2-stage mbarrier ring; 1.1–1.3× wgmma on the H100 (3 stages
  // measured no faster). Unmasked kernels take 176-key tiles, as FlashAttention-3 does (+4% on
  // full at 16K; causal is 5% slower with them), where the dense default (wsDense) does not apply.
  { blockQ: 128, blockK: 176, threads: 384, stages: 2, engine: 'wgmma-ws' },
  { blockQ: 128, blockK: 128, threads: 384, stages: 2, engine: 'wgmma-ws' },
  { blockQ: 128, blockK: 64, threads: 384, stages: 2, engine: 'wgmma-ws' },
  // Hopper warpgroup MMA (wgmma): 2 warpgroups × 64 query rows over double-buffered 128-key K/V
  // tiles (160 KiB at D = 128, so under the default 99 KiB budget D = 128 takes 64-key tiles).
  // 1.6–1.8× the mma engine on the H100 (docs/PERFORMANCE.md).
  { blockQ: 128, blockK: 128, threads: 256, stages: 2, engine: 'wgmma' },
  { blockQ: 128, blockK: 64, threads: 256, stages: 2, engine: 'wgmma' },
  // One warpgroup over 64-key tiles: the tile of block routing with 64-blocks and a pooled
  // query side (every q-tile one selection, every key tile one block: 2.3× the 128 × 128
  // schedule on the H100, docs/PERFORMANCE.md "Block routing").
  { blockQ: 64, blockK: 64, threads: 128, stages: 2, engine: 'wgmma' },
  // Tensor cores by mma.sync (engine: 'mma' selects it): a warp per 16 query rows, 8 warps
  // sharing double-buffered 64-key K/V tiles (96 KiB of shared memory at D = 128).
  { blockQ: 128, blockK: 64, threads: 256, stages: 2, engine: 'mma' },
  { blockQ: 64, blockK: 64, threads: 128, stages: 2, engine: 'mma' },
  // SIMT (FMA units): any dtype and head dim.
  { blockQ: 64, blockK: 64, threads: 128, stages: 1 },
  { blockQ: 64, blockK: 32, threads: 128, stages: 1 },
  { blockQ: 32, blockK: 32, threads: 64, stages: 1 },
  { blockQ: 16, blockK: 16, threads: 32, stages: 1 },
];

/** A default the H200 table picked for a family of masks: tiles plus wgmma-ws tuning fields. */
type Preferred = Candidate & Pick<Schedule, 'wsProducerWalk' | 'wsConsumers' | 'wsTweaks' | 'patchTweaks'>;

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
 * tile scans on the tensor-core engines; first wgmma-ws 128 × 128 with the producer walking the
 * tiles, then wgmma 64 × 64: the H200 tables' winners (bench/results/cuda-table-h200-round2-
 * 2026-12-03.json, bf16 D = 128: 0.93 / 1.87 ms at 16K / 32K, vs 0.99 / 2.04 for wgmma 64 × 64
 * and 1.16 / 2.75 for wgmma-ws classifying in the consumers). The walk was measured at D = 128 only.
 */
function gappedFirst(base: ScheduleBase, quantized: boolean): readonly Preferred[] {
  return base.headDim === 128 && base.valueDim === 128 && !quantized ? [wsWalk, wgmma64] : [wgmma64];
}

/**
 * Masks classified through tensor summaries (document ids), at D = 128 where it was measured: the
 * producer walks the tiles and the consumers ping-pong (FlashAttention-3's schedule): 1.18 / 4.62
 * ms at 16K / 32K vs 1.31 / 4.99 for the plain wgmma-ws schedule (same table). Not for quantized
 * K/V: the producer warpgroup converts their tiles.
 */
function summaryFirst(base: ScheduleBase, kernel: ScheduleKernelFacts): readonly Preferred[] {
  if ((kernel.summaries?.length ?? 0) === 0 || hasQuantizedKv(kernel.formats)) return [];
  return base.headDim === 128 && base.valueDim === 128 ? [{ ...wsWalk, wsConsumers: 'fa3' }] : [];
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
 * Tensor-core prefill over a quantized cache is staged (quant-stage.ts: dequantize once into a
 * workspace, then the float engine) unless the schedule says 'fused': H200 16K int8, fused 3.3x
 * bf16's time, staged 1.3x with the serial float tile (the dequant pass 0.15 ms of it). Not paged
 * or routed kernels (stagedProblem refuses them).
 */
function stagesByDefault(kernel: ScheduleKernelFacts, o: Partial<Schedule>): boolean {
  if (!hasQuantizedKv(kernel.formats) || o.quantPrefill === 'fused') return false;
  return kernel.formats.paged === undefined && kernel.routing === undefined;
}

/** The preferences apply unless the user or a layout pass chose tiles or an order. */
function preferredFirst(
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
  if (kernel.residue !== undefined || kernel.neighbourhood !== undefined || kernel.routing !== undefined)
    return none;
  if (hasGappedTileRuns(kernel))
    return { gapped: true, first: gappedFirst(base, hasQuantizedKv(kernel.formats)) };
  if ((kernel.summaries?.length ?? 0) > 0) return { gapped: false, first: summaryFirst(base, kernel) };
  return { gapped: false, first: denseFirst(base, kernel, o) };
}

/**
 * `qk int8`'s tensor-core default (codegen/cuda/int8qk-wgmma.ts), set once the H200 has checked
 * and timed its variants (bench/cuda/int8qk.sh): undefined keeps the SIMT engine the statement's
 * default; a schedule here is tried first, unasked, at D = 128 over bf16/f16 K and V.
 */
export const int8QkWsDefault: Preferred | undefined = undefined;

/** qk int8: the tensor-core schedule tried first when nothing is asked (none by default). */
export function int8QkFirst(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  o: Partial<Schedule>,
  preferred: Preferred | undefined = int8QkWsDefault,
): readonly Preferred[] {
  if (preferred === undefined || o.engine !== undefined || o.blockQ !== undefined || o.blockK !== undefined)
    return [];
  // The s8 kernel's own limits (int8qk-wgmma.ts int8QkWsProblem): one 128-byte row of codes,
  // K and V read in place.
  if (base.headDim !== 128 || hasQuantizedKv(kernel.formats) || kernel.formats.paged !== undefined) return [];
  return [preferred];
}

/**
 * SIMT: each thread holds blockQ·(D+Dv)/threads q and accumulator values in registers; above ~64
 * the kernel spills, so wide heads get more threads (D=128 → 256).
 */
const registerBudget = 64;
function fitThreads(c: Candidate, headDim: number, valueDim: number): Candidate {
  const need = Math.ceil((c.blockQ * (headDim + valueDim)) / registerBudget / 32) * 32;
  return { ...c, threads: Math.min(1024, Math.max(c.threads, need)) };
}

/** Head dims the tensor-core engines are scheduled for (their cores render more from a schedule). */
const tunedDims = [64, 128];
function tensorCoreTuned(s: Schedule, formats: TensorFormats): boolean {
  return sharedStorage(formats) !== 'f32' && tunedDims.includes(s.headDim) && tunedDims.includes(s.valueDim);
}

/** The wgmma-ws tuning fields ask for that engine (another engine would ignore them). */
function wsFieldsEngine(asked: Partial<Schedule>): Partial<Schedule> {
  if (
    asked.wsConsumers === undefined &&
    asked.wsProducerWalk === undefined &&
    asked.wsDequant === undefined &&
    asked.wsTweaks === undefined
  )
    return asked;
  if (asked.engine !== undefined && asked.engine !== 'wgmma-ws')
    throw new Error(
      `wsConsumers, wsProducerWalk and wsDequant tune the wgmma-ws engine; the schedule asks for ${asked.engine}`,
    );
  return { engine: 'wgmma-ws', ...asked };
}

function cudaCandidates(
  base: ScheduleBase,
  asked: Partial<Schedule>,
  kernel: ScheduleKernelFacts,
  limits: TargetLimits,
): Schedule[] {
  const o = wsFieldsEngine(asked);
  const runs = (e: Engine | undefined): boolean => limits.engines?.includes(e ?? 'simt') ?? true;
  if (o.engine !== undefined && !runs(o.engine))
    throw new Error(
      `engine ${o.engine} does not run on ${limits.arch ?? 'cuda'} (it runs ${limits.engines!.join(', ')})`,
    );
  // Quantized K/V caches: the tensor-core engines convert their tiles (dequant-tile.ts); the
  // producer warpgroup of wgmma-ws does the converting, so it cannot also walk the tiles.
  const quantized = hasQuantizedKv(kernel.formats);
  if (quantized && o.wsProducerWalk)
    throw new Error('wsProducerWalk: the producer warpgroup converts quantized K/V tiles; leave it out');
  // Paged caches: the TMA unit cannot zero a last page's rows past Nk (kv-load-tma.ts), so the
  // cp.async engines (which zero-fill them) and SIMT run them.
  const paged = kernel.formats.paged !== undefined;
  if (paged && o.engine === 'wgmma-ws')
    throw new Error('paged K/V caches run on the wgmma, mma and simt engines; wgmma-ws: not yet');
  // qk int8: the SIMT engine by default (int8qk-simt.ts), or int8QkWsDefault once set; wgmma-ws
  // when asked for (int8qk-wgmma.ts: its plain candidates, serial consumers unless asked).
  const int8Qk = kernel.qkInt8 !== undefined;
  if (int8Qk && o.engine !== undefined && o.engine !== 'simt' && o.engine !== 'wgmma-ws')
    throw new Error(`qk int8 runs on the simt and wgmma-ws engines; ${o.engine}: not yet`);
  const staged = stagesByDefault(kernel, o);
  const routed64 = wants64Tiles(kernel, o);
  const preferred = preferredFirst(base, kernel, o);
  const gapped = preferred.gapped;
  const first = int8Qk ? int8QkFirst(base, kernel, o) : preferred.first;
  const out: Schedule[] = [];
  for (const c of [...first, ...candidates]) {
    if (!runs(c.engine)) continue;
    if (paged && c.engine === 'wgmma-ws') continue;
    if (
      int8Qk &&
      c.engine !== undefined &&
      o.engine !== 'wgmma-ws' &&
      !(first as readonly Candidate[]).includes(c)
    )
      continue;
    if (routed64 && c.engine === 'wgmma' && c.blockQ !== 64) continue;
    // An explicit engine skips the other tensor-core engines' candidates (their tiles suit them).
    if (c.engine !== undefined && o.engine !== undefined && c.engine !== o.engine) continue;
    // wgmma-ws is not chosen unasked for dilated kernels (wgmma runs their residue classes, 2.6×
    // faster), neighbourhood ones (wgmma runs their 2-D patches: ~3× fewer keys) or routed ones
    // (no routing on it); its 176-key tiles only for unmasked kernels.
    if (c.engine === 'wgmma-ws' && o.engine !== 'wgmma-ws') {
      if (kernel.residue !== undefined || kernel.neighbourhood !== undefined || kernel.routing !== undefined)
        continue;
    }
    // pv e4m3 (int8qk-pv-wgmma.ts): V codes come as one 128-byte row of 128 keys per channel.
    if (kernel.pvE4m3 !== undefined && c.engine === 'wgmma-ws' && c.blockK !== 128 && o.blockK === undefined)
      continue;
    if (c.engine === 'wgmma-ws' && c.blockK > 128 && o.blockK === undefined) {
      if (kernel.tiles?.kind !== 'static' || kernel.tiles.value !== 'full') continue;
    }
    const s: Schedule = Object.freeze({
      ...base,
      ...(c.engine !== undefined ? c : fitThreads(c, base.headDim, base.valueDim)),
      ...(c.engine === undefined ? { engine: 'simt' as const } : {}),
      ...(gapped && c.engine !== undefined ? { tileScan: 'ballot' as const } : {}),
      ...(staged && c.engine !== undefined ? { quantPrefill: 'staged' as const } : {}),
      ...o,
    });
    // Unasked, a tensor-core engine is tried only where it is tuned (else SIMT runs).
    if (o.engine === undefined && s.engine !== 'simt' && !tensorCoreTuned(s, kernel.formats)) continue;
    out.push(s);
  }
  return out;
}

/**
 * The renderer's check: first the engine's own rules (with unbounded resources), then the
 * device's threads and shared memory from the user's limits.
 */
function cudaMisfit(s: Schedule, formats: TensorFormats, limits: TargetLimits): ScheduleMisfit | undefined {
  const cl = cudaLimitsOf(limits);
  const unbounded = { ...cl, maxThreadsPerBlock: Infinity, maxSharedBytes: Infinity };
  const problem = cudaScheduleProblem(s, formats, unbounded);
  if (problem !== undefined) return { kind: 'engine', reason: problem };
  const engine = s.engine ?? 'simt';
  if (engine !== 'simt' && !tensorCoreTuned(s, formats)) {
    const reason = `${describeSchedule(s, sharedStorage(formats))}: the ${engine} engine is scheduled for 16-bit storage and headDim and valueDim in {${tunedDims.join(', ')}} only`;
    return { kind: 'engine', reason };
  }
  // wgmma-ws stages a quantized cache's code words beside its tiles (wgmma-ws-dq.ts).
  // (Staged prefill, quant-stage.ts: the schedule is the float twin's; the fused fallback fits its own.)
  const staging = engine === 'wgmma-ws' && s.quantPrefill !== 'staged' ? wsStagingBytes(s, formats) : 0;
  if (s.threads > cl.maxThreadsPerBlock || cudaSharedBytes(s) + staging > cl.maxSharedBytes)
    return { kind: 'resources' };
  return undefined;
}

export const cudaScheduleRules: ScheduleRules = {
  footprint: cudaSharedBytes,
  candidates: cudaCandidates,
  misfit: cudaMisfit,
};
