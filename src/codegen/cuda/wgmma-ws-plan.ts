// What the warp-specialized Hopper core (engine 'wgmma-ws') can run. As the wgmma core, each
// consumer warpgroup owns 64 query rows; one more warpgroup produces: a single thread of it issues
// the TMA copies of Q and of every visited K/V tile into a `stages`-deep ring of shared-memory
// buffers guarded by mbarriers, so the consumers never load and never meet at a CTA barrier.
import { describeSchedule } from '../common.js';
import { tensorCoreProblem, tileBytes16 } from './tc-plan.js';
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';
import { wsTweaksOf, wsTweaksProblem, type WsTweaks } from './wgmma-ws-tweaks.js';

/** Threads of the producer warpgroup, on top of the 2·blockQ consumer threads. */
export const PRODUCER_THREADS = 128;

export interface WgmmaWsPlan {
  /** Consumer warpgroups (64 query rows each); the producer warpgroup comes after them. */
  readonly consumers: number;
  readonly stages: number;
  /** Dynamic shared memory: Q, `stages` K and V tiles, the mbarriers, 1 KiB alignment slack. */
  readonly smemBytes: number;
  /** The budget smemBytes was checked against (per-key hoist arrays come on top, at render). */
  readonly sharedLimit: number;
  /**
   * Registers per thread after `setmaxnreg` (producers give theirs to the consumers), or null
   * with one consumer warpgroup: 256 threads may use 255 registers each without it.
   */
  readonly regs: { readonly producer: number; readonly consumer: number } | null;
  /**
   * Intra-warpgroup overlap (Schedule.wsConsumers 'overlap' or 'fa3'): the next tile's S = Q·Kᵀ
   * and softmax under this tile's P·V. Off by default: its first form (two P register sets) was
   * measured slower on the H100 (full 475 vs 550 TFLOP/s at 16K, docs/PERFORMANCE.md).
   */
  readonly overlap: boolean;
  /**
   * Ping-pong (Schedule.wsConsumers 'pingpong' or 'fa3'; two consumer warpgroups): each issues its
   * matrix products only after the other has issued its own, so the tensor cores alternate between
   * them and one's softmax runs under the other's (FlashAttention-3's inter-warpgroup schedule).
   * Off by default: S = Q·Kᵀ alone in turns was measured slower (full 484 vs 550 TFLOP/s at 16K).
   */
  readonly pingpong: boolean;
  /** Schedule.wsProducerWalk: the producer classifies and hoists, the consumers read the ring. */
  readonly producerWalk: boolean;
  /** Schedule.wsTweaks, one switch each (wgmma-ws-tweaks.ts). */
  readonly tweaks: WsTweaks;
}

const consumerModes = ['serial', 'overlap', 'pingpong', 'fa3'] as const;

/**
 * Bytes of the mbarriers: a full and an empty barrier per stage, and one for Q (wsTweaks splitKv:
 * another full and empty pair per stage, K and V apart).
 */
const barrierBytes = (stages: number, splitKv: boolean): number => 8 * ((splitKv ? 4 : 2) * stages + 1);

/** Dynamic shared memory of the warp-specialized core (2-byte storage). */
export function wgmmaWsSharedBytes(s: Schedule): number {
  return tileBytes16(s) + barrierBytes(s.stages, wsTweaksOf(s).splitKv) + 1024;
}

/** Why the warp-specialized core cannot run `s` (undefined when it can). */
export function wgmmaWsScheduleProblem(
  s: Schedule,
  formats: TensorFormats,
  maxSharedBytes: number,
): string | undefined {
  const basic = tensorCoreProblem(s, formats, { engine: 'wgmma-ws', headDims: [64, 128] });
  if (basic) return basic;
  const name = describeSchedule(s, sharedStorage(formats));
  if (s.blockQ % 64 !== 0 || s.blockQ > 128 || s.threads !== 2 * s.blockQ + PRODUCER_THREADS) {
    return `${name}: the wgmma-ws engine needs blockQ in {64, 128} and threads = 2·blockQ + ${PRODUCER_THREADS} (a consumer warpgroup per 64 rows and a producer warpgroup)`;
  }
  // A TMA box is at most 256 rows and wgmma n ≤ 256; S (blockK/2 registers) must leave room for
  // O within the consumers' 232 (FlashAttention-3 runs 176-key tiles at D = 128).
  if (s.blockK % 16 !== 0 || s.blockK > 192)
    return `${name}: the wgmma-ws engine needs blockK in {16, 32, …, 192}`;
  if (s.stages < 2 || s.stages > 4) return `${name}: the wgmma-ws engine pipelines 2 to 4 stages`;
  if (s.wsConsumers !== undefined && !consumerModes.includes(s.wsConsumers))
    return `${name}: wsConsumers must be one of ${consumerModes.join(', ')}, got ${String(s.wsConsumers)}`;
  if (s.wsDequant !== undefined && s.wsDequant !== 'serial' && s.wsDequant !== 'pipelined')
    return `${name}: wsDequant must be serial or pipelined, got ${String(s.wsDequant)}`;
  if (s.wsConsumers !== undefined && /pingpong|fa3/.test(s.wsConsumers) && s.blockQ !== 128)
    return `${name}: wsConsumers ${s.wsConsumers} alternates two consumer warpgroups: it needs blockQ 128`;
  const tweaks = wsTweaksProblem(s, name);
  if (tweaks) return tweaks;
  const bytes = wgmmaWsSharedBytes(s);
  if (bytes > maxSharedBytes) {
    return `${name}: needs ${bytes} bytes of shared memory, the limit is ${maxSharedBytes}; lower stages or blockK`;
  }
  return undefined;
}

export function wgmmaWsPlan(s: Schedule, formats: TensorFormats, maxSharedBytes: number): WgmmaWsPlan {
  const problem = wgmmaWsScheduleProblem(s, formats, maxSharedBytes);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  const consumers = s.blockQ / 64;
  // 64K registers per SM, one CTA: the producer warpgroup keeps 40 (its tile walk evaluates the
  // classifier), the consumers share the rest, in multiples of 8.
  // (wsTweaks regs240: 24, FlashAttention-3's, when the producer only streams.)
  const producer = wsTweaksOf(s).regs240 ? 24 : 40;
  const consumer = Math.min(240, Math.floor((65536 / 128 - producer) / consumers / 8) * 8);
  const regs = consumers > 1 ? { producer, consumer } : null;
  return {
    consumers,
    stages: s.stages,
    smemBytes: wgmmaWsSharedBytes(s),
    sharedLimit: maxSharedBytes,
    regs,
    overlap: s.wsConsumers === 'overlap' || s.wsConsumers === 'fa3',
    pingpong: s.wsConsumers === 'pingpong' || s.wsConsumers === 'fa3',
    producerWalk: s.wsProducerWalk === true,
    tweaks: wsTweaksOf(s),
  };
}
