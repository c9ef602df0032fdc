// The key-tile loop of the tensor-core split-KV decode kernel (decode-mma.ts): the tile classes
// (the fetch's block-wide vote and each lane's two rows' classes for the mask), the online softmax
// the kernel takes (decode-mma-step.ts's, or decode-mma-lean.ts's), the warp's step on one tile
// for each cache kind (16-bit K/V, int8 / fp8 codes, KIVI codes), and the loop around it that
// waits for a stage, prefetches the next and skips tiles no row of the block may see.
// Kept apart from the kernel assembly: this is the kernel's per-tile control flow, while
// decode-mma.ts lays out its constants, pointers, shared memory and fetch.
import { leanSoftmax } from './decode-mma-lean.js';
import type { MmaQuant } from './decode-mma-quant.js';
import { scaleLoads } from './decode-mma-scales.js';
import { quantPv, quantScores } from './decode-mma-qtile.js';
import { kiviRescale, type MmaKivi } from './decode-mma-kivi.js';
import { kiviPv, kiviScores } from './decode-mma-kivi-step.js';
import { densePv, denseScores, onlineSoftmax, scoreLines, type MmaElements } from './decode-mma-step.js';

/** The fetch's barrier lines (opening its `if`) and the lane's `cls2` lines (none without a mask). */
export interface TileClassLines {
  readonly fetchBarrier: string[];
  readonly classify: string[];
}

/**
 * Dynamic tile classes: a tile no row of the block may see is neither fetched nor computed.
 * Thread i classifies row i % 16 for the fetch (the block's OR is its barrier, __syncthreads_or);
 * `fetched` keeps a bit per stage buffer; each lane classifies its own two rows for the mask.
 */
export function tileClassLines(el: MmaElements): TileClassLines {
  const cls = (t0: string, t1: string, h: string, q: string): string =>
    `tile_class(a, b, ${h}, ${q}, ${q}, ${t0} + a.k_offset, ${t1} - 1 + a.k_offset)`;
  const dyn = el.dynamic;
  const fetchBarrier = dyn
    ? [
        '    const int f0 = k_begin + it * MMA_TILE, f1 = min(f0 + MMA_TILE, k_end);',
        `    const bool any = __syncthreads_or(it < n_tiles && crow_ok && ${cls('f0', 'f1', 'crow_h', 'crow_q')} != 0);`,
        '    fetched = any ? fetched | (1u << (it % MMA_STAGES)) : fetched & ~(1u << (it % MMA_STAGES));',
        '    if (any) {',
      ]
    : ['    if (it < n_tiles) {'];
  const classify = el.needMask
    ? [
        '    int cls2[2];',
        '#pragma unroll',
        `    for (int h8 = 0; h8 < 2; ++h8) cls2[h8] = ${dyn ? cls('t0', 't1', 'hr2[h8]', 'qp2[h8]') : el.staticClass};`,
      ]
    : [];
  return { fetchBarrier, classify };
}

/** The scores and online softmax on S: KJ the key of s[j][e], rescale extra lines, halves the row halves. */
export type SoftmaxLines = (KJ: string, rescale: readonly string[], halves: string) => string[];

/** The online softmax: as before (byte for byte), or decode-mma-lean.ts's with HALVES row halves. */
export function softmaxLines(el: MmaElements, lean: boolean): SoftmaxLines {
  return (KJ, rescale, halves) =>
    lean ? leanSoftmax(scoreLines(el), KJ, rescale, halves) : onlineSoftmax(scoreLines(el), KJ, rescale);
}

/** The warp's step on its keys of one tile, by cache kind: stage pointers, S = Q·Kᵀ, softmax, O += P·V. */
export function warpStepLines(
  quant: MmaQuant | undefined,
  kivi: MmaKivi | undefined,
  lean: boolean,
  sm: SoftmaxLines,
): string[] {
  const halves = lean ? 'HALVES' : '2'; // the row halves the step computes (decode-mma-lean.ts)
  if (kivi)
    return [
      ...codeStageRows,
      ...kiviScores(halves),
      ...sm('kw + dmq_key(j, e & 1)', kiviRescale, 'HALVES'),
      ...kiviPv(halves),
    ];
  if (quant)
    return [
      ...codeStageRows,
      ...scaleLoads(quant),
      ...quantScores(lean ? '2 * HALVES' : '4'),
      ...sm('kw + dmq_key(j, e & 1)', [], 'HALVES'),
      ...quantPv(halves),
    ];
  return [
    '      const T* kt = ks + (it % MMA_STAGES) * MMA_TILE * KP + warp * MMA_KEYS * KP;',
    '      const T* vt = vs + (it % MMA_STAGES) * MMA_TILE * VP + warp * MMA_KEYS * VP;',
    ...denseScores,
    ...sm('kw + j * 8 + 2 * (lane & 3) + (e & 1)', [], 'HALVES'),
    ...densePv,
  ];
}

/**
 * The split kernel's signature, architecture guard and block coordinates, shared by the
 * query-major and key-major kernels; `tiles`: the constexpr line of a warp's key tiles.
 */
export const splitKernelOpen = (minBlocks: string, tiles: string): string[] => [
  `__global__ void __launch_bounds__(MMA_THREADS, ${minBlocks}) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {`,
  '#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800',
  tiles,
  '  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;',
  '  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;',
  '  const int hk = blockIdx.y, b = blockIdx.z;',
  '  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;',
];

/** The split kernel's end: the trap where the architecture has no tensor-core path. */
export const splitKernelClose: readonly string[] = [
  '#else',
  '  __trap(); // the host launches this kernel on compute capability 8.0 and up only',
  '#endif',
  '}',
];

/** The stage fetch (fetchBarrier opens it: a vote with dynamic classes; fetchBody: one tile's copies) and its prologue. */
export const stageFetch = (fetchBarrier: readonly string[], fetchBody: readonly string[]): string[] => [
  '  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;',
  '  auto fetch = [&](int it) {',
  ...fetchBarrier,
  '      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);',
  ...fetchBody,
  '    }',
  '    dec_commit(); // one group per tile, fetched or not',
  '  };',
  '  for (int st = 0; st < MMA_STAGES - 1; ++st) fetch(st);',
];

/** The warp's first K and V code rows of the current stage (quantized and KIVI caches, bytes). */
export const codeStageRows: readonly string[] = [
  '      const unsigned char* kt = ks + (it % MMA_STAGES) * MMA_TILE * KPB + warp * MMA_KEYS * KPB;',
  '      const unsigned char* vt = vs + (it % MMA_STAGES) * MMA_TILE * VPB + warp * MMA_KEYS * VPB;',
];

/** The loop over the split's key tiles: wait for tile it, prefetch, skip or classify, the warp's step. */
export function tileLoopLines(
  dyn: boolean,
  classify: readonly string[],
  warpStep: readonly string[],
): string[] {
  return [
    '  for (int it = 0; it < n_tiles; ++it) {',
    '    dec_wait<MMA_STAGES - 2>();',
    dyn
      ? '    // fetch() begins with the barrier: every copy of tile it landed, tile it - 1 is free'
      : "    __syncthreads(); // every thread's copies of tile it landed; tile it - 1's buffer is free",
    '    fetch(it + MMA_STAGES - 1);',
    '    const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);',
    ...(dyn
      ? ['    if (!((fetched >> (it % MMA_STAGES)) & 1u)) continue; // the same for the whole block']
      : []),
    ...classify,
    '    const int kw = t0 + warp * MMA_KEYS;',
    '    if (kw < t1) { // warp-uniform: a warp past the split end has no keys in this tile',
    ...warpStep,
    '    }',
    '  }',
  ];
}
