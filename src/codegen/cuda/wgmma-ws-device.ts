// Device and host helpers of the warp-specialized Hopper core on top of the wgmma core's: TMA
// tensor maps (built on the host from the args struct, passed to the kernel as __grid_constant__
// parameters), bulk tensor copies into the 128B-swizzled panel layout that wgmma reads, mbarrier
// waits and arrivals, named barriers and setmaxnreg. Plain PTX and the driver's C ABI: the
// artifact needs neither cuda.h nor -lcuda (cuTensorMapEncodeTiled comes from the runtime's
// cudaGetDriverEntryPointByVersion).
import type { Schedule, StorageDType } from '../../ir/kernel.js';
import { tmaKvDevice, tmaKvHost, tmaKvMaps } from './kv-load-tma.js';
import { wgmmaDeviceHelpers } from './wgmma-device.js';
import { qTmaShape } from './qo-rows.js';

/** CUtensorMapDataType of the storage type (cuda.h: FLOAT16 = 6, BFLOAT16 = 9). */
export const tmaDataType: Readonly<Record<'f16' | 'bf16', number>> = { f16: 6, bf16: 9 };
/** cuda.h: CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B. */
export const TMA_SWIZZLE_128B = 3;
export const TMA_L2_256B = 3;

export function wgmmaWsDeviceHelpers(s: Schedule, dtype: StorageDType): string[] {
  if (dtype === 'f32') throw new Error('CUDA wgmma-ws core: f32 storage has no 16-bit wgmma');
  return [
    ...wgmmaDeviceHelpers(s, dtype),
    '',
    '// A CUtensorMap (cuda.h), by layout: 128 opaque bytes, 128-byte aligned.',
    'struct alignas(128) TmaMap {',
    '  unsigned long long w[16];',
    '};',
    '',
    '// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of slice c2 → dst, 128B-swizzled',
    "// (the hardware's pattern is pswz's); rows past the tensor's end arrive as zeros. Completes on",
    '// `bar` as transaction bytes (the whole box, zero-filled rows included).',
    '__device__ __forceinline__ void tma_load(T* dst, const TmaMap& map, int c0, int c1, int c2, uint64_t* bar) {',
    '  asm volatile(',
    '      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\\n"',
    '      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))',
    '      : "memory");',
    '}',
    '',
    '// A [ROWS][W] tile as W/64 panels of [ROWS][64] (the layout desc128 addresses).',
    'template <int W, int ROWS>',
    '__device__ __forceinline__ void tma_panels(T* dst, const TmaMap& map, int row, int slice, uint64_t* bar) {',
    '#pragma unroll',
    '  for (int p = 0; p < W / 64; ++p) tma_load(dst + p * (ROWS * 64), map, p * 64, row, slice, bar);',
    '}',
    '',
    ...tmaKvDevice,
    '',
    ...mbarInitHelper,
    '// The producer arrives once per stage and announces the bytes its copies will complete.',
    '__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {',
    '  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\\n" ::"r"(smem_addr(bar)), "r"(bytes)',
    '               : "memory");',
    '}',
    ...mbarArriveWaitHelpers,
    ...wgWaitHelper,
    '// Barrier 1 among the consumer threads alone (0 is __syncthreads, which the producer has left).',
    '__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\\n" ::"n"(CTHREADS) : "memory"); }',
    '',
    '// Register reallocation between warpgroups (sm_90a; every warp of a warpgroup runs the same one).',
    ...setmaxnregHelpers,
  ];
}

/**
 * Host code (inside the artifact's namespace): `make_tma_maps(a, maps)` fills the Q, K and V
 * tensor maps of one launch, or returns why it cannot. Each tensor is seen as 3-D (columns, rows,
 * batch·heads) with a box of 64 columns × `rows` rows: one 128-byte-swizzled panel per copy.
 */
export function tmaHostCode(dtype: StorageDType, kvMaps: readonly string[] = tmaKvMaps): string[] {
  if (dtype === 'f32') throw new Error('CUDA wgmma-ws core: f32 storage has no TMA path here');
  return [
    '// cuTensorMapEncodeTiled by its C ABI (cuda.h enums are ints); CUresult 0 is success.',
    'typedef int (*EncodeTiledFn)(TmaMap*, int, unsigned, void*, const unsigned long long*, const unsigned long long*,',
    '                             const unsigned*, const unsigned*, int, int, int, int);',
    '',
    ...tmaKvHost(tmaDataType[dtype], TMA_SWIZZLE_128B, TMA_L2_256B),
    '',
    '// maps[0..2] = Q, K, V. With Nk = 0 no K/V tile is ever loaded, so their maps stay zero.',
    'static const char* make_tma_maps(const Args& a, TmaMap* maps) {',
    '  static EncodeTiledFn encode = nullptr;',
    '  if (encode == nullptr) {',
    '    void* fn = nullptr;',
    '    cudaDriverEntryPointQueryResult found;',
    '    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found);',
    '    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr)',
    '      return "the driver has no cuTensorMapEncodeTiled (TMA needs CUDA 12 and sm_90)";',
    '    encode = reinterpret_cast<EncodeTiledFn>(fn);',
    '  }',
    '  memset(maps, 0, 3 * sizeof(TmaMap));',
    `  if (encode_kv_panels(encode, &maps[0], ${qTmaShape}, BQ) != 0) return "cannot describe q to the TMA unit (its strides must be multiples of 16 bytes)";`,
    '  if (a.Nk == 0) return nullptr;',
    ...kvMaps,
    '  return nullptr;',
    '}',
  ];
}

/** wg_wait<N>(): waits until at most N committed wgmma groups of this warpgroup are still running. */
export const wgWaitHelper: readonly string[] = [
  '// Waits until at most N committed wgmma groups of this warpgroup are still running.',
  'template <int N>',
  '__device__ __forceinline__ void wg_wait() {',
  '#if ATTNC_SM90A',
  '  asm volatile("wgmma.wait_group.sync.aligned %0;\\n" ::"n"(N) : "memory");',
  '#endif',
  '}',
];

/** mbarrier.init (shared by the forward producer kernels and the backward's producer warpgroup). */
export const mbarInitHelper: readonly string[] = [
  '__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {',
  '  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");',
  '}',
];

/** mbarrier arrive and the parity wait, its spin inside one asm block (the comment says why). */
export const mbarArriveWaitHelpers: readonly string[] = [
  '__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {',
  '  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\\n" ::"r"(smem_addr(bar)) : "memory");',
  '}',
  "// Waits until the barrier's phase of this parity has completed. The spin stays inside one asm",
  '// block: a C++ loop around try_wait (e.g. with a timeout) kept ptxas from giving the consumers',
  '// the registers setmaxnreg grants them (measured: 412 bytes of spills at 168 registers).',
  '__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {',
  '  asm volatile(',
  '      "{\\n.reg .pred p;\\nWAIT_%=:\\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\\n@!p bra WAIT_%=;\\n}\\n"',
  '      ::"r"(smem_addr(bar)), "r"(parity)',
  '      : "memory");',
  '}',
];

/** setmaxnreg between warpgroups: regs_dec<N>() / regs_inc<N>() (no-ops below sm_90a). */
export const setmaxnregHelpers: readonly string[] = [
  'template <int N>',
  '__device__ __forceinline__ void regs_dec() {',
  '#if ATTNC_SM90A',
  '  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\\n" ::"n"(N));',
  '#endif',
  '}',
  'template <int N>',
  '__device__ __forceinline__ void regs_inc() {',
  '#if ATTNC_SM90A',
  '  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\\n" ::"n"(N));',
  '#endif',
  '}',
];
