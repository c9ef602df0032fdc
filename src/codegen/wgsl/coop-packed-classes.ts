// The coop tile loop's chunk loop under schedule.coopDoubleKv (coop.ts renders the other loops):
// a chunk's tile classes packed 2 bits each, 16 to a word, so that tiles read their class from a
// uniform word and need no barrier of their own between them (the K/V buffers are taken in turn,
// coop-tile.ts).
import type { CoopParts } from './coop.js';
import { classWords } from './coop-geometry.js';
import { routedChunkClasses } from './coop-route.js';
import { pad } from './coop-tile.js';

/**
 * The chunk loop under coopDoubleKv: the chunk's classes packed 16 to a word once, so a tile reads
 * its class from a uniform word (a workgroupUniformLoad, i.e. a barrier, per 16 tiles instead of
 * per tile); with the K/V buffers taken in turn no other barrier is needed between tiles: tile
 * t + 1 writes the buffer tile t − 1 read, and every invocation passed tile t's "staged" barrier
 * after its reads of tile t − 1.
 */
export function packedChunkLoop(p: CoopParts, ownClass: string, tile: (cls: string[]) => string[]): string[] {
  const dynamic = p.mode === 'dynamic';
  return [
    'var kv_turn = 0u; // the K/V buffer the next computed tile takes (coop-tile.ts)',
    'for (var kc = 0u; kc < n_tiles; kc += CO_THREADS) {',
    '  var own_cls = TILE_EMPTY;',
    '  if (kc + lid < n_tiles) {',
    ...(dynamic ? ['    let t0 = (kc + lid) * BLOCK_K;', '    let t_end = min(t0 + BLOCK_K, Nk);'] : []),
    `    own_cls = ${ownClass};`,
    '  }',
    '  workgroupBarrier(); // the previous chunk\u2019s classes are no longer read',
    ...(p.routed ? pad(routedChunkClasses(), 2) : ['  co_cls[lid] = own_cls;']),
    '  workgroupBarrier(); // the chunk\u2019s classes are written',
    `  if (lid < ${classWords(p.schedule)}u) {`,
    '    var w = 0u;',
    '    for (var j = 0u; j < 16u; j++) {',
    '      if (lid * 16u + j < CO_THREADS) { w |= (co_cls[lid * 16u + j] & 3u) << (2u * j); }',
    '    }',
    '    co_clsw[lid] = w;',
    '  }',
    '  let kt_end = min(kc + CO_THREADS, n_tiles);',
    '  var cls_word = 0u;',
    '  for (var kt = kc; kt < kt_end; kt++) {',
    ...pad(
      tile([
        '  // Uniform (barriers below): a word of 16 classes per workgroupUniformLoad.',
        '  if ((kt - kc) % 16u == 0u) { cls_word = workgroupUniformLoad(&co_clsw[(kt - kc) / 16u]); }',
        '  let cls = (cls_word >> (2u * ((kt - kc) % 16u))) & 3u;',
        '  if (cls != TILE_EMPTY) {',
      ]),
      2,
    ),
    '  }',
    '}',
  ];
}
