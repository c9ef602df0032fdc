// Quantized K/V in the tensor-core decode kernel (decode-mma.ts): int8 (symmetric) and fp8
// (e4m3, e5m2) caches with one f16 scale per token (fp8 also without a scale). The packed code
// rows are copied raw into shared memory by the cp.async stream; each lane reads the code words of
// its own fragment elements and turns two codes into an f16 pair at a time (int8: a lop3 puts the
// sign-flipped byte under the f16 exponent of 1024, an hsub2 of 1152 leaves the code exactly; fp8:
// cvt.rn.f16x2.e4m3x2 / e5m2x2 from sm_89, the exact bit decoder elsewhere and on the emulator).
// Both MMAs run on f16 (every code is exact in f16), whatever the kernel's dtype.
//
// Channel and key orders: the dot over channels and the sum over keys do not depend on order, so
// a lane's K fragment elements are four consecutive code bytes of one key (one word; Q's A
// fragment takes the same channels), its V fragment elements the same byte of four key rows, and
// its output columns a contiguous run of DV/8 channels; combine writes them back in place.
//
// Scales are folded, never applied per element: S_j = s_j · 2^e · (q̂ · c_j), with q̂ = q · 2^-e in
// f16 (2^-e per row puts max |q| in [2^13, 2^14): no overflow, and bf16/f16 q values are exact
// unless below 2^-24 of the row's max), and P·V takes p_j · s_j rounded to f16 (p ≤ 1, an f16
// scale ≤ 65504: no overflow; rel. error 2^-11, below the bf16 rounding of p in the 16-bit float
// path; p_j · s_j under 2^-14 are f16 subnormals, abs. error ≤ 2^-25 · |code| each, against
// l ≥ 1). The float64 reference of the dequantized caches is what the GPU bench compares with.
import type { TensorFormat } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { elemSpec, floatElems } from '../../quant/elem-registry.js';
import type { Fp8Elem, QuantFormat } from '../../quant/format.js';
import { fp8DecodeLines } from './dequant.js';

type Elem = 'int8' | Fp8Elem;

/** What the kernel needs of one cache: its code element and whether it has a per-token scale. */
export interface MmaQuantCache {
  readonly elem: Elem;
  readonly scaled: boolean;
}

export interface MmaQuant {
  readonly k: MmaQuantCache;
  readonly v: MmaQuantCache;
}

function cacheOf(f: TensorFormat): MmaQuantCache | undefined {
  if (f.kind !== 'quant') return undefined;
  const q: QuantFormat = f.format;
  if (q.recent || q.norm) return undefined;
  if (q.kind === 'int' && (q.elem !== 'int8' || q.zero !== undefined || q.salient)) return undefined;
  const s = q.scale;
  // One f16 per token: p · s stays finite in f16 (above), and the scale is one load per key.
  if (s && (s.dtype !== 'f16' || s.per.kind !== 'token' || s.per.group !== undefined)) return undefined;
  if (q.kind === 'int' && !s) return undefined;
  return { elem: q.elem as Elem, scaled: s !== undefined };
}

/** The quantized formats the tensor-core kernel takes (D a multiple of 64, DV of 128), else undefined. */
export function mmaQuantOf(k: AttentionKernel): MmaQuant | undefined {
  const kc = cacheOf(k.formats.k);
  const vc = cacheOf(k.formats.v);
  const s = k.schedule;
  if (!kc || !vc || s.headDim % 64 !== 0 || s.valueDim % 128 !== 0) return undefined;
  return { k: kc, v: vc };
}

/**
 * The quantized tiles' own defaults of WARPS, KEYS (a warp's keys a tile) and STAGES; a knob left
 * out stands for the tensor-core kernel's (ATTNC_DEC_MMA_WARPS / KEYS / STAGES, decode-mma.ts).
 * KEYS 32: the H200 sweep (bench/cuda/quant-decode-q.sh, 2026-12-04, Nk 128K) timed it 4% (int8)
 * and 7% (e4m3) faster than 16 keys a warp, and faster at 32K too; more stages or 4 warps did not
 * help (the int8 kernel is bound by its conversions, not by the bytes in flight).
 */
type TileKnob = 'WARPS' | 'KEYS' | 'STAGES' | 'MIN_BLOCKS';
/** Defaults of the quantized tile knobs (ATTNC_DEC_MMA_Q<name>), where they differ from the shared ones. */
export type QuantTileDefaults = Readonly<Partial<Record<TileKnob, number>>>;
export const QUANT_TILE_DEFAULTS: QuantTileDefaults = {
  KEYS: 32,
};

/** Stream bytes a key and stage of quantized tiles (decode-mma-qtile.ts: pitches, scale words). */
export const quantStreamBytesPerKey = (D: number, DV: number): number => D + 16 + DV + 32 + 8;

/**
 * Knobs of the quantized tiles alone: `-DATTNC_DEC_MMA_QWARPS=n` / `QKEYS` / `QSTAGES` / `QMIN_BLOCKS` sweep a
 * quantized kernel's stream without touching a 16-bit float kernel built with the same flags (a
 * staged kernel's float twin shares the translation unit, and macros are global). Their defaults
 * (QUANT_TILE_DEFAULTS where its stream fits 227 KiB, else the shared knob's name, expanded where
 * used) keep ATTNC_DEC_MMA_WARPS / KEYS / STAGES / MIN_BLOCKS setting both. A stage of 1-byte codes holds
 * about twice the keys of a bf16 stage in the same shared memory: more stages or more keys a
 * warp keep more bytes in flight.
 */
export function quantTileKnobs(
  D: number,
  DV: number,
  subByte: boolean, // KIVI or per-token int4 / int2: code rows copied by runs
  d = QUANT_TILE_DEFAULTS,
  km: QuantTileDefaults = {}, // the key-major kernel's, under ATTNC_DEC_MMA_KM
): string[] {
  const keys = (d.WARPS ?? 8) * (d.KEYS ?? 16) * (d.STAGES ?? 2);
  const own = keys * quantStreamBytesPerKey(D, DV) <= 227 * 1024;
  const value = (n: TileKnob): string => {
    const qm = own && d[n] !== undefined ? `${d[n]}` : `ATTNC_DEC_MMA_${n}`;
    return km[n] === undefined ? qm : `(ATTNC_DEC_MMA_KM ? ${km[n]} : ${qm})`;
  };
  return [
    ...(['WARPS', 'KEYS', 'STAGES', 'MIN_BLOCKS'] as const).flatMap((n) => [
      `#ifndef ATTNC_DEC_MMA_Q${n}`,
      `#define ATTNC_DEC_MMA_Q${n} ${value(n)}`,
      '#endif',
    ]),
    'static_assert(ATTNC_DEC_MMA_QWARPS >= 1 && ATTNC_DEC_MMA_QWARPS <= 16 && ATTNC_DEC_MMA_QSTAGES >= 2, "ATTNC_DEC_MMA_QWARPS: 1..16; QSTAGES: 2 or more");',
    'static_assert(ATTNC_DEC_MMA_QKEYS >= 16 && ATTNC_DEC_MMA_QKEYS % 16 == 0, "ATTNC_DEC_MMA_QKEYS: a multiple of 16");',
    'static_assert(ATTNC_DEC_MMA_QMIN_BLOCKS >= 1, "ATTNC_DEC_MMA_QMIN_BLOCKS: 1 or more");',
    '// 1: a thread copies its code rows from one pointer at constant offsets; 0: the general index',
    '// form (decode-mma-qtile.ts quantFetch). H200 call 67: KIVI 18% faster with it (and 16-byte',
    '// scale copies), int8 / e4m3 4-8% slower: 1 for sub-byte codes (KIVI, per-token int4 / int2) only.',
    '#ifndef ATTNC_DEC_MMA_FETCH_RUNS',
    `#define ATTNC_DEC_MMA_FETCH_RUNS ${subByte ? 1 : 0}`,
    '#endif',
  ];
}

/** The macros a kernel's MMA_WARPS, MMA_KEYS, MMA_STAGES and register cap take (quantized tiles: their own knobs). */
export const tileKnobMacros = (
  quant: boolean,
): { readonly warps: string; readonly keys: string; readonly stages: string; readonly minBlocks: string } => {
  const p = quant ? 'ATTNC_DEC_MMA_Q' : 'ATTNC_DEC_MMA_';
  return { warps: `${p}WARPS`, keys: `${p}KEYS`, stages: `${p}STAGES`, minBlocks: `${p}MIN_BLOCKS` };
};

/** Byte offsets in a K word of pair h's two channels (Q's A fragment takes the same). */
export const kPairOffsets = (elem: Elem): readonly [readonly [number, number], readonly [number, number]] =>
  elem === 'int8'
    ? [
        [0, 2],
        [1, 3],
      ]
    : [
        [0, 1],
        [2, 3],
      ];

/** The f16 MMA (namespace dec), which the emulator swaps for its stand-in (decode-mma-emu.ts). */
export const mmaF16Ptx: readonly string[] = [
  '__device__ __forceinline__ void dm_mma_h(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {',
  '  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\\n"',
  '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
  '      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));',
  '}',
];

/** Two codes of an int8 pair word (bytes at 0 and 2, others ignored) → f16 pair (lo, hi). */
const int8Pair: string[] = [
  '__device__ __forceinline__ unsigned dmq_int8(unsigned w) {',
  '  const unsigned x = (w & 0x00ff00ffu) ^ 0x64806480u; // f16 1024 + (code ^ 0x80) per half',
  '#ifdef __CUDA_ARCH__',
  '  const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&x), __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480)));',
  '  return *reinterpret_cast<const unsigned*>(&r);',
  '#else',
  '  const unsigned short lo = (unsigned short)(x & 0xffffu), hi = (unsigned short)(x >> 16);',
  '  return dm_h2(dq_half(&lo, 0) - 1152.f, dq_half(&hi, 0) - 1152.f); // exact',
  '#endif',
  '}',
];

/**
 * Two fp8 codes (low 16 bits: lo, hi) → f16 pair: the hardware conversion where the element has
 * one (its registry record's cudaCvt), else the bit decoder everywhere.
 */
function fp8Pair(elem: Fp8Elem): string[] {
  const cvt = elemSpec(elem).cudaCvt;
  const hardware = [
    '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890',
    '  unsigned h;',
    `  asm("{ .reg .b16 a; cvt.u16.u32 a, %1; cvt.rn.f16x2.${cvt} %0, a; }" : "=r"(h) : "r"(w & 0xffffu));`,
    '  return h;',
    '#else',
  ];
  return [
    `__device__ __forceinline__ unsigned dmq_${elem}(unsigned w) {`,
    ...(cvt === undefined ? [] : hardware),
    '  float pair[2];',
    '  for (int i = 0; i < 2; ++i) {',
    '    const unsigned raw = (w >> (8 * i)) & 0xffu;',
    '    float v;',
    ...fp8DecodeLines(elem).map((l) => `    ${l}`),
    '    pair[i] = v;',
    '  }',
    '  return dm_h2(pair[0], pair[1]); // exact: every fp8 value is an f16',
    ...(cvt === undefined ? [] : ['#endif']),
    '}',
  ];
}

/** dm_h2 (f32 pair → f16 pair, round to nearest even) and a host __byte_perm: shared with decode-mma-kivi.ts. */
export const f16PairHelpers: readonly string[] = [
  '// Round to nearest even f32 pair → f16 pair (lo, hi).',
  '__device__ __forceinline__ unsigned dm_h2(float lo, float hi) {',
  '#ifdef __CUDA_ARCH__',
  '  const __half2 v = __floats2half2_rn(lo, hi);',
  '  return *reinterpret_cast<const unsigned*>(&v);',
  '#else',
  '  auto h = [](float f) -> unsigned {',
  '    unsigned u; memcpy(&u, &f, 4);',
  '    const unsigned s = (u >> 16) & 0x8000u, e = (u >> 23) & 0xffu, m = u & 0x7fffffu;',
  '    if (e == 0xffu) return s | 0x7c00u | (m ? 0x200u : 0u);',
  '    const int ex = (int)e - 127 + 15;',
  '    if (ex >= 31) return s | 0x7c00u;',
  '    if (ex <= 0) { // subnormal or zero: round m·2^(e) to a multiple of 2^-24',
  '      if (ex < -10) return s;',
  '      const unsigned mm = m | 0x800000u, sh = (unsigned)(14 - ex), r = mm >> sh, rem = mm & ((1u << sh) - 1u), half = 1u << (sh - 1);',
  '      return s | (r + (rem > half || (rem == half && (r & 1u))));',
  '    }',
  '    const unsigned r = ((unsigned)ex << 10) | (m >> 13), rem = m & 0x1fffu;',
  '    return s | (r + (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))); // a carry into the exponent is right',
  '  };',
  '  return h(lo) | (h(hi) << 16);',
  '#endif',
  '}',
  '#ifndef __CUDA_ARCH__',
  'inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {',
  '  const unsigned long long v = ((unsigned long long)y << 32) | x;',
  '  unsigned r = 0;',
  '  for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);',
  '  return r;',
  '}',
  '#endif',
];

/** Device helpers of the quantized path (namespace dec, after decode-quant.ts's helpers). */
export function mmaQuantHelpers(q: MmaQuant): string[] {
  const elems = new Set([q.k.elem, q.v.elem]);
  const kShift = q.k.elem === 'int8' ? 8 : 16; // pair 1 of a K word
  const vPos = q.v.elem === 'int8' ? 8 : 4; // where key b's byte goes (int8: byte 2, fp8: byte 1)
  return [
    '// ---- quantized K/V in the tensor-core kernel: codegen/cuda/decode-mma-quant.ts ----',
    ...f16PairHelpers,
    ...(elems.has('int8') ? int8Pair : []),
    ...floatElems.filter((e) => elems.has(e)).flatMap((e) => fp8Pair(e)),
    `// K word → f16 pair h (channels ${kPairOffsets(q.k.elem)
      .map((p) => p.join(', '))
      .join(' / ')} of the word).`,
    '__device__ __forceinline__ unsigned dmq_k(unsigned w, int h) {',
    `  return dmq_${q.k.elem}(h ? w >> ${kShift} : w);`,
    '}',
    "// Key of S tile j, column parity e of the lane, among its warp's keys: 16-key block j / 2, then",
    "// lane t's four keys t, t + 4, t + 8, t + 12 (P's A fragment order; V rows of one lane).",
    '__device__ __forceinline__ int dmq_key(int j, int e) { return 16 * (j >> 1) + (int)(threadIdx.x & 3) + 4 * (2 * (j & 1) + e); }',
    '// Byte x of V words wa, wb (keys a, b) → f16 pair (a, b).',
    '__device__ __forceinline__ unsigned dmq_v(unsigned wa, unsigned wb, int x) {',
    `  return dmq_${q.v.elem}(__byte_perm(wa, wb, (unsigned)x | ((unsigned)(4 + x) << ${vPos})));`,
    '}',
    ...mmaF16Ptx,
  ];
}
