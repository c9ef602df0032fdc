// Dequantizing K/V loads of the CUDA SIMT engine (docs/LANGUAGE.md, "K/V storage formats"): a
// quantized cache's codes are the k/v Args pointer (u32 words) and its side tensors more Args
// pointers (layout.ts, `cache:<k|v>_<part>`). `<k|v>_dequant(a, row, t, c, bh)` gives one element
// as f32 in exactly the language's order, ((code − zero) · scale) · norm, each an f32 operation;
// the SIMT tile load reaches it through a `DqK` / `DqV` head handle that overloads load_tile,
// so the engine's code is unchanged. Bit casts go through memcpy (device code and the CPU
// emulator both have it); 16-bit floats decode from their bits.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { codesPerWord, elemBits, floatLayout, specialBits, specialCondition } from '../../quant/elem.js';
import type { FloatDType, Fp8Elem, Granularity, HalfDType, QuantFormat } from '../../quant/format.js';
import { pagedQuantRow } from './kv-rows.js';

type Which = 'k' | 'v';
export type CudaCachePart = 'codesHi' | 'scale' | 'zero' | 'norm' | 'recent';

/** The side tensors a quantized cache adds to Args, in layout order. */
export function cudaCacheParts(f: QuantFormat): { part: CudaCachePart; ctype: string }[] {
  const parts: { part: CudaCachePart; ctype: string }[] = [];
  const c = (d: FloatDType | HalfDType): string => (d === 'f32' ? 'const float*' : 'const unsigned short*');
  if (f.kind === 'int' && f.salient) parts.push({ part: 'codesHi', ctype: 'const unsigned*' });
  if (f.scale) parts.push({ part: 'scale', ctype: c(f.scale.dtype) });
  if (f.kind === 'int' && f.zero && f.scale) parts.push({ part: 'zero', ctype: c(f.zero) });
  if (f.norm) parts.push({ part: 'norm', ctype: c(f.norm) });
  if (f.recent) parts.push({ part: 'recent', ctype: c(f.recent.dtype) });
  return parts;
}

const helpers = [
  '// Quantized caches stage through the loads below; GV still sizes the float path when one is.',
  'static_assert(GV >= 1, "global vector width");',
  '__device__ __forceinline__ float dq_bits(unsigned u) { float f; memcpy(&f, &u, 4); return f; }',
  '__device__ __forceinline__ float dq_half(const unsigned short* p, size_t i) {',
  '  const unsigned b = p[i], s = (b & 0x8000u) << 16, e = (b >> 10) & 31u, m = b & 1023u;',
  '  if (e == 0u) return (s ? -1.f : 1.f) * ((float)m * (1.f / 16777216.f)); // m · 2^-24, exact',
  '  if (e == 31u) return dq_bits(s | 0x7f800000u | (m << 13));',
  '  return dq_bits(s | ((e + 112u) << 23) | (m << 13));',
  '}',
  '__device__ __forceinline__ float dq_bf16(const unsigned short* p, size_t i) { return dq_bits((unsigned)p[i] << 16); }',
];

export function readFloat(ptr: string, dtype: FloatDType | HalfDType, i: string): string {
  if (dtype === 'f32') return `${ptr}[${i}]`;
  return dtype === 'f16' ? `dq_half(${ptr}, ${i})` : `dq_bf16(${ptr}, ${i})`;
}

/** Statements setting `v` (a declared float) to the value of 8-bit float code `raw`, by bit operations. */
export function fp8(elem: Fp8Elem): string[] {
  const f = floatLayout(elem);
  const { mant: M, bias, top } = f;
  const specialValue = `dq_bits(s | ${specialBits(f, 'm', (c, a, b) => `(${c} ? ${a} : ${b})`)})`;
  return [
    `const unsigned s = (raw & 0x80u) << 24, e = (raw >> ${M}) & ${top}u, m = raw & ${f.mantMask}u;`,
    `if (${specialCondition(f, 'e', 'm')}) v = ${specialValue};`,
    `else if (e == 0u) v = (s ? -1.f : 1.f) * ((float)m * (1.f / ${2 ** (bias + M - 1)}.f));`,
    `else v = dq_bits(s | ((e + ${127 - bias}u) << 23) | (m << ${23 - M}));`,
  ];
}

function rawLines(f: QuantFormat, elem: QuantFormat['elem'], ptr: string, W: string): string[] {
  const bits = elemBits(elem);
  const per = codesPerWord(elem);
  const lines = [
    `const unsigned word = ${ptr}[row * ((${W} + ${per - 1}) / ${per}) + c / ${per}];`,
    `const unsigned raw = (word >> ((c % ${per}) * ${bits})) & ${(1 << bits) - 1}u;`,
  ];
  if (f.kind === 'fp8') return ['{', ...[...lines, ...fp8(f.elem)].map((l) => `  ${l}`), '}'];
  const value = f.zero ? '(float)raw' : `(float)((int)(raw << ${32 - bits}) >> ${32 - bits})`;
  return ['{', ...[...lines, `v = ${value};`].map((l) => `  ${l}`), '}'];
}

/**
 * Index of the scale (and zero) of element (row, token t of head bh, channel c). Paged: `row` is
 * the pool row and a page holds P / g whole groups of g tokens (the checker requires g | P), so
 * group row / g of the pool is token t's.
 */
export function scaleIndex(per: Granularity, W: string, paged = false): string {
  switch (per.kind) {
    case 'tensor':
      return '0';
    case 'token':
      return per.group ? `row * ((${W} + ${per.group - 1}) / ${per.group}) + c / ${per.group}` : 'row';
    case 'channel':
      if (per.group && paged) return `(row / ${per.group}) * ${W} + c`;
      return per.group
        ? `(bh * (size_t)((a.Nk + ${per.group - 1}) / ${per.group}) + t / ${per.group}) * ${W} + c`
        : `bh * ${W} + c`;
  }
}

/**
 * Index of token t's salient flag: the flag tensor is the caller's logical [B, Hkv, Nk] even when
 * the cache is paged (its row is then a pool row).
 */
export const salientFlagIndex = (paged: boolean): string => (paged ? 'bh * (size_t)a.Nk + t' : 'row');

/**
 * The flags a cache's salient tokens are read from: the flag tensor itself, or, for an index
 * list, the workspace the launcher's pre-pass scatters it into (salient-list.ts).
 */
export function salientFlagRef(f: TensorFormat, field: (key: string) => string): string {
  if (f.kind !== 'quant' || f.salient === undefined) throw new Error('CUDA: no salient tokens to read');
  const list = f.format.kind === 'int' && f.format.salient?.by === 'index';
  return `a.${field(list ? `salient:${f.salient}` : `tensor:${f.salient}`)}`;
}

/** `<which>_dequant(a, row, t, c, bh)`: element (global row, token t of head bh, channel c) as f32. */
function dequantFunction(
  which: Which,
  f: TensorFormat,
  field: (part: string) => string,
  paged: boolean,
): string[] {
  if (f.kind !== 'quant') return [];
  const q = f.format;
  const W = which === 'k' ? 'D' : 'DV';
  const p = (part: CudaCachePart): string => `a.${field(`cache:${which}_${part}`)}`;
  const codes = `static_cast<const unsigned*>(a.${which})`;
  const body: string[] = [];
  if (q.recent) {
    const r = q.recent.tokens;
    body.push(
      `const int first = a.Nk - min(${r}, a.Nk); // the recent window's first token`,
      `if (t >= first) return ${readFloat(p('recent'), q.recent.dtype, `(bh * ${r} + (t - first)) * ${W} + c`)};`,
    );
  }
  body.push('float v;');
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  if (wide !== undefined && f.salient !== undefined) {
    body.push(
      `if (${salientFlagRef(f, field)}[${salientFlagIndex(paged)}] != 0)`,
      ...rawLines(q, wide, p('codesHi'), W),
      'else',
    );
  }
  body.push(...rawLines(q, q.elem, codes, W));
  if (q.scale) {
    body.push(`const size_t g = ${scaleIndex(q.scale.per, W, paged)};`);
    if (q.kind === 'int' && q.zero) body.push(`v = v - ${readFloat(p('zero'), q.zero, 'g')};`);
    body.push(`v = v * ${readFloat(p('scale'), q.scale.dtype, 'g')};`);
  }
  if (q.norm) body.push(`v = v * ${readFloat(p('norm'), q.norm, `bh * ${W} + c`)};`);
  body.push('return v;');
  return [
    `__device__ __forceinline__ float ${which}_dequant(const Args& a, size_t row, int t, int c, size_t bh) {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ];
}

/** A head handle per quantized cache and the load_tile overload that dequantizes through it. */
function loadOverload(which: Which, paged: boolean): string[] {
  const handle = which === 'k' ? 'DqK' : 'DqV';
  const row = paged ? pagedQuantRow('*src.a', 'src.bh', 'key') : 'src.bh * (size_t)Nk + key';
  return [
    `struct ${handle} { const Args* a; size_t bh; };`,
    'template <int W>',
    `__device__ __forceinline__ void load_tile(float* dst, ${handle} src, int kt, int Nk, int tid) {`,
    '  for (int idx = tid; idx < BK * W; idx += THREADS) {',
    '    const int j = idx / W, c = idx % W, key = kt * BK + j;',
    `    dst[idx] = key < Nk ? ${which}_dequant(*src.a, ${row}, key, c, src.bh) : 0.f;`,
    '  }',
    '}',
  ];
}

/** Device code for the quantized caches of `formats` (none when k and v are floats). */
export function cudaDequantCode(formats: TensorFormats, field: (key: string) => string): string[] {
  const quant = (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant');
  if (quant.length === 0) return [];
  const paged = formats.paged !== undefined;
  return [
    ...helpers,
    ...quant.flatMap((w) => [...dequantFunction(w, formats[w], field, paged), ...loadOverload(w, paged)]),
  ];
}

/**
 * The element functions `<k|v>_dequant` alone (with their bit helpers), for engines that stage
 * tiles their own way (the tensor-core engines: dequant-tile.ts); none when k and v are floats.
 */
export function cudaDequantElements(formats: TensorFormats, field: (key: string) => string): string[] {
  const quant = (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant');
  if (quant.length === 0) return [];
  // Without the SIMT core's GV assertion: these engines have no GV.
  const paged = formats.paged !== undefined;
  return [...helpers.slice(2), ...quant.flatMap((w) => dequantFunction(w, formats[w], field, paged))];
}

/**
 * Declarations of the SIMT core's K and V head handles `kg` / `vg`: a `const T*` head pointer
 * for a float cache (kv-rows.ts), a DqK / DqV handle for a quantized one.
 */
export function quantHeadDecl(which: Which, f: TensorFormat, b: string, hkv: string): string | undefined {
  if (f.kind !== 'quant') return undefined;
  return `const ${which === 'k' ? 'DqK' : 'DqV'} ${which}g{&a, (size_t)(${b} * a.Hkv + ${hkv})};`;
}

// For decode mode's chunked loads (decode-quant.ts), which decode the same elements from words
// it has already loaded: the float readers, the fp8 lines and the scale index, as above.
export const dequantFloatHelpers: readonly string[] = helpers.slice(2);
export { fp8 as fp8DecodeLines, readFloat as readCacheFloat, scaleIndex as cacheScaleIndex };
