// The Hopper (sm_90a) tensor-core CUDA backward (issue 14): the mma backward's passes
// (backward-mma.ts: bwd_pre, bwd_dq_out, the deterministic bwd_dq/bwd_reduce, the summaries, the
// launcher and the Args struct are the same) with bwd_dkdv on warpgroup MMAs, FlashAttention-3's
// layout (backward-wgmma-kernel.ts, backward-wgmma-tile.ts). The derivative expressions, tile
// classification and carried slots are the mma backward's (backward-mma-exprs.ts).
//
// By default every thread issues the cp.async double buffer of Q, dO, lse and delta, and dQ goes by
// 8-byte f32 atomics from registers. `producer` (opt-in until the H200 times it beside the default:
// WGMMA_BWD_PRODUCER) adds FlashAttention-3's producer warpgroup and 16-byte dQ atomics
// (backward-wgmma-ws.ts). The deterministic mode keeps bwd_dq on mma.sync (bwd_dkdv on wgmma,
// without the dQ product).
import type { AttentionKernel } from '../../ir/kernel.js';
import { backwardMmaExprs } from './backward-mma-exprs.js';
import { backwardMmaUnsupported } from './backward-mma.js';
import {
  renderTensorCoreBackward,
  type CudaBackwardMmaArtifact,
  type TensorCoreBackwardEngine,
} from './backward-tensor-core.js';
import {
  DQ_BULK_BYTES,
  DQ_BULK_LOADERS,
  DQ_LD,
  dqBulkHelpers,
  dqDoubleExtraBytes,
} from './backward-wgmma-dq-bulk.js';
import { wgmmaDkdvKernel, wgmmaSmemBytes } from './backward-wgmma-kernel.js';
import { pingPongHelpers, wgDqD } from './backward-wgmma-pingpong.js';
import {
  NO_TUNE,
  handoffApplies,
  resolveTune,
  TUNE_ENGINES,
  tuneHelpers,
  type BackwardWgmmaTune,
} from './backward-wgmma-tune.js';
import {
  WS_BARRIER_BYTES,
  WS_PRODUCER_THREADS,
  wgmmaWsDkdvKernel,
  wsDeviceHelpers,
} from './backward-wgmma-ws.js';
import { WS_HANDOFF_BYTES } from './backward-wgmma-handoff.js';
import { wgmmaDeviceHelpers, wgmmaFn } from './wgmma-device.js';
import { wgWaitHelper } from './wgmma-ws-device.js';
import type { SmemNeeds } from './backward-mask-hoists.js';
import { backwardPatchAsked } from './backward-patch.js';

export const WGMMA_BWD = { BM: 64, BN: 128, WARPS: 8, THREADS: 256 } as const;
/**
 * Whether the wgmma backward's dK/dV kernel has a producer warpgroup when the caller does not say
 * (renderCudaBackwardWgmma's `producer`). On since the H200 timed both side by side
 * (bench/cuda/backward.sh, 2026-12-04, bf16 D 128 16K): full 35.3 vs 42.9 ms, causal 21.9 vs 23.6.
 */
export const WGMMA_BWD_PRODUCER = true;
/**
 * The tile-body knobs of the producer kernel when the caller gives none (renderCudaBackwardWgmma's
 * `tune`, backward-wgmma-tune.ts): every knob, with 8-byte dQ atomics. Timed on the H200 beside
 * the untuned kernel (bench/cuda/backward.sh, engines ws_*, 2026-12-04, bf16 B 2 H 16 D 128 16K,
 * gradients checked against torch autograd first): full 35.9 → 30.1 ms, causal 22.2 → 16.0,
 * deterministic 42.7 → 39.6 / 25.7 → 19.7; each knob alone gave 0–11%. Round 10 (engines ws_dqb,
 * ws_pp, same shapes, checked first): dQ by bulk reductions with the consumer warpgroups out of
 * lockstep, full 30.3 → 27.0 ms (1.02x Flex), causal 16.4 → 13.7; bulk dQ alone was slower (37.5 /
 * 18.5), so masks whose pingPong kernel ptxas serialises keep the atomics (pingPongCheapOnly).
 * Round 21 (engines ws_ho*, H100, bf16 B 2 H 16 D 128, checked first): the producer hands the
 * tile walk to the consumers where the classifier reads summaries (tileHandoff), which makes
 * document's mask cheap, so it takes the ping-pong kernel too: 16K 3.62 → 3.15 ms (0.90x → 1.04x
 * Flex; 3.74 → 3.21 in a second process), 4K 0.494 → 0.458; the hand-over alone was 2.5% slower.
 * Then every head's first key tile first where tiles are classified by position alone
 * (firstTilesFirst, engine ws_ft, same shapes, 16K): sinks + window 3.37 → 2.60 ms (0.98x → 1.27x
 * Flex), causal 13.66 → 13.31 (not on document: 3.11 → 3.13, more spills).
 * Round 22 (engine ws_dsm, H100, same shapes, 16K, checked first: gradients bit-equal to ws_ft's):
 * dS stored by stmatrix.trans (dsMatrix, D = 128): softcap 18.5–18.7 → 15.7–15.8 ms, sinks + window
 * 2.56 → 2.46–2.48, sliding 2.38 → 2.29, ALiBi 13.65 → 13.25, causal, prefix, dilated, neighbourhood
 * and document 1–3% faster; full within its run-to-run spread.
 * Round 23 (engine ws_dq2, H100, same shapes, 16K, both engine orders, checked first: gradients
 * bit-equal to ws_dsm's): the pingPong dQ block double-buffered (dqDouble), full 26.9–27.1 →
 * 22.8–23.2 ms (0.76x → 0.88–0.89x SDPA), causal 13.0–13.1 → 11.2–11.4, sliding 2.31 → 1.97–1.99,
 * prefix 13.8–14.4 → 12.2–12.4.
 * The kernel without a producer warpgroup (the opt-out) keeps NO_TUNE: it was not timed with them.
 */
export const WGMMA_BWD_TUNE: BackwardWgmmaTune = TUNE_ENGINES.ws_dq2!;
/** The most dynamic shared memory an sm_90 CTA may have (227 KiB). */
const SM90_SMEM = 227 * 1024;

export interface CudaBackwardWgmmaArtifact extends Omit<CudaBackwardMmaArtifact, 'kind'> {
  readonly kind: 'cuda-backward-wgmma';
}

/** Why the wgmma backward cannot run `kernel` (undefined when it can). */
export function backwardWgmmaUnsupported(kernel: AttentionKernel): string | undefined {
  const why = backwardMmaUnsupported(kernel);
  if (why) return why.replace('tensor-core CUDA backward', 'wgmma CUDA backward');
  const s = kernel.schedule;
  const bytes = wgmmaSmemBytes(s.headDim, s.valueDim, backwardMmaExprs(kernel));
  if (bytes > SM90_SMEM)
    return `the wgmma CUDA backward needs ${bytes} bytes of shared memory for this score (carried derivative values, the mask's hoisted parts), more than sm_90's ${SM90_SMEM}`;
  return undefined;
}

const DESCRIPTOR_HELPERS = [
  "// Descriptor units (16 bytes) of `elems` 16-bit elements: added to a descriptor's address field.",
  '__device__ __forceinline__ uint64_t du(int elems) { return (uint64_t)(elems >> 3); }',
  '// A value the compiler must treat as computed here (keeps descriptors from being hoisted).',
  '__device__ __forceinline__ uint64_t opaque(uint64_t v) {',
  '  asm volatile("" : "+l"(v));',
  '  return v;',
  '}',
  ...wgWaitHelper,
];

const wgmmaEngine = (tune: BackwardWgmmaTune): TensorCoreBackwardEngine => ({
  unsupported: backwardWgmmaUnsupported,
  title: (dtype) => `(CUDA tensor cores, wgmma ${dtype}, sm_90a): see codegen/cuda/backward-wgmma.ts.`,
  warps: WGMMA_BWD.WARPS,
  threads: WGMMA_BWD.THREADS,
  smemBytes: (s, x) => wgmmaSmemBytes(s.headDim, s.valueDim, x),
  tiling: () => {
    const { BM, BN, WARPS, THREADS } = WGMMA_BWD;
    return [
      `constexpr int BM = ${BM}, BN = ${BN}, WARPS = ${WARPS}, THREADS = ${THREADS};`,
      'static_assert(BM == 64 && BN == 128 && WARPS == 8 && (D == 64 || D == 128) && D == DV, "wgmma backward tiling");',
    ];
  },
  flagNote: ["// Compile-time flags of the deterministic mode's bwd_dq (backward-mma-dq.ts)."],
  includes: ['#include <cstdint>'],
  dkdv: (x, deterministic) => wgmmaDkdvKernel(x, deterministic, tune),
  loader: { name: 'load_panel', swizzle: 'pswz<ROWS>(r, c * 8)' },
  // wg_qk is m64n{BM} (Sᵀ, dPᵀ), wg_pv the register-A m64n64 of dV and dK (D = DV).
  deviceHelpers: (s, dtype) => [
    ...wgmmaDeviceHelpers({ ...s, blockK: WGMMA_BWD.BM }, dtype),
    '',
    ...wgmmaFn('wg_dq', 64, dtype, false, true),
    ...DESCRIPTOR_HELPERS,
    ...tuneHelpers(tune, dtype),
  ],
});

/** Shared memory of the producer kernel (the dqBulk knob's blocks and barriers included). */
const wsSmemBytes = (s: AttentionKernel['schedule'], x: SmemNeeds, tune: BackwardWgmmaTune): number =>
  wgmmaSmemBytes(s.headDim, s.valueDim, x) +
  WS_BARRIER_BYTES +
  (tune.dqBulk ? DQ_BULK_BYTES : 0) +
  (tune.dqBulk && tune.pingPong && tune.dqDouble ? dqDoubleExtraBytes(s.headDim) : 0) +
  (tune.tileHandoff ? WS_HANDOFF_BYTES : 0);

// The producer-warpgroup variant: the same source but for the dK/dV kernel, its block size
// (DKDV_THREADS: the 256 consumer threads and a 128-thread producer) and the mbarriers.
const wgmmaWsEngine = (tune: BackwardWgmmaTune): TensorCoreBackwardEngine => ({
  ...wgmmaEngine(tune),
  unsupported: (kernel) => {
    const why = backwardWgmmaUnsupported(kernel);
    const bytes = wsSmemBytes(kernel.schedule, backwardMmaExprs(kernel), NO_TUNE);
    if (why || bytes <= SM90_SMEM) return why;
    return `the wgmma CUDA backward with a producer warpgroup needs ${bytes} bytes of shared memory, more than sm_90's ${SM90_SMEM}`;
  },
  title: (dtype) =>
    `(CUDA tensor cores, wgmma ${dtype}, sm_90a, producer warpgroup): see codegen/cuda/backward-wgmma-ws.ts.`,
  smemBytes: (s, x) => wsSmemBytes(s, x, tune),
  tiling: (s) => [
    ...wgmmaEngine(tune).tiling(s),
    `constexpr int WS_PRODUCER = ${WS_PRODUCER_THREADS}, DKDV_THREADS = THREADS + WS_PRODUCER; // bwd_dkdv: consumers, then the producer`,
    ...(tune.dqBulk
      ? [
          `constexpr int DQ_LOADERS = ${DQ_BULK_LOADERS}, DQ_LD = ${tune.pingPong ? 'D + 8' : DQ_LD}; // dqBulk: producer loaders, then the dQ warp; dQ block row floats`,
        ]
      : []),
  ],
  dkdv: (x, deterministic) => wgmmaWsDkdvKernel(x, deterministic, tune),
  deviceHelpers: (s, dtype) => [
    ...wgmmaEngine(tune).deviceHelpers(s, dtype),
    ...wsDeviceHelpers,
    ...(tune.dqBulk ? dqBulkHelpers : []),
    ...(tune.pingPong ? [...pingPongHelpers, ...wgmmaFn('wg_dq128', 128, dtype, false, true), ...wgDqD] : []),
  ],
  dkdvThreads: 'DKDV_THREADS',
});

/**
 * Whether the dqBulk knob applies: the producer kernel's atomic mode (the deterministic one adds
 * no dQ in bwd_dkdv) where its blocks fit in shared memory beside the carried slots (not with two
 * or more slots at D = 128); elsewhere the knob is dropped and the kernel is the one without it.
 * Not under the patch order (backward-patch.ts): the dQ warp adds a q-tile's rows as one run from
 * its first, and a patch's q-tile spans several rows of its query box.
 */
export function dqBulkApplies(kernel: AttentionKernel, producer: boolean, deterministic: boolean): boolean {
  if (!producer || deterministic || backwardPatchAsked(kernel)) return false;
  return wsSmemBytes(kernel.schedule, backwardMmaExprs(kernel), { dqBulk: true }) <= SM90_SMEM;
}

/** The wgmma backward of a compiled (forward, f16/bf16) kernel; throws when it has none. */
export function renderCudaBackwardWgmma(
  kernel: AttentionKernel,
  options: {
    readonly deterministic?: boolean;
    readonly producer?: boolean;
    /** Opt-in instruction cuts of the tile body (backward-wgmma-tune.ts; all off by default). */
    readonly tune?: BackwardWgmmaTune;
  } = {},
): CudaBackwardWgmmaArtifact {
  const producer = options.producer ?? WGMMA_BWD_PRODUCER;
  const asked = options.tune ?? (producer ? WGMMA_BWD_TUNE : NO_TUNE);
  const bulk = asked.dqBulk === true && dqBulkApplies(kernel, producer, options.deterministic === true);
  const handoff = producer && handoffApplies(kernel, backwardPatchAsked(kernel));
  let tune = resolveTune(kernel, asked, bulk, handoff, options.deterministic === true);
  // dqDouble's second block only where it fits beside everything else.
  if (tune.dqDouble && wsSmemBytes(kernel.schedule, backwardMmaExprs(kernel), tune) > SM90_SMEM)
    tune = { ...tune, dqDouble: false };
  const engine = producer ? wgmmaWsEngine(tune) : wgmmaEngine(tune);
  return { kind: 'cuda-backward-wgmma', ...renderTensorCoreBackward(kernel, engine, options) };
}
