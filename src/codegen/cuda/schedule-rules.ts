// The CUDA backend's part of the schedule pass (ir/passes/schedule.ts): its candidates, preferred
// first, and its fit rule, which is the renderer's own check (plan.ts, mma-plan.ts, wgmma-plan.ts,
// wgmma-ws-plan.ts) under the user's limits, so the pass never picks what the renderer refuses.
// The measured defaults tried before the candidate table: schedule-preferred.ts.
import { describeSchedule } from '../common.js';
import { hasQuantizedKv, sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Engine, Schedule } from '../../ir/kernel.js';
import {
  wants64Tiles,
  type Candidate,
  type ScheduleBase,
  type ScheduleKernelFacts,
  type ScheduleMisfit,
  type ScheduleRules,
  type TargetLimits,
} from '../../ir/passes/schedule.js';
import { decodeLeanProblem } from './decode-mma-lean.js';
import { cudaLimitsOf, cudaScheduleProblem, cudaSharedBytes } from './plan.js';
import { int8QkFirst, preferredFirst, stagesByDefault } from './schedule-preferred.js';
import { wsStagingBytes } from './wgmma-ws-dq.js';

export { int8QkFirst, int8QkWsDefault, wsDenseTweaks } from './schedule-preferred.js';

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

/**
 * SIMT: each thread holds blockQ·(D+Dv)/threads q and accumulator values in registers; above ~64
 * the kernel spills, so wide heads get more threads (D=128 → 256).
 */
const registerBudget = 64;
function fitThreads(c: Candidate, headDim: number, valueDim: number): Candidate {
  const need = Math.ceil((c.blockQ * (headDim + valueDim)) / registerBudget / 32) * 32;
  // The threads of a query row split D and Dv (plan.ts simtPlan): an odd head dim takes one a
  // row, not the candidate's two or more (which no lane split maps, so nothing fitted).
  const rowLanes = Math.min(32, lowestPowerOfTwo(headDim), lowestPowerOfTwo(valueDim));
  return { ...c, threads: Math.min(1024, Math.max(c.threads, need), c.blockQ * rowLanes) };
}

/** The largest power of two dividing n (n ≥ 1). */
const lowestPowerOfTwo = (n: number): number => n & -n;

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

/** Whether the target runs an engine (undefined: SIMT); every engine where the limits list none. */
function engineRunner(limits: TargetLimits): (e: Engine | undefined) => boolean {
  return (e) => limits.engines?.includes(e ?? 'simt') ?? true;
}

/** Refuses an asked engine or wgmma-ws field that the target or the kernel's caches cannot run, or a decodeLean that is none. */
function checkAsked(o: Partial<Schedule>, kernel: ScheduleKernelFacts, limits: TargetLimits): void {
  const lean = decodeLeanProblem(o.decodeLean);
  if (lean !== undefined) throw new Error(lean);
  if (o.engine !== undefined && !engineRunner(limits)(o.engine))
    throw new Error(
      `engine ${o.engine} does not run on ${limits.arch ?? 'cuda'} (it runs ${limits.engines!.join(', ')})`,
    );
  // Quantized K/V caches: the tensor-core engines convert their tiles (dequant-tile.ts); the
  // producer warpgroup of wgmma-ws does the converting, so it cannot also walk the tiles.
  if (hasQuantizedKv(kernel.formats) && o.wsProducerWalk)
    throw new Error('wsProducerWalk: the producer warpgroup converts quantized K/V tiles; leave it out');
  // Paged caches: the TMA unit cannot zero a last page's rows past Nk (kv-load-tma.ts), so the
  // cp.async engines (which zero-fill them) and SIMT run them.
  if (kernel.formats.paged !== undefined && o.engine === 'wgmma-ws')
    throw new Error('paged K/V caches run on the wgmma, mma and simt engines; wgmma-ws: not yet');
  // qk int8: int8QkWsDefault where the s8 kernel runs, else the SIMT engine (int8qk-simt.ts);
  // wgmma-ws when asked for (int8qk-wgmma.ts: its plain candidates, serial consumers unless asked).
  if (kernel.qkInt8 !== undefined && o.engine !== undefined && o.engine !== 'simt' && o.engine !== 'wgmma-ws')
    throw new Error(`qk int8 runs on the simt and wgmma-ws engines; ${o.engine}: not yet`);
}

/** What cudaCandidates decided once for the kernel and the ask, which each candidate is held to. */
interface CandidateScope {
  readonly o: Partial<Schedule>;
  readonly kernel: ScheduleKernelFacts;
  readonly runs: (e: Engine | undefined) => boolean;
  readonly first: readonly Candidate[];
  readonly routed64: boolean;
}

/** Whether candidate c is offered for this kernel and ask (the tuned-dims check comes after). */
function offered(c: Candidate, { o, kernel, runs, first, routed64 }: CandidateScope): boolean {
  if (!runs(c.engine)) return false;
  if (kernel.formats.paged !== undefined && c.engine === 'wgmma-ws') return false;
  if (kernel.qkInt8 !== undefined && c.engine !== undefined && o.engine !== 'wgmma-ws' && !first.includes(c))
    return false;
  if (routed64 && c.engine === 'wgmma' && c.blockQ !== 64) return false;
  // An explicit engine skips the other tensor-core engines' candidates (their tiles suit them).
  if (c.engine !== undefined && o.engine !== undefined && c.engine !== o.engine) return false;
  // wgmma-ws is not chosen unasked for dilated kernels (wgmma runs their residue classes, 2.6×
  // faster), neighbourhood ones (wgmma runs their 2-D patches: ~3× fewer keys) or routed ones
  // (but for the pooled routing schedule-preferred.ts measured); its 176-key tiles only for
  // unmasked kernels.
  if (c.engine === 'wgmma-ws' && o.engine !== 'wgmma-ws' && !first.includes(c)) {
    if (kernel.residue !== undefined || kernel.neighbourhood !== undefined || kernel.routing !== undefined)
      return false;
  }
  // pv e4m3 (int8qk-pv-wgmma.ts): V codes come as one 128-byte row of 128 keys per channel.
  if (kernel.pvE4m3 !== undefined && c.engine === 'wgmma-ws' && c.blockK !== 128 && o.blockK === undefined)
    return false;
  if (c.engine === 'wgmma-ws' && c.blockK > 128 && o.blockK === undefined) {
    if (kernel.tiles?.kind !== 'static' || kernel.tiles.value !== 'full') return false;
  }
  return true;
}

/** The schedules to try, in order: the measured defaults (schedule-preferred.ts), then the table. */
function cudaCandidates(
  base: ScheduleBase,
  asked: Partial<Schedule>,
  kernel: ScheduleKernelFacts,
  limits: TargetLimits,
): Schedule[] {
  const o = wsFieldsEngine(asked);
  checkAsked(o, kernel, limits);
  const staged = stagesByDefault(kernel, o);
  const routed64 = wants64Tiles(kernel, o);
  const preferred = preferredFirst(base, kernel, o);
  const gapped = preferred.gapped;
  const first = kernel.qkInt8 !== undefined ? int8QkFirst(base, kernel, o) : preferred.first;
  const scope: CandidateScope = { o, kernel, runs: engineRunner(limits), first, routed64 };
  const out: Schedule[] = [];
  for (const c of [...first, ...candidates]) {
    if (!offered(c, scope)) continue;
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
