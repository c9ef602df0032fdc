// Dequantization as a kernel computes it (docs/LANGUAGE.md, "K/V storage formats",
// "Dequantization"): shifts and masks on 32-bit words, then f32 operations in a fixed order,
// each rounded (no fused multiply-add): ((code − zero) · scale) · norm.
import { codesPerWord, elemBits } from './elem.js';
import { fp8Decode, readFloat } from './floats.js';
import type { QuantFormat } from './format.js';
import { recentCount, scaleIndex, wordsPerRow, type CacheSizes, type QuantCache } from './layout.js';

/** Code `c` of a token row starting at word `base`: `bits` wide, lowest bits first. */
export function unpackCode(words: Uint32Array, base: number, c: number, bits: number): number {
  const perWord = 32 / bits;
  const word = words[base + Math.floor(c / perWord)]!;
  return (word >>> ((c % perWord) * bits)) & ((1 << bits) - 1);
}

/** A b-bit two's-complement field as a signed int. */
export const signExtend = (raw: number, bits: number): number => (raw << (32 - bits)) >> (32 - bits);

/**
 * The f32 values of cache `q` of format `f`, [B, Hkv, Nk, D]. `salient` (from salientFlags) is
 * required when the format has salient tokens.
 */
export function dequantize(f: QuantFormat, q: QuantCache, s: CacheSizes, salient?: Uint8Array): Float32Array {
  const out = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const nRecent = recentCount(f, s.Nk);
  const firstRecent = s.Nk - nRecent;
  const wide = f.kind === 'int' ? f.salient?.elem : undefined;
  if (wide && (salient === undefined || q.codesHi === undefined))
    throw new Error('dequantize: a format with salient tokens needs the salient flags and codesHi');
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.Hkv; h++)
      for (let t = 0; t < s.Nk; t++) {
        const row = (b * s.Hkv + h) * s.Nk + t;
        for (let c = 0; c < s.D; c++) {
          let v: number;
          if (t >= firstRecent && q.recent) {
            v = readFloat(q.recent, ((b * s.Hkv + h) * (f.recent?.tokens ?? 0) + t - firstRecent) * s.D + c);
          } else {
            const isWide = wide !== undefined && salient?.[row] === 1;
            const elem = isWide ? wide : f.elem;
            const words = isWide ? q.codesHi! : q.codes;
            const raw = unpackCode(words, row * wordsPerRow(s.D, codesPerWord(elem)), c, elemBits(elem));
            v = scaled(f, q, s, raw, elem, [b, h, t, c]);
          }
          out[row * s.D + c] = v;
        }
      }
  return out;
}

/** ((code − zero) · scale) · norm, each step an f32 operation. */
function scaled(
  f: QuantFormat,
  q: QuantCache,
  s: CacheSizes,
  raw: number,
  elem: QuantFormat['elem'],
  [b, h, t, c]: [number, number, number, number],
): number {
  let v: number;
  if (f.kind === 'fp8') v = fp8Decode(f.elem, raw);
  else v = f.zero ? raw : signExtend(raw, elemBits(elem));
  if (f.scale && q.scale) {
    const i = scaleIndex(f.scale.per, s, b, h, t, c);
    if (f.kind === 'int' && f.zero && q.zero) v = Math.fround(v - readFloat(q.zero, i));
    v = Math.fround(v * readFloat(q.scale, i));
  }
  if (f.norm && q.norm) v = Math.fround(v * readFloat(q.norm, (b * s.Hkv + h) * s.D + c));
  return v;
}
