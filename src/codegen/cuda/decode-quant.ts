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
import type { QuantFormat, StorageElem } from '../../quant/format.js';
import type { FloatDType, HalfDType } from '../../quant/format.js';
import { cacheScaleIndex, dequantFloatHelpers, fp8DecodeLines, readCacheFloat } from './dequant.js';

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
];

/** A side-tensor element as f32 (f16 through dec_half). */
function readSide(ptr: string, dtype: FloatDType | HalfDType, i: string): string {
  return dtype === 'f16' ? `dec_half(${ptr}, ${i})` : readCacheFloat(ptr, dtype, i);
}

/** Statements setting `v` (f32) from fp8 code `raw` (low byte). */
function fp8Lines(elem: 'e4m3' | 'e5m2'): string[] {
  return [
    'float v;',
    '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890',
    '{',
    '  unsigned h;',
    `  asm("{ .reg .b16 a; cvt.u16.u32 a, %1; cvt.rn.f16x2.${elem}x2 %0, a; }" : "=r"(h) : "r"(raw));`,
    '  v = __half2float(__ushort_as_half((unsigned short)(h & 0xffffu)));',
    '}',
    '#else',
    ...fp8DecodeLines(elem),
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
    q.kind === 'fp8'
      ? [...fp8Lines(q.elem), 'code[i] = v;']
      : [`code[i] = ${q.zero ? '(float)raw' : `(float)((int)(raw << ${32 - bits}) >> ${32 - bits})`};`];
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
function chunkFunction(which: Which, f: TensorFormat, field: (key: string) => string, vw: number): string[] {
  if (f.kind !== 'quant') return [];
  const q = f.format;
  const W = which === 'k' ? 'D' : 'DV';
  const p = (part: string): string => `a.${field(`cache:${which}_${part}`)}`;
  const body: string[] = ['FChunk o;'];
  if (q.recent) {
    const r = q.recent.tokens;
    body.push(
      `const int first = a.Nk - min(${r}, a.Nk); // the recent window's first token`,
      'if (t >= first) {',
      '#pragma unroll',
      '  for (int i = 0; i < VW; ++i) {',
      '    const int c = col0 + i;',
      `    o.v[i] = ${readSide(p('recent'), q.recent.dtype, `(bh * ${r} + (t - first)) * ${W} + c`)};`,
      '  }',
      '  return o;',
      '}',
    );
  }
  body.push('float code[VW]; // the codes as floats, before zero point and scale');
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  if (wide !== undefined && f.salient !== undefined) {
    body.push(
      `if (a.${field(`tensor:${f.salient}`)}[row] != 0)`,
      ...codeLines(
        q,
        wide,
        `${p('codesHi')} + row * ((${W} + ${codesPerWord(wide) - 1}) / ${codesPerWord(wide)})`,
        vw,
      ),
      'else',
    );
  }
  body.push(...codeLines(q, q.elem, 'sw', vw));
  const elem: string[] = ['float v = code[i];'];
  if (q.scale) {
    elem.push(`const size_t g = ${cacheScaleIndex(q.scale.per, W)};`);
    if (q.kind === 'int' && q.zero) elem.push(`v = v - ${readSide(p('zero'), q.zero, 'g')};`);
    elem.push(`v = v * ${readSide(p('scale'), q.scale.dtype, 'g')};`);
  }
  if (q.norm) elem.push(`v = v * ${readSide(p('norm'), q.norm, `bh * ${W} + c`)};`);
  body.push(
    '#pragma unroll',
    'for (int i = 0; i < VW; ++i) {',
    '  [[maybe_unused]] const int c = col0 + i;',
    ...elem.map((l) => `  ${l}`),
    '  o.v[i] = v;',
    '}',
    'return o;',
  );
  return [
    `__device__ __forceinline__ FChunk ${which}_chunk(const Args& a, [[maybe_unused]] size_t row, [[maybe_unused]] int t, int col0, [[maybe_unused]] size_t bh, const unsigned* sw) {`,
    ...body.map((l) => `  ${l}`),
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
    ...quant.flatMap((w) => chunkFunction(w, formats[w], field, vw)),
  ];
}
