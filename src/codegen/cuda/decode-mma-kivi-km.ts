// The key-major KIVI decode kernel: the tensor-core split kernel of decode-mma.ts with the keys as
// the MMA's M and the GQA group's queries as its N (Sᵀ = K·Qᵀ, Oᵀ = Vᵀ·Pᵀ), for KIVI caches
// (decode-mma-kivi.ts's formats and folds) without masks or score modifiers. Why: at GQA 4 the
// query-major kernel pads 4 query rows to the MMA's 16, so 12 of 16 rows of every accumulator are
// padding: its O takes 64 registers a lane (DV 128) and Q's fragments 32, and the kernel sits at
// 254 registers, one block of 8 warps an SM (call 67: half the issue slots idle). With the queries
// as N (8 columns, 4 of them real) O is 32 registers and Q's B fragments 16, the score and P·V
// MMAs halve, and the per-element work (dequantizing each code once) is unchanged.
//
// Layout (lane = 4 r0 + t): an m-tile is 16 keys; the lane's A rows are keys r0, r0 + 8 and its C
// columns the queries 2t, 2t + 1 (packed rows rg·8 + 2t + c). K's A fragments take the lane's code
// words exactly as the query-major kernel's B fragments did (decode-mma-kivi.ts's channel order),
// Q's B fragments are that kernel's A fragments of row r0. For P·V, O's m-tile n holds V channels
// 32 (n / 2) + 4 r0 + 2 (n % 2) + v in rows r0 + 8 v: one V group (32 channels) a pair of m-tiles,
// a lane's four channels of a group adjacent in a code word (one byte_perm gives them for two keys).
// P′ = p · s_t,g leaves the C layout (keys as rows) for the B layout (keys as k) by movmatrix.trans
// (one 8×8 transpose a register). Built with -DATTNC_DEC_MMA_KIVI_KM=1; off by default until a GPU
// has checked and timed it (the CPU emulator runs it, test/cuda/decode-mma-kivi-emu.test.ts; round
// 33 got no device after writing it: bench/device-calls/c71-kivi-key-major.sh is the call).
import type { MmaElements } from './decode-mma-step.js';
import { combineRows } from './decode-mma-combine.js';
import { kmCombine, kmPv, kmRescale, kmScores, kmSoftmax, kmTail } from './decode-mma-kivi-km-step.js';
import { tileLoopLines } from './decode-mma-tiles.js';
import { kiviQRow, type MmaKivi } from './decode-mma-kivi.js';

/** Whether the key-major kernel takes this KIVI kernel: no mask, no score modifier, no dynamic tile classes. */
export const kiviKeyMajorTakes = (el: MmaElements): boolean => !el.needMask && el.identity && !el.dynamic;

/** The switch (emitted with the tensor-core knobs where kiviKeyMajorTakes). */
export const kiviKmSwitch: readonly string[] = [
  '#ifndef ATTNC_DEC_MMA_KIVI_KM',
  '#define ATTNC_DEC_MMA_KIVI_KM 0 // 1: the key-major KIVI kernel, not yet timed on a GPU (decode-mma-kivi-km.ts)',
  '#endif',
];

/** Device helpers: movmatrix.trans and an indexed shuffle (the CPU emulator has butterflies only). */
export const kiviKmHelpers: readonly string[] = [
  '// The 8×8 16-bit matrix whose row r0, columns 2t, 2t + 1 lane 4 r0 + t holds, transposed: the lane',
  '// gets row r0 of the transpose (elements (2t, r0), (2t + 1, r0) of the input).',
  '__device__ __forceinline__ unsigned dm_movt(unsigned x) {',
  '#ifdef __CUDA_ARCH__',
  '  unsigned y;',
  '  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\\n" : "=r"(y) : "r"(x));',
  '  return y;',
  '#else',
  '  const int l = (int)(threadIdx.x & 31), g = l >> 2, t = l & 3, sh = 16 * (g & 1);',
  '  const unsigned lo = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + g / 2));',
  '  const unsigned hi = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + 4 + g / 2));',
  '  return ((lo >> sh) & 0xffffu) | ((hi >> sh) & 0xffffu) << 16;',
  '#endif',
  '}',
  "// Under a register cap for two blocks an SM (QMIN_BLOCKS 2 or more) the K group's scale and zero",
  '// words stay in shared memory, read at each use (volatile: nvcc would keep all 32 in registers;',
  '// 128 registers then spill 16 bytes where holding them spilt 148); else they are held.',
  'constexpr bool KM_HELD = ATTNC_DEC_MMA_QMIN_BLOCKS < 2;',
  '__device__ __forceinline__ unsigned dk_pair_v(const volatile unsigned* w, int p) {',
  '  const int b = (KCPW / 2) * (p / KPPW) + (p % KPPW) / 2;',
  '  return __byte_perm(w[b], w[b + KPPW / 2], (p & 1) ? 0x7632u : 0x5410u);',
  '}',
  '__device__ __forceinline__ float dm_shfl_from(float v, int src) {',
  '#ifdef __CUDA_ARCH__',
  '  return __shfl_sync(0xffffffffu, v, src);',
  '#else',
  '  return __shfl_xor_sync(0xffffffffu, v, (int)(threadIdx.x & 31) ^ src);',
  '#endif',
  '}',
];

/** Q's B fragments: row r0's q̂ = q · 2^(14 - e) in the K channel order; qinv of the lane's columns. */
const kmLoadQ: readonly string[] = [
  '  unsigned qb[D / 16][2];',
  '  float qinv[2];',
  '  {',
  "    constexpr int h8 = 0; // row r0 of the block: the query of the lane's B column",
  ...kiviQRow('qb[ks][h]'),
  '    const float qi = qinv[0];',
  '#pragma unroll',
  '    for (int c = 0; c < 2; ++c) qinv[c] = dm_shfl_from(qi, 4 * (2 * (lane & 3) + c)); // column 2t + c',
  '  }',
];

/** The kernel's parts from decode-mma.ts's assembly: its cache lines, smem, fetch and launch bounds. */
export interface KmFrame {
  readonly keys: readonly string[];
  readonly smem: readonly string[];
  readonly smemDecl: string;
  readonly fetchBody: readonly string[];
  readonly minBlocks: string;
}

/** The key-major kernel (namespace dec, after the KIVI helpers and kiviKmHelpers). */
export function kiviKmKernel(kv: MmaKivi, frame: KmFrame, field: (key: string) => string): string[] {
  const warpStep = [
    '      const unsigned char* kt = ks + (it % MMA_STAGES) * MMA_TILE * KPB + warp * MMA_KEYS * KPB;',
    '      const unsigned char* vt = vs + (it % MMA_STAGES) * MMA_TILE * VPB + warp * MMA_KEYS * VPB;',
    ...kmScores,
    ...kmSoftmax(kmRescale),
    ...kmPv,
  ];
  return [
    `__global__ void __launch_bounds__(MMA_THREADS, ${frame.minBlocks}) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {`,
    '#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800',
    '  constexpr int KMT = MMA_KEYS / 16; // m-tiles of 16 keys a warp and tile',
    '  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;',
    '  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;',
    '  const int hk = blockIdx.y, b = blockIdx.z;',
    '  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;',
    ...kmLoadQ,
    '  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 16][4], vz[VG][4];',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
    '#pragma unroll',
    '  for (int g = 0; g < VG; ++g) vz[g][0] = vz[g][1] = vz[g][2] = vz[g][3] = 0.f;',
    '  const float sl2 = a.scale * LOG2E;',
    ...frame.keys,
    `  ${frame.smemDecl}`,
    ...frame.smem,
    '  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;',
    '  auto fetch = [&](int it) {',
    '    if (it < n_tiles) {',
    '      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);',
    ...frame.fetchBody,
    '    }',
    '    dec_commit(); // one group per tile, fetched or not',
    '  };',
    '  for (int st = 0; st < MMA_STAGES - 1; ++st) fetch(st);',
    ...tileLoopLines(false, [], warpStep),
    ...(kv.recent > 0 ? kmTail(field, kmSoftmax(kmRescale)) : []),
    ...kmCombine,
    ...combineRows,
    '#else',
    '  __trap(); // the host launches this kernel on compute capability 8.0 and up only',
    '#endif',
    '}',
  ];
}
