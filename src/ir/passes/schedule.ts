// schedule: choose tile sizes, threads and dtypes for a target within its limits. The schedule is
// a frozen value separate from the algorithm; user overrides win, then the target's candidate
// list is tried in order (largest tiles first) until one fits the device.
import type { Engine, Schedule, StorageDType } from '../kernel.js';
import type { AttentionIR } from '../program.js';
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

/**
 * CUDA SIMT: each thread holds blockQ·(D+Dv)/threads q and accumulator values in registers;
 * above ~64 the kernel spills, so wide heads get more threads (D=128 → 256).
 */
const registerBudget = 64;
function fitThreads(target: Target, c: Candidate, headDim: number, valueDim: number): Candidate {
  if (target !== 'cuda') return c;
  const need = Math.ceil((c.blockQ * (headDim + valueDim)) / registerBudget / 32) * 32;
  return { ...c, threads: Math.min(1024, Math.max(c.threads, need)) };
}

export interface ScheduleRequest {
  readonly headDim: number;
  readonly valueDim?: number;
  readonly dtype?: StorageDType;
  /** Explicit overrides (e.g. from `--block-q`, the autotuner, or a test). */
  readonly overrides?: Partial<Schedule>;
}

type Candidate = Pick<Schedule, 'blockQ' | 'blockK' | 'threads' | 'stages'> & Pick<Schedule, 'engine'>;

/**
 * Candidates per target, preferred first. WGSL: one invocation per query row, K/V tiles staged
 * in workgroup memory — modest tiles, because software adapters (lavapipe, SwiftShader)
 * zero-initialise workgroup memory at pipeline creation and slow down with large arrays.
 * CUDA: 64-query blocks of 4 warps over 64-key tiles.
 */
const candidates: Readonly<Record<Target, readonly Candidate[]>> = {
  wgsl: [
    { blockQ: 64, blockK: 32, threads: 64, stages: 1 },
    // 24 and 12 keys: the largest tiles whose K, V and a flag word fit 16 KiB at D = 64 / 128.
    { blockQ: 64, blockK: 24, threads: 64, stages: 1 },
    { blockQ: 64, blockK: 16, threads: 64, stages: 1 },
    { blockQ: 64, blockK: 12, threads: 64, stages: 1 },
    { blockQ: 32, blockK: 16, threads: 32, stages: 1 },
    { blockQ: 32, blockK: 8, threads: 32, stages: 1 },
    { blockQ: 16, blockK: 4, threads: 16, stages: 1 },
  ],
  cuda: [
    // Warp-specialized Hopper engine (wgmma-ws, see wgmmaWsFits): the wgmma tiles plus a TMA
    // producer warpgroup (threads = 2·blockQ + 128) over a 2-stage mbarrier ring; 1.1–1.3× wgmma
    // on the H100 (3 stages measured no faster). Unmasked kernels take 176-key tiles, as
    // FlashAttention-3 does (+4% on full at 16K; causal is 5% slower with them).
    { blockQ: 128, blockK: 176, threads: 384, stages: 2, engine: 'wgmma-ws' },
    { blockQ: 128, blockK: 128, threads: 384, stages: 2, engine: 'wgmma-ws' },
    { blockQ: 128, blockK: 64, threads: 384, stages: 2, engine: 'wgmma-ws' },
    // Hopper warpgroup MMA (wgmma; as mma, see wgmmaFits): 2 warpgroups × 64 query rows over
    // double-buffered 128-key K/V tiles (160 KiB at D = 128, so under the default 99 KiB budget
    // D = 128 takes 64-key tiles). 1.6–1.8× the mma engine on the H100 (docs/PERFORMANCE.md).
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
  ],
};

/**
 * The WGSL coop engine (codegen/wgsl/coop.ts, chosen by `wgslEngine: 'coop'`): a workgroup of
 * threads = 2·blockQ (four lanes per row, two rows per invocation) over K/V tiles staged in turn;
 * the largest tile that fits the device's workgroup memory first.
 */
const coopCandidates: readonly Candidate[] = [
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
 * Kernels the coop engine does not run (block routing, all-empty masks, head dims that are not
 * multiples of 4): they keep the row engine.
 */
function coopRuns(req: ScheduleRequest, kernel: ScheduleKernelFacts): boolean {
  const dims = [req.headDim, req.valueDim ?? req.headDim];
  const empty = kernel.tiles?.kind === 'static' && kernel.tiles.value === 'empty';
  return kernel.routing === undefined && !empty && dims.every((d) => d % 4 === 0);
}

/**
 * Whether the mma (tensor-core) engine suits `s`: 16-bit storage, head dims it is tuned for, and a
 * warp per 16 rows (user overrides of blockQ or threads can break that: then SIMT is chosen).
 */
function mmaFits(s: Schedule): boolean {
  const dims = [64, 128];
  return (
    s.dtype !== 'f32' &&
    dims.includes(s.headDim) &&
    dims.includes(s.valueDim) &&
    s.threads === 2 * s.blockQ &&
    s.blockQ % 16 === 0 &&
    s.blockK % 16 === 0 &&
    s.stages <= 2
  );
}

/**
 * Whether the warp-specialized wgmma engine can run `s`: wgmma's tiles with a producer warpgroup
 * on top (threads = 2·blockQ + 128), 2–4 stages, key tiles up to 192.
 */
function wgmmaWsFits(s: Schedule): boolean {
  // Key tiles up to 192 (the consumers hold more registers than wgmma's warpgroups).
  const consumers = { ...s, threads: s.threads - 128, stages: 2, blockK: Math.min(s.blockK, 128) };
  return wgmmaFits(consumers) && s.blockK <= 192 && s.stages >= 2 && s.stages <= 4;
}

/** Whether the Hopper wgmma engine can run `s`: as mma, plus a warpgroup per 64 rows. */
function wgmmaFits(s: Schedule): boolean {
  return mmaFits(s) && s.blockQ % 64 === 0 && s.blockQ <= 128 && s.blockK <= 128;
}

/** What of the kernel the engine choice depends on (the IR when the pass runs). */
export interface ScheduleKernelFacts {
  /** Dilated masks: the residue-class decomposition, which the mma/wgmma engines run. */
  readonly residue?: unknown;
  /** 2-D neighbourhood masks: the patch layout, which the mma/wgmma engines run. */
  readonly neighbourhood?: unknown;
  /** Block routing, which the wgmma-ws engine does not run. */
  readonly routing?: {
    readonly blockSize: number;
    readonly q: string;
    readonly unit?: string;
    readonly chunks?: string;
    readonly restrict?: false;
  };
  /** The tile classifier: statically `full` (no mask) suits wider key tiles. */
  readonly tiles?: { readonly kind: string; readonly value?: string };
}

export function chooseSchedule(
  target: Target,
  req: ScheduleRequest,
  limits: TargetLimits,
  footprint: (s: Schedule) => number,
  kernel: ScheduleKernelFacts = {},
): Schedule {
  const base = {
    headDim: req.headDim,
    valueDim: req.valueDim ?? req.headDim,
    dtype: req.dtype ?? (target === 'cuda' ? 'bf16' : 'f32'),
    summaryBlock: 16,
  } as const;
  let o = req.overrides ?? {};
  let list = candidates[target];
  if (target === 'wgsl' && o.wgslEngine === 'coop') {
    if (coopRuns(req, kernel)) {
      list = coopCandidates;
      // Subgroup reductions wherever the device has them (an override can turn them off).
      o = { subgroups: limits.subgroups === true, ...o };
    } else {
      // The row engine runs an invocation per row: a threads override meant for coop lanes goes.
      const { wgslEngine: _engine, subgroups: _subgroups, threads: _threads, ...rest } = o;
      o = rest.blockQ !== undefined ? { ...rest, threads: rest.blockQ } : rest;
    }
  }
  // Pooled block routing over 64-blocks wants 64 × 64 tiles: a q-tile then shares one selection
  // and a selected block is a whole tile, so selected tiles run unmasked.
  const r = kernel.routing;
  const routed64 =
    r !== undefined &&
    r.blockSize === 64 &&
    r.q !== 'raw' &&
    r.unit === undefined &&
    r.chunks === undefined &&
    r.restrict !== false &&
    o.blockQ === undefined &&
    o.blockK === undefined;
  const runs = (e: Engine | undefined): boolean => limits.engines?.includes(e ?? 'simt') ?? true;
  if (o.engine !== undefined && !runs(o.engine))
    throw new Error(
      `engine ${o.engine} does not run on ${limits.arch ?? target} (it runs ${limits.engines!.join(', ')})`,
    );
  for (const c of list) {
    if (!runs(c.engine)) continue;
    if (routed64 && c.engine === 'wgmma' && c.blockQ !== 64) continue;
    // An explicit engine skips the other tensor-core engines' candidates (their tiles suit them).
    if (c.engine !== undefined && o.engine !== undefined && c.engine !== o.engine) continue;
    // wgmma-ws is not chosen unasked for dilated kernels (wgmma runs their residue classes, 2.6×
    // faster), neighbourhood ones (wgmma runs their 2-D patches: ~3× fewer keys) or routed ones (no routing on it); its 176-key tiles only for unmasked kernels.
    if (c.engine === 'wgmma-ws' && o.engine !== 'wgmma-ws') {
      if (kernel.residue !== undefined || kernel.neighbourhood !== undefined || kernel.routing !== undefined)
        continue;
    }
    if (c.engine === 'wgmma-ws' && c.blockK > 128 && o.blockK === undefined) {
      if (kernel.tiles?.kind !== 'static' || kernel.tiles.value !== 'full') continue;
    }
    const s: Schedule = Object.freeze({
      ...base,
      ...(c.engine !== undefined ? c : fitThreads(target, c, base.headDim, base.valueDim)),
      ...(target === 'cuda' && c.engine === undefined ? { engine: 'simt' as const } : {}),
      ...o,
    });
    if (s.engine === 'mma' && !mmaFits(s)) continue;
    if (s.engine === 'wgmma' && !wgmmaFits(s)) continue;
    if (s.engine === 'wgmma-ws' && !wgmmaWsFits(s)) continue;
    if (s.threads <= limits.maxInvocations && footprint(s) <= limits.maxWorkgroupStorageBytes) return s;
  }
  const last = Object.freeze({ ...base, ...list.at(-1)!, ...o, engine: undefined });
  throw new Error(
    `no ${target} schedule fits: head dim ${base.headDim}/${base.valueDim} needs ${footprint(last)} bytes of ` +
      `workgroup memory even with ${last.blockK}-key tiles; the device allows ${limits.maxWorkgroupStorageBytes}`,
  );
}

export function scheduleIR(ir: AttentionIR, schedule: Schedule): AttentionIR {
  return { ...ir, schedule };
}
