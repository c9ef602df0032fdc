// Two-element conversions of int4 / int2 codes to f16 pairs for the tensor-core decode kernel's
// sub-byte paths: unsigned codes of zero-point formats (KIVI, decode-mma-kivi.ts: K's per-channel
// scale folded into q per group of 32 tokens, V's per-token scale into p per group of 32 channels,
// the zero points subtracted as MMA terms) and the signed codes of symmetric per-token caches
// (decode-mma-tokint.ts, dmq_field's sgn); these turn the codes into exact f16 pairs.
//
// Codes pack low bits first (quant/quantize.ts's pack: channel c of a word at bit (c % n) · bits).
// The magic-number trick: a code x ≤ 1023 under the f16 exponent of 1024 (0x6400 | x) is the f16
// value 1024 + x exactly, so one AND-OR (a single lop3) and one hsub2 of 1024 turn two codes into
// an exact f16 pair. A field need not be shifted down first: masked in place at bit r of the
// mantissa (r + bits ≤ 10) under the exponent of 2^(10 - r), whose ulp is 2^-r, it reads
// 2^(10 - r) + code exactly, and one hsub2 of 2^(10 - r) leaves the code. Fields at bits 8..15 of
// a half take one shift of the word by 8, shared by all of them, so a word's fields cost a lop3
// and an hsub2 each and one shift in all (three instructions a field with the shift first; an
// hfma2 by 2^-r instead, timed on the H200 in round 33, made ptxas rematerialise its two constants
// at every use under the kernels' register pressure). A K word gives its pairs (i, i + n/2) — n codes a
// word — since one mask picks the same field of both 16-bit halves; Q's A fragment takes the same
// channel order (the dot over channels does not depend on order). A V pair takes one field of two
// keys' words (a, b). The host build (CPU emulator) computes the same bits without f16 arithmetic.

/** Bits a code of the unsigned formats this file converts. */
export type UnsignedCodeBits = 4 | 2;

/** Codes a 32-bit word holds. */
export const codesPerWordOf = (bits: UnsignedCodeBits): number => 32 / bits;

/** f16 pair helpers shared by both widths: `(0x6400 | x)` per half minus 1024, exact. */
const magicPair: readonly string[] = [
  '// f16 bits of an integer n < 2048, exactly (host build: no f16 arithmetic there).',
  '__device__ __forceinline__ unsigned dmq_small_f16(unsigned n) {',
  '  if (n == 0u) return 0u;',
  '  unsigned e = 0u;',
  '  while ((n >> (e + 1u)) != 0u) ++e;',
  '  return ((e + 15u) << 10) | ((n << (10u - e)) & 0x3ffu);',
  '}',
  '// Halves of x, each 0x6400 | code, to the f16 pair (code lo, code hi).',
  '__device__ __forceinline__ unsigned dmq_magic(unsigned x) {',
  '#ifdef __CUDA_ARCH__',
  '  const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&x), __halves2half2(__ushort_as_half(0x6400), __ushort_as_half(0x6400)));',
  '  return *reinterpret_cast<const unsigned*>(&r);',
  '#else',
  '  return dmq_small_f16(x & 0x3ffu) | (dmq_small_f16((x >> 16) & 0x3ffu) << 16);',
  '#endif',
  '}',
  '// The field of `bits` bits at bit o (o + bits <= 16) of both halves of w → f16 pair, exactly: masked',
  '// in place at bit o % 8 (of w >> 8 from bit 8), then one hsub2 (see above). sgn: the field holds',
  "// two's complement codes; its sign bit is flipped in the same lop3 (code + 2^(bits - 1), unsigned) and",
  '// taken off with h: c = 2^(10 - r) + 2^(bits - 1). o, bits, sgn: constants after unrolling.',
  '__device__ __forceinline__ unsigned dmq_field(unsigned w, int bits, int o, bool sgn = false) {',
  '#ifdef __CUDA_ARCH__',
  '  const int r = o & 7;',
  '  const unsigned m = ((1u << bits) - 1u) << r, h = ((unsigned)(25 - r) << 10) * 0x10001u; // h: 2^(10 - r) a half',
  '  const unsigned s = sgn ? ((1u << (bits - 1)) << r) * 0x10001u : 0u, c = h | s;',
  '  const unsigned x = (((o >= 8 ? w >> 8 : w) & (m * 0x10001u)) ^ s) | h;',
  '  const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&x), *reinterpret_cast<const __half2*>(&c));',
  '  return *reinterpret_cast<const unsigned*>(&v);',
  '#else',
  '  auto f16 = [&](unsigned u) {',
  '    const int v = sgn ? (int)(u << (32 - bits)) >> (32 - bits) : (int)u;',
  '    return v < 0 ? 0x8000u | dmq_small_f16((unsigned)-v) : dmq_small_f16((unsigned)v);',
  '  };',
  '  const unsigned m = (1u << bits) - 1u;',
  '  return f16((w >> o) & m) | (f16((w >> (16 + o)) & m) << 16);',
  '#endif',
  '}',
];

/**
 * Device helpers (namespace dec): `dmq_u<bits>k(w, i)`, the f16 pair of K codes (i, i + n/2) of word
 * w (i < n/2), and `dmq_u<bits>v(wa, wb, c)`, code c of two keys' words as the pair (a, b).
 */
export function unsignedPairHelpers(widths: readonly UnsignedCodeBits[]): string[] {
  const one = (bits: UnsignedCodeBits): string[] => {
    const mask = (1 << bits) - 1;
    return [
      `// int${bits}: K pair (i, i + ${codesPerWordOf(bits) / 2}) of a word; V code c of keys a, b.`,
      `__device__ __forceinline__ unsigned dmq_u${bits}k(unsigned w, int i) { return dmq_field(w, ${bits}, ${bits} * i); }`,
      `__device__ __forceinline__ unsigned dmq_u${bits}v(unsigned wa, unsigned wb, int c) {`,
      `  const unsigned lo = (wa >> (${bits} * c)) & ${mask}u, hi = (wb >> (${bits} * c)) & ${mask}u;`,
      '  return dmq_magic(lo | (hi << 16) | 0x64006400u);',
      '}',
    ];
  };
  return widths.length === 0 ? [] : [...magicPair, ...widths.flatMap(one)];
}
