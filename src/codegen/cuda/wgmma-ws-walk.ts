// Producer-side tile walk of the warp-specialized core (Schedule.wsProducerWalk): the producer
// warp alone classifies the tiles (next_tile of mma-tiles) and computes their per-key hoists, and
// hands each tile's index and kind to the consumers through the stage ring: `tile_code[st]`
// (2·kt + full, or 2·nkt for the end) and a `STAGES`-deep ring of every per-key hoist array, all
// written before the stage's `full` mbarrier completes, whose wait the consumers already pay.
// The consumers then run no classifier, no ballots and no consumer-wide barrier per tile.
// Also the kernel's shared-memory layout and mbarrier setup, which the walk shapes.
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';
import type { WgmmaWsPlan } from './wgmma-ws-plan.js';

/** Arrivals that complete a stage's `full` barrier: the copies' one, plus one after the hoists. */
export const fullArrivals = (e: CoreExprs, walk: boolean): number => (walk && e.keyHoists.length ? 2 : 1);

/** Shared declarations of the ring's side channel (kernel scope). */
export function walkDecls(e: CoreExprs): string[] {
  return [
    '__shared__ int tile_code[STAGES]; // 2·kt + full; 2·nkt: no more tiles',
    ...e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}_ring[STAGES][BK];`),
  ];
}

/** Per-key hoist arrays of stage `st`, under the names the element code reads. */
export function hoistViews(e: CoreExprs, constant: boolean): string[] {
  const q = constant ? 'const ' : '';
  return e.keyHoists.map((h) => `${q}${h.type}* ${h.name} = ${h.name}_ring[st];`);
}

/** Producer, lane 0, before it arms the stage: the tile's code. */
export const publishTile = 'tile_code[st] = 2 * kt + (kt_full ? 1 : 0);';

/** Producer, all lanes, after the copies are issued: the tile's hoists, then the second arrival. */
export function producerHoistCode(e: CoreExprs): string[] {
  if (!e.keyHoists.length) return [];
  return [
    '{',
    ...indent(hoistViews(e, false), '  '),
    '  for (int kk = lane; kk < BK; kk += 32) {',
    '    const int kpos = a.k_offset + kt * BK + kk;',
    ...indent(e.keyStmts, '    '),
    '  }',
    '}',
    '__syncwarp();',
    'if (lane == 0) mbar_arrive(&full_bar[st]); // the hoists are written',
  ];
}

/** Producer, after its loop: the end mark in the next stage once that stage is free. */
export function endMarkCode(e: CoreExprs): string[] {
  return [
    'if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
    'if (lane == 0) {',
    '  tile_code[st] = 2 * nkt;',
    ...Array.from({ length: fullArrivals(e, true) }, () => '  mbar_arrive(&full_bar[st]);'),
    '}',
  ];
}

/** Consumers, after waiting on stage `stage`: its tile (`kt` = nkt: no more tiles). */
export function readTileCode(kt: string, full: string, stage: string): string[] {
  return [
    `const int ${kt}_code = tile_code[${stage}];`,
    `const int ${kt} = ${kt}_code >> 1;`,
    `const bool ${full} = (${kt}_code & 1) != 0;`,
  ];
}

/** Shared memory: the Q tile, STAGES K and V buffers, their mbarriers, and the hoists or walk. */
export function sharedLayout(e: CoreExprs, plan: WgmmaWsPlan, producerWalk: boolean): string[] {
  return [
    '  extern __shared__ __align__(1024) unsigned char smem_raw[];',
    '  // TMA writes and wgmma reads 128B-swizzled tiles: each starts on a 1024-byte boundary.',
    '  T* Qs = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));',
    '  T* Ks = Qs + BQ * D;              // [STAGES][BK][D], 64-wide panels',
    '  T* Vs = Ks + STAGES * BK * D;     // [STAGES][BK][DV], 64-wide panels',
    '  uint64_t* full_bar = reinterpret_cast<uint64_t*>(Vs + STAGES * BK * DV); // tile landed',
    '  uint64_t* empty_bar = full_bar + STAGES; // every consumer warp is done with the buffer',
    '  uint64_t* qbar = empty_bar + STAGES;',
    ...(plan.tweaks.splitKv
      ? [
          '  // wsTweaks splitKv: full_bar is K landed, empty_bar V released; V lands and K is released apart.',
          '  uint64_t* full_v = qbar + 1;',
          '  uint64_t* empty_k = full_v + STAGES;',
        ]
      : []),
    ...indent(
      producerWalk ? walkDecls(e) : e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
      '  ',
    ),
  ];
}

/** Thread 0 initialises the mbarriers and makes them visible to the TMA unit. */
export function barrierInit(e: CoreExprs, plan: WgmmaWsPlan, producerWalk: boolean): string[] {
  return [
    '  if (tid == 0) {',
    '#pragma unroll',
    '    for (int i = 0; i < STAGES; ++i) {',
    `      mbar_init(&full_bar[i], ${fullArrivals(e, producerWalk)});`,
    '      mbar_init(&empty_bar[i], CWARPS);',
    ...(plan.tweaks.splitKv
      ? ['      mbar_init(&full_v[i], 1);', '      mbar_init(&empty_k[i], CWARPS);']
      : []),
    '    }',
    '    mbar_init(qbar, 1);',
    '    // Visible to the other threads (the barrier below) and to the TMA unit (async proxy).',
    '    asm volatile("fence.mbarrier_init.release.cluster;\\n" ::: "memory");',
    '    proxy_fence();',
    '  }',
  ];
}
