// schedule: choose tile sizes, threads and dtypes for a target within its limits. The schedule is
// a frozen value separate from the algorithm; user overrides win, then the backend's candidates
// (codegen/<target>/schedule-rules.ts) are tried in order until one passes the backend's fit rule.
import type { TensorFormats } from '../formats.js';
import type { Node } from '../graph.js';
import type { Engine, ParamSlot, Schedule } from '../kernel.js';
import type { AttentionIR } from '../program.js';
import { pooledBlocks, type RoutingPlan } from '../routing.js';
import type { Target } from './legalize.js';

export interface TargetLimits {
  /** Bytes of workgroup / shared memory one workgroup may use. */
  readonly maxWorkgroupStorageBytes: number;
  /** Invocations per workgroup / threads per block. */
  readonly maxInvocations: number;
  /** WGSL only: whether f16 storage may be used. */
  readonly shaderF16: boolean;
  /** CUDA only: the architecture built for (codegen/cuda/arch.ts; default sm_90a). */
  readonly arch?: string;
  /** CUDA only: the engines that architecture runs (undefined: all). */
  readonly engines?: readonly Engine[];
  /** WGSL only: whether the `subgroups` feature may be used (the coop engine's row reductions). */
  readonly subgroups?: boolean;
  /** WGSL only: whether the adapter is a CPU implementation (the default engine is then row, else coop). */
  readonly softwareAdapter?: boolean;
  /** WGSL only: maxStorageBuffersPerShaderStage (undefined: unknown, codegen/wgsl/storage-buffers.ts). */
  readonly maxStorageBuffers?: number;
}

/**
 * Defaults: WebGPU's guaranteed minimums; for CUDA the 227 KiB of opt-in dynamic shared memory of
 * sm_90 (Hopper), the architecture the CUDA target is built for (`-arch=sm_90a`; the launcher
 * raises the 48 KiB default). Pass `limits` for a smaller part (sm_80/86: 99 KiB).
 */
export const defaultLimits: Readonly<Record<Target, TargetLimits>> = {
  wgsl: { maxWorkgroupStorageBytes: 16384, maxInvocations: 256, shaderF16: false },
  cuda: { maxWorkgroupStorageBytes: 232448, maxInvocations: 1024, shaderF16: true },
};

export interface ScheduleRequest {
  readonly headDim: number;
  readonly valueDim?: number;
  /** Explicit overrides (e.g. from `--block-q`, the autotuner, or a test). */
  readonly overrides?: Partial<Schedule>;
}

/** The fields of a schedule a candidate sets (the rest come from the request). */
export type Candidate = Pick<Schedule, 'blockQ' | 'blockK' | 'threads' | 'stages'> & Pick<Schedule, 'engine'>;

/** The request's part of every schedule: head dims, summary block. */
export type ScheduleBase = Pick<Schedule, 'headDim' | 'valueDim' | 'summaryBlock'>;

/** Why a backend cannot run a schedule: a device resource (memory, threads) or its own rules. */
export type ScheduleMisfit =
  { readonly kind: 'resources' } | { readonly kind: 'engine'; readonly reason: string };

/**
 * What a backend tells the schedule pass (codegen/target.ts): the schedules to try, preferred
 * first, and its fit rule — the same check its renderer makes, under the user's limits.
 */
export interface ScheduleRules {
  /** Workgroup / shared memory of a schedule (bytes), for the pass's resource message. */
  readonly footprint: (s: Schedule) => number;
  /** Complete schedules (request, candidate, then the user's overrides), preferred first. */
  readonly candidates: (
    base: ScheduleBase,
    overrides: Partial<Schedule>,
    kernel: ScheduleKernelFacts,
    limits: TargetLimits,
  ) => readonly Schedule[];
  readonly misfit: (s: Schedule, formats: TensorFormats, limits: TargetLimits) => ScheduleMisfit | undefined;
}

/** What of the kernel the engine choice depends on (the IR when the pass runs). */
export interface ScheduleKernelFacts {
  /** Dilated masks: the residue-class decomposition, which the mma/wgmma engines run. */
  readonly residue?: unknown;
  /** 2-D neighbourhood masks: the patch layout, which the mma/wgmma engines run. */
  readonly neighbourhood?: unknown;
  /** Block routing (pooled 128-blocks may prefer wgmma-ws: schedule-preferred.ts). */
  readonly routing?: RoutingPlan;
  /** Storage of q, k, v and out: the tensor-core engines need 16-bit elements. */
  readonly formats: TensorFormats;
  /** The tile classifier: statically `full` (no mask) suits wider key tiles. */
  readonly tiles?: { readonly kind: string; readonly value?: string; readonly canBeTrue?: Node };
  /** Parameters (their defaults) and tensor summaries: what the tile-gap probe (tile-gaps.ts) reads. */
  readonly params?: readonly ParamSlot[];
  readonly summaries?: readonly unknown[];
  /** `qk int8` (ir/int8qk.ts): only engines that implement it are candidates. */
  readonly qkInt8?: unknown;
  /** `pv e4m3` (ir/pv-e4m3.ts): its kernel reads 128-key tiles of V codes. */
  readonly pvE4m3?: unknown;
  /** The fuse pass's hoists: per-key values cost the wgmma-ws dense default registers. */
  readonly hoists?: { readonly key: readonly unknown[] };
}

/**
 * Pooled block routing over 64-blocks wants 64 × 64 tiles: a q-tile then shares one selection
 * and a selected block is a whole tile, so selected tiles run unmasked (unless the user set tiles).
 */
export function wants64Tiles(kernel: ScheduleKernelFacts, o: Partial<Schedule>): boolean {
  const r = kernel.routing;
  return r !== undefined && pooledBlocks(r) === 64 && o.blockQ === undefined && o.blockK === undefined;
}

/**
 * The first of the backend's candidates that it can run. None: when some candidate failed only
 * for the device's memory or threads, the memory the smallest of those needs; else the backend's
 * reason for the first (a head dim the asked engine lacks, say).
 */
export function chooseSchedule(
  target: Target,
  req: ScheduleRequest,
  limits: TargetLimits,
  rules: ScheduleRules,
  kernel: ScheduleKernelFacts,
): Schedule {
  const base: ScheduleBase = {
    headDim: req.headDim,
    valueDim: req.valueDim ?? req.headDim,
    summaryBlock: 16,
  };
  const tried = rules.candidates(base, req.overrides ?? {}, kernel, limits);
  let refused: string | undefined;
  let tooBig: Schedule | undefined; // the last (smallest) candidate the device is too small for
  for (const s of tried) {
    const misfit = rules.misfit(s, kernel.formats, limits);
    if (misfit === undefined) return s;
    if (misfit.kind === 'engine') refused ??= misfit.reason;
    else tooBig = s;
  }
  if (tooBig === undefined)
    throw new Error(`no ${target} schedule fits: ${refused ?? 'no candidate to try'}`);
  throw new Error(
    `no ${target} schedule fits: head dim ${base.headDim}/${base.valueDim} needs ${rules.footprint(tooBig)} bytes of ` +
      `workgroup memory even with ${tooBig.blockK}-key tiles; the device allows ${limits.maxWorkgroupStorageBytes}`,
  );
}

export function scheduleIR(ir: AttentionIR, schedule: Schedule): AttentionIR {
  return { ...ir, schedule };
}
