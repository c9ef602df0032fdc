// Quantized K/V caches in CUDA decode mode (decode.ts): a lane's chunk of a key or value row, VW
// consecutive channels from col0, as f32. The row's packed code words come through the cp.async
// stream into shared memory (decode-pipe.ts); the chunk's words are read together (one vector load
// when the chunk spans 2 or 4 whole words, else the one word it lies in) and decoded with shifts;
// each element is then dequantized in exactly the order docs/LANGUAGE.md defines,
// ((code − zero) · scale) · norm, one f32 operation each, as the SIMT engine's k_dequant does
// (dequant.ts), so the values are the reference's bit for bit. Recent-window tokens read their
// 16-bit row from global memory instead; salient tokens (flagged) read the wide codes there.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { codesPerWord, elemBits } from '../../quant/elem.js';
import { elemSpec } from '../../quant/elem-registry.js';
import type { Fp8Elem, QuantFormat, StorageElem } from '../../quant/format.js';
import type { FloatDType, HalfDType } from '../../quant/format.js';
import {
  cacheScaleIndex,
  dequantFloatHelpers,
  fp8DecodeLines,
  readCacheFloat,
  salientFlagIndex,
  salientFlagRef,
} from './dequant.js';

type Which = 'k' | 'v';

// On the device, f16 side tensors and fp8 codes convert in hardware (cvt.f32.f16; cvt.rn.f16x2.e4m3x2
// / e5m2x2 from sm_89), exact for every finite and infinite value like the bit-level decoders of
// dequant.ts, which the host build (the CPU emulator) and sm_80 keep; a NaN stays a NaN (its
// payload may differ, which no output shows).
const fastHelpers: readonly string[] = [
  '__device__ __forceinline__ float dec_half(const unsigned short* p, size_t i) {',
  '#ifdef __CUDA_ARCH__',
  '  return __half2float(__ushort_as_half(__ldg(p + i)));',
  '#else',
  '  return dq_half(p, i);',
  '#endif',
  '}',
  '// N (a multiple of 8) f16 side values from p + g0 (16-byte aligned) in 16-byte loads, as bits.',
  'template <int N>',
  '__device__ __forceinline__ void dec_halves(const unsigned short* p, size_t g0, unsigned short (&h)[N]) {',
  '#pragma unroll',
  '  for (int j = 0; j < N / 8; ++j) {',
  '#ifdef __CUDA_ARCH__',
  '    const uint4 w = __ldg(reinterpret_cast<const uint4*>(p + g0) + j);',
  '    memcpy(&h[8 * j], &w, 16);',
  '#else',
  '    memcpy(&h[8 * j], p + g0 + 8 * j, 16);',
  '#endif',
  '  }',
  '}',
  '__device__ __forceinline__ float dec_half_bits(unsigned short h) {',
  '#ifdef __CUDA_ARCH__',
  '  return __half2float(__ushort_as_half(h));',
  '#else',
  '  return dq_half(&h, 0);',
  '#endif',
  '}',
];

/**
 * Whether a chunk's scale (and zero) are VW consecutive f16 values, loaded as 16-byte vectors
 * (per-channel scales, KIVI's K): VW a multiple of 8 (so is the row width, quantVectorWidth) keeps
 * the chunk's first index a multiple of 8; the pointers' alignment is checked where the kernel
 * runs (the same for every thread). The host build (CPU emulator) takes the same path.
 */
function vectorSides(q: QuantFormat, vw: number): boolean {
  if (q.scale?.per.kind !== 'channel' || q.scale.dtype !== 'f16' || vw % 8 !== 0) return false;
  return q.kind !== 'int' || q.zero === undefined || q.zero === 'f16';
}

/** A side-tensor element as f32 (f16 through dec_half). */
function readSide(ptr: string, dtype: FloatDType | HalfDType, i: string): string {
  return dtype === 'f16' ? `dec_half(${ptr}, ${i})` : readCacheFloat(ptr, dtype, i);
}

/** Statements setting `v` (f32) from fp8 code `raw` (low byte). */
function fp8Lines(elem: Fp8Elem): string[] {
  const cvt = elemSpec(elem).cudaCvt;
  if (cvt === undefined) return ['float v;', ...fp8DecodeLines(elem)]; // no hardware conversion
  return [
    'float v;',
    '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890',
    '{',
    '  unsigned h;',
    `  asm("{ .reg .b16 a; cvt.u16.u32 a, %1; cvt.rn.f16x2.${cvt} %0, a; }" : "=r"(h) : "r"(raw));`,
    '  v = __half2float(__ushort_as_half((unsigned short)(h & 0xffffu)));',
    '}',
    '#else',
    ...fp8DecodeLines(elem),
    '#endif',
  ];
}

/**
 * Statements setting code[i] (f32) from integer code `raw` (low `bits` bits; two's complement
 * without a zero point). On the device by the magic number 2^23: the code ORed into the mantissa
 * of 2^23 is the float 2^23 + code, and one exact subtraction leaves the code (a signed code's sign
 * bit flipped first biases it by 2^(bits-1), taken off in the same subtraction) — a shift, a
 * lop3 and a full-rate FADD per element instead of the quarter-rate I2F; the same float bit for
 * bit. The host (CPU emulator) keeps the conversion.
 */
function intCodeLines(hasZero: boolean, bits: number): string[] {
  const bias = hasZero ? 0 : 2 ** (bits - 1);
  const biased = hasZero ? 'raw' : `(raw ^ ${bias}u)`;
  return [
    '#ifdef __CUDA_ARCH__',
    `code[i] = __uint_as_float(0x4B000000u | ${biased}) - ${(2 ** 23 + bias).toFixed(1)}f;`,
    '#else',
    `code[i] = ${hasZero ? '(float)raw' : `(float)((int)(raw << ${32 - bits}) >> ${32 - bits})`};`,
    '#endif',
  ];
}

/** Whether a chunk of tensor `f` goes through `<which>_chunk` (a quantized cache). */
export const isQuantChunk = (f: TensorFormat): boolean => f.kind === 'quant';

/** Elements per lane chunk for quantized caches: the widest of 16..1 that D and DV take 8 of. */
export function quantVectorWidth(D: number, DV: number): number {
  for (const vw of [16, 8, 4, 2, 1]) if (D % (8 * vw) === 0 && DV % (8 * vw) === 0) return vw;
  return 0;
}

/** Words one chunk of `vw` codes of `elem` loads: whole words, or the one it lies in. */
const chunkWords = (elem: StorageElem, vw: number): number => Math.max(1, vw / codesPerWord(elem));

/** Byte alignment the chunk loads of tensor `f` need of its pointers (codes, wide codes). */
export function quantChunkAlign(f: TensorFormat, vw: number): number {
  if (f.kind !== 'quant') return 0;
  const q = f.format;
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  return 4 * Math.max(chunkWords(q.elem, vw), wide ? chunkWords(wide, vw) : 1);
}

/**
 * Statements filling `code[VW]` with chunk codes of `elem` (as floats) from `rowWords`, an
 * expression for the first word of the token's row (shared or global memory).
 */
function codeLines(q: QuantFormat, elem: StorageElem, rowWords: string, vw: number): string[] {
  const per = codesPerWord(elem);
  const bits = elemBits(elem);
  const nw = chunkWords(elem, vw);
  const mask = `${(1 << bits) - 1}u`;
  const decode =
    q.kind === 'fp8' ? [...fp8Lines(q.elem), 'code[i] = v;'] : intCodeLines(q.zero !== undefined, bits);
  return [
    '{',
    `  const unsigned* wp = ${rowWords} + col0 / ${per};`,
    `  const Words<${nw}> wd = *reinterpret_cast<const Words<${nw}>*>(wp);`,
    // A chunk narrower than a word starts inside it; a wider one starts on a word boundary.
    `  const int s0 = col0 % ${per};`,
    '#pragma unroll',
    '  for (int i = 0; i < VW; ++i) {',
    `    const unsigned raw = (wd.w[i / ${per}] >> (((s0 + i) % ${per}) * ${bits})) & ${mask};`,
    ...decode.map((l) => `    ${l}`),
    '  }',
    '}',
  ];
}

/**
 * `<which>_chunk(a, row, t, col0, bh, sw)`: channels col0..col0+VW-1 of token t (global row), its
 * code words at `sw` (the stream's shared-memory copy of the row).
 */
function chunkFunction(
  which: Which,
  f: TensorFormat,
  field: (key: string) => string,
  vw: number,
  paged: boolean,
): string[] {
  if (f.kind !== 'quant') return [];
  const q = f.format;
  const W = which === 'k' ? 'D' : 'DV';
  const p = (part: string): string => `a.${field(`cache:${which}_${part}`)}`;
  const zero = q.kind === 'int' ? q.zero : undefined;
  const norm = q.norm ? [`v = v * ${readSide(p('norm'), q.norm, `bh * ${W} + c`)};`] : [];
  const perElement = (lines: readonly string[]): string[] => [
    '#pragma unroll',
    'for (int i = 0; i < VW; ++i) {',
    '  [[maybe_unused]] const int c = col0 + i;',
    '  float v = code[i];',
    ...[...lines, ...norm].map((l) => `  ${l}`),
    '  o.v[i] = v;',
    '}',
    'return o;',
  ];
  const scalar: string[] = [];
  if (q.scale) {
    scalar.push(`const size_t g = ${cacheScaleIndex(q.scale.per, W, paged)};`);
    if (zero) scalar.push(`v = v - ${readSide(p('zero'), zero, 'g')};`);
    scalar.push(`v = v * ${readSide(p('scale'), q.scale.dtype, 'g')};`);
  }
  const body = [
    'FChunk o;',
    ...(q.recent ? recentWindow(q.recent, p('recent'), W) : []),
    'float code[VW]; // the codes as floats, before zero point and scale',
    ...chunkCodes(f, q, field, p, W, vw, paged),
    ...(q.scale && vectorSides(q, vw) ? vectorSideScaling(q, p, W, paged, perElement) : []),
    ...perElement(scalar),
  ];
  return [
    `__device__ __forceinline__ FChunk ${which}_chunk(const Args& a, [[maybe_unused]] size_t row, [[maybe_unused]] int t, int col0, [[maybe_unused]] size_t bh, const unsigned* sw) {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ];
}

/** A token of the recent window (kept unquantized in `recent`) returns its values as they are. */
function recentWindow(recent: NonNullable<QuantFormat['recent']>, ref: string, W: string): string[] {
  const r = recent.tokens;
  return [
    `const int first = a.Nk - min(${r}, a.Nk); // the recent window's first token`,
    'if (t >= first) {',
    '#pragma unroll',
    '  for (int i = 0; i < VW; ++i) {',
    '    const int c = col0 + i;',
    `    o.v[i] = ${readSide(ref, recent.dtype, `(bh * ${r} + (t - first)) * ${W} + c`)};`,
    '  }',
    '  return o;',
    '}',
  ];
}

/** code[i] from the row's code words: the wide codes for a salient token, else those at `sw`. */
function chunkCodes(
  f: TensorFormat & { readonly kind: 'quant' },
  q: QuantFormat,
  field: (key: string) => string,
  p: (part: string) => string,
  W: string,
  vw: number,
  paged: boolean,
): string[] {
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  const salient =
    wide !== undefined && f.salient !== undefined
      ? [
          `if (${salientFlagRef(f, field)}[${salientFlagIndex(paged)}] != 0)`,
          ...codeLines(
            q,
            wide,
            `${p('codesHi')} + row * ((${W} + ${codesPerWord(wide) - 1}) / ${codesPerWord(wide)})`,
            vw,
          ),
          'else',
        ]
      : [];
  return [...salient, ...codeLines(q, q.elem, 'sw', vw)];
}

/**
 * Where the side tensors are 16-byte aligned (checked at run time): the chunk's VW scales (and
 * zeros) in 16-byte loads. Same values, same operations as the scalar path after it.
 */
function vectorSideScaling(
  q: QuantFormat,
  p: (part: string) => string,
  W: string,
  paged: boolean,
  perElement: (lines: readonly string[]) => string[],
): string[] {
  if (!q.scale) return [];
  const zero = q.kind === 'int' ? q.zero : undefined;
  const ptrs = [p('scale'), ...(zero ? [p('zero')] : [])].map((x) => `(size_t)${x}`).join(' | ');
  return [
    `if (ATTNC_DEC_VSIDES && ((${ptrs}) & 15u) == 0) {`,
    // Declared only where read: nvcc -Werror all-warnings refuses an unused variable.
    `  unsigned short sh[VW]${zero ? ', zh[VW]' : ''};`,
    '  {',
    '    [[maybe_unused]] const int c = col0;',
    `    const size_t g0 = ${cacheScaleIndex(q.scale.per, W, paged)};`,
    `    dec_halves<VW>(${p('scale')}, g0, sh);`,
    ...(zero ? [`    dec_halves<VW>(${p('zero')}, g0, zh);`] : []),
    '  }',
    ...perElement([...(zero ? ['v = v - dec_half_bits(zh[i]);'] : []), 'v = v * dec_half_bits(sh[i]);']).map(
      (l) => `  ${l}`,
    ),
    '}',
  ];
}

/** Device code of the quantized chunk loads (none when k and v are floats). */
export function decodeQuantCode(
  formats: TensorFormats,
  field: (key: string) => string,
  vw: number,
): string[] {
  const quant = (['k', 'v'] as const).filter((w) => isQuantChunk(formats[w]));
  if (quant.length === 0) return [];
  return [
    '// Quantized K/V chunks (decode-quant.ts): VW channels of a row as f32, dequantized.',
    ...dequantFloatHelpers,
    ...fastHelpers,
    'struct FChunk { float v[VW]; };',
    'template <int N> struct alignas(4 * N) Words { unsigned w[N]; };',
    ...quant.flatMap((w) => chunkFunction(w, formats[w], field, vw, formats.paged !== undefined)),
  ];
}
