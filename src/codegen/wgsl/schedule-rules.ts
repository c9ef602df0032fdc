// The WGSL backend's part of the schedule pass (ir/passes/schedule.ts): its candidates for the row
// and coop engines, preferred first, and its fit rule (the device's invocations and workgroup
// memory; the renderer's other checks, limits.ts, name what a user override gets wrong).
import type { TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';
import type {
  Candidate,
  ScheduleBase,
  ScheduleKernelFacts,
  ScheduleMisfit,
  ScheduleRules,
  TargetLimits,
} from '../../ir/passes/schedule.js';
import { COOP_FLAG_KNOBS } from './coop-geometry.js';
import { wgslWorkgroupBytes } from './limits.js';

/**
 * The row engine: one invocation per query row, K/V tiles staged in workgroup memory — modest
 * tiles, because software adapters (lavapipe, SwiftShader) zero-initialise workgroup memory at
 * pipeline creation and slow down with large arrays.
 */
const rowCandidates: readonly Candidate[] = [
  { blockQ: 64, blockK: 32, threads: 64, stages: 1 },
  // 24 and 12 keys: the largest tiles whose K, V and a flag word fit 16 KiB at D = 64 / 128.
  { blockQ: 64, blockK: 24, threads: 64, stages: 1 },
  { blockQ: 64, blockK: 16, threads: 64, stages: 1 },
  { blockQ: 64, blockK: 12, threads: 64, stages: 1 },
  { blockQ: 32, blockK: 16, threads: 32, stages: 1 },
  { blockQ: 32, blockK: 8, threads: 32, stages: 1 },
  { blockQ: 16, blockK: 4, threads: 16, stages: 1 },
];

/**
 * The coop engine (coop.ts, chosen by `wgslEngine: 'coop'`): a workgroup of threads = 2·blockQ
 * (four lanes per row, two rows per invocation) over K/V tiles staged in turn; the largest tile
 * that fits the device's workgroup memory first.
 */
/** A coop candidate may also set the engine's tuning knobs (coop-geometry.ts). */
type CoopCandidate = Candidate & Pick<Schedule, 'coopLanes' | keyof typeof COOP_FLAG_KNOBS>;

const coopCandidates: readonly CoopCandidate[] = [
  { blockQ: 64, blockK: 64, threads: 128, stages: 1 },
  { blockQ: 64, blockK: 32, threads: 128, stages: 1 },
  { blockQ: 64, blockK: 16, threads: 128, stages: 1 },
  { blockQ: 32, blockK: 32, threads: 64, stages: 1 },
  { blockQ: 32, blockK: 16, threads: 64, stages: 1 },
  { blockQ: 16, blockK: 16, threads: 32, stages: 1 },
  { blockQ: 16, blockK: 8, threads: 32, stages: 1 },
  { blockQ: 8, blockK: 8, threads: 16, stages: 1 },
];

/**
 * The knob sets the H200 sweeps measured fastest (Dawn/Vulkan, f32, N = 16K; docs/PERFORMANCE.md),
 * tried before the portable list where the device has subgroups (every measured set used them) and
 * the workgroup memory. First, at D ≤ 128: 128×32 tiles of 256 invocations (4 query rows an
 * invocation), 8 lanes, Q from storage and prefetch — round 7 (2026-12-04) timed it at 20.4 TFLOP/s
 * full and 17.7 causal at D 128 (against 17.3 / 15.3 for the set below) and 15.0 causal at D 64
 * (13.7); double-buffered K/V (coopDoubleKv) was not faster at any tile. At D ≤ 64, 256×32 tiles
 * of 512 invocations go first (45.5 KiB: 48 KiB devices only): 20.5 full / 15.6 causal against
 * 17.4 / 15.0 for 128×32 (round 8, same run). Then at D = 128, 64×32 tiles of 256 invocations,
 * 8 lanes, split K/V buffers, Q from storage and prefetch (43.5 KiB; 17.3 TFLOP/s full, 15.3 causal, against 9.6–9.7 for the
 * portable list's pick), then the same with one K/V buffer and 128 invocations (25.5 KiB, fits
 * 32 KiB; 13.2 causal); at D ≤ 64, 64×64/128 with 8 lanes, Q from storage and prefetch (34 KiB;
 * 13.6 causal against 9.2), then 64×32/128 likewise (fits 32 KiB; not measured itself — Q from
 * storage with prefetch won at every measured tile size).
 * Round 29 (an H100, same adapter, call 47): every tuned set takes the query tiles last first
 * (coopQDescending: causal 17.7 → 20.0 TFLOP/s at D 128, 15.6 → 16.6 at D 64; full unchanged,
 * 20.4), and at D ≤ 64 256×32 tiles of 256 invocations (8 query rows an invocation) go before
 * those of 512: 21.5 full / 17.3 causal against 20.4 / 16.6 (both last first). Call 48, same card:
 * S and P·V as fma chains with constant loop bounds (coopFma, coopUnroll) on top: D 128 full 20.3 →
 * 22.0, causal 20.0 → 21.9; D 64 full 21.5 → 25.5, causal 17.3 → 19.8 (sliding window and document,
 * a process each, +8 to +14%). Lavapipe compiles them no slower (GALLIVM_PERF=nopt does not unroll).
 * Call 56: chunk spans (coopChunkSpan) on top, sliding window +9–12%, document +15–18%, causal −0.3%.
 */
const tunedCoop128: readonly CoopCandidate[] = [
  { blockQ: 128, blockK: 32, threads: 256, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
  {
    blockQ: 64,
    blockK: 32,
    threads: 256,
    stages: 1,
    coopLanes: 8,
    coopSplitKv: true,
    coopQGlobal: true,
    coopPrefetch: true,
  },
  { blockQ: 64, blockK: 32, threads: 128, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
];
// Round 30 (calls 59–60): the lead D 64 set keeps P in registers (coopPShuffle): full 25.5 → 25.6,
// causal 19.7 → 20.1 (24.1 → 24.8 with heads inner). At D 128 it ran 35–45% slower at every
// tile (12.2–16.0 TFLOP/s; 64-key tiles included): left off there.
const tunedCoop64: readonly CoopCandidate[] = [
  {
    blockQ: 256,
    blockK: 32,
    threads: 256,
    stages: 1,
    coopLanes: 8,
    coopQGlobal: true,
    coopPrefetch: true,
    coopPShuffle: true,
  },
  { blockQ: 256, blockK: 32, threads: 512, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
  { blockQ: 128, blockK: 32, threads: 256, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
  { blockQ: 64, blockK: 64, threads: 128, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
  { blockQ: 64, blockK: 32, threads: 128, stages: 1, coopLanes: 8, coopQGlobal: true, coopPrefetch: true },
];

/**
 * The coop candidates for `base` on a device with (or without) subgroups, preferred first.
 * Round 30 (an H100, call 60): where tiles are classified per tile (their work differs from
 * query tile to query tile) every head of a query tile is launched before the next tile
 * (coopHeadsInner): D 64 causal 19.7 → 24.1 TFLOP/s, document +12% (both head dims), D 128 causal
 * +1.4%, sliding window unchanged; under full masks, where every tile has the same work, it cost
 * D 64 3% (more heads' K/V at once in L2) and is left off.
 * Round 31 (call 62, same card): the run-time subgroup check hoisted out of the tile loop
 * (coopSgHoist) at D ≤ 64, every mask: full 25.54 → 25.87 TFLOP/s, causal 24.80 → 25.27, sliding
 * window +1.3%, document +0.3%; at D 128 only where tiles are not classified per tile (full
 * 22.00 → 22.62): causal lost 1.2% with it, document 4.6%, sliding window 0.6%. The loop's code
 * doubles: a first compile takes up to 2× as long (D 128 full 207 → 435 ms ready).
 */
function coopCandidatesFor(
  base: ScheduleBase,
  kernel: ScheduleKernelFacts,
  subgroups: boolean,
): readonly CoopCandidate[] {
  if (!subgroups) return coopCandidates;
  const d = Math.max(base.headDim, base.valueDim);
  const tuned = d <= 64 ? tunedCoop64 : d <= 128 ? tunedCoop128 : [];
  const round29 = { coopQDescending: true, coopFma: true, coopUnroll: true, coopChunkSpan: true } as const;
  const dynamic = kernel.tiles?.kind === 'dynamic';
  const round30 = dynamic ? { coopHeadsInner: true } : {};
  const round31 = d <= 64 || !dynamic ? { coopSgHoist: true } : {};
  return [...tuned.map((c) => ({ ...c, ...round29, ...round30, ...round31 })), ...coopCandidates];
}

/**
 * Kernels the coop engine does not run (all-empty masks, head dims that are not multiples of 4):
 * they keep the row engine. Routed kernels run on it (coop-route.ts).
 */
function coopRuns(base: ScheduleBase, kernel: ScheduleKernelFacts): boolean {
  const empty = kernel.tiles?.kind === 'static' && kernel.tiles.value === 'empty';
  // Coop stages K/V as vec4s: views of float rows, or 4 channels dequantized (kv-load.ts).
  return !empty && [base.headDim, base.valueDim].every((d) => d % 4 === 0);
}

/** Overrides that pin a coop schedule: a tile or any tuning knob. */
const pinningKeys: readonly (keyof Schedule)[] = [
  'blockQ',
  'blockK',
  'threads',
  'coopLanes',
  ...(Object.keys(COOP_FLAG_KNOBS) as (keyof typeof COOP_FLAG_KNOBS)[]),
];

function wgslCandidates(
  base: ScheduleBase,
  overrides: Partial<Schedule>,
  kernel: ScheduleKernelFacts,
  limits: TargetLimits,
): Schedule[] {
  let o = overrides;
  let list: readonly CoopCandidate[] = rowCandidates;
  if (o.wgslEngine === 'coop') {
    if (coopRuns(base, kernel)) {
      // Subgroup reductions wherever the device has them (an override can turn them off).
      o = { subgroups: limits.subgroups === true, ...o };
      // The tuned knob sets only when no tile or knob is pinned (an override keeps today's list).
      const pinned = pinningKeys.some((k) => o[k] !== undefined);
      list = coopCandidatesFor(base, kernel, o.subgroups === true && !pinned);
    } else {
      // The row engine runs an invocation per row: a threads override meant for coop lanes goes.
      const { wgslEngine: _engine, subgroups: _subgroups, threads: _threads, ...rest } = o;
      o = rest.blockQ !== undefined ? { ...rest, threads: rest.blockQ } : rest;
    }
  }
  return list.map((c) => Object.freeze({ ...base, ...c, ...o }));
}

function wgslMisfit(s: Schedule, formats: TensorFormats, limits: TargetLimits): ScheduleMisfit | undefined {
  // The prefetch keeps a tile in registers as vec4 views of float rows (coop-tile.ts); a quantized
  // cache is staged through its dequant function instead.
  if (s.wgslEngine === 'coop' && s.coopPrefetch && (formats.k.kind === 'quant' || formats.v.kind === 'quant'))
    return { kind: 'engine', reason: 'coopPrefetch reads float K/V rows; quantized caches stage without it' };
  const fits = s.threads <= limits.maxInvocations && wgslWorkgroupBytes(s) <= limits.maxWorkgroupStorageBytes;
  return fits ? undefined : { kind: 'resources' };
}

export const wgslScheduleRules: ScheduleRules = {
  footprint: wgslWorkgroupBytes,
  candidates: wgslCandidates,
  misfit: wgslMisfit,
};
