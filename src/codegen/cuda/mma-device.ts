// Device helpers of the tensor-core core: cp.async into a swizzled shared-memory tile, ldmatrix,
// mma.sync m16n8k16 and f32 → 16-bit packing. Plain PTX wrappers, so the generated kernel needs
// no CUTLASS/CuTe and builds with nvcc alone.
import type { StorageDType } from '../../ir/kernel.js';
import { cpAsyncLoader } from './kv-load-mma.js';

const packers: Readonly<Record<'f16' | 'bf16', string>> = {
  bf16: '__nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);',
  f16: '__half2 v = __floats2half2_rn(lo, hi);',
};

/** The mma.sync cores' tile loader (`load_rows`, swizzled by swz<W>): its strided and gathered twins take the same. */
export const ROWS_LOADER = { name: 'load_rows', swizzle: 'swz<W>(r, c * 8)' } as const;

/** The helpers for 16-bit storage `dtype` (the prelude's T); they use THREADS from the core. */
export function mmaDeviceHelpers(dtype: StorageDType): string[] {
  if (dtype === 'f32') throw new Error('CUDA mma core: f32 storage has no 16-bit mma');
  return [
    '// Element offset of (row, col) in a [rows][W] 16-bit tile whose 16-byte chunks are XOR-swizzled',
    '// by row % 8 (col a multiple of 8): the 8 rows an ldmatrix phase reads, and the chunks a',
    '// cp.async phase writes, fall in 8 distinct 16-byte bank groups, so neither conflicts.',
    'template <int W>',
    '__device__ __forceinline__ int swz(int row, int col) {',
    '  return row * W + ((((col >> 3) ^ row) & 7) | ((col >> 3) & ~7)) * 8;',
    '}',
    '',
    '__device__ __forceinline__ unsigned smem_addr(const void* p) {',
    '  return static_cast<unsigned>(__cvta_generic_to_shared(p));',
    '}',
    '',
    '// 16 bytes global → shared, bypassing L1; src_bytes = 0 zero-fills (rows past the end).',
    '__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {',
    '  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" ::"r"(smem_addr(dst)), "l"(src),',
    '               "r"(valid ? 16 : 0)',
    '               : "memory");',
    '}',
    '__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }',
    'template <int N>',
    '__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\\n" ::"n"(N) : "memory"); }',
    '',
    ...cpAsyncLoader({
      ...ROWS_LOADER,
      strided: false,
      comment: [
        '// Rows [0, ROWS) of a [.., W] matrix from `src` (row 0 = src) into swizzled `dst`; rows at or',
        '// past `valid_rows` are zero-filled (never read), so tails need no other care.',
      ],
    }),
    '',
    '__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const T* p) {',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])',
    '               : "r"(smem_addr(p)));',
    '}',
    '__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], const T* p) {',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])',
    '               : "r"(smem_addr(p)));',
    '}',
    '',
    '// c += a·b for one m16n8k16 tile: a row-major 16×16 (4 regs), b column-major 16×8 (2 regs).',
    '__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {',
    `  asm("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "`,
    '      "{%0, %1, %2, %3};\\n"',
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));',
    '}',
    '',
    '// Two f32 → one register of two 16-bit values, `lo` in the low half (the lower column).',
    '__device__ __forceinline__ unsigned pack2(float lo, float hi) {',
    `  ${packers[dtype]}`,
    '  return *reinterpret_cast<unsigned*>(&v);',
    '}',
  ];
}

/**
 * `const unsigned pa[4]`: P as the A fragment of P·V's k-step kv, packed to 16 bits with pack2
 * from n-tiles 2kv and 2kv+1 of the score accumulators `src` (the mma.sync layouts line up, so
 * no shuffle). `pad` indents both lines.
 */
export const pFragmentCode = (src: string, pad: string): string[] => [
  `${pad}const unsigned pa[4] = {pack2(${src}[2 * kv][0], ${src}[2 * kv][1]), pack2(${src}[2 * kv][2], ${src}[2 * kv][3]),`,
  `${pad}                        pack2(${src}[2 * kv + 1][0], ${src}[2 * kv + 1][1]), pack2(${src}[2 * kv + 1][2], ${src}[2 * kv + 1][3])};`,
];
