// The attention side of block routing on CUDA (routing.ts runs the passes that write `indices`).
// Every engine (simt, mma, wgmma, wgmma-ws) gets the same three pieces:
//   - a tile list: before the loop, the block marks in a shared-memory bitmap (one bit per k-tile,
//     after the core's own shared memory) each tile that a block selected by some row of its
//     q-tile overlaps; `next_tile` walks the set bits (and still skips tiles the static mask's
//     classifier calls empty), so unselected tiles are never loaded;
//   - per row, a cursor in its ascending selection and, per visited tile, a 32-bit mask of the
//     routing blocks of the tile it selected (`route_bits`, bit i = block route_kid0 + i);
//   - the element test `route_hit(route_bits[r], route_kid0, kpos)`, and-ed into the mask.
// A q-tile whose rows all lie in one pooled query unit shares one selection ("uniform"); then a
// visited tile whose keys all lie in selected blocks (no gap bit, see routedTileScan) and that
// the static mask makes full runs predicate-free (MASKED = false). Other visited tiles are
// MASKED; selected tiles that are partial for the static mask still evaluate it (the conjunction).
import type { AttentionKernel } from '../../ir/kernel.js';
import { capacityShapeExpr, routingGroups, type RankedBlocksPlan } from '../../ir/routing.js';
import { rankedBlocksOf } from './routing-case.js';
import type { Binding } from '../artifact.js';
import type { CoreExprs } from './exprs.js';
import { cudaRoutingProblem, routingScratchShape } from './routing.js';

export interface RoutedTiles {
  readonly blockSize: number;
  readonly pooledQ: boolean;
  /** The static mask's tile class before routing (a routed kernel's own mode is never 'full'). */
  readonly staticMode: CoreExprs['mode'];
}

type RoutedExprs = CoreExprs & { readonly routed: RoutedTiles };

/** The routing info attached by `routedExprs`, or undefined for a kernel without routing. */
export function routedOf(e: CoreExprs): RoutedTiles | undefined {
  return (e as Partial<RoutedExprs>).routed;
}

/**
 * The core expressions of a routed kernel: the mask also requires the key's block to be selected
 * by the row, and no tile is `full` any more (its rows may select different blocks).
 */
export function routedExprs(e: CoreExprs, r: RankedBlocksPlan): CoreExprs {
  const hit = 'route_hit(route_bits[r], route_kid0, kpos)';
  return {
    ...e,
    mode: e.mode === 'full' ? 'partial' : e.mode,
    mask: e.mask === null ? hit : `${hit} && (${e.mask})`,
    routed: { blockSize: r.unit.size, pooledQ: r.source.q !== 'raw', staticMode: e.mode },
  } as RoutedExprs;
}

/** Device helpers the attention's routing code calls (after routing.ts's helpers). */
export const routedAttentionHelpers = [
  "// Id p of a row's selection (ascending, -1 padded), or INT_MAX past its end.",
  '__device__ __forceinline__ int route_sel(const int* row, const int p, const int cap) {',
  '  if (row == nullptr || p >= cap) return INT_MAX;',
  '  const int v = __ldg(row + p);',
  '  return v < 0 ? INT_MAX : v;',
  '}',
  '// Whether key position kpos (>= 0) lies in a block of `bits` (bit i: block kid0 + i).',
  '__device__ __forceinline__ bool route_hit(const unsigned bits, const int kid0, const int kpos) {',
  '  return (bits >> ((kpos / RB - kid0) & 31)) & 1u;',
  '}',
].join('\n');

/**
 * Per-row selection state, declared before the tile lambda (which reads route_bits and
 * route_kid0): `rows` of them per thread, row r being query row `rowOf(r)`.
 */
export function routeRowState(rows: string, rowOf: string): string[] {
  return [
    "// Block routing: each row's selection (ascending block ids), walked as the k-tiles ascend.",
    'const int route_cap_ = route_cap(a);',
    `const int* route_row[${rows}];`,
    `int route_p[${rows}], route_id[${rows}];`,
    `unsigned route_bits[${rows}];`,
    'int route_kid0 = 0;',
    '#pragma unroll',
    `for (int r = 0; r < ${rows}; ++r) {`,
    `  const int i = ${rowOf};`,
    '  route_row[r] = i < a.Nq && route_cap_ > 0',
    '      ? a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + i) * route_cap_',
    '      : nullptr;',
    '  route_p[r] = 0;',
    '  route_id[r] = route_sel(route_row[r], 0, route_cap_);',
    '  route_bits[r] = 0u;',
    '}',
    '(void)route_bits; (void)route_kid0;',
  ];
}

/** Before each visited tile kt: every row's mask of the tile's blocks it selected. */
export function routeTileBits(rows: string): string[] {
  return [
    'route_kid0 = (a.k_offset + kt * BK) / RB;',
    '{',
    '  const int kid1 = (a.k_offset + min((kt + 1) * BK, a.Nk) - 1) / RB;',
    '#pragma unroll',
    `  for (int r = 0; r < ${rows}; ++r) {`,
    '    while (route_id[r] < route_kid0) route_id[r] = route_sel(route_row[r], ++route_p[r], route_cap_);',
    '    unsigned bits = 0u;',
    '    for (int p = route_p[r], id = route_id[r]; id <= kid1; id = route_sel(route_row[r], ++p, route_cap_))',
    '      bits |= 1u << (id - route_kid0);',
    '    route_bits[r] = bits;',
    '  }',
    '}',
  ];
}

/**
 * routeTileBits inside a tile lambda that runs full tiles too (the wgmma-ws consumers): only a
 * MASKED tile tests route_hit, and the cursors catch up over the tiles skipped in between.
 */
export function routedTileBits(e: CoreExprs): string[] {
  if (!routedOf(e)) return [];
  return ['if constexpr (MASKED) {', ...routeTileBits('2').map((l) => `  ${l}`), '}'];
}

/**
 * The tile list and `next_tile(kt, full)` of a routed kernel; `q0` is the q-tile's first row.
 * Needs nkt, tid, THREADS, BQ, BK, b, h (and q_lo, q_hi in dynamic mode) in scope. Shared memory
 * after the core's: `route_tiles` (bit t: some selected block overlaps tile t), then, for pooled
 * query sides, `route_gaps` (bit t: a key of tile t next to a selected block is not selected).
 */
export function routedTileScan(e: CoreExprs, q0: string): string[] {
  const routed = routedOf(e);
  if (!routed) throw new Error('internal: routedTileScan of a kernel without routing');
  const dynamic = e.mode === 'dynamic';
  const pooled = routed.pooledQ;
  // Whether a visited tile of a uniform q-tile can run predicate-free, given its static class.
  const staticFull = routed.staticMode === 'full' ? 'true' : dynamic ? 'sfull' : 'false';
  const fullTest = pooled && staticFull !== 'false';
  return [
    '// Block routing: the k-tiles some row of this q-tile selected, one bit each in shared memory.',
    'extern __shared__ __align__(16) unsigned char route_dyn[];',
    'unsigned* route_tiles = reinterpret_cast<unsigned*>(route_dyn + ROUTE_SMEM_OFF);',
    'const int route_words = (nkt + 31) >> 5;',
    ...(pooled
      ? [
          'unsigned* route_gaps = route_tiles + route_words;',
          'for (int w = tid; w < 2 * route_words; w += THREADS) route_tiles[w] = 0u;',
          `const int route_rows = min(BQ, a.Nq - (${q0}));`,
          '// Uniform: every row of the q-tile is in one query unit, so all rows share one selection.',
          `const bool route_uni = route_rows > 0 && route_floor_div(${q0} + a.q_offset, RB) == route_floor_div(${q0} + route_rows - 1 + a.q_offset, RB);`,
          '(void)route_uni;',
        ]
      : ['for (int w = tid; w < route_words; w += THREADS) route_tiles[w] = 0u;']),
    '__syncthreads();',
    ...selectedTiles(pooled, q0),
    '__syncthreads();',
    ...ROUTE_NEXT,
    ...(dynamic
      ? [
          'auto classify = [&](const int kt, bool& sfull) -> bool {',
          '  const int k_lo = a.k_offset + kt * BK;',
          '  const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;',
          ...e.classify.map((l) => `  ${l}`),
          '  sfull = !can_false;',
          '  return can_true;',
          '};',
        ]
      : []),
    ...nextTileLambda(dynamic, fullTest ? staticFull : undefined),
  ];
}

/** Marks in route_tiles the k-tiles some row of the q-tile selected (and, pooled, the gap tiles). */
function selectedTiles(pooled: boolean, q0: string): string[] {
  return [
    '{',
    `  const int rq0 = ${q0}, cap = route_cap(a), rows = min(BQ, a.Nq - rq0);`,
    '  const int* sel = a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + rq0) * cap;',
    '  for (int i = tid; i < rows * cap; i += THREADS) {',
    ...(pooled
      ? [
          '    const int row = i / cap, p = i - row * cap;',
          '    // Rows of one query unit share its selection: read the first row of each.',
          '    if (row > 0 && route_floor_div(rq0 + row + a.q_offset, RB) == route_floor_div(rq0 + row - 1 + a.q_offset, RB)) continue;',
        ]
      : []),
    '    const int id = __ldg(sel + i);',
    '    if (id < 0) continue;',
    '    const int lo = max(id * RB, a.k_offset) - a.k_offset, hi = min(id * RB + RB, a.k_offset + a.Nk) - a.k_offset - 1;',
    '    if (lo > hi) continue;',
    '    for (int t = lo / BK; t <= hi / BK; ++t) atomicOr(&route_tiles[t >> 5], 1u << (t & 31));',
    ...(pooled
      ? [
          '    if (route_uni) {',
          '      // The keys just outside the block: unselected unless the neighbouring block is (the',
          '      // selection ascends, so that is the neighbouring entry). Their tiles are not covered.',
          '      if (lo > 0 && (p == 0 || __ldg(sel + i - 1) != id - 1))',
          '        atomicOr(&route_gaps[(lo - 1) / BK >> 5], 1u << ((lo - 1) / BK & 31));',
          '      if (hi < a.Nk - 1 && (p + 1 == cap || __ldg(sel + i + 1) != id + 1))',
          '        atomicOr(&route_gaps[(hi + 1) / BK >> 5], 1u << ((hi + 1) / BK & 31));',
          '    }',
        ]
      : []),
    '  }',
    '}',
  ];
}

// route_next(kt): a scan of route_tiles' words from tile kt on.
const ROUTE_NEXT = [
  '// The first selected tile at or after kt (nkt if none).',
  'auto route_next = [&](const int kt) -> int {',
  '  if (kt >= nkt) return nkt;',
  '  int w = kt >> 5;',
  '  unsigned bits = route_tiles[w] & (0xffffffffu << (kt & 31));',
  '  while (bits == 0u) {',
  '    if (++w >= route_words) return nkt;',
  '    bits = route_tiles[w];',
  '  }',
  '  return min(nkt, (w << 5) + __ffs(bits) - 1);',
  '};',
];

/**
 * next_tile(kt, full): the selected tiles the static mask does not empty; `fullIf`, where a tile
 * may run predicate-free, is the static condition of that (undefined: never).
 */
function nextTileLambda(dynamic: boolean, fullIf: string | undefined): string[] {
  return [
    '// Selected tiles only; a tile the static mask empties is skipped too. Full (no predicate) only',
    '// for a uniform q-tile, a tile with no selection gap, and a tile the static mask makes full.',
    'auto next_tile = [&](int kt, bool& full) -> int {',
    '  full = false;',
    '  for (kt = route_next(kt); kt < nkt; kt = route_next(kt + 1)) {',
    ...(dynamic
      ? ['    bool sfull = false;', '    if (!classify(kt, sfull)) continue;', '    (void)sfull;']
      : []),
    ...(fullIf !== undefined
      ? [`    full = route_uni && ${fullIf} && !((route_gaps[kt >> 5] >> (kt & 31)) & 1u);`]
      : []),
    '    return kt;',
    '  }',
    '  return nkt;',
    '};',
  ];
}

/** `exprs` of `k`, routed when `k` routes (and refused with a clear error when CUDA cannot). */
export function withRouting(k: AttentionKernel, exprs: CoreExprs): CoreExprs {
  if (!k.routing) return exprs;
  const problem = cudaRoutingProblem(k);
  if (problem) throw new Error(problem);
  if (exprs.residue)
    throw new Error('CUDA backend: block routing with a dilated (residue-class) mask is not supported');
  return routedExprs(exprs, rankedBlocksOf(k));
}

/** Byte offset of the tile bitmap: after the core's dynamic shared memory, 16-byte aligned. */
export const routeSmemOffset = (coreBytes: number): number => Math.ceil(coreBytes / 16) * 16;

/** The bindings of `indices` and `route_scratch`, by args role. */
export function routingBindingShapes(
  k: AttentionKernel,
): Record<'indices' | 'scratch', { dtype: Binding['dtype']; shape: string[]; access: Binding['access'] }> {
  const r = rankedBlocksOf(k);
  return {
    indices: {
      dtype: 'i32',
      shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)!],
      access: 'read_write',
    },
    scratch: { dtype: 'f32', shape: [routingScratchShape(r, k.schedule.headDim, k)], access: 'read_write' },
  };
}
