// Tile scheduling of the tensor-core core: which K/V tiles a q-tile visits, in order, and
// whether each is full. Empty tiles are found before anything is loaded for them.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { routedOf, routedTileScan } from './routing-attn.js';
import { permutationOf } from './permutation.js';
import { indent } from './indent.js';

/**
 * Schedule.tileScan on the tensor-core engines: find a q-tile's tiles by warp ballots, by default
 * only where the classifier reads tensor summaries (two-range masks such as sinks + window).
 */
export function tileScanBallot(kernel: AttentionKernel): boolean {
  const scan = kernel.schedule.tileScan;
  return scan ? scan === 'ballot' : kernel.summaries.length > 0;
}

// Ballots in the tile loop cost ptxas freedom (measured: 219 → 173 registers and 15% slower
// causal), so they are kept for classifiers that read memory (summaries), where each call
// costs a global-memory latency. Arithmetic classifiers are asked per tile, between the first
// and last non-empty tiles, which ballot scans find once, before the loop.
const scans = [
  'for (int base = 0; base < nkt; base += 32) {',
  '  bool f = false;',
  '  const unsigned bits = __ballot_sync(0xffffffffu, base + lane < nkt && classify(base + lane, f));',
  '  if (bits) { first = base + __ffs(bits) - 1; break; }',
  '}',
  'for (int base = nkt - 1; base >= first; base -= 32) {',
  '  bool f = false;',
  '  const unsigned bits = __ballot_sync(0xffffffffu, base - lane >= first && classify(base - lane, f));',
  '  if (bits) { last = base - (__ffs(bits) - 1); break; }',
  '}',
];

/**
 * The scans, or — where the permutation says every tile of the unit is non-empty (`everyTile`, a
 * compile-time condition) — the whole range without them. Their early exits are warp-uniform but
 * not provably warpgroup-uniform, and with them ptxas serialized every wgmma of the 2-D patch
 * kernel at 64-key tiles (C7520) although no unit it runs them for skips a tile.
 */
const bounds = (everyTile: string | undefined): string[] => [
  'int first = nkt, last = -1;',
  ...(everyTile
    ? [
        `if constexpr (${everyTile}) { // every tile visited: the scans would find 0 .. nkt - 1`,
        '  first = 0;',
        '  last = nkt - 1;',
        '} else {',
        ...indent(scans, '  '),
        '}',
      ]
    : scans),
  'auto next_tile = [&](int kt, bool& full) {',
  '  full = false;',
  '  for (kt = max(kt, first); kt <= last; ++kt)',
  '    if (classify(kt, full)) return kt; // empty tile: skipped, nothing loaded',
  '  return nkt;',
  '};',
];

const ballot = [
  'int scan = -32;',
  'unsigned ne_bits = 0u, full_bits = 0u; // tiles scan .. scan + 31: non-empty, full',
  'auto next_tile = [&](int kt, bool& full) {',
  '  while (kt < nkt) {',
  '    if (kt >= scan + 32) {',
  '      scan = kt;',
  '      bool f = false;',
  '      const bool ne = kt + lane < nkt && classify(kt + lane, f);',
  '      ne_bits = __ballot_sync(0xffffffffu, ne);',
  '      full_bits = __ballot_sync(0xffffffffu, ne && f);',
  '    }',
  '    const unsigned rest = ne_bits & (0xffffffffu << (kt - scan));',
  '    if (rest) {',
  '      const int i = __ffs(rest) - 1;',
  '      full = (full_bits >> i) & 1u;',
  '      return scan + i;',
  '    }',
  '    kt = scan + 32;',
  '  }',
  '  full = false;',
  '  return nkt;',
  '};',
];

/**
 * Tile classification: `next_tile(kt, full)` gives the first non-empty tile at or after kt (so
 * empty tiles are never loaded) and whether it is full. A ballot scan classifies 32 tiles at
 * once (a lane per tile), so runs of empty tiles, or a classifier's global-memory latency, cost
 * one step per 32 tiles rather than one per tile.
 */
export function classifyCode(e: CoreExprs, readsMemory: boolean): string[] {
  // Block routing: the selected tiles' list replaces the scan (routing-attn.ts).
  if (routedOf(e)) return routedTileScan(e, 'q0');
  if (e.mode !== 'dynamic') {
    return [
      'auto next_tile = [&](const int kt, bool& full) {',
      `  full = ${e.mode === 'full'};`,
      '  return kt;',
      '};',
    ];
  }
  const perm = permutationOf(e);
  return [
    'auto classify = [&](const int kt, bool& full) -> bool {',
    ...(perm
      ? indent(perm.kBounds, '  ')
      : [
          '  const int k_lo = a.k_offset + kt * BK;',
          '  const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;',
        ]),
    ...indent(e.classify, '  '),
    '  full = !can_false;',
    '  return can_true;',
    '};',
    ...(readsMemory ? ballot : bounds(perm?.everyTile)),
  ];
}
