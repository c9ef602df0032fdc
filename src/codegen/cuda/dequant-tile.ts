// Dequantizing K/V tile loads of the tensor-core engines (mma, wgmma, wgmma-ws): their tiles are
// 16-bit operands in shared memory (ldmatrix / wgmma read them), so a quantized cache is converted
// on its way in — each 16-byte chunk of a tile row is 8 channels dequantized by the SIMT engine's
// element functions (dequant.ts: the language's order, bit for bit the oracle's f32 values),
// then narrowed to T (round to nearest even) and stored at the chunk's swizzled place, where the
// float path's cp.async or TMA would have put it.
//
// A quantized cache's head "pointer" is a handle (DqRowsK / DqRowsV) that adds element offsets
// as a `const T*` does, so the engines' load calls (`load_rows<D, BK>(dst, kg + off, …)`,
// strided and gathered forms included) pick the dequantizing overloads below unchanged.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { codesPerWord } from '../../quant/elem.js';
import { cudaDequantElements } from './dequant.js';
import { chunkFunction } from './dequant-chunk.js';
import { kvHeadPtrDecls, pagedQuantRow } from './kv-rows.js';

type Which = 'k' | 'v';

const handleName = (w: Which): string => (w === 'k' ? 'DqRowsK' : 'DqRowsV');
const quantized = (f: TensorFormats): Which[] => (['k', 'v'] as const).filter((w) => f[w].kind === 'quant');

function handleStruct(which: Which, f: TensorFormat, paged: boolean): string[] {
  const H = handleName(which);
  if (f.kind !== 'quant') return [];
  // Token t's row in the code pools: packed, or through the block table (kv-rows.ts).
  const row = paged ? pagedQuantRow('*a', 'bh', 't') : 'bh * (size_t)a->Nk + t';
  const per = codesPerWord(f.format.elem);
  const wpr = `(${which === 'k' ? 'D' : 'DV'} + ${per - 1}) / ${per}`;
  return [
    `// Keys of one kv head of the quantized ${which} cache, offset in elements as a \`const T*\` is.`,
    `struct ${H} {`,
    '  const Args* a;',
    '  size_t bh;  // b * Hkv + hkv',
    '  size_t off; // elements past key 0 of the head (token off / W, channel off % W)',
    `  static constexpr int WPR = ${wpr}; // code words per token`,
    `  __device__ __forceinline__ ${H} operator+(size_t n) const { return {a, bh, off + n}; }`,
    "  // Token t's code words in the cache.",
    '  __device__ __forceinline__ const unsigned* codes_row(int t) const {',
    `    return static_cast<const unsigned*>(a->${which}) + (${row}) * WPR;`,
    '  }',
    '  // Channels c0 .. c0 + 7 of token t of the head, dequantized to f32; its code words at wrow.',
    '  __device__ __forceinline__ void chunk8(int t, int c0, float (&v)[8], const unsigned* wrow) const {',
    `    ${which}_chunk8(*a, wrow, ${row}, t, c0, bh, v);`,
    '  }',
    '};',
  ];
}

/** `dq_store8(dst, v)`: also the staged prefill's dequant pass's store (quant-stage.ts). */
export const store8 = [
  '// 8 dequantized values narrowed to T at dst: one 16-byte shared-memory store for 16-bit T.',
  '__device__ __forceinline__ void dq_store8(T* dst, const float (&v)[8]) {',
  '  if constexpr (sizeof(T) == 2) {',
  '    alignas(16) T x[8];',
  '#pragma unroll',
  '    for (int u = 0; u < 8; ++u) x[u] = from_f32(v[u]);',
  '    *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(x);',
  '  } else {',
  '#pragma unroll',
  '    for (int u = 0; u < 8; ++u) dst[u] = from_f32(v[u]);',
  '  }',
  '}',
];

/**
 * `NAME_dq<W, ROWS, NTHR>(dst, src, stride, valid_rows, tid[, staged])`: rows [0, ROWS) of a
 * quantized head (row r at element src.off + r·stride) converted into the tile at `dst` laid out
 * by `swizzle` (the engine's cp.async loader's), by NTHR threads; rows at or past valid_rows are
 * 0. `staged`: row r's code words at staged + r·WPR (copied to shared memory beforehand).
 */
export function dequantRowsConverter(name: string, swizzle: string): string[] {
  return [
    `// Rows of a quantized K/V head into ${name}'s tile layout, dequantized and narrowed to T.`,
    'template <int W, int ROWS, int NTHR, class H>',
    `__device__ __forceinline__ void ${name}_dq(T* dst, const H& src, size_t stride, int valid_rows, int tid, const unsigned* staged = nullptr) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + NTHR - 1) / NTHR;',
    '  // Two chunks in flight per thread: a full unroll would inline the dequantizer ITERS·8 times.',
    '#pragma unroll 2',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * NTHR, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % NTHR == 0 || idx < TOTAL) {',
    '      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};',
    '      if (r < valid_rows) {',
    '        const int t = (int)((src.off + (size_t)r * stride) / W);',
    '        src.chunk8(t, c * 8, v, staged ? staged + (size_t)r * H::WPR : src.codes_row(t));',
    '      }',
    `      dq_store8(dst + ${swizzle}, v);`,
    '    }',
    '  }',
    '}',
  ];
}

/** Overloads of the engine's loader `name` (plain, strided, gathered, kv_from's rows) for handle `H`. */
function loaderOverloads(name: string, swizzle: string, H: string): string[] {
  return [
    `// Rows first + step·r of a quantized head (kv_from, kv-rows.ts): the converter's element offsets.`,
    `struct ${H}From {`,
    `  ${H} h;`,
    '  long long first, step;',
    '};',
    `__device__ __forceinline__ ${H}From kv_from(const ${H}& h, long long first, long long step) { return ${H}From{h, first, step}; }`,
    'template <int W, int ROWS>',
    `__device__ __forceinline__ void ${name}(T* dst, const ${H}From& src, int valid_rows, int tid) {`,
    `  ${name}_dq<W, ROWS, THREADS>(dst, src.h + (size_t)src.first * W, (size_t)src.step * W, valid_rows, tid);`,
    '}',
    'template <int W, int ROWS>',
    `__device__ __forceinline__ void ${name}(T* dst, const ${H}& src, int valid_rows, int tid) {`,
    `  ${name}_dq<W, ROWS, THREADS>(dst, src, W, valid_rows, tid);`,
    '}',
    'template <int W, int ROWS>',
    `__device__ __forceinline__ void ${name}_strided(T* dst, const ${H}& src, size_t stride, int valid_rows, int tid) {`,
    `  ${name}_dq<W, ROWS, THREADS>(dst, src, stride, valid_rows, tid);`,
    '}',
    '// Gathered rows: row r of the tile is key row_of(r) of the head (< 0: zeros).',
    'template <int W, int ROWS, class RowOf>',
    `__device__ __forceinline__ void ${name}_gather(T* dst, const ${H}& base, const RowOf& row_of, int tid) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '#pragma unroll 1',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % THREADS == 0 || idx < TOTAL) {',
    '      const int key = row_of(r);',
    '      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};',
    '      if (key >= 0) base.chunk8(key, c * 8, v, base.codes_row(key));',
    `      dq_store8(dst + ${swizzle}, v);`,
    '    }',
    '  }',
    '}',
  ];
}

/**
 * Device code of a tensor-core engine for the quantized caches of `formats` (none when k and v
 * are floats): the element functions, the handles, the converter into `loader`'s tile layout
 * (`swizzle`, as the engine's cp.async loader has it) and the loader's overloads.
 */
export function tcDequantCode(
  formats: TensorFormats,
  field: (key: string) => string,
  loader: TileLoader,
): string[] {
  if (quantized(formats).length === 0) return [];
  return ['', ...cudaDequantElements(formats, field), ...tcConverterCode(formats, field, loader)];
}

/** A tile loader of an engine: its name and the swizzled offset of chunk (r, c) it writes. */
export interface TileLoader {
  readonly name: string;
  readonly swizzle: string;
}

/**
 * The handles, the converter and the loader's overloads alone, after `<k|v>_dequant` (which the
 * SIMT engine also emits: a test kernel beside it runs this converter on the CPU emulator).
 */
export function tcConverterCode(
  formats: TensorFormats,
  field: (key: string) => string,
  loader: TileLoader,
): string[] {
  const which = quantized(formats);
  if (which.length === 0) return [];
  return [
    ...which.flatMap((w) => chunkFunction(w, formats[w], field, formats.paged !== undefined)),
    ...which.flatMap((w) => handleStruct(w, formats[w], formats.paged !== undefined)),
    ...store8,
    ...dequantRowsConverter(loader.name, loader.swizzle),
    ...which.flatMap((w) => loaderOverloads(loader.name, loader.swizzle, handleName(w))),
  ];
}

/** `kg` / `vg` of a tensor-core core: head pointers of float caches, handles of quantized ones. */
export function tcHeadDecls(formats: TensorFormats, b: string, hkv: string, paged: boolean): string[] {
  const [k, v] = kvHeadPtrDecls({ k: 'kg', v: 'vg' }, b, hkv, paged);
  const decl = (w: Which, float: string): string =>
    formats[w].kind === 'quant'
      ? `const ${handleName(w)} ${w}g{&a, (size_t)(${b} * a.Hkv + ${hkv}), 0};`
      : float;
  return [decl('k', k!), decl('v', v!)];
}

/** Whether k or v of `formats` is converted by these loads. */
export const tcDequantizes = (formats: TensorFormats): boolean => quantized(formats).length > 0;

/** The handle declarations of the wgmma-ws producer (`kq` / `vq`; float caches go by TMA). */
export function producerHandleDecls(formats: TensorFormats): string[] {
  return quantized(formats).map((w) => `const ${handleName(w)} ${w}q{&a, (size_t)(b * a.Hkv + hkv), 0};`);
}
