// The memory layout of a quantized cache (docs/LANGUAGE.md, "K/V storage formats", "Layout"):
// which tensors hold it, their shapes (row-major, contiguous) and how codes pack into words.
import { codesPerWord } from './elem.js';
import type { FloatDType, Granularity, HalfDType, QuantFormat } from './format.js';

/** Sizes of one cache: batch, kv heads, tokens, channels (the head dim). */
export interface CacheSizes {
  readonly B: number;
  readonly Hkv: number;
  readonly Nk: number;
  readonly D: number;
}

/** A float tensor as stored: f16/bf16 as their bits, f32 as values. */
export type StoredFloats =
  | { readonly dtype: 'f16' | 'bf16'; readonly data: Uint16Array }
  | { readonly dtype: 'f32'; readonly data: Float32Array };

/** The tensors of one quantized cache. Which are present follows from the format. */
export interface QuantCache {
  /** u32 [B, Hkv, Nk, words(D)]: every token's codes (zero for recent and salient tokens). */
  readonly codes: Uint32Array;
  /** u32 [B, Hkv, Nk, words_hi(D)]: salient tokens' wider codes (zero for the others). */
  readonly codesHi?: Uint32Array;
  /** Shape from `scaleShape`. Absent for fp8 without `scale`. */
  readonly scale?: StoredFloats;
  /** Same shape as `scale`. */
  readonly zero?: StoredFloats;
  /** [B, Hkv, D]. */
  readonly norm?: StoredFloats;
  /** [B, Hkv, R, D]: recent row r is token Nk − min(R, Nk) + r. */
  readonly recent?: StoredFloats;
}

/** Words per token row for `codesPerWord` codes a word; the last word's unused bits are 0. */
export const wordsPerRow = (D: number, perWord: number): number => Math.ceil(D / perWord);

/** How many scale groups a granularity makes along tokens and along channels. */
export function scaleGroups(per: Granularity, Nk: number, D: number): { tokens: number; channels: number } {
  switch (per.kind) {
    case 'tensor':
      return { tokens: 1, channels: 1 };
    case 'token':
      return { tokens: Nk, channels: per.group ? Math.ceil(D / per.group) : 1 };
    case 'channel':
      return { tokens: per.group ? Math.ceil(Nk / per.group) : 1, channels: D };
  }
}

/** The shape of the scale (and zero) tensor: [1] per tensor, else [B, Hkv, token groups, channel groups]. */
export function scaleShape(per: Granularity, s: CacheSizes): number[] {
  if (per.kind === 'tensor') return [1];
  const g = scaleGroups(per, s.Nk, s.D);
  return [s.B, s.Hkv, g.tokens, g.channels];
}

/** The flat index into the scale tensor of the group holding (b, h, token t, channel c). */
export function scaleIndex(
  per: Granularity,
  s: CacheSizes,
  b: number,
  h: number,
  t: number,
  c: number,
): number {
  if (per.kind === 'tensor') return 0;
  const g = scaleGroups(per, s.Nk, s.D);
  const tg = per.kind === 'token' ? t : per.group ? Math.floor(t / per.group) : 0;
  const cg = per.kind === 'channel' ? c : per.group ? Math.floor(c / per.group) : 0;
  return ((b * s.Hkv + h) * g.tokens + tg) * g.channels + cg;
}

/** How many of the last tokens are kept in the recent buffer: min(R, Nk). */
export const recentCount = (f: QuantFormat, Nk: number): number => Math.min(f.recent?.tokens ?? 0, Nk);

export type TensorDType = 'u32' | FloatDType | HalfDType;

/** One tensor of a cache's layout, for allocation and for module/header signatures. */
export interface LayoutTensor {
  readonly name: keyof QuantCache;
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
}

/** Every tensor a cache of format `f` needs, in a fixed order. */
export function cacheLayout(f: QuantFormat, s: CacheSizes): LayoutTensor[] {
  const rows = [s.B, s.Hkv, s.Nk];
  const out: LayoutTensor[] = [
    { name: 'codes', dtype: 'u32', shape: [...rows, wordsPerRow(s.D, codesPerWord(f.elem))] },
  ];
  if (f.kind === 'int' && f.salient)
    out.push({
      name: 'codesHi',
      dtype: 'u32',
      shape: [...rows, wordsPerRow(s.D, codesPerWord(f.salient.elem))],
    });
  if (f.scale) out.push({ name: 'scale', dtype: f.scale.dtype, shape: scaleShape(f.scale.per, s) });
  if (f.kind === 'int' && f.zero && f.scale)
    out.push({ name: 'zero', dtype: f.zero, shape: scaleShape(f.scale.per, s) });
  if (f.norm) out.push({ name: 'norm', dtype: f.norm, shape: [s.B, s.Hkv, s.D] });
  if (f.recent)
    out.push({ name: 'recent', dtype: f.recent.dtype, shape: [s.B, s.Hkv, f.recent.tokens, s.D] });
  return out;
}

/** Bytes of a cache (what a kernel reading all of it reads). */
export function cacheBytes(f: QuantFormat, s: CacheSizes): number {
  const size = { u32: 4, f32: 4, f16: 2, bf16: 2 } as const;
  return cacheLayout(f, s).reduce((n, t) => n + size[t.dtype] * t.shape.reduce((a, b) => a * b, 1), 0);
}

/** One tensor of a cache with its data, ready to upload (f16/bf16 as bits, u32 words). */
export interface CacheTensor extends LayoutTensor {
  readonly data: Uint32Array | Uint16Array | Float32Array;
}

/**
 * The tensors of cache `q` in layout order, each checked against the shape and dtype the format
 * gives it (a missing or misshapen tensor is an error naming it): what a kernel binds.
 */
export function cacheTensors(f: QuantFormat, q: QuantCache, s: CacheSizes): CacheTensor[] {
  return cacheLayout(f, s).map((t) => {
    const held = q[t.name];
    if (held === undefined) throw new Error(`cache of format ${f.elem}: tensor '${t.name}' is missing`);
    const data = held instanceof Uint32Array ? held : held.data;
    const dtype = held instanceof Uint32Array ? 'u32' : held.dtype;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (dtype !== t.dtype || data.length !== n)
      throw new Error(
        `cache of format ${f.elem}: tensor '${t.name}' is ${dtype} × ${data.length}, expected ${t.dtype} [${t.shape.join(', ')}] (${n})`,
      );
    return { ...t, data };
  });
}
