// The wgmma-ws producer's fast tile converter for the common quantized formats: symmetric int8 /
// int4 / int2 or fp8 codes with no scale, one scale per tensor or one per token (no group, zero
// point, normalizer, recent window or salient tokens). The producer warpgroup converts every
// visited K/V tile beside the consumers, so its instruction count per element sets the speed of
// quantized prefill; dequant-chunk.ts decodes each code with general integer and float ops and
// reads the scale from global memory per element. Here:
// - int codes become floats by the magic-number trick: the biased code (code XOR the sign bit of
//   its field, = code + 2^(bits-1)) ORed into the mantissa of 2^23 is the float 2^23 + code +
//   2^(bits-1); one subtraction gives the code exactly (a shift and a LOP3 and an FADD a code);
// - fp8 codes become floats by moving their exponent and mantissa into an f32's and multiplying by
//   2^(127 − bias) (exact: a power of two, subnormals included); a word holding a NaN/Inf code
//   (never written by `quantize`, which saturates) goes by the general decoder instead;
// - the per-token scale comes from shared memory (the producer stages it with the codes).
// The values are those of `<k|v>_dequant` bit for bit: the code is exact in f32, then one f32
// multiply by the scale (the language's order), then rounding to T as dq_store8 does.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { codesPerWord, elemBits, floatLayout, specialByteMask } from '../../quant/elem.js';
import type { Fp8Elem, QuantFormat } from '../../quant/format.js';
import { readFloat } from './dequant.js';

type Which = 'k' | 'v';

/** How the fast converter finds the scale of a format it takes. */
export type FastScale = 'none' | 'tensor' | 'token';

/** The scale kind when the fast converter takes format `f` (undefined: the general one must). */
export function fastScale(f: TensorFormat): FastScale | undefined {
  if (f.kind !== 'quant') return undefined;
  const q: QuantFormat = f.format;
  if (q.norm || q.recent) return undefined;
  if (q.kind === 'int' && (q.zero || q.salient)) return undefined;
  if (!q.scale) return 'none';
  const per = q.scale.per;
  if (per.kind === 'tensor') return 'tensor';
  if (per.kind === 'token' && !per.group) return 'token';
  return undefined;
}

/** Whether every quantized cache of `formats` takes the fast converter. */
export function fastConvertible(formats: TensorFormats): boolean {
  const quant = (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant');
  return quant.length > 0 && quant.every((w) => fastScale(formats[w]) !== undefined);
}

/** Lines turning code u (0..7) of the chunk's words `x` into the exact f32 `v`. */
function intDecode(bits: number): string[] {
  const per = 32 / bits;
  const bias = 2 ** (bits - 1);
  // The field's sign bit in every field of a word: XOR makes the code unsigned (code + bias).
  const flip = `0x${(bias * ((2 ** 32 - 1) / (2 ** bits - 1))).toString(16)}u`;
  return [
    `const unsigned x = w[(u * ${bits}) / 32] ^ ${flip};`,
    `const unsigned biased = (x >> ((u % ${per}) * ${bits})) & ${2 ** bits - 1}u;`,
    `float v = dq_bits(0x4b000000u | biased) - ${8388608 + bias}.f; // 2^23 + code + ${bias} − that: the code`,
  ];
}

/** fp8: exponent and mantissa into an f32's bits (bias 127), then the exact power-of-two fix. */
function fp8Decode(elem: Fp8Elem): string[] {
  const { mant: M, bias } = floatLayout(elem);
  return [
    'const unsigned raw = (w[u / 4] >> ((u % 4) * 8)) & 0xffu;',
    `float v = dq_bits(((raw & 0x80u) << 24) | ((raw & 0x7fu) << ${23 - M})) * 0x1p${127 - bias}f;`,
  ];
}

/** A C test whether word `w` holds an fp8 NaN/Inf code in any of its 4 bytes. */
function fp8Special(elem: Fp8Elem): string {
  // nan-only (e4m3): magnitude bits all ones (0x7f); ieee (e5m2): exponent all ones (0x7c).
  const m = specialByteMask(floatLayout(elem));
  return `dq_has_zero_byte((w_ & ${m}) ^ ${m})`;
}

/**
 * `<w>_fast8(wp, t, c0, sc, out)`: channels c0 .. c0 + 7 of the token whose code words are at wp
 * (shared memory), scale `sc` (unused without one), as 8 f32 values, bit for bit `<w>_dequant`'s.
 */
function fast8(which: Which, f: TensorFormat): string[] {
  if (f.kind !== 'quant') return [];
  const q = f.format;
  const bits = elemBits(q.elem);
  const per = codesPerWord(q.elem);
  const words = Math.ceil((8 * bits) / 32);
  const scaled = q.scale !== undefined;
  const isFp8 = q.kind === 'fp8';
  const decode = q.kind === 'fp8' ? fp8Decode(q.elem) : intDecode(bits);
  return [
    `__device__ __forceinline__ bool ${which}_fast8(const unsigned* wp, int c0, float sc, float (&out)[8]) {`,
    `  unsigned w[${words}];`,
    ...(words === 2
      ? [
          "  // One 8-byte shared-memory load: a token's words start 16-byte aligned, c0 / 4 is even.",
          '  const unsigned long long pair = *reinterpret_cast<const unsigned long long*>(wp + c0 / 4);',
          '  w[0] = (unsigned)pair;',
          '  w[1] = (unsigned)(pair >> 32);',
        ]
      : [`  w[0] = wp[c0 / ${per}];`]),
    ...(per > 8 ? [`  w[0] >>= (c0 % ${per}) * ${bits};`] : []),
    ...(isFp8
      ? [
          '  // A NaN/Inf code: the caller decodes this chunk the general way.',
          '  bool special = false;',
          '#pragma unroll',
          `  for (int i = 0; i < ${words}; ++i) { const unsigned w_ = w[i]; special |= ${fp8Special(q.elem as Fp8Elem)}; }`,
          '  if (special) return false;',
        ]
      : []),
    '#pragma unroll',
    '  for (int u = 0; u < 8; ++u) {',
    ...decode.map((l) => `    ${l}`),
    scaled ? '    out[u] = v * sc;' : '    out[u] = v;',
    '  }',
    '  (void)sc;',
    '  return true;',
    '}',
  ];
}

const hasZeroByte = [
  '// Whether any byte of x is 0 (the classic bit trick; no false positives).',
  '__device__ __forceinline__ bool dq_has_zero_byte(unsigned x) { return ((x - 0x01010101u) & ~x & 0x80808080u) != 0u; }',
];

/**
 * `<w>_tile_fast<W, ROWS>(dst, staged, scales, sc_tensor, kt, bh, rows, tid)` per cache: the
 * staged tile (ROWS tokens' code words at `staged`, WPR each) into the 128B-swizzled panels at
 * dst by the 128 producer threads; rows at or past `rows` are 0. A chunk whose fp8 words hold a
 * NaN/Inf code falls back to `<w>_chunk8` (dequant-chunk.ts), which the general path also emits.
 */
function tileFunction(which: Which, f: TensorFormat, swizzle: string): string[] {
  const H = which === 'k' ? 'DqRowsK' : 'DqRowsV';
  const scale = fastScale(f)!;
  const sc = scale === 'token' ? 'scales[r]' : scale === 'tensor' ? 'sc_tensor' : '0.f';
  return [
    `// A staged tile of the quantized ${which} cache into wgmma's swizzled panels (fast formats).`,
    'template <int W, int ROWS, int NTHR = 128>',
    `__device__ __forceinline__ void ${which}_tile_fast(T* dst, const ${H}& h, const unsigned* staged, const float* scales, float sc_tensor, int kt, int rows, int tid) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + NTHR - 1) / NTHR;',
    '  (void)scales; (void)sc_tensor;',
    '#pragma unroll 4',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * NTHR, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % NTHR == 0 || idx < TOTAL) {',
    '      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};',
    '      if (r < rows) {',
    `        const unsigned* wp = staged + r * ${H}::WPR;`,
    `        if (!${which}_fast8(wp, c * 8, ${sc}, v)) h.chunk8(kt * ROWS + r, c * 8, v, wp);`,
    '      }',
    `      dq_store8(dst + ${swizzle}, v);`,
    '    }',
    '  }',
    '}',
  ];
}

/**
 * Device code of the fast converter for the caches of `formats` that it takes, writing chunk
 * (r, c) at `swizzle` (wgmma's 128B-swizzled panels by default).
 */
export function fastConverterCode(formats: TensorFormats, swizzle = 'pswz<ROWS>(r, c * 8)'): string[] {
  const which = (['k', 'v'] as const).filter((w) => fastScale(formats[w]) !== undefined);
  return [
    ...hasZeroByte,
    ...which.flatMap((w) => [...fast8(w, formats[w]), ...tileFunction(w, formats[w], swizzle)]),
  ];
}

/**
 * The producer's read of one token's scale (per-token formats) or of the tensor's scale, as f32:
 * `a.<field>[index]` in the scale's dtype.
 */
export function fastScaleRead(
  which: Which,
  f: TensorFormat,
  field: (key: string) => string,
  index: string,
): string | undefined {
  if (f.kind !== 'quant' || !f.format.scale) return undefined;
  return readFloat(`a.${field(`cache:${which}_scale`)}`, f.format.scale.dtype, index);
}
