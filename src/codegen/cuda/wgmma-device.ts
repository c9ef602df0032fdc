// Device helpers of the Hopper (sm_90a) core on top of the mma core's: the 128-byte-swizzle tile
// layout that wgmma descriptors address, its cp.async loader, matrix descriptors, and the
// warpgroup MMAs themselves as plain PTX (no CUTLASS/CuTe: the kernel builds with nvcc alone).
import type { Schedule, StorageDType } from '../../ir/kernel.js';
import { cpAsyncLoader } from './kv-load-mma.js';
import { mmaDeviceHelpers } from './mma-device.js';

/**
 * `name(d, a, descB)`: d[N/8][4] += A·B over one k16 step, A (64×16, this warpgroup's rows) from
 * shared memory by descriptor (`aRegs` false) or from 4 registers per lane (the mma.sync A
 * fragment of the warp's 16 rows); B (16×N) by descriptor, MN-major (`transB`) or K-major.
 * Accumulator d[j][e] is operand 4j + e, which gives it the mma.sync m16n8 layout per n-tile.
 */
export function wgmmaFn(
  name: string,
  n: number,
  dtype: 'f16' | 'bf16',
  aRegs: boolean,
  transB: boolean,
  accTiles?: number,
): string[] {
  const acc = n / 2;
  const dList = Array.from({ length: acc }, (_, i) => `%${i}`).join(', ');
  const a = aRegs ? `{%${acc}, %${acc + 1}, %${acc + 2}, %${acc + 3}}` : `%${acc}`;
  const b = aRegs ? acc + 4 : acc + 1;
  const imms = aRegs ? `1, 1, ${Number(transB)}` : `1, 1, 0, ${Number(transB)}`;
  // With accTiles the accumulator is a wider array and P picks its n/8 n-tiles at 8P.
  const wide = accTiles !== undefined;
  const outs = Array.from({ length: acc }, (_, i) => `"+f"(d[${wide ? 'P * 8 + ' : ''}${i >> 2}][${i & 3}])`);
  const rows: string[] = [];
  for (let i = 0; i < outs.length; i += 8) rows.push('        ' + outs.slice(i, i + 8).join(', '));
  const aIn = aRegs ? '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3])' : '"l"(a)';
  return [
    ...(wide ? ['template <int P>'] : []),
    `__device__ __forceinline__ void ${name}(float (&d)[${accTiles ?? n / 8}][4], ${aRegs ? 'const unsigned (&a)[4]' : 'uint64_t a'}, uint64_t db) {`,
    '#if ATTNC_SM90A',
    '  asm volatile(',
    '      "{\\n.reg .pred p;\\n"',
    `      "setp.ne.b32 p, %${b + 1}, 0;\\n"`,
    `      "wgmma.mma_async.sync.aligned.m64n${n}k16.f32.${dtype}.${dtype} {${dList}}, ${a}, %${b}, p, ${imms};\\n}\\n"`,
    '      :',
    rows.join(',\n'),
    `      : ${aIn}, "l"(db), "r"(1)`,
    '      : "memory");',
    '#endif',
    '}',
  ];
}

/** The helpers for 16-bit storage `dtype`; S = Q·Kᵀ is m64n{BK}, O += P·V is DV/64 × m64n64. */
export function wgmmaDeviceHelpers(s: Schedule, dtype: StorageDType): string[] {
  if (dtype === 'f32') throw new Error('CUDA wgmma core: f32 storage has no 16-bit wgmma');
  return [
    ...mmaDeviceHelpers(dtype),
    '',
    '// wgmma exists only in sm_90a SASS; `-arch=sm_90a` also emits compute_90 PTX, which gets',
    '// empty wgmma helpers and a kernel that traps (a GPU without sm_90a features never runs it).',
    '#ifndef ATTNC_SM90A',
    '#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)',
    '#define ATTNC_SM90A 0',
    '#else',
    '#define ATTNC_SM90A 1',
    '#endif',
    '#endif',
    '',
    '// Element offset of (row, col) in a [ROWS][W] tile kept as W/64 panels of [ROWS][64]: a panel',
    "// row is one 128-byte line whose 16-byte chunks are XOR-swizzled by row % 8 — wgmma's 128B",
    '// swizzle, which the hardware applies from address bits, hence 1024-byte-aligned tiles.',
    'template <int ROWS>',
    '__device__ __forceinline__ int pswz(int row, int col) {',
    '  return (col >> 6) * (ROWS * 64) + row * 64 + ((((col >> 3) ^ row) & 7) << 3);',
    '}',
    '',
    ...cpAsyncLoader({
      name: 'load_panel',
      swizzle: 'pswz<ROWS>(r, c * 8)',
      strided: false,
      comment: ['// load_rows into the panel layout; rows at or past `valid_rows` are zero-filled.'],
    }),
    '',
    '// Matrix descriptor of a 128B-swizzled operand at p: 8-row groups 1024 bytes apart (SBO);',
    '// `lbo` is the byte stride between 64-wide panels along M/N (MN-major operands only).',
    '__device__ __forceinline__ uint64_t desc128(const T* p, unsigned lbo) {',
    '  return (uint64_t)((smem_addr(p) & 0x3FFFFu) >> 4) | ((uint64_t)(lbo >> 4) << 16) | (64ull << 32) |',
    '         (1ull << 62);',
    '}',
    '',
    '__device__ __forceinline__ void wg_fence() {',
    '#if ATTNC_SM90A',
    '  asm volatile("wgmma.fence.sync.aligned;\\n" ::: "memory");',
    '#endif',
    '}',
    '__device__ __forceinline__ void wg_commit() {',
    '#if ATTNC_SM90A',
    '  asm volatile("wgmma.commit_group.sync.aligned;\\n" ::: "memory");',
    '#endif',
    '}',
    '__device__ __forceinline__ void wg_wait0() {',
    '#if ATTNC_SM90A',
    '  asm volatile("wgmma.wait_group.sync.aligned 0;\\n" ::: "memory");',
    '#endif',
    '}',
    '// cp.async writes shared memory through the generic proxy; wgmma reads it through the async one.',
    '__device__ __forceinline__ void proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\\n" ::: "memory"); }',
    '// Pins accumulators after a wait: without it the compiler may read them before the wgmma ends.',
    'template <int N>',
    '__device__ __forceinline__ void acc_fence(float (&d)[N][4]) {',
    '#pragma unroll',
    '  for (int j = 0; j < N; ++j)',
    '#pragma unroll',
    '    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");',
    '}',
    '',
    ...wgmmaFn('wg_qk', s.blockK, dtype, false, false),
    '',
    // P·V one 64-wide dv panel at a time: an n64 B operand is one swizzle atom wide, so only the
    // 1024-byte stride between 8-key groups matters, whichever descriptor field the hardware reads.
    ...wgmmaFn('wg_pv', 64, dtype, true, true, s.valueDim / 8),
  ];
}
