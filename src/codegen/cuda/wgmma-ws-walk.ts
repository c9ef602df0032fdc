// Producer-side tile walk of the warp-specialized core (Schedule.wsProducerWalk): the producer
// warp alone classifies the tiles (next_tile of mma-tiles) and computes their per-key hoists, and
// hands each tile's index and kind to the consumers through the stage ring: `tile_code[st]`
// (2·kt + full, or 2·nkt for the end) and a `STAGES`-deep ring of every per-key hoist array, all
// written before the stage's `full` mbarrier completes, whose wait the consumers already pay.
// The consumers then run no classifier, no ballots and no consumer-wide barrier per tile.
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';

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
