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
// -DATTNC_DEC_MMA_KM=1; off by default until a GPU has checked and timed it (the CPU emulator runs
// it, test/cuda/decode-mma-kivi-emu.test.ts and decode-mma-quant-emu.test.ts; round 33 got no
// device after writing it: bench/device-calls/c71-kivi-key-major.sh is the call).
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
import { tileLoopLines } from './decode-mma-tiles.js';
import { mmaKiviOf } from './decode-mma-kivi.js';
import { mmaQuantOf } from './decode-mma-quant.js';

export { kmHelpers } from './decode-mma-km-parts.js';

/** A cache kind's lines in the key-major kernel. */
interface KmKind {
  readonly helpers: readonly string[];
  readonly loadQ: readonly string[];
  /** More per-lane state beside m, l and o. */
  readonly state: readonly string[];
  readonly step: readonly string[];
  readonly tail: readonly string[];
  /** o's channel of m-tile n, row r0 + 8 v; lines on o before the combine. */
  readonly channel: string;
  readonly out: readonly string[];
}

/** The key-major kind of kernel `k` (classify: the lane's tile classes, t0 and t1 in scope), or undefined (paged caches, 16-bit floats). */
function kmKindOf(
  k: AttentionKernel,
  el: MmaElements,
  field: (key: string) => string,
  classify: readonly string[],
): KmKind | undefined {
  const kivi = mmaKiviOf(k);
  if (kivi)
    return {
      helpers: kmKiviHelpers,
      loadQ: kmKiviLoadQ,
      state: [
        '  float vz[VG][4]; // Σ p′ z of each V group (columns 2t, 2t + 1; rows alike)',
        '#pragma unroll',
        '  for (int g = 0; g < VG; ++g) vz[g][0] = vz[g][1] = vz[g][2] = vz[g][3] = 0.f;',
      ],
      step: [...kmKiviScores, ...kmSoftmax(el, kmKiviRescale), ...kmKiviPv],
      tail: kivi.recent > 0 ? kmKiviTail(field, classify, kmSoftmax(el, kmKiviRescale)) : [],
      channel: kmKiviChannel,
      out: kmKiviOut,
    };
  const quant = k.formats.paged ? undefined : mmaQuantOf(k);
  if (quant)
    return {
      helpers: [],
      loadQ: kmQuantLoadQ(quant),
      state: [],
      step: [...kmQuantScores(quant), ...kmSoftmax(el, []), ...kmQuantPv],
      tail: [],
      channel: kmQuantChannel,
      out: [],
    };
  return undefined;
}

/** Whether kernel `k` has the key-major kernel (behind its switch). */
export const hasKeyMajor = (k: AttentionKernel, el: MmaElements): boolean =>
  kmKindOf(k, el, () => '', []) !== undefined;

/** The switch (emitted with the tensor-core knobs where hasKeyMajor). */
export const kmSwitch: readonly string[] = [
  '#ifndef ATTNC_DEC_MMA_KM',
  '#define ATTNC_DEC_MMA_KM 0 // 1: the key-major kernel, not yet timed on a GPU (decode-mma-km.ts)',
  '#endif',
];

/** The kernel's parts from decode-mma.ts's assembly: its cache lines, smem, fetch and launch bounds. */
export interface KmFrame {
  readonly keys: readonly string[];
  readonly smem: readonly string[];
  readonly smemDecl: string;
  readonly fetchBody: readonly string[];
  readonly minBlocks: string;
  /** decode-mma-tiles.ts's tileClassLines: the fetch's opening (a vote with dynamic classes), the lane's classes. */
  readonly fetchBarrier: readonly string[];
  readonly classify: readonly string[];
}

/** The kind's device helpers (after the cache kind's own and kmHelpers). */
export const kmKindHelpers = (k: AttentionKernel, el: MmaElements): readonly string[] =>
  kmKindOf(k, el, () => '', [])?.helpers ?? [];

/** The key-major kernel (namespace dec, after the cache kind's helpers and kmHelpers). */
export function keyMajorKernel(
  k: AttentionKernel,
  el: MmaElements,
  frame: KmFrame,
  field: (key: string) => string,
): string[] {
  const kind = kmKindOf(k, el, field, frame.classify);
  if (!kind) throw new Error('CUDA backend: no key-major decode kernel for this kernel');
  const warpStep = [
    '      const unsigned char* kt = ks + (it % MMA_STAGES) * MMA_TILE * KPB + warp * MMA_KEYS * KPB;',
    '      const unsigned char* vt = vs + (it % MMA_STAGES) * MMA_TILE * VPB + warp * MMA_KEYS * VPB;',
    ...kind.step,
  ];
  return [
    `__global__ void __launch_bounds__(MMA_THREADS, ${frame.minBlocks}) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {`,
    '#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800',
    '  constexpr int KMT = MMA_KEYS / 16; // m-tiles of 16 keys a warp and tile',
    '  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;',
    '  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;',
    '  const int hk = blockIdx.y, b = blockIdx.z;',
    '  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;',
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
    `  ${frame.smemDecl}`,
    ...frame.smem,
    '  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;',
    '  auto fetch = [&](int it) {',
    ...frame.fetchBarrier,
    '      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);',
    ...frame.fetchBody,
    '    }',
    '    dec_commit(); // one group per tile, fetched or not',
    '  };',
    '  for (int st = 0; st < MMA_STAGES - 1; ++st) fetch(st);',
    ...tileLoopLines(el.dynamic, frame.classify, warpStep),
    ...kind.tail,
    ...kind.out,
    ...kmCombine(kind.channel),
    ...combineRows,
    '#else',
    '  __trap(); // the host launches this kernel on compute capability 8.0 and up only',
    '#endif',
    '}',
  ];
}
