// Code element types of quantized K/V caches (docs/LANGUAGE.md, "K/V storage formats"): their
// widths, how many fit a 32-bit word, and the code range of each int variant.
import type { StorageElem } from '../dsl/ast-storage.js';

export type { StorageElem } from '../dsl/ast-storage.js';

/** Bits of one code. */
export function elemBits(e: StorageElem): 8 | 4 | 2 {
  return e === 'int4' ? 4 : e === 'int2' ? 2 : 8;
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

/** The largest finite magnitude of each fp8 format. */
export const fp8Max = { e4m3: 448, e5m2: 57344 } as const;
