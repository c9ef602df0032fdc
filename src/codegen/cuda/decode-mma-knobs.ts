// Knobs of the tensor-core split-KV decode kernel (decode-mma.ts): the default warps, keys per
// warp, pipeline stages and min blocks per SM, the fallbacks wide heads take where the default
// stream would not fit in shared memory, and the `#ifndef ATTNC_DEC_MMA_<name>` lines that let a
// build override them with -D. Kept apart from the kernel assembly because they are the kernel's
// tuning surface (decode-knobs.ts's variants and the benches set exactly these macros).
import type { AttentionKernel } from '../../ir/kernel.js';
import type { MmaCache } from './decode-mma-kinds.js';
import { quantStreamBytesPerKey, quantTileKnobs, type QuantTileDefaults } from './decode-mma-quant.js';
import { kiviStreamBytesPerKey, kiviSwitch } from './decode-mma-kivi.js';
import { tokenIntStreamBytesPerKey } from './decode-mma-tokint.js';
import { decodeLeanOf, leanKnob } from './decode-mma-lean.js';

/** Packed rows per block: the MMA's M. */
export const MMA_ROWS = 16;

/**
 * Default knobs of the tensor-core kernel (emitted as ATTNC_DEC_MMA_<name>). H200 sweep (B 4, Hkv 8,
 * D 128, bf16): 8 warps, 2 stages 0.95x SDPA at 128K; 4 warps, 3 stages 0.92x. Wide heads whose
 * stream would pass 227 KiB take the first fallback that fits (mmaDefaults).
 */
export const MMA_KNOB_DEFAULTS = { '': 1, WARPS: 8, KEYS: 16, STAGES: 2, MIN_BLOCKS: 1 } as const;
const MMA_FALLBACKS = [
  { WARPS: 4, STAGES: 3, MIN_BLOCKS: 2 },
  { WARPS: 4, STAGES: 2, MIN_BLOCKS: 2 },
  { WARPS: 2, STAGES: 2, MIN_BLOCKS: 2 },
] as const;

/** Stream bytes a key and stage of the cache kind (its pitches and scale words; padded 16-bit rows). */
function streamBytesPerKey(cache: MmaCache, D: number, DV: number): number {
  switch (cache.kind) {
    case 'kivi':
      return kiviStreamBytesPerKey(cache.kivi, D, DV);
    case 'tokint':
      return tokenIntStreamBytesPerKey(cache.tok, D, DV);
    case 'quant':
      return quantStreamBytesPerKey(D, DV);
    case 'dense':
      return 2 * (D + 8 + DV + 8);
  }
}

/** The kernel's defaults: MMA_KNOB_DEFAULTS, or a fallback where its shared memory would not fit. */
function mmaDefaults(k: AttentionKernel, cache: MmaCache): Record<string, number> {
  const { headDim: D, valueDim: DV } = k.schedule;
  const perKey = streamBytesPerKey(cache, D, DV);
  const fits = (w: number, st: number): boolean =>
    Math.max(st * w * MMA_KNOB_DEFAULTS.KEYS * perKey, 4 * w * MMA_ROWS * (DV + 2)) <= 227 * 1024;
  const base = MMA_KNOB_DEFAULTS;
  if (fits(base.WARPS, base.STAGES)) return base;
  const f = MMA_FALLBACKS.find((x) => fits(x.WARPS, x.STAGES)) ?? MMA_FALLBACKS[MMA_FALLBACKS.length - 1]!;
  return { ...base, ...f };
}

/** `#ifndef` defaults of the tensor-core knobs; `km`: quantized tile defaults where ATTNC_DEC_MMA_KM is 1. */
export function mmaKnobs(k: AttentionKernel, cache: MmaCache, km: QuantTileDefaults = {}): string[] {
  const knobs = Object.entries(mmaDefaults(k, cache));
  // Sub-byte codes (KIVI, per-token int4 / int2) copy their rows by runs (ATTNC_DEC_MMA_FETCH_RUNS).
  const subByte = cache.kind === 'kivi' || cache.kind === 'tokint';
  const lean = decodeLeanOf(k);
  return [
    ...(cache.kind === 'kivi' ? kiviSwitch : []),
    ...knobs.flatMap(([n, v]) => {
      const name = n === '' ? 'ATTNC_DEC_MMA' : `ATTNC_DEC_MMA_${n}`; // '': on (1) or off (0)
      return [`#ifndef ${name}`, `#define ${name} ${v}`, '#endif'];
    }),
    'static_assert(ATTNC_DEC_MMA_WARPS >= 1 && ATTNC_DEC_MMA_WARPS <= 16, "ATTNC_DEC_MMA_WARPS: 1..16");',
    'static_assert(ATTNC_DEC_MMA_KEYS >= 16 && ATTNC_DEC_MMA_KEYS % 16 == 0, "ATTNC_DEC_MMA_KEYS: a multiple of 16");',
    'static_assert(ATTNC_DEC_MMA_STAGES >= 2 && ATTNC_DEC_MMA_MIN_BLOCKS >= 1, "decode mma knobs");',
    ...(cache.kind !== 'dense'
      ? quantTileKnobs(k.schedule.headDim, k.schedule.valueDim, subByte, undefined, km)
      : []),
    ...(lean === 'off' ? [] : leanKnob(lean)),
  ];
}
