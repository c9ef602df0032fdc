// The Hopper dK/dV kernel with a producer warpgroup (FlashAttention-3's backward design; opt-in:
// renderCudaBackwardWgmma's `producer`). The two consumer warpgroups (threads 0..255) run the
// default kernel's tile body (backward-wgmma-tile.ts) unchanged but for their barriers; a third
// warpgroup (threads 256..383) gives up registers (setmaxnreg) and streams Q, dO, lse and delta of
// the next non-empty q-tile into one of two buffers:
//   producer   wait empty[buf] (the consumers released it), cp.async Q/dO panels and plain loads of
//              lse/delta, wait for its own copies, proxy fence, arrive on full[buf] (128 arrivals);
//   consumers  wait full[buf], tile body (its barriers are named barrier 1 over the 256 consumer
//              threads, not __syncthreads), thread 0 arrives on empty[buf].
// Both sides walk the same q-tiles with the same next_tile, so fills and releases pair up (with
// tileHandoff the producer alone walks and names each fill's tile: backward-wgmma-handoff.ts). dQ goes
// into dq_acc by 16-byte atomics (red.global.add.v4.f32, sm_90) when dq_acc is 16-byte aligned:
// lane pairs swap halves so each holds four consecutive columns of one row.
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import {
  dkdvAccumulators,
  dkdvEpilogue,
  headWalk,
  keyTileLoads,
  keyTileSetup,
  lseDeltaLoad,
} from './backward-dkdv-parts.js';
import type { DkdvOrder } from './backward-residue.js';
import { wgmmaSmemTiles } from './backward-wgmma-kernel.js';
import { dqAdd2, wgmmaTileLambda } from './backward-wgmma-tile.js';
import type { TileSync } from './backward-wgmma-tile.js';
import { blockOrderOf, NO_TUNE, type BackwardWgmmaTune } from './backward-wgmma-tune.js';
import {
  dqBulkDone,
  dqBulkInit,
  dqBulkSmemDecls,
  dqBulkStore,
  dqBulkWarpLoop,
} from './backward-wgmma-dq-bulk.js';
import { PINGPONG_SDP, pingPongDone, pingPongDqStep, pingPongStart } from './backward-wgmma-pingpong.js';
import { mbarArriveWaitHelpers, mbarInitHelper, setmaxnregHelpers } from './wgmma-ws-device.js';
import { indent } from './indent.js';
import { hoistEnd, queryHoistFill } from './backward-mask-hoists.js';
import {
  HANDOFF_DECL,
  HANDOFF_END,
  HANDOFF_FLOATS,
  HANDOFF_SLOTS,
  handoffConsumerLoop,
} from './backward-wgmma-handoff.js';

/** Threads of the producer warpgroup. */
export const WS_PRODUCER_THREADS = 128;
/** Bytes of the four mbarriers (full and empty per buffer) after the carried slots. */
export const WS_BARRIER_BYTES = 32;

/**
 * setmaxnreg counts: one CTA of 384 threads on 64K registers; the producer keeps 40, the consumers
 * share the rest (232, a multiple of 8). Measured (nvcc 13, bf16 D 128, bwd_dkdv spills): producer
 * 24 / consumers 240 spilled 68 bytes on full (the producer's address math), 32/240 36-40 bytes,
 * 40/232 8-16 bytes on full and causal.
 */
export const WS_REGISTERS = { producer: 40, consumer: 232 } as const;

/** The forward's mbarrier and setmaxnreg helpers (wgmma-ws-device.ts) and the consumers' named barrier. */
export const wsDeviceHelpers = [
  ...mbarInitHelper,
  ...mbarArriveWaitHelpers,
  '// Barrier 1 among the consumer threads alone (the producer never reaches a CTA-wide barrier).',
  '__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\\n" ::"n"(THREADS) : "memory"); }',
  ...setmaxnregHelpers,
];

/**
 * dq_acc += acc, four columns of one row a lane: lane pair (t4 even, t4 odd) holds columns
 * 2·t4.. of rows g and g + 8; the even lane keeps row g, the odd one row g + 8, each taking the
 * other's half by a shuffle, then one 16-byte atomic per n-tile. `v4` (dq_acc 16-byte aligned)
 * is uniform over the CTA; otherwise the default kernel's 8-byte atomics.
 */
const dqAdd4 = (o: DkdvOrder): string[] => [
  'if (v4) {',
  '  const int odd = t4 & 1;',
  '  const int i = q0 + (warp & 3) * 16 + g + 8 * odd;',
  `  float* dst = a.dq_acc + (${o.qrow('i')}) * D + c0 + (t4 - odd) * 2;`,
  '#pragma unroll',
  '  for (int n = 0; n < 8; ++n) {',
  '    // Send the row the partner keeps: the even lane row g + 8, the odd one row g.',
  '    const float s0 = odd ? acc[n][0] : acc[n][2], s1 = odd ? acc[n][1] : acc[n][3];',
  '    const float r0 = __shfl_xor_sync(0xffffffffu, s0, 1), r1 = __shfl_xor_sync(0xffffffffu, s1, 1);',
  '    const float4 v = odd ? make_float4(r0, r1, acc[n][2], acc[n][3]) : make_float4(acc[n][0], acc[n][1], r0, r1);',
  `    if (i < ${o.nq}) atomicAdd(reinterpret_cast<float4*>(dst + n * 8), v);`,
  '  }',
  '} else {',
  ...indent(dqAdd2(o), '  '),
  '}',
];

/**
 * The consumers' barriers and dQ adds: the 16-byte atomics; dq8 (backward-wgmma-tune.ts) the
 * default kernel's 8-byte ones, no lane exchange; dqBulk the block into shared memory for the dQ
 * warp (backward-wgmma-dq-bulk.ts); pingPong warpgroup-local barriers, dQ over own keys and
 * scheduler barriers (backward-wgmma-pingpong.ts).
 */
function tileSync(tune: BackwardWgmmaTune, o: DkdvOrder): TileSync {
  if (tune.pingPong)
    return {
      sync: 'wg_sync()',
      dqAdd: [],
      dqStep: pingPongDqStep(o, tune.dqDouble === true),
      sdp: PINGPONG_SDP,
    };
  const dqAdd = tune.dqBulk ? dqBulkStore(o) : tune.dq8 ? dqAdd2(o) : dqAdd4(o);
  return { sync: 'consumer_sync()', dqAdd };
}

/**
 * How the producer's loaders cover a [BM][W] panel: load_panel strides by THREADS (256), so the
 * 128 producer threads call it twice; with dqBulk's 96 loaders, thread t takes starts t, t + 96, …
 */
function panelLoads(bulk: boolean, o: DkdvOrder): string[] {
  const panel = (w: string, dst: string, src: string, t: string): string =>
    o.queryLoad('load_panel', w, dst, src, t);
  const load = (t: string): string[] => [
    panel('D', 'Qs + buf * (BM * D)', 'a.q', t),
    panel('DV', 'Os + buf * (BM * DV)', 'a.dout', t),
  ];
  if (bulk)
    return [
      '  // load_panel strides by THREADS (256): the 96 loaders take starts ptid, ptid + 96, ptid + 192.',
      '  for (int t = ptid; t < THREADS; t += DQ_LOADERS) {',
      ...indent(load('t'), '    '),
      '  }',
    ];
  return [
    '  // load_panel strides by THREADS (256): two calls cover the tile with 128 threads.',
    '#pragma unroll',
    '  for (int half = 0; half < 2; ++half) {',
    ...indent(load('ptid + half * WS_PRODUCER'), '    '),
    '  }',
  ];
}

/** The producer warpgroup's loop: every non-empty q-tile of every head of the group, in order. */
function producerLoop(x: BackwardMmaExprs, bulk: boolean, handoff: boolean): string[] {
  const o = x.order;
  const loaders = bulk ? 'DQ_LOADERS' : 'WS_PRODUCER';
  return [
    'const int ptid = tid - THREADS;',
    'int it = 0; // fills so far: buffer it & 1, its (it >> 1)-th',
    'for (int hg = 0; hg < group; ++hg) {',
    ...indent(
      [
        ...headWalk(x),
        'bool full;',
        'for (int qt = next_tile(0, full); qt < nqt; qt = next_tile(qt + 1, full), ++it) {',
        '  const int buf = it & 1, q0 = qt * BM;',
        '  if (it >= 2) mbar_wait(&empty_bar[buf], ((it >> 1) - 1) & 1); // released after fill it - 2',
        ...(handoff ? HANDOFF_SLOTS : []),
        ...panelLoads(bulk, o),
        '  cp_commit();',
        ...lseDeltaLoad('ptid', loaders, o),
        ...queryHoistFill(x.dkdvMask, 'ptid', loaders, o),
        '  cp_wait<0>();',
        '  proxy_fence(); // cp.async wrote through the generic proxy; wgmma reads through the async one',
        '  mbar_arrive(&full_bar[buf]);',
        '}',
        '(void)full;',
      ],
      '  ',
    ),
    '}',
    ...(handoff ? HANDOFF_END : []),
  ];
}

const releaseOf = (tune: BackwardWgmmaTune): string =>
  tune.pingPong
    ? 'if ((tid & 127) == 0) mbar_arrive(&empty_bar[buf]); // per warpgroup (2 arrivals): its own barrier came last'
    : "if (tid == 0) mbar_arrive(&empty_bar[buf]); // the tile body's last barrier: all reads done";

/** The consumer warpgroups' loop: the default kernel's tile body on each filled buffer. */
function consumerLoop(x: BackwardMmaExprs, deterministic: boolean, tune: BackwardWgmmaTune): string[] {
  if (tune.tileHandoff)
    return handoffConsumerLoop(x, {
      start: tune.pingPong ? pingPongStart : [],
      tile: wgmmaTileLambda(x, deterministic, tileSync(tune, x.order), tune),
      release: releaseOf(tune),
    });
  const release = `  ${releaseOf(tune)}`;
  return [
    ...(tune.pingPong ? pingPongStart : []),
    'int it = 0;',
    'for (int hg = 0; hg < group; ++hg) {',
    ...indent(
      [
        ...headWalk(x),
        '(void)qrow0; // the deterministic mode adds no dQ here',
        ...wgmmaTileLambda(x, deterministic, tileSync(tune, x.order), tune),
        'bool full;',
        'for (int qt = next_tile(0, full); qt < nqt;) {',
        '  const int buf = it & 1;',
        '  bool nfull;',
        '  const int nq = next_tile(qt + 1, nfull);',
        '  mbar_wait(&full_bar[buf], (it >> 1) & 1);',
        `  tile(!full || k_tail || (qt + 1) * BM > ${x.order.nq}, qt, buf); // full tiles skip the predicate`,
        release,
        '  ++it;',
        '  qt = nq;',
        '  full = nfull;',
        '}',
      ],
      '  ',
    ),
    '}',
  ];
}

/** dqBulk: the producer's last warp leaves the loaders for the dQ adds (backward-wgmma-dq-bulk.ts). */
function dqWarpBranch(pingPong: boolean, residue: boolean, double: boolean): string[] {
  return [
    'if (tid >= THREADS + DQ_LOADERS) {',
    '  const bool v4 = (reinterpret_cast<size_t>(a.dq_acc) & 15) == 0; // as the consumers decide',
    ...indent(dqBulkWarpLoop(pingPong, residue, double), '  '),
    '  return;',
    '}',
  ];
}

export function wgmmaWsDkdvKernel(
  x: BackwardMmaExprs,
  deterministic: boolean,
  tune: BackwardWgmmaTune = NO_TUNE,
): string[] {
  const np = deterministic ? 0 : x.grad.params.length;
  const regs = WS_REGISTERS;
  // renderCudaBackwardWgmma keeps dqBulk only in the atomic mode, where its buffers fit.
  const bulk = tune.dqBulk === true && !deterministic;
  const pingPong = bulk && tune.pingPong === true;
  const handoff = tune.tileHandoff === true;
  const xsFloats = x.slots ? `${x.slots} * WARPS * NT * 4 * 32` : '0';
  const barriers = `${x.order.afterPositions(hoistEnd(x.dkdvMask, 'Ds + 2 * BM'))} + ${xsFloats}${handoff ? HANDOFF_FLOATS : ''}`;
  return [
    '__global__ void __launch_bounds__(DKDV_THREADS, 1) bwd_dkdv(const Args a) {',
    '#if !ATTNC_SM90A',
    '  __trap(); // the compute_90 PTX image: no wgmma there',
    '#endif',
    ...wgmmaSmemTiles(x),
    `  uint64_t* full_bar = reinterpret_cast<uint64_t*>(${barriers}); // [2]: buffer filled`,
    '  uint64_t* empty_bar = full_bar + 2; // [2]: buffer released by the consumers',
    ...(handoff ? HANDOFF_DECL : []),
    ...(bulk ? dqBulkSmemDecls : []),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4, wg = warp / 4;',
    '  (void)wg;',
    ...keyTileSetup(x, 'DKDV_THREADS', blockOrderOf(tune)),
    '  if (tid == 0) {',
    '    for (int i = 0; i < 2; ++i) {',
    `      mbar_init(&full_bar[i], ${bulk ? 'DQ_LOADERS' : 'WS_PRODUCER'});`,
    `      mbar_init(&empty_bar[i], ${pingPong ? 2 : 1});`,
    ...(bulk ? dqBulkInit : []),
    '    }',
    '    asm volatile("fence.mbarrier_init.release.cluster;\\n" ::: "memory");',
    '  }',
    '  __syncthreads(); // the last CTA-wide barrier: the roles part here',
    '  if (tid >= THREADS) {',
    `    regs_dec<${regs.producer}>();`,
    ...(bulk
      ? indent(dqWarpBranch(pingPong, x.residue !== null, pingPong && tune.dqDouble === true), '    ')
      : []),
    ...indent(producerLoop(x, bulk, handoff), '    '),
    '    return;',
    '  }',
    `  regs_inc<${regs.consumer}>();`,
    "  const T* Kw = Ks + wg * 64 * 64; // this warpgroup's 64 keys: rows 64·wg.. of each panel",
    '  const T* Vw = Vs + wg * 64 * 64;',
    ...keyTileLoads(x, 'load_panel', 'tid'),
    '  cp_commit();',
    '  cp_wait<0>();',
    '  proxy_fence();',
    '  consumer_sync(); // K and V landed',
    ...(deterministic
      ? []
      : [
          '  const bool v4 = (reinterpret_cast<size_t>(a.dq_acc) & 15) == 0; // 16-byte dq atomics',
          '  (void)v4;',
        ]),
    ...dkdvAccumulators(np),
    ...indent(consumerLoop(x, deterministic, tune), '  '),
    ...(bulk ? indent(pingPong ? pingPongDone(tune.dqDouble === true) : dqBulkDone, '  ') : []),
    ...dkdvEpilogue(np, x.order),
    '}',
  ];
}
