// The code element types of quantized K/V caches (docs/LANGUAGE.md, "K/V storage formats"), one
// record each. Everything element-specific is derived from these records (elem.ts): the DSL's
// list of element words, code widths, code ranges, the largest finite float, the bit-level
// decoders and encoders of the reference (src/quant, src/runtime/reference-quant.ts), the CUDA
// and the WGSL kernels. A new element type is a new record here and a line in docs/LANGUAGE.md.
//
// Every element's encoder saturates (the language rule: a value beyond the largest finite one
// becomes ±largest, as do ±Inf) and rounds half to even; NaN encodes as the format's NaN code.

/** Two's-complement (symmetric) or offset (with a zero point) integer codes of `bits` bits. */
export interface IntElemSpec {
  readonly kind: 'int';
  readonly bits: 8 | 4 | 2;
}

/**
 * An 8-bit float: sign, `exponentBits`, `mantissaBits`, exponent `bias`; subnormals at exponent
 * field 0. `specials` says what the top exponent field holds:
 * - `ieee`: ±Inf (mantissa 0) and NaNs, as IEEE 754 (OCP e5m2);
 * - `nan-only`: finite values, except S.1…1.1…1 which is NaN; no infinities (OCP e4m3 "FN").
 */
export interface FloatElemSpec {
  readonly kind: 'float';
  readonly bits: 8;
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
  readonly specials: 'ieee' | 'nan-only';
  /**
   * The PTX type of `cvt.rn.f16x2.<cudaCvt>` (sm_89+) when the hardware converts pairs of these
   * codes to f16; without it CUDA kernels decode with the exact bit decoder everywhere.
   */
  readonly cudaCvt?: string;
}

export type ElemSpec = IntElemSpec | FloatElemSpec;

/** The element types, in the order the DSL lists them. */
export const elemRegistry = {
  int8: { kind: 'int', bits: 8 },
  int4: { kind: 'int', bits: 4 },
  int2: { kind: 'int', bits: 2 },
  e4m3: {
    kind: 'float',
    bits: 8,
    exponentBits: 4,
    mantissaBits: 3,
    bias: 7,
    specials: 'nan-only',
    cudaCvt: 'e4m3x2',
  },
  e5m2: {
    kind: 'float',
    bits: 8,
    exponentBits: 5,
    mantissaBits: 2,
    bias: 15,
    specials: 'ieee',
    cudaCvt: 'e5m2x2',
  },
  e3m4: { kind: 'float', bits: 8, exponentBits: 3, mantissaBits: 4, bias: 3, specials: 'nan-only' },
} as const satisfies Record<string, ElemSpec>;

type Registry = typeof elemRegistry;
export type StorageElem = keyof Registry;
export type IntStorageElem = {
  [E in StorageElem]: Registry[E]['kind'] extends 'int' ? E : never;
}[StorageElem];
export type FloatStorageElem = Exclude<StorageElem, IntStorageElem>;

/** The element words of the DSL (`store k int4 …`), in registry order. */
export const storageElems = Object.keys(elemRegistry) as readonly StorageElem[];

export function elemSpec(e: IntStorageElem): IntElemSpec;
export function elemSpec(e: FloatStorageElem): FloatElemSpec;
export function elemSpec(e: StorageElem): ElemSpec;
export function elemSpec(e: StorageElem): ElemSpec {
  return elemRegistry[e];
}

export const isIntElem = (e: StorageElem): e is IntStorageElem => elemRegistry[e].kind === 'int';
export const isFloatElem = (e: StorageElem): e is FloatStorageElem => elemRegistry[e].kind === 'float';

/** The float element types, in registry order. */
export const floatElems = storageElems.filter(isFloatElem);
