// The key-major quantized decode kernel: the tensor-core split kernel of decode-mma.ts with the keys
// as the MMA's M and the GQA group's queries as its N (Sᵀ = K·Qᵀ, Oᵀ = Vᵀ·Pᵀ), for KIVI caches
// (decode-mma-kivi.ts's formats and folds) and packed int8 / fp8 caches with per-token scales
// (decode-mma-quant.ts's), with masks, score modifiers and tile classes as the query-major kernel
// has them (decode-mma-step.ts's scoreLines on the lane's query columns). Why: at GQA 4 the query-major kernel
// pads 4 query rows to the MMA's 16, so 12 of 16 rows of every accumulator are padding: its O takes
// 64 registers a lane (DV 128) and Q's fragments 32, and the KIVI kernel sits at 254 registers, one
// block of 8 warps an SM (call 67: half the issue slots idle; int8 184). With the queries as N (8
// columns, 4 of them real) O is 32 registers and Q's B fragments 16, the score and P·V MMAs halve,
// and the per-element work (dequantizing each code once) is unchanged.
//
// Layout (lane = 4 r0 + t): an m-tile is 16 keys; the lane's A rows r0, r0 + 8 are keys kr0, kr0 + 8
// (kr0 = r0 / 2 + 4 (r0 % 2), the bank-conflict-free order of the query-major kernel) and its C
// columns the queries 2t, 2t + 1 (packed rows rg·8 + 2t + c). K's A fragments take the lane's code
// words exactly as the query-major kernel's B fragments did (its channel order), Q's B fragments
// are that kernel's A fragments of row r0. For P·V the A fragments are V's codes of keys 2t, 2t + 1
// (and + 8) in channel rows each cache kind lays out (decode-mma-kivi-km-step.ts: a V group a pair
// of m-tiles; decode-mma-quant-km.ts); P′ = p · s_v leaves the C layout (keys as rows) for the B
// layout (keys as k) by movmatrix.trans (one 8×8 transpose a register). Built with
// ATTNC_DEC_MMA_KM (KmKind.byDefault: on for KIVI and fp8 caches since round 34's H100 timing, off
// where a side is int8); the CPU emulator runs both kernels (test/cuda/decode-mma-kivi-emu.test.ts
// and decode-mma-quant-emu.test.ts).
import type { AttentionKernel } from '../../ir/kernel.js';
import { classifiedRows, laneQueries, type MmaElements } from './decode-mma-step.js';
import { combineRows } from './decode-mma-combine.js';
import { kmCombine, kmSoftmax } from './decode-mma-km-parts.js';
import {
  kmKiviChannel,
  kmKiviHelpers,
  kmKiviLoadQ,
  kmKiviOut,
  kmKiviPv,
  kmKiviRescale,
  kmKiviScores,
  kmKiviTail,
} from './decode-mma-kivi-km-step.js';
import { kmQuantChannel, kmQuantLoadQ, kmQuantPv, kmQuantScores } from './decode-mma-quant-km.js';
import { codeStageRows, splitKernelClose, splitKernelOpen, tileLoopLines } from './decode-mma-tiles.js';
import type { MmaCache } from './decode-mma-kinds.js';
import type { QuantTileDefaults } from './decode-mma-quant.js';
import type { MmaTokenInt } from './decode-mma-tokint.js';
import {
  tokenIntOut,
  tokenIntPv,
  tokenIntQSum,
  tokenIntRescale,
  tokenIntScores,
  tokenIntState,
} from './decode-mma-tokint-step.js';

export { kmHelpers } from './decode-mma-km-parts.js';

/** A cache kind's lines in the key-major kernel (keyMajorKind). */
export interface KmKind {
  readonly helpers: readonly string[];
  readonly loadQ: readonly string[];
  /** More per-lane state beside m, l and o. */
  readonly state: readonly string[];
  readonly step: readonly string[];
  readonly tail: readonly string[];
  /** o's channel of m-tile n, row r0 + 8 v; lines on o before the combine. */
  readonly channel: string;
  readonly out: readonly string[];
  /**
   * Whether it is the default (ATTNC_DEC_MMA_KM 1). H100, round 34 (docs/PERFORMANCE.md), B 4,
   * H 32 / Hkv 8, D 128, 128K keys: KIVI int4 0.465 → 0.372 ms, int2 0.426 → 0.342 (KM_KIVI_TILES),
   * e4m3 0.381 → 0.377 (0.118 → 0.111 at 32K); int8 0.379 → 0.395 (slower: its conversions, not
   * the padded rows, bound it), so a cache with an int8 side keeps the query-major kernel.
   */
  readonly byDefault: boolean;
  /** Quantized tile defaults where ATTNC_DEC_MMA_KM is 1 (quantTileKnobs), where they differ. */
  readonly tiles: QuantTileDefaults;
  /** No query-major kernel exists for the kind (per-token int4 / int2): ATTNC_DEC_MMA_KM stays 1. */
  readonly only?: boolean;
}

/**
 * The key-major kind of kernel `k` with cache kind `cache` (classify: the lane's tile classes, t0 and
 * t1 in scope), or undefined where it has none (paged int8 / fp8, 16-bit float caches).
 */
export function keyMajorKind(
  k: AttentionKernel,
  cache: MmaCache,
  el: MmaElements,
  field: (key: string) => string,
  classify: readonly string[],
): KmKind | undefined {
  if (cache.kind === 'kivi') {
    const kivi = cache.kivi;
    const softmax = kmSoftmax(el, kmKiviRescale);
    return {
      helpers: kmKiviHelpers,
      loadQ: kmKiviLoadQ,
      state: [
        '  float vz[VG][4]; // Σ p′ z of each V group (columns 2t, 2t + 1; rows alike)',
        '#pragma unroll',
        '  for (int g = 0; g < VG; ++g) vz[g][0] = vz[g][1] = vz[g][2] = vz[g][3] = 0.f;',
      ],
      step: [...kmKiviScores, ...softmax, ...kmKiviPv],
      tail: kivi.recent > 0 ? kmKiviTail(field, classify, softmax) : [],
      channel: kmKiviChannel,
      out: kmKiviOut,
      byDefault: true,
      tiles: KM_KIVI_TILES,
    };
  }
  if (cache.kind === 'tokint') return tokenIntKind(cache.tok, el, field, classify);
  // Paged int8 / fp8 caches keep the query-major kernel.
  if (cache.kind === 'quant' && !k.formats.paged) {
    const quant = cache.quant;
    return {
      helpers: [],
      loadQ: kmQuantLoadQ(quant),
      state: [],
      step: [...kmQuantScores(quant), ...kmSoftmax(el, []), ...kmQuantPv],
      tail: [],
      channel: kmQuantChannel,
      out: [],
      byDefault: quant.k.elem !== 'int8' && quant.v.elem !== 'int8',
      tiles: {},
    };
  }
  return undefined;
}

/** Per-token int4 / int2 caches (decode-mma-tokint.ts): the key-major kernel only. */
function tokenIntKind(
  t: MmaTokenInt,
  el: MmaElements,
  field: (key: string) => string,
  classify: readonly string[],
): KmKind {
  const softmax = kmSoftmax(el, tokenIntRescale(t));
  return {
    helpers: [],
    loadQ: [...kmKiviLoadQ, ...(t.k.zero ? tokenIntQSum : [])],
    state: tokenIntState(t),
    step: [...tokenIntScores(t), ...softmax, ...tokenIntPv(t)],
    tail: t.recent > 0 ? kmKiviTail(field, classify, softmax) : [],
    channel: kmKiviChannel,
    out: tokenIntOut(t),
    byDefault: true,
    tiles: KM_TOKEN_INT_TILES,
    only: true,
  };
}

/**
 * Per-token int4 / int2 tile defaults: 4-warp blocks capped for four an SM (128 registers; sm_90a,
 * D 128: 111 symmetric int4, 124 with zero points, 4 bytes spilled with a recent window), one more
 * block than KIVI's three since the kernel holds no K group scales. Not yet timed on a GPU.
 */
export const KM_TOKEN_INT_TILES: QuantTileDefaults = { WARPS: 4, MIN_BLOCKS: 4 };

/**
 * The key-major KIVI kernel's tile defaults (QWARPS, QMIN_BLOCKS where ATTNC_DEC_MMA_KM is 1):
 * 4-warp blocks capped for three an SM (170 registers). H100 round 34, 128K: int4 0.372 ms against
 * 0.397 at 8 warps capped for two, 0.406 uncapped; 2- and 6-warp blocks, 64-key warps slower.
 */
export const KM_KIVI_TILES: QuantTileDefaults = { WARPS: 4, MIN_BLOCKS: 3 };

/** The switch, emitted before the tensor-core knobs where keyMajorKind gives a kind. */
export const kmSwitch = (kind: KmKind): string[] =>
  kind.only
    ? [
        '#ifndef ATTNC_DEC_MMA_KM',
        '#define ATTNC_DEC_MMA_KM 1 // this cache kind has the key-major kernel only (decode-mma-km.ts)',
        '#endif',
        'static_assert(ATTNC_DEC_MMA_KM == 1, "ATTNC_DEC_MMA_KM: per-token int4 / int2 caches have the key-major kernel only");',
      ]
    : [
        '#ifndef ATTNC_DEC_MMA_KM',
        `#define ATTNC_DEC_MMA_KM ${kind.byDefault ? 1 : 0} // 1: the key-major kernel, 0: the query-major one (decode-mma-km.ts)`,
        '#endif',
      ];

/** What the key-major kernel takes from decode-mma.ts's assembly (the query-major kernel's too). */
export interface KmFrame {
  readonly minBlocks: string;
  /** The split's keys and row handles; the dynamic shared memory and stage buffers. */
  readonly keys: readonly string[];
  readonly smem: readonly string[];
  /** decode-mma-tiles.ts's stageFetch; tileClassLines's lane classes. */
  readonly fetch: readonly string[];
  readonly classify: readonly string[];
}

/** The key-major kernel (namespace dec, after the cache kind's helpers, kmHelpers and kind.helpers). */
export function keyMajorKernel(kind: KmKind, el: MmaElements, frame: KmFrame): string[] {
  return [
    ...splitKernelOpen(
      frame.minBlocks,
      '  constexpr int KMT = MMA_KEYS / 16; // m-tiles of 16 keys a warp and tile',
    ),
    '  // The key of A row r0 in an m-tile (+ 8 for row r0 + 8), and of k index 2t (+ 4 for 2t + 1): lanes',
    '  // r0 and r0 + 1 read rows 4 apart, lanes t and t + 1 rows 1 apart, so their 16-byte reads of a',
    "  // code row's pitch fall in distinct banks (the query-major kernel's key order, dmq_key).",
    '  const int kr0 = (r0 >> 1) + 4 * (r0 & 1);',
    ...kind.loadQ,
    ...laneQueries('2 * (lane & 3) + h8'), // the lane's columns
    ...(el.dynamic ? classifiedRows : []),
    '  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 16][4];',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
    ...kind.state,
    '  [[maybe_unused]] const float sl2 = a.scale * LOG2E; // identity scores: one multiply to base 2',
    ...frame.keys,
    ...frame.smem,
    ...frame.fetch,
    ...tileLoopLines(el.dynamic, frame.classify, [...codeStageRows, ...kind.step]),
    ...kind.tail,
    ...kind.out,
    ...kmCombine(kind.channel),
    ...combineRows,
    ...splitKernelClose,
  ];
}
