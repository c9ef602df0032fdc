// tileHandoff (backward-wgmma-tune.ts): in the producer kernel's dK/dV (backward-wgmma-ws.ts) only
// the producer walks the q-tiles. It names each fill's tile in its buffer's slots before arriving
// on full[buf] (the arrive releases them, the consumers' wait acquires them), and after its walk
// makes one more fill that names none (qt −1). The consumers then need no walk of their own: no
// summary loads or ballot scans on their critical path, no registers for them.
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { plainHeadRows } from './backward-dkdv-parts.js';
import { indent } from './indent.js';

/** Bytes of the slots (per buffer: the q-tile, then 2 · head step + full), before the barriers. */
export const WS_HANDOFF_BYTES = 16;
/** The barriers' offset in floats past the slots (16 bytes keep them 8-byte aligned). */
export const HANDOFF_FLOATS = ' + 4';

export const HANDOFF_DECL: readonly string[] = [
  '  int* tile_meta = reinterpret_cast<int*>(full_bar) - 4; // [2][2]: tileHandoff: q-tile, 2 · head step + full',
];

/** The producer's slot writes, after the buffer's empty wait and before its arrive. */
export const HANDOFF_SLOTS: readonly string[] = [
  '  if (ptid == 0) {',
  '    tile_meta[2 * buf] = qt;',
  '    tile_meta[2 * buf + 1] = 2 * hg + (full ? 1 : 0);',
  '  }',
];

/** The producer's closing fill: it waits for its buffer like any other and names no tile. */
export const HANDOFF_END: readonly string[] = [
  '{ // the walk ended: a fill that names no tile',
  '  const int buf = it & 1;',
  '  if (it >= 2) mbar_wait(&empty_bar[buf], ((it >> 1) - 1) & 1);',
  '  if (ptid == 0) tile_meta[2 * buf] = -1;',
  '  mbar_arrive(&full_bar[buf]);',
  '}',
];

/** What the producer kernel puts into the consumers' loop. */
export interface HandoffParts {
  /** Lines before the loop (pingPong's first barrier). */
  readonly start: readonly string[];
  /** The engine's `tile` lambda (it reads h and qrow0). */
  readonly tile: readonly string[];
  /** The buffer's release after the tile. */
  readonly release: string;
}

/** The consumers' loop: each fill's tile and head step read from its slots, until one names none. */
export function handoffConsumerLoop(x: BackwardMmaExprs, parts: HandoffParts): string[] {
  if (x.residue || x.patch) throw new Error('internal: tileHandoff runs the plain order only');
  return [
    ...parts.start,
    'int it = 0; // tiles so far (after the loop: all of them)',
    'for (;; ++it) {',
    ...indent(
      [
        'const int buf = it & 1;',
        'mbar_wait(&full_bar[buf], (it >> 1) & 1);',
        'const int qt = tile_meta[2 * buf], hg = tile_meta[2 * buf + 1] >> 1;',
        'if (qt < 0) break; // the producer walked every head of the group',
        'const bool full = tile_meta[2 * buf + 1] & 1;',
        ...plainHeadRows,
        '(void)qrow0; // the deterministic mode adds no dQ here',
        ...parts.tile,
        `tile(!full || k_tail || (qt + 1) * BM > ${x.order.nq}, qt, buf); // full tiles skip the predicate`,
        parts.release,
      ],
      '  ',
    ),
    '}',
  ];
}
