// `qk int8 [smooth k]` on the warp-specialized Hopper engine (wgmma-ws), SageAttention's kernel:
// S = Q·Kᵀ as `wgmma.mma_async.m64nNk32.s32.s8.s8` over int8 codes in shared memory, scores =
// s32 · sq · sk in f32, then wgmma-ws's own softmax and bf16/f16 P·V, in any of its consumer
// schedules (serial, ping-pong, overlapped, fa3) with the wsTweaks that do not touch S. Opt-in (the
// SIMT engine stays the statement's default): schedule `engine: 'wgmma-ws'`, serial unless asked.
//
// - The codes and per-block scales come from a pre-pass (int8qk-wgmma-prepass.ts) the launcher
//   runs first, into its scratch; this kernel never sees the 16-bit Q and K.
// - Layout: D = 128 int8 channels are one 128-byte row, so a Q or K tile is a single 128B-swizzled
//   panel the TMA unit writes from 3-D maps over the packed codes (dtype UINT8). Both operands are
//   K-major and a k32 step of s8 is 32 bytes, as a k16 step of 16-bit elements is: the descriptors
//   (desc128) are the bf16 core's with a byte step of 32.
// - The s32 sums are exact (|Σ| ≤ 127²·128 < 2²⁴), so their f32 conversion is too.
// - V stays 16-bit, by the float core's 4-D map (caller strides). The producer streams Q's codes
//   once, then K's codes and V per visited tile through the same mbarrier ring.
import { sharedStorage } from '../../ir/formats.js';
import type { QkInt8 } from '../../ir/int8qk.js';
import type { AttentionKernel, WsTweak } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { tmaKvMaps } from './kv-load-tma.js';
import type { LaunchHook } from './launcher.js';
import { indent } from './indent.js';
import { int8QkPrepassDevice, int8QkPrepassHost } from './int8qk-wgmma-prepass.js';
import type { CoreOutput } from './simt.js';
import { tileWalkCode } from './wgmma-ws-body.js';
import { foldsScale } from './wgmma-ws-softmax.js';
import { wsTweakDevice, wsTweakMmaDevice } from './wgmma-ws-tweaks.js';
import { int8QkConsumerCode, s32ToF32Helper } from './int8qk-wgmma-consumer.js';
import { tmaHostCode, wgmmaWsDeviceHelpers } from './wgmma-ws-device.js';
import { PRODUCER_THREADS, type WgmmaWsPlan } from './wgmma-ws-plan.js';
import { codeMapsHost, producerCode, s8QkWgmma } from './int8qk-wgmma-parts.js';
import { pvE4m3PrepassDevice } from './int8qk-pv-prepass.js';
import {
  pvCodeMapHost,
  pvE4m3Device,
  pvE4m3PrepassHost,
  pvE4m3ProducerCode,
  pvE4m3WsProblem,
} from './int8qk-pv-wgmma.js';
import { tileScanBallot } from './mma-tiles.js';

/** Dynamic shared memory: int8 Q, `stages` int8 K and 16-bit (or e4m3: `vBytes` 1) V tiles, mbarriers, alignment slack. */
export function int8QkWsSharedBytes(
  blockQ: number,
  blockK: number,
  stages: number,
  valueDim: number,
  vBytes = 2,
): number {
  return blockQ * 128 + stages * blockK * (128 + vBytes * valueDim) + 8 * (2 * stages + 1) + 1024;
}

/**
 * The wsTweaks that apply (the softmax's, P·V's shape, the register split, the overlapped rescale's
 * turn, and foldScale: the raw s32 sums into the max, |qscale| · sq · sk into the exp2's FFMA,
 * int8qk-wgmma-consumer.ts). Not splitKv (K and V share a stage barrier here) nor zeroInit (S's
 * first k32 step always overwrites); the serial tile always packs P first.
 */
export const int8QkWsTweaks: readonly WsTweak[] = [
  'fastExp',
  'lazyRescale',
  'pvN128',
  'regs240',
  'packFirst',
  'rescaleInTurn',
  'foldScale',
];

/** Why this kernel cannot take the int8 path of the wgmma-ws engine (undefined when it can). */
export function int8QkWsProblem(kernel: AttentionKernel, plan: WgmmaWsPlan): string | undefined {
  const s = kernel.schedule;
  const name = `kernel "${kernel.name}": qk int8 on the wgmma-ws engine`;
  if (s.headDim !== 128)
    return `${name} needs headDim 128 (one 128-byte row of int8 codes), got ${s.headDim}`;
  if (plan.producerWalk) return `${name} walks the tiles in the consumers: leave wsProducerWalk out`;
  const unsupported = (s.wsTweaks ?? []).filter((t) => !int8QkWsTweaks.includes(t));
  if (unsupported.length)
    return `${name} takes the wsTweaks ${int8QkWsTweaks.join(', ')}; not ${unsupported.join(', ')}`;
  if (kernel.formats.k.kind === 'quant' || kernel.formats.v.kind === 'quant' || kernel.formats.paged)
    return `${name} reads bf16/f16 K and V in place: no quantized or paged cache`;
  return undefined;
}

/** Constants, device helpers, the pre-passes and the host's TMA map makers: all before the kernel. */
function kernelPreamble(kernel: AttentionKernel, e: CoreExprs, plan: WgmmaWsPlan, qk: QkInt8): string[] {
  const s = kernel.schedule;
  const dtype = sharedStorage(kernel.formats);
  const pv = kernel.pvE4m3;
  return [
    `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, STAGES = ${plan.stages};`,
    `constexpr int CWARPS = ${plan.consumers * 4}, CTHREADS = CWARPS * 32, THREADS = CTHREADS + ${PRODUCER_THREADS};`,
    "constexpr int NT = BK / 8; // key n-tiles of a warp's score block",
    'static_assert(BQ == 16 * CWARPS && BQ % 64 == 0 && BK % 16 == 0 && BK <= 256, "wgmma-ws tiling");',
    'static_assert(D == 128 && (DV == 64 || DV == 128), "qk int8 on wgmma-ws: one 128-byte row of codes");',
    '',
    ...wgmmaWsDeviceHelpers(s, dtype),
    ...wsTweakDevice(plan.tweaks),
    ...wsTweakMmaDevice(plan.tweaks, s, dtype as 'f16' | 'bf16'),
    '',
    `// qk int8 (int8qk-wgmma.ts): S = Q·Kᵀ over int8 codes, m64n${s.blockK}k32.s32.s8.s8.`,
    ...s8QkWgmma(s.blockK),
    ...s32ToF32Helper(foldsScale(e, plan.tweaks)),
    '',
    ...int8QkPrepassDevice({ q: 'q', k: 'k' }),
    '',
    ...(pv ? [...pvE4m3PrepassDevice({ v: 'v' }), '', ...pvE4m3Device(s.valueDim), ''] : []),
    // The float core's make_tma_maps fills V's map (its Q map is replaced by the codes').
    ...tmaHostCode(dtype, [tmaKvMaps[1]!]),
    ...codeMapsHost,
    ...int8QkPrepassHost(qk),
    ...(pv ? [...pvCodeMapHost, ...pvE4m3PrepassHost(pv)] : []),
  ];
}

/** The `qk int8` kernel: the preamble, then the producer warp and the consumer warpgroups. */
function kernelCode(
  kernel: AttentionKernel,
  e: CoreExprs,
  plan: WgmmaWsPlan,
  qk: QkInt8,
  entry: string,
): string[] {
  const walk = e.mode === 'empty' ? [] : tileWalkCode(e, tileScanBallot(kernel));
  const pv = kernel.pvE4m3;
  return [
    ...kernelPreamble(kernel, e, plan, qk),
    '',
    `extern "C" __global__ void __launch_bounds__(THREADS, 1) ${entry}(const Args a, const float qscale,`,
    '    const __grid_constant__ TmaMap tmq, const __grid_constant__ TmaMap tmk, const __grid_constant__ TmaMap tmv,',
    pv
      ? '    const float* __restrict__ qk_sq_g, const float* __restrict__ qk_sk_g, const float* __restrict__ pv_sv_g, const float* __restrict__ pv_mean_g) {'
      : '    const float* __restrict__ qk_sq_g, const float* __restrict__ qk_sk_g) {',
    '#if !ATTNC_SM90A',
    '  __trap(); // the compute_90 PTX image: no wgmma there',
    '#endif',
    '  extern __shared__ __align__(1024) unsigned char smem_raw[];',
    '  // TMA writes and wgmma reads 128B-swizzled tiles: each starts on a 1024-byte boundary.',
    '  unsigned char* Qs8 = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u); // [BQ][128] codes',
    '  unsigned char* Ks8 = Qs8 + BQ * D;                             // [STAGES][BK][128] codes',
    ...(pv
      ? [
          '  unsigned char* Vs8 = Ks8 + STAGES * BK * D;                  // [STAGES][DV][BK] e4m3 codes',
          '  uint64_t* full_bar = reinterpret_cast<uint64_t*>(Vs8 + STAGES * BK * DV); // tile landed',
        ]
      : [
          '  T* Vs = reinterpret_cast<T*>(Ks8 + STAGES * BK * D);          // [STAGES][BK][DV], 64-wide panels',
          '  uint64_t* full_bar = reinterpret_cast<uint64_t*>(Vs + STAGES * BK * DV); // tile landed',
        ]),
    '  uint64_t* empty_bar = full_bar + STAGES; // every consumer warp is done with the buffer',
    '  uint64_t* qbar = empty_bar + STAGES;',
    "  __shared__ float qk_sk_ring[STAGES]; // the K block scale of each stage's tile",
    ...indent(
      e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
      '  ',
    ),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    '  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);',
    '  // Last q-tile first: under causal-like masks it has the most tiles.',
    '  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
    '  const int nkt = (a.Nk + BK - 1) / BK;',
    "  const float* qk_sk_head = qk_sk_g + (size_t)(b * a.Hkv + hkv) * nkt; // this kv head's K block scales",
    '  (void)qk_sk_head;',
    '  (void)lane; (void)g; (void)t4; (void)hkv; (void)nkt; (void)tmq; (void)tmk; (void)tmv; (void)qk_sq_g; (void)qk_sk_g;',
    ...(e.mode === 'dynamic'
      ? ['  const int q_lo = a.q_offset + q0;', '  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;']
      : []),
    '  if (tid == 0) {',
    '#pragma unroll',
    '    for (int i = 0; i < STAGES; ++i) {',
    '      mbar_init(&full_bar[i], 1);',
    '      mbar_init(&empty_bar[i], CWARPS);',
    '    }',
    '    mbar_init(qbar, 1);',
    '    asm volatile("fence.mbarrier_init.release.cluster;\\n" ::: "memory");',
    '    proxy_fence();',
    '  }',
    '  __syncthreads(); // the last CTA-wide barrier: the roles part here',
    ...indent(walk, '  '),
    '  if (warp >= CWARPS) {',
    ...(plan.regs ? [`    regs_dec<${plan.regs.producer}>();`] : []),
    ...(e.mode === 'empty'
      ? []
      : ['    if (warp == CWARPS) {', ...indent(pv ? pvE4m3ProducerCode : producerCode, '      '), '    }']),
    '  } else {',
    ...indent(int8QkConsumerCode(kernel, e, plan), '    '),
    '  }',
    '}',
  ];
}

/** The wgmma-ws core's output for a `qk int8` kernel (wgmma-ws.ts hands such kernels here). */
export function int8QkWsRender(
  kernel: AttentionKernel,
  e: CoreExprs,
  plan: WgmmaWsPlan,
  qk: QkInt8,
  entry: string,
): CoreOutput & { readonly launchHook: LaunchHook } {
  const pv = kernel.pvE4m3;
  const problem = int8QkWsProblem(kernel, plan) ?? (pv && pvE4m3WsProblem(kernel));
  if (problem) throw new Error(`CUDA backend: ${problem}`);
  const s = kernel.schedule;
  const smemBytes = int8QkWsSharedBytes(s.blockQ, s.blockK, plan.stages, s.valueDim, pv ? 1 : 2);
  const hoistBytes = 4 * s.blockK * e.keyHoists.length + 4 * plan.stages; // + qk_sk_ring
  if (smemBytes + hoistBytes > plan.sharedLimit)
    throw new Error(
      `CUDA backend: kernel "${kernel.name}" (qk int8, wgmma-ws) needs ${smemBytes + hoistBytes} bytes of shared memory, the limit is ${plan.sharedLimit}`,
    );
  return {
    code: kernelCode(kernel, e, plan, qk, entry).join('\n'),
    threads: s.threads,
    smemBytes,
    vectorElems: 8,
    mapping: {
      core: 'wgmma-ws',
      instruction: `S: wgmma.mma_async.m64n${s.blockK}k32.s32.s8.s8, P·V: ${pv ? `m64n${s.valueDim}k32.f32.e4m3.e4m3 (per-tile f32 sums)` : `m64nNk16.${sharedStorage(kernel.formats)}`}`,
      qkInt8: `pre-pass (${qk.smoothK ? 'key sums, ' : ''}per-block int8 Q and K into the launcher's scratch), then s32 · sq · sk`,
      ...(pv
        ? {
            pvE4m3: `pre-pass (${pv.smoothV ? 'channel means, ' : ''}per-channel e4m3 V, transposed, keys permuted in 32s), P8 = e4m3(448·p), o · sv / 448${pv.smoothV ? ' + mean' : ''}`,
          }
        : {}),
      consumerWarpgroups: plan.consumers,
      producerWarpgroups: 1,
      rowsPerWarpgroup: 64,
      stages: plan.stages,
      overlap: plan.overlap ? 'next S = Q·Kᵀ and softmax under this P·V' : 'none',
      pingpong: plan.pingpong
        ? 'consumer warpgroups alternate their matrix products (named barriers 2, 3)'
        : 'none',
      tweaks: (s.wsTweaks ?? []).join(', ') || 'none',
      loads: pv
        ? 'TMA: Q, K and V codes (3-D UINT8 maps over the scratches)'
        : 'TMA: Q and K codes (3-D UINT8 maps over the scratch), V (4-D map, caller strides)',
      registers: plan.regs ? `setmaxnreg ${plan.regs.producer}/${plan.regs.consumer}` : 'launch bound',
      swizzle: '128B (128-byte rows of codes, 64-wide V panels)',
      globalVectorElems: 8,
    },
    launchHook: pv ? pvLaunchHook : int8LaunchHook,
  };
}

const int8LaunchHook: LaunchHook = {
  setup: (ns) => [
    `${ns}::Qk8Scratch qk8;`,
    `if (const char* why = ${ns}::qk8_prepass(a, stream, &qk8)) return fail(ATTNC_ERR_CUDA, "%s", why);`,
    `${ns}::TmaMap tma[3];`,
    `if (const char* why = ${ns}::make_qk8_maps(a, qk8, tma)) return fail(ATTNC_ERR_CUDA, "%s", why);`,
  ],
  kernelArgs: ['tma[0]', 'tma[1]', 'tma[2]', 'qk8.sq', 'qk8.sk'],
};

/** pv e4m3: the V pre-pass too, and V's map over its codes in place of the 16-bit one. */
const pvLaunchHook: LaunchHook = {
  setup: (ns) => [
    ...int8LaunchHook.setup(ns),
    `${ns}::Pv8Scratch pv8;`,
    `if (const char* why = ${ns}::pv8_prepass(a, stream, &pv8)) return fail(ATTNC_ERR_CUDA, "%s", why);`,
    `if (const char* why = ${ns}::make_pv8_map(a, pv8, &tma[2])) return fail(ATTNC_ERR_CUDA, "%s", why);`,
  ],
  kernelArgs: [...int8LaunchHook.kernelArgs, 'pv8.sv', 'pv8.mean'],
};
