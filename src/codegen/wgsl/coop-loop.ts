// The coop engine's tile loop (coop.ts renders the rest of the entry point): one loop over the
// tiles when every tile has one static class, else chunks of CO_THREADS tiles whose classes are
// computed at once, one tile per invocation. Under schedule.coopDoubleKv a chunk's tile classes
// are packed 2 bits each, 16 to a word, so that tiles read their class from a uniform word and
// need no barrier of their own between them (the K/V buffers are taken in turn, coop-tile.ts).
import type { CoopParts } from './coop.js';
import { classWords, coopGeometry } from './coop-geometry.js';
import { pad } from './entry-lines.js';
import { coopTileBody } from './coop-tile.js';

/**
 * The tile loop. Dynamic classes: the tiles of a chunk (one per invocation) are classified at
 * once, each invocation its own tile: classifiers over tensors read summaries, a chain of
 * dependent loads that one invocation per tile made serial (document masks ran 4x slower than
 * on the row engine, where every invocation classifies). Each tile's class is then read
 * uniformly, so its barriers stay in uniform control flow.
 */
export function coopTileLoop(p: CoopParts): string[] {
  const dynamic = p.mode === 'dynamic';
  // Routing gates the classes per chunk too (coop-route.ts), so routed kernels take the chunk loop.
  const chunked = dynamic || p.routed;
  const ownClass = dynamic
    ? 'tile_class(b, h, q_lo, q_hi, u.k_offset + i32(t0), u.k_offset + i32(t_end) - 1i)'
    : p.mode === 'full'
      ? 'TILE_FULL'
      : 'TILE_PARTIAL';
  // Prefetch's next tile: the next one of the chunk with work (none past the chunk), else the next.
  const nextTile = chunked
    ? [
        'var nt = kt + 1u;',
        'while (nt < kt_end && co_cls[nt - kc] == TILE_EMPTY) { nt++; }',
        'if (nt == kt_end) { nt = CO_NONE; }',
      ]
    : ['let nt = select(CO_NONE, kt + 1u, kt + 1u < n_tiles);'];
  const tile = (cls: string[]): string[] => [
    '  let k0 = kt * BLOCK_K;',
    '  let k_end = min(k0 + BLOCK_K, Nk);',
    ...cls,
    ...pad(coopTileBody(p, nextTile), 4),
    '  }',
  ];
  const double = coopGeometry(p.schedule).doubleKv;
  if (!chunked) return staticLoop(p, double, tile);
  if (double) return packedChunkLoop(p, ownClass, tile);
  const span = spansChunks(p);
  return [
    'for (var kc = 0u; kc < n_tiles; kc += CO_THREADS) {',
    ...(span ? chunkSpanReset : []),
    ...chunkClasses(p, ownClass),
    ...(span ? chunkSpanFound : ['  let kt_first = kc;', '  let kt_end = min(kc + CO_THREADS, n_tiles);']),
    '  for (var kt = kt_first; kt < kt_end; kt++) {',
    ...pad(
      tile([
        '  // Uniform for the barriers below; its barrier also ends the previous tile’s reads.',
        '  let cls = workgroupUniformLoad(&co_cls[kt - kc]);',
        '  if (cls != TILE_EMPTY) {',
      ]),
      2,
    ),
    '  }',
    '}',
  ];
}

/**
 * Whether the chunk loop spans only its tiles with work (schedule.coopChunkSpan): masks classified
 * per tile, not routed (routing writes the classes itself) and one K/V buffer set.
 */
export const spansChunks = (p: CoopParts): boolean => {
  const g = coopGeometry(p.schedule);
  return g.chunkSpan && p.mode === 'dynamic' && !p.routed && !g.doubleKv;
};

/**
 * schedule.coopChunkSpan: lid 0 resets the span before the chunk's first barrier (the previous
 * chunk read it uniformly long before); the first and last tile of each run of tiles with work
 * narrow it; after a barrier lid 0 publishes it for a uniform read. An all-empty chunk spans
 * nothing (first 0xffffffff, end 0).
 */
const chunkSpanReset = [
  '  if (lid == 0u) { atomicStore(&co_span_at[0], 0xffffffffu); atomicStore(&co_span_at[1], 0u); }',
];
const chunkSpanFound = [
  '  workgroupBarrier(); // the chunk\u2019s classes are written',
  "  // Only a run's first and last tiles touch the atomics (every tile's atomics, serialized, cost",
  '  // D 64 causal 3% on an H100).',
  '  if (own_cls != TILE_EMPTY) {',
  '    if (lid == 0u || co_cls[lid - 1u] == TILE_EMPTY) { atomicMin(&co_span_at[0], kc + lid); }',
  '    if (lid + 1u == CO_THREADS || co_cls[lid + 1u] == TILE_EMPTY) { atomicMax(&co_span_at[1], kc + lid + 1u); }',
  '  }',
  '  workgroupBarrier(); // the chunk\u2019s span is found',
  '  if (lid == 0u) { co_span = vec2<u32>(atomicLoad(&co_span_at[0]), atomicLoad(&co_span_at[1])); }',
  '  let kt_span = workgroupUniformLoad(&co_span);',
  '  let kt_first = kt_span.x; // tiles before and after the span are empty: no barrier each',
  '  let kt_end = kt_span.y;',
];

/** One static class for every tile: a plain loop over the tiles. */
function staticLoop(p: CoopParts, double: boolean, tile: (cls: string[]) => string[]): string[] {
  return [
    // coopDoubleKv: the K/V buffer the next computed tile takes (flips per tile, coop-tile.ts).
    ...(double ? ['var kv_turn = 0u;'] : []),
    'for (var kt = 0u; kt < n_tiles; kt++) {',
    ...tile([
      // Doubled buffers: this tile writes the other buffer; the last tile's barriers fenced it.
      ...(double ? [] : ['  workgroupBarrier(); // the previous tile is no longer read']),
      `  let cls = ${p.mode === 'full' ? 'TILE_FULL' : 'TILE_PARTIAL'};`,
      '  {',
    ]),
    '}',
  ];
}

/** The start of a chunk: each invocation classifies its own tile, then the classes go to co_cls. */
function chunkClasses(p: CoopParts, ownClass: string): string[] {
  return [
    '  var own_cls = TILE_EMPTY;',
    '  if (kc + lid < n_tiles) {',
    ...(p.mode === 'dynamic'
      ? ['    let t0 = (kc + lid) * BLOCK_K;', '    let t_end = min(t0 + BLOCK_K, Nk);']
      : []),
    `    own_cls = ${ownClass};`,
    '  }',
    '  workgroupBarrier(); // the previous chunk\u2019s classes are no longer read',
    ...(p.routed ? pad(p.routed.render.routedChunkClasses(), 2) : ['  co_cls[lid] = own_cls;']),
  ];
}

/**
 * The chunk loop under coopDoubleKv: the chunk's classes packed 16 to a word once, so a tile reads
 * its class from a uniform word (a workgroupUniformLoad, i.e. a barrier, per 16 tiles instead of
 * per tile); with the K/V buffers taken in turn no other barrier is needed between tiles: tile
 * t + 1 writes the buffer tile t − 1 read, and every invocation passed tile t's "staged" barrier
 * after its reads of tile t − 1.
 */
function packedChunkLoop(p: CoopParts, ownClass: string, tile: (cls: string[]) => string[]): string[] {
  return [
    'var kv_turn = 0u; // the K/V buffer the next computed tile takes (coop-tile.ts)',
    'for (var kc = 0u; kc < n_tiles; kc += CO_THREADS) {',
    ...chunkClasses(p, ownClass),
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
