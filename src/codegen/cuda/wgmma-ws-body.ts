// The two roles of the warp-specialized Hopper core. The producer (one warp of the last
// warpgroup) walks the same tile sequence as the consumers — next_tile() of mma-tiles, so empty
// tiles are never loaded — and streams each visited K/V tile by TMA into a ring of `STAGES`
// buffers: it waits until the consumers have released a buffer (its `empty` mbarrier), then
// arms its `full` mbarrier with the tile's byte count and issues the copies. The consumers wait
// on `full`, compute the tile (full tiles predicate-free, partial and tail tiles masked), and
// release it, one arrival per warp. With the producer walk (wgmma-ws-walk.ts) the consumers read
// each tile's index and kind from the ring instead of walking the sequence themselves.
import type { CoreExprs } from './exprs.js';
import { tmaLoadKv, tmaLoadKvOf } from './kv-load-tma.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { epilogueCode, rowStateCode } from './mma-body.js';
import { indent } from './indent.js';
import { classifyCode } from './mma-tiles.js';
import { routedOf, routeRowState } from './routing-attn.js';
import { endMarkCode, producerHoistCode, publishTile, readTileCode } from './wgmma-ws-walk.js';
import { qTmaCoords } from './qo-rows.js';
import type { WgmmaWsPlan } from './wgmma-ws-plan.js';

/** The producer's step to the next ring stage (its phase flips at the wrap), inside its tile loop. */
export const ringAdvanceCode: readonly string[] = [
  '  if (++st == STAGES) {',
  '    st = 0;',
  '    ph ^= 1u;',
  '    wrapped = true;',
  '  }',
];

/** Per-key hoists of a tile, computed by the consumers between two consumer-only barriers. */
function keyHoistCode(e: CoreExprs): string[] {
  if (!e.keyHoists.length) return [];
  return [
    "consumer_sync(); // every consumer is done with the previous tile's values",
    'for (int kk = tid; kk < BK; kk += CTHREADS) {',
    '  const int kpos = a.k_offset + kt * BK + kk;',
    ...indent(e.keyStmts, '  '),
    '}',
    'consumer_sync();',
  ];
}

/**
 * splitKv (wsTweaks): K and V of a stage on their own barriers, each copied once its previous
 * occupant is released (K right after S = Q·Kᵀ has read it, V after P·V).
 */
const splitKvLoads = [
  '  if (wrapped) mbar_wait(&empty_k[st], ph ^ 1u);',
  '  if (lane == 0) {',
  '    mbar_expect_tx(&full_bar[st], BK * D * (int)sizeof(T));',
  ...tmaLoadKvOf(['k']),
  '  }',
  '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
  '  if (lane == 0) {',
  '    mbar_expect_tx(&full_v[st], BK * DV * (int)sizeof(T));',
  ...tmaLoadKvOf(['v']).map((l) => l.replace('&full_bar[st]', '&full_v[st]')),
  '  }',
];

/** The producer's loop: Q once, then every visited K/V tile through the stage ring. */
export function producerCode(e: CoreExprs, walk: boolean, splitKv = false): string[] {
  const loads = splitKv
    ? splitKvLoads
    : [
        '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
        '  if (lane == 0) {',
        ...(walk ? ['    ' + publishTile] : []),
        '    mbar_expect_tx(&full_bar[st], BK * (D + DV) * (int)sizeof(T));',
        ...tmaLoadKv,
        '  }',
      ];
  return [
    'int st = 0;',
    'bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes',
    'unsigned ph = 0;',
    'if (lane == 0) {',
    '  mbar_expect_tx(qbar, BQ * D * (int)sizeof(T));',
    `  tma_kv_panels<D, BQ>(Qs, tmq, ${qTmaCoords('q0', 'b', 'h')}, qbar);`,
    '}',
    'bool kt_full;',
    'for (int kt = next_tile(0, kt_full); kt < nkt; kt = next_tile(kt + 1, kt_full)) {',
    ...loads,
    ...(walk && e.keyHoists.length ? indent(producerHoistCode(e), '  ') : ['  __syncwarp();']),
    ...ringAdvanceCode,
    '}',
    ...(walk ? endMarkCode(e) : []),
    '(void)kt_full;',
  ];
}

/** The consumers' loop over the same tiles; `tile` is the wgmma tile lambda. */
export function consumerLoopCode(e: CoreExprs, walk: boolean, splitKv = false): string[] {
  const args = splitKv ? 'kt, st, ph' : 'kt, st';
  const compute = [
    '  const bool tail = (kt + 1) * BK > a.Nk;',
    `  if (tail || !kt_full) tile(Flag<true>{}, ${args});`,
    `  else tile(Flag<false>{}, ${args}); // full tile: no predicate`,
    "  // This warp's wgmmas have read the buffer (wait_group 0): hand it back to the producer.",
    '  __syncwarp();',
    '  if (lane == 0) mbar_arrive(&empty_bar[st]);',
    '  if (++st == STAGES) {',
    '    st = 0;',
    '    ph ^= 1u;',
    '  }',
  ];
  if (walk) {
    return [
      'mbar_wait(qbar, 0);',
      'int st = 0;',
      'unsigned ph = 0;',
      'for (;;) {',
      '  mbar_wait(&full_bar[st], ph);',
      ...indent(readTileCode('kt', 'kt_full', 'st'), '  '),
      "  if (kt >= nkt) break; // the producer's end mark",
      ...compute,
      '}',
    ];
  }
  return [
    'mbar_wait(qbar, 0);',
    'int st = 0;',
    'unsigned ph = 0;',
    'bool kt_full, nk_full;',
    'int kt = next_tile(0, kt_full);',
    'while (kt < nkt) {',
    '  // Classify the next tile while this one is (or is still being) copied in.',
    '  const int nk = next_tile(kt + 1, nk_full);',
    '  mbar_wait(&full_bar[st], ph);',
    ...indent(keyHoistCode(e), '  '),
    ...compute,
    '  kt = nk;',
    '  kt_full = nk_full;',
    '}',
  ];
}

/** The tile sequence both roles walk (ballots per warp, so each warp may run it alone). */
export function tileWalkCode(e: CoreExprs, readsMemory: boolean): string[] {
  return classifyCode(e, readsMemory);
}

// Named barriers 2 and 3, one per consumer warpgroup: a warpgroup waits at its own before issuing
// S = Q·Kᵀ and arrives at the other's after; warpgroup 1 arrives once up front, so 0 goes first.
// Both walk the same tiles, so syncs and arrivals pair up (the last arrival is left pending).
export const pingpongCode = [
  'const int wg = warp / 4;',
  'auto pp_sync = [&]() { asm volatile("bar.sync %0, %1;\\n" ::"r"(2 + wg), "n"(CTHREADS) : "memory"); };',
  'auto pp_arrive = [&]() { asm volatile("bar.arrive %0, %1;\\n" ::"r"(3 - wg), "n"(CTHREADS) : "memory"); };',
  'if (wg == 1) pp_arrive();',
];

/**
 * The consumer branch's frame, shared by the float and the `qk int8` kernels: register budget,
 * per-row state, then `loop()` (unless every tile is empty), then out and lse.
 */
export function consumerFrame(
  kernel: AttentionKernel,
  e: CoreExprs,
  plan: WgmmaWsPlan,
  loop: () => string[],
): string[] {
  return [
    ...(plan.regs ? [`regs_inc<${plan.regs.consumer}>();`] : []),
    ...e.rowHoists.map((h) => `${h.type} ${h.name}[2];`),
    "// This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.",
    'const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};',
    ...rowStateCode(e),
    ...(routedOf(e) && e.mode !== 'empty' ? routeRowState('2', 'row_r[r]') : []),
    ...(e.mode === 'empty' ? ['// Every tile is empty: no key is ever loaded.'] : loop()),
    ...epilogueCode(kernel.outputs.lse),
  ];
}
