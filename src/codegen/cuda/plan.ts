// What the CUDA backend can run, and how the SIMT attention core maps a Schedule onto threads.
// The schedule pass can call cudaScheduleProblem to pick tile sizes; the backend refuses schedules
// it cannot run with the same message.
import { describeSchedule, positiveInt, scheduleShapeProblem } from '../common.js';
import { elementBytes, sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule, StorageDType } from '../../ir/kernel.js';
import type { TargetLimits } from '../../ir/passes/schedule.js';
import { cudaArchs, defaultCudaArch, isCudaArch, type CudaArch } from './arch.js';
import { mmaScheduleProblem, mmaSharedBytes } from './mma-plan.js';
import { wgmmaScheduleProblem, wgmmaSharedBytes } from './wgmma-plan.js';
import { wgmmaWsScheduleProblem, wgmmaWsSharedBytes } from './wgmma-ws-plan.js';

export interface CudaLimits {
  readonly maxThreadsPerBlock: number;
  /** Opt-in dynamic shared memory per block (sm_90: 227 KiB). */
  readonly maxSharedBytes: number;
  /** Shared memory a block may use without cudaFuncSetAttribute. */
  readonly defaultSharedBytes: number;
  readonly warpSize: number;
  readonly storageTypes: readonly StorageDType[];
  /** Tensor-core generation the core uses (none yet: the SIMT core runs on FMA units). */
  readonly tensorCores: 'none';
  readonly arch: CudaArch;
}

export const cudaLimits: CudaLimits = Object.freeze({
  maxThreadsPerBlock: 1024,
  maxSharedBytes: cudaArchs[defaultCudaArch].maxSharedBytes,
  defaultSharedBytes: 48 * 1024,
  warpSize: 32,
  storageTypes: Object.freeze(['f32', 'f16', 'bf16'] as const),
  tensorCores: 'none',
  arch: defaultCudaArch,
});

/**
 * The CUDA limits of the compiler's limits (the user's over the target's and arch's defaults):
 * what the renderer checks and the schedule pass fits to.
 */
export function cudaLimitsOf(limits: TargetLimits): CudaLimits {
  return {
    ...cudaLimits,
    arch: isCudaArch(limits.arch) ? limits.arch : defaultCudaArch,
    maxThreadsPerBlock: limits.maxInvocations,
    maxSharedBytes: limits.maxWorkgroupStorageBytes,
  };
}

/** The limits of `arch` (its shared memory; the rest as cudaLimits). */
export function cudaLimitsFor(arch: CudaArch): CudaLimits {
  return Object.freeze({ ...cudaLimits, arch, maxSharedBytes: cudaArchs[arch].maxSharedBytes });
}

/**
 * How the SIMT core lays out a block. `groups` groups of `tpr` consecutive lanes each own `rows`
 * query rows; a group splits the head dims among its lanes (lane g owns the `vw`-wide chunks
 * g, g+tpr, g+2·tpr, …, so the lanes of a group read consecutive shared memory) and combines the
 * partial q·k dots with `log2(tpr)` xor-shuffles. Keys are processed `kc` at a time per online
 * softmax update, which bounds the registers that hold scores.
 */
export interface SimtPlan {
  readonly rows: number;
  readonly tpr: number;
  readonly groups: number;
  readonly vw: number;
  readonly kc: number;
  /** Elements per 16-byte-or-less global vector load of q/k/v/out (also their alignment). */
  readonly gv: number;
  readonly elemBytes: number;
  /** Dynamic shared memory: the f32 K and V tiles. */
  readonly smemBytes: number;
}

const isPow2 = (x: number): boolean => positiveInt(x) && (x & (x - 1)) === 0;

/** Shared memory of the attention kernel: SIMT stages one K and one V tile as f32 (mma: mma-plan.ts). */
export function cudaSharedBytes(s: Schedule): number {
  if (s.engine === 'mma') return mmaSharedBytes(s);
  if (s.engine === 'wgmma') return wgmmaSharedBytes(s);
  if (s.engine === 'wgmma-ws') return wgmmaWsSharedBytes(s);
  return 4 * s.blockK * (s.headDim + s.valueDim);
}

function largestDivisorAtMost(n: number, cap: number): number {
  for (let d = Math.min(n, cap); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** Picks the thread mapping, or says why there is none. */
export function simtPlan(s: Schedule, formats: TensorFormats): SimtPlan | string {
  const D = s.headDim;
  const Dv = s.valueDim;
  const candidates: { rows: number; tpr: number }[] = [];
  for (const rows of [1, 2, 4]) {
    if (s.blockQ % rows !== 0) continue;
    const groups = s.blockQ / rows;
    if (s.threads % groups !== 0) continue;
    const tpr = s.threads / groups;
    if (!isPow2(tpr) || tpr > 32 || D % tpr !== 0 || Dv % tpr !== 0) continue;
    candidates.push({ rows, tpr });
  }
  // 8 lanes a row balances FMA, shared-memory and shuffle throughput best on sm_90 (per key and
  // warp: 2·(D+Dv)·rows/tpr FMAs, (D+Dv)/tpr/vw loads, rows·log2(tpr) shuffles).
  candidates.sort(
    (x, y) => Math.abs(Math.log2(x.tpr) - 3) - Math.abs(Math.log2(y.tpr) - 3) || y.rows - x.rows,
  );
  const best = candidates[0];
  if (!best) {
    return `threads must be blockQ·tpr/rows for a power-of-two tpr ≤ 32 dividing D and Dv and rows in {1, 2, 4} dividing blockQ (e.g. threads = 2·blockQ, 4·blockQ or 8·blockQ)`;
  }
  const { rows, tpr } = best;
  const vw = [4, 2, 1].find((w) => D % (w * tpr) === 0 && Dv % (w * tpr) === 0)!;
  // Global loads of q, k and v are vectorized to 16 bytes of their (one) element type.
  const elemBytes = elementBytes(formats.k);
  const gv = [16 / elemBytes, 4, 2, 1].find((w) => D % w === 0 && Dv % w === 0)!;
  return {
    rows,
    tpr,
    groups: s.blockQ / rows,
    vw,
    kc: largestDivisorAtMost(s.blockK, 32 / rows),
    gv,
    elemBytes,
    smemBytes: cudaSharedBytes(s),
  };
}

/** Why `s` cannot run on the CUDA backend (undefined when it can). */
export function cudaScheduleProblem(
  s: Schedule,
  formats: TensorFormats,
  limits: CudaLimits = cudaLimits,
): string | undefined {
  if (s.engine === 'mma') return mmaScheduleProblem(s, formats, limits.maxSharedBytes);
  if (s.engine === 'wgmma') return wgmmaScheduleProblem(s, formats, limits.maxSharedBytes);
  if (s.engine === 'wgmma-ws') return wgmmaWsScheduleProblem(s, formats, limits.maxSharedBytes);
  const storage = sharedStorage(formats);
  const name = describeSchedule(s, storage);
  const shape = scheduleShapeProblem(s, storage);
  if (shape) return shape;
  if (!limits.storageTypes.includes(storage)) return `${name}: storage dtype ${storage} is not supported`;
  if (s.threads > limits.maxThreadsPerBlock) {
    return `${name}: ${s.threads} threads per block exceed the limit of ${limits.maxThreadsPerBlock}`;
  }
  if (s.threads > 32 && s.threads % 32 !== 0) return `${name}: threads above 32 must be a multiple of 32`;
  const bytes = cudaSharedBytes(s);
  if (bytes > limits.maxSharedBytes) {
    return `${name}: needs ${bytes} bytes of shared memory (4·blockK·(D+Dv)), the limit is ${limits.maxSharedBytes}; lower blockK`;
  }
  const plan = simtPlan(s, formats);
  return typeof plan === 'string' ? `${name}: ${plan}` : undefined;
}

export function checkCudaSchedule(
  s: Schedule,
  formats: TensorFormats,
  limits: CudaLimits = cudaLimits,
): SimtPlan {
  const problem = cudaScheduleProblem(s, formats, limits);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  return simtPlan(s, formats) as SimtPlan;
}
