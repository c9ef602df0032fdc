// What the code and kernel generators need of an element type (docs/LANGUAGE.md, "K/V storage
// formats"), derived from its record in elem-registry.ts: widths, how many codes fit a 32-bit
// word, the code range of each int variant, and for 8-bit floats their field layout, special
// codes and largest finite value. Backends render special-code tests through the helpers here so
// that the case analysis over `specials` lives in one place.
import { elemSpec, type FloatElemSpec, type FloatStorageElem, type StorageElem } from './elem-registry.js';

export type { FloatStorageElem, IntStorageElem, StorageElem } from './elem-registry.js';

/** Bits of one code. */
export function elemBits(e: StorageElem): 8 | 4 | 2 {
  return elemSpec(e).bits;
}

/** Codes per 32-bit word: a token row of D channels takes ceil(D / codesPerWord) words. */
export function codesPerWord(e: StorageElem): number {
  return 32 / elemBits(e);
}

/**
 * The code range of an int element. Symmetric codes are two's complement, restricted to
 * ±(2^(b−1) − 1) so that the range is symmetric (int8: −127…127, int2: −1…1); asymmetric
 * (zero-point) codes are unsigned, 0…2^b − 1.
 */
export function intCodeRange(bits: number, asymmetric: boolean): { lo: number; hi: number } {
  return asymmetric ? { lo: 0, hi: 2 ** bits - 1 } : { lo: -(2 ** (bits - 1) - 1), hi: 2 ** (bits - 1) - 1 };
}

/** The field layout and special codes of an 8-bit float element. */
export interface FloatLayout {
  readonly spec: FloatElemSpec;
  /** Mantissa bits, exponent bias. */
  readonly mant: number;
  readonly bias: number;
  /** The all-ones exponent field and mantissa field. */
  readonly top: number;
  readonly mantMask: number;
  /** The largest finite magnitude's code (what saturation gives) and the NaN code encoders write. */
  readonly maxCode: number;
  readonly nanCode: number;
  /** The largest finite magnitude. */
  readonly maxFinite: number;
}

export function floatLayout(e: FloatStorageElem): FloatLayout {
  const spec = elemSpec(e);
  const mant = spec.mantissaBits;
  const top = (1 << spec.exponentBits) - 1;
  const mantMask = (1 << mant) - 1;
  // ieee: the top exponent is all specials, so the largest finite code ends the exponent below;
  // nan-only: only the all-ones magnitude is special.
  const maxCode = spec.specials === 'ieee' ? (top << mant) - 1 : (top << mant) | (mantMask - 1);
  const maxExp = maxCode >>> mant;
  const maxFinite = (1 + (maxCode & mantMask) / 2 ** mant) * 2 ** (maxExp - spec.bias);
  return { spec, mant, bias: spec.bias, top, mantMask, maxCode, nanCode: 0x7f, maxFinite };
}

/** The largest finite magnitude of an 8-bit float element. */
export const floatMax = (e: FloatStorageElem): number => floatLayout(e).maxFinite;

/**
 * A C / WGSL condition (both spell it alike) that exponent field `e` and mantissa field `m` (u32
 * expressions) are a special code: NaN, or ±Inf where the format has infinities.
 */
export function specialCondition(f: FloatLayout, e: string, m: string): string {
  return f.spec.specials === 'ieee' ? `${e} == ${f.top}u` : `${e} == ${f.top}u && ${m} == ${f.mantMask}u`;
}

/**
 * The f32 bits (u32 expression, before the sign is ORed in) of a special code with mantissa
 * field `m`: a quiet NaN, or Inf when m is 0 and the format has infinities. `choose(c, a, b)`
 * renders the backend's conditional (a when c).
 */
export function specialBits(
  f: FloatLayout,
  m: string,
  choose: (c: string, a: string, b: string) => string,
): string {
  return f.spec.specials === 'ieee' ? choose(`${m} == 0u`, '0x7f800000u', '0x7fc00000u') : '0x7fc00000u';
}

/**
 * The bits that are all ones in every special code's byte (sign excluded), replicated over the
 * 4 bytes of a word: a byte b is special iff (b & mask) == mask.
 */
export function specialByteMask(f: FloatLayout): string {
  const byte = f.spec.specials === 'ieee' ? (f.top << f.mant) & 0x7f : 0x7f;
  return `0x${byte.toString(16).padStart(2, '0').repeat(4)}u`;
}
