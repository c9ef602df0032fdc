// The warp-specialized Hopper (sm_90a) core, engine 'wgmma-ws' — FlashAttention-3's structure:
// consumer warpgroups (64 query rows each) run the wgmma core's tile (S = Q·Kᵀ and O += P·V as
// warpgroup MMAs from 128B-swizzled shared memory, mask and online softmax from mma-body), while
// a producer warpgroup, after giving most of its registers to them (setmaxnreg), streams Q and the
// visited K/V tiles in by TMA through an mbarrier ring `stages` deep. Consumers never issue a
// load and never wait at a CTA barrier; the host side builds the tensor maps per launch.
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import type { LaunchHook } from './launcher.js';
import { indent } from './indent.js';
import { foldsScale, serialSoftmaxCode } from './wgmma-ws-softmax.js';
import {
  foldScaleQCode,
  pvIssueCode,
  qkIssueCode,
  releaseK,
  wsTweakDevice,
  wsTweakMmaDevice,
  type WsTweaks,
} from './wgmma-ws-tweaks.js';
import type { AttentionCore, CoreOutput } from './simt.js';
import {
  consumerFrame,
  consumerLoopCode,
  pingpongCode,
  producerCode,
  tileWalkCode,
} from './wgmma-ws-body.js';
import { overlapLoopCode } from './wgmma-ws-overlap.js';
import { tmaHostCode, wgmmaWsDeviceHelpers } from './wgmma-ws-device.js';
import { PRODUCER_THREADS, type WgmmaWsPlan } from './wgmma-ws-plan.js';
import { barrierInit, hoistViews, sharedLayout } from './wgmma-ws-walk.js';
import { tcDequantCode, tcDequantizes } from './dequant-tile.js';
import { tmaKvMapsOf } from './kv-load-tma.js';
import { cudaLayout } from './layout.js';
import { dequantProducerCode, stageCodesHelper, wsFastConverterCode, wsStagingBytes } from './wgmma-ws-dq.js';
import { int8QkWsRender } from './int8qk-wgmma.js';
import { pFragmentCode } from './mma-device.js';
import { tileScanBallot } from './mma-tiles.js';
import { routedOf, routedTileBits } from './routing-attn.js';

/**
 * One K/V tile from ring buffer `st`: the wgmma core's tile, on this warpgroup's 64 rows. With
 * wsTweaks splitKv it also takes the ring's phase: K is released once S has landed, and P·V waits
 * for V on its own barrier.
 */
function tileLambda(e: CoreExprs, pingpong: boolean, walk: boolean, t: WsTweaks): string[] {
  return [
    "// This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.",
    'const T* Qw = Qs + (warp / 4) * 64 * 64;',
    '// Only MASKED tiles (partial, or past Nk) test per element.',
    `auto tile = [&](auto masked, const int kt, const int st${t.splitKv ? ', const unsigned ph' : ''}) {`,
    '  constexpr bool MASKED = decltype(masked)::value;',
    '  const T* Kb = Ks + st * (BK * D);',
    '  const T* Vb = Vs + st * (BK * DV);',
    '  const int kbase = kt * BK;',
    '  (void)kbase;',
    ...indent(walk ? hoistViews(e, true) : [], '  '),
    ...indent(routedTileBits(e), '  '),
    '  float s[NT][4];',
    ...(t.zeroInit
      ? []
      : ['#pragma unroll', '  for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;']),
    '  // S = Q·Kᵀ, both K-major: a k16 step is 32 bytes along a panel row, every 4th a new panel.',
    ...(pingpong ? ["  pp_sync(); // the other warpgroup's S = Q·Kᵀ is issued"] : []),
    '  wg_fence();',
    ...indent(qkIssueCode(t), '  '),
    '  wg_commit();',
    ...(pingpong ? ['  pp_arrive(); // its turn'] : []),
    '  wg_wait0();',
    '  acc_fence(s);',
    ...(t.splitKv ? indent(releaseK('st'), '  ') : []),
    ...indent(serialSoftmaxCode(e, t), '  '),
    '  // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major.',
    ...(t.splitKv ? ['  mbar_wait(&full_v[st], ph);'] : []),
    ...indent(t.packFirst ? packedPvCode(t) : interleavedPvCode(t), '  '),
    '  wg_commit();',
    '  wg_wait0();',
    '  acc_fence(o);',
    '};',
  ];
}

/** O += P·V with each k step's P packed just before its wgmma (ptxas fences between them). */
const interleavedPvCode = (t: WsTweaks): string[] => [
  'acc_fence(o);',
  'wg_fence();',
  '#pragma unroll',
  'for (int kv = 0; kv < BK / 16; ++kv) {',
  ...pFragmentCode('s', '  '),
  ...indent(pvIssueCode(t, 'pa'), '  '),
  '}',
];

/** wsTweaks packFirst: all of P to 16 bits first, then the wgmmas back to back (one fence). */
const packedPvCode = (t: WsTweaks): string[] => [
  'unsigned pk[BK / 16][4];',
  '#pragma unroll',
  'for (int kv = 0; kv < BK / 16; ++kv) {',
  '  pk[kv][0] = pack2(s[2 * kv][0], s[2 * kv][1]);',
  '  pk[kv][1] = pack2(s[2 * kv][2], s[2 * kv][3]);',
  '  pk[kv][2] = pack2(s[2 * kv + 1][0], s[2 * kv + 1][1]);',
  '  pk[kv][3] = pack2(s[2 * kv + 1][2], s[2 * kv + 1][3]);',
  '}',
  'acc_fence(o);',
  'wg_fence();',
  '#pragma unroll',
  'for (int kv = 0; kv < BK / 16; ++kv) {',
  ...indent(pvIssueCode(t, 'pk[kv]'), '  '),
  '}',
];

/** The consumer branch: per-row state, the tile loop, then out and lse. */
function consumerCode(kernel: AttentionKernel, e: CoreExprs, plan: WgmmaWsPlan): string[] {
  return consumerFrame(kernel, e, plan, () => [
    ...(plan.pingpong ? pingpongCode : []),
    ...(foldsScale(e, plan.tweaks) ? foldScaleQCode : []),
    ...(plan.overlap
      ? overlapLoopCode(e, { pingpong: plan.pingpong, walk: plan.producerWalk, tweaks: plan.tweaks })
      : [
          ...tileLambda(e, plan.pingpong, plan.producerWalk, plan.tweaks),
          ...consumerLoopCode(e, plan.producerWalk, plan.tweaks.splitKv),
        ]),
  ]);
}

function kernelCode(kernel: AttentionKernel, e: CoreExprs, plan: WgmmaWsPlan, entry: string): string[] {
  // Schedule.tileScan as on the other tensor-core engines.
  const walk = e.mode === 'empty' ? [] : tileWalkCode(e, tileScanBallot(kernel));
  // The producer's walk (Schedule.wsProducerWalk): only the producer warp classifies.
  const producerWalk = plan.producerWalk && e.mode !== 'empty';
  // A routed kernel's tile list is built by the whole CTA (CTA barriers), before the roles part.
  if (producerWalk && routedOf(e))
    throw new Error(
      `CUDA backend: kernel "${kernel.name}": block routing on wgmma-ws builds its tile list with the whole CTA; leave wsProducerWalk out`,
    );
  return [
    ...wsPreamble(kernel, plan),
    '',
    `extern "C" __global__ void __launch_bounds__(THREADS, 1) ${entry}(const Args a, const float qscale,`,
    '    const __grid_constant__ TmaMap tmq, const __grid_constant__ TmaMap tmk, const __grid_constant__ TmaMap tmv) {',
    '#if !ATTNC_SM90A',
    '  __trap(); // the compute_90 PTX image: no wgmma there',
    '#endif',
    ...sharedLayout(e, plan, producerWalk),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    '  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);',
    '  // Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start',
    '  // early and the short ones fill the tail of the grid.',
    '  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
    '  const int nkt = (a.Nk + BK - 1) / BK;',
    '  (void)Qs; (void)Ks; (void)Vs; (void)lane; (void)g; (void)t4; (void)hkv; (void)nkt; (void)tmq; (void)tmk; (void)tmv;',
    ...(e.mode === 'dynamic'
      ? ['  const int q_lo = a.q_offset + q0;', '  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;']
      : []),
    ...barrierInit(e, plan, producerWalk),
    '  __syncthreads(); // the last CTA-wide barrier: the roles part here',
    ...indent(producerWalk ? [] : walk, '  '),
    '  if (warp >= CWARPS) {',
    ...(plan.regs ? [`    regs_dec<${plan.regs.producer}>();`] : []),
    ...(e.mode === 'empty'
      ? []
      : tcDequantizes(kernel.formats)
        ? indent(dequantProducerCode(kernel.schedule, kernel.formats, cudaLayout(kernel).field), '    ')
        : [
            '    if (warp == CWARPS) {',
            ...indent(
              [...(producerWalk ? walk : []), ...producerCode(e, producerWalk, plan.tweaks.splitKv)],
              '      ',
            ),
            '    }',
          ]),
    '  } else {',
    ...indent(consumerCode(kernel, e, plan), '    '),
    '  }',
    '}',
  ];
}

/** Before the kernel: its tile constants, device helpers (dequant, converters, tweaks) and TMA maps. */
function wsPreamble(kernel: AttentionKernel, plan: WgmmaWsPlan): string[] {
  const s = kernel.schedule;
  return [
    `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, STAGES = ${plan.stages};`,
    `constexpr int CWARPS = ${plan.consumers * 4}, CTHREADS = CWARPS * 32, THREADS = CTHREADS + ${PRODUCER_THREADS};`,
    "constexpr int NT = BK / 8; // key n-tiles of a warp's score block",
    'static_assert(BQ == 16 * CWARPS && BQ % 64 == 0 && BK % 16 == 0 && BK <= 256, "wgmma-ws tiling");',
    'static_assert((D == 64 || D == 128) && (DV == 64 || DV == 128), "wgmma-ws head dims");',
    '',
    ...wgmmaWsDeviceHelpers(s, sharedStorage(kernel.formats)),
    ...tcDequantCode(kernel.formats, cudaLayout(kernel).field, {
      name: 'load_panel',
      swizzle: 'pswz<ROWS>(r, c * 8)',
    }),
    ...(tcDequantizes(kernel.formats) ? stageCodesHelper : []),
    ...wsFastConverterCode(s, kernel.formats),
    ...wsTweakDevice(plan.tweaks),
    ...wsTweakMmaDevice(plan.tweaks, s, sharedStorage(kernel.formats) as 'f16' | 'bf16'),
    '',
    ...tmaHostCode(sharedStorage(kernel.formats), tmaKvMapsOf(kernel.formats)),
  ];
}

export function wgmmaWsCore(asked: WgmmaWsPlan): AttentionCore {
  // Ping-pong pairs two consumer warpgroups.
  const plan = { ...asked, pingpong: asked.pingpong && asked.consumers === 2 };
  return {
    id: 'wgmma-ws',
    render: ({ kernel, exprs: e, entry }) => {
      // qk int8: S = Q·Kᵀ over int8 codes from a quantize pre-pass (int8qk-wgmma.ts).
      if (kernel.qkInt8) return int8QkWsRender(kernel, e, plan, kernel.qkInt8, entry);
      const s = kernel.schedule;
      // Per-key hoists are static __shared__ arrays (4 bytes a key) beside the dynamic tiles; the
      // producer's walk keeps one per stage, and a tile code per stage.
      const walkRing = plan.producerWalk && e.mode !== 'empty';
      const hoistBytes = walkRing
        ? 4 * plan.stages * (s.blockK * e.keyHoists.length + 1)
        : 4 * s.blockK * e.keyHoists.length;
      // A quantized cache's code words are staged after the mbarriers (wgmma-ws-dq.ts).
      const smemBytes = plan.smemBytes + wsStagingBytes(s, kernel.formats);
      // Found by compute-sanitizer (round 17, document on an H100): the overlapped consumers without
      // ping-pong turns, reading per-key values from the producer's ring, gave 4 racecheck hazards
      // (fa3's turns and the serial consumers were clean). Not understood yet, so not offered.
      if (plan.overlap && !plan.pingpong && plan.producerWalk && e.keyHoists.length > 0)
        throw new Error(
          `CUDA backend: kernel "${kernel.name}": wsConsumers overlap with wsProducerWalk and per-key values (${e.keyHoists.map((h) => h.name).join(', ')}) failed compute-sanitizer's racecheck; use wsConsumers fa3 or serial, or leave wsProducerWalk out`,
        );
      if (plan.tweaks.splitKv && tcDequantizes(kernel.formats))
        throw new Error(
          `CUDA backend: kernel "${kernel.name}": wsTweaks splitKv needs bf16/f16 K and V (the producer converts quantized tiles whole)`,
        );
      // The dynamic tiles are 1 KiB-aligned (128B swizzle), so the static arrays before them take
      // whole KiBs: document's 3-stage walk (1,548 static bytes, 230,456 dynamic) fit the count
      // without the rounding and failed cudaFuncSetAttribute on an H100 (round 17).
      const staticBytes = Math.ceil(hoistBytes / 1024) * 1024;
      if (smemBytes + staticBytes > plan.sharedLimit) {
        throw new Error(
          `CUDA backend: kernel "${kernel.name}" on the wgmma-ws engine needs ${smemBytes + staticBytes} bytes of shared memory (${staticBytes} for per-key values and tile codes, in whole KiBs before the aligned tiles), the limit is ${plan.sharedLimit}; use stages: ${Math.max(2, plan.stages - 1)}`,
        );
      }
      const launchHook: LaunchHook = {
        setup: (ns) => [
          `${ns}::TmaMap tma[3];`,
          `if (const char* why = ${ns}::make_tma_maps(a, tma)) return fail(ATTNC_ERR_CUDA, "%s", why);`,
        ],
        kernelArgs: ['tma[0]', 'tma[1]', 'tma[2]'],
      };
      const out: CoreOutput & { readonly launchHook: LaunchHook } = {
        code: kernelCode(kernel, e, plan, entry).join('\n'),
        threads: s.threads,
        smemBytes,
        vectorElems: 8,
        mapping: {
          core: 'wgmma-ws',
          instruction: `wgmma.mma_async.m64nNk16.${sharedStorage(kernel.formats)}`,
          consumerWarpgroups: plan.consumers,
          producerWarpgroups: 1,
          rowsPerWarpgroup: 64,
          stages: plan.stages,
          overlap: plan.overlap ? 'next S = Q·Kᵀ and softmax under this P·V' : 'none',
          pingpong: plan.pingpong ? 'consumer warpgroups alternate S = Q·Kᵀ (named barriers 2, 3)' : 'none',
          ...(walkRing ? { tileWalk: 'producer (tile codes and per-key values through the ring)' } : {}),
          loads: 'TMA (cp.async.bulk.tensor.3d) on mbarriers; the launcher builds the q/k/v tensor maps',
          registers: plan.regs ? `setmaxnreg ${plan.regs.producer}/${plan.regs.consumer}` : 'launch bound',
          swizzle: '128B (64-wide panels)',
          globalVectorElems: 8,
        },
        launchHook,
      };
      return out;
    },
  };
}
