// Quantization of f32 K/V into a cache (docs/LANGUAGE.md, "K/V storage formats",
// "Quantization"): the normalizer, then per scale group its scale (rounded up, so that no code
// of the group saturates) and zero point, then each code rounded half to even and clamped.
// Every step is one correctly rounded f32 operation, so a kernel can match it bit for bit.
import { codesPerWord, elemBits, floatMax, intCodeRange } from './elem.js';
import {
  allocFloats,
  flushSubnormal,
  fp8Encode,
  readFloat,
  roundNearestSat,
  roundUpTo,
  writeFloat,
} from './floats.js';
import { validateFormat, type Fp8Elem, type IntStorageElem, type QuantFormat } from './format.js';
import {
  recentCount,
  scaleIndex,
  scaleShape,
  wordsPerRow,
  type CacheSizes,
  type QuantCache,
  type StoredFloats,
} from './layout.js';
import { salientFlags, type SalientMarks } from './marks.js';

const fr = Math.fround;

/** Round half to even (of an f32 value, exactly). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Per scale group: the extremes of its quantized values, and whether its tokens are salient. */
interface GroupStats {
  readonly min: Float64Array;
  readonly max: Float64Array;
  readonly count: Uint32Array;
  readonly wide: Uint8Array;
}

/**
 * Quantizes `x` ([B, Hkv, Nk, D] f32, finite) into format `f`. `marks` says which tokens are
 * salient when the format has them.
 */
export function quantize(
  f: QuantFormat,
  input: Float32Array,
  s: CacheSizes,
  marks?: SalientMarks,
): QuantCache {
  checkInput(input, s);
  const x = input.map(flushSubnormal);
  validateFormat(f);
  const wide = f.kind === 'int' ? f.salient?.elem : undefined;
  if (wide && marks === undefined)
    throw new Error('quantize: this format has salient tokens; pass their marks');
  const salient = wide && marks ? salientFlags(marks, s) : undefined;
  const firstRecent = s.Nk - recentCount(f, s.Nk);
  const norm = f.norm ? normalizer(f.norm, x, s, firstRecent) : undefined;
  // y: the values the codes approximate (x over its channel's normalizer).
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % s.D;
    const row = (i - c) / s.D;
    y[i] = norm ? fr(x[i]! / readFloat(norm, Math.floor(row / s.Nk) * s.D + c)) : x[i]!;
  }
  const codes = new Uint32Array(s.B * s.Hkv * s.Nk * wordsPerRow(s.D, codesPerWord(f.elem)));
  const codesHi = wide
    ? new Uint32Array(s.B * s.Hkv * s.Nk * wordsPerRow(s.D, codesPerWord(wide)))
    : undefined;
  const params = f.scale ? groupParams(f, y, s, firstRecent, salient) : undefined;
  for (let row = 0; row < s.B * s.Hkv * s.Nk; row++) {
    const t = row % s.Nk;
    if (t >= firstRecent) continue; // recent tokens keep code 0
    const isWide = wide !== undefined && salient?.[row] === 1;
    const elem = isWide ? wide : f.elem;
    const words = isWide ? codesHi! : codes;
    const base = row * wordsPerRow(s.D, codesPerWord(elem));
    const bh = Math.floor(row / s.Nk);
    for (let c = 0; c < s.D; c++) {
      const g = f.scale ? scaleIndex(f.scale.per, s, Math.floor(bh / s.Hkv), bh % s.Hkv, t, c) : 0;
      const code = encode(f, elem, y[row * s.D + c]!, params, g);
      pack(words, base, c, elemBits(elem), code);
    }
  }
  const recent = f.recent ? recentBuffer(f.recent, x, s, firstRecent) : undefined;
  return {
    codes,
    ...(codesHi ? { codesHi } : {}),
    ...(params ? { scale: params.scale } : {}),
    ...(params?.zero ? { zero: params.zero } : {}),
    ...(norm ? { norm } : {}),
    ...(recent ? { recent } : {}),
  };
}

function checkInput(x: Float32Array, s: CacheSizes): void {
  const want = s.B * s.Hkv * s.Nk * s.D;
  if (x.length !== want)
    throw new Error(`quantize: input has length ${x.length}, expected ${want} for [B, Hkv, Nk, D]`);
  const bad = x.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`quantize: input[${bad}] is ${x[bad]}; only finite values can be quantized`);
}

/** Per (b, h, c): sqrt(max over quantized tokens of |x|), rounded to nearest; 1 where that is 0. */
function normalizer(dtype: 'f16' | 'f32', x: Float32Array, s: CacheSizes, firstRecent: number): StoredFloats {
  const out = allocFloats(dtype, s.B * s.Hkv * s.D);
  for (let bh = 0; bh < s.B * s.Hkv; bh++)
    for (let c = 0; c < s.D; c++) {
      let m = 0;
      for (let t = 0; t < firstRecent; t++) m = Math.max(m, Math.abs(x[(bh * s.Nk + t) * s.D + c]!));
      const n = roundNearestSat(dtype, fr(Math.sqrt(m)));
      writeFloat(out, bh * s.D + c, n === 0 ? 1 : n);
    }
  return out;
}

interface Params {
  readonly scale: StoredFloats;
  readonly zero?: StoredFloats;
}

/** Scales (and zero points) of every group, from its quantized members' extremes. */
function groupParams(
  f: QuantFormat,
  y: Float32Array,
  s: CacheSizes,
  firstRecent: number,
  salient: Uint8Array | undefined,
): Params {
  const per = f.scale!.per;
  const n = scaleShape(per, s).reduce((a, b) => a * b, 1);
  const st = stats(f, y, s, firstRecent, salient, n);
  const scale = allocFloats(f.scale!.dtype, n);
  const zero = f.kind === 'int' && f.zero ? allocFloats(f.zero, n) : undefined;
  for (let g = 0; g < n; g++) {
    const empty = st.count[g] === 0;
    const elem = f.kind === 'int' ? (st.wide[g] && f.salient ? f.salient.elem : f.elem) : undefined;
    const p = empty ? { scale: 1, zero: 0 } : groupScale(f, elem, st.min[g]!, st.max[g]!);
    writeFloat(scale, g, p.scale);
    if (zero) writeFloat(zero, g, p.zero);
  }
  return zero ? { scale, zero } : { scale };
}

function stats(
  f: QuantFormat,
  y: Float32Array,
  s: CacheSizes,
  firstRecent: number,
  salient: Uint8Array | undefined,
  n: number,
): GroupStats {
  const st: GroupStats = {
    min: new Float64Array(n).fill(Infinity),
    max: new Float64Array(n).fill(-Infinity),
    count: new Uint32Array(n),
    wide: new Uint8Array(n),
  };
  const per = f.scale!.per;
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.Hkv; h++)
      for (let t = 0; t < firstRecent; t++) {
        const row = (b * s.Hkv + h) * s.Nk + t;
        for (let c = 0; c < s.D; c++) {
          const g = scaleIndex(per, s, b, h, t, c);
          const v = y[row * s.D + c]!;
          st.min[g] = Math.min(st.min[g]!, v);
          st.max[g] = Math.max(st.max[g]!, v);
          st.count[g]!++;
          if (salient?.[row] === 1) st.wide[g] = 1;
        }
      }
  return st;
}

/** A group's scale and zero point from its extremes (docs: "Quantization"). */
function groupScale(
  f: QuantFormat,
  elem: IntStorageElem | undefined,
  min: number,
  max: number,
): { scale: number; zero: number } {
  const dtype = f.scale!.dtype;
  if (f.kind === 'fp8' || elem === undefined) {
    const a = Math.max(-min, max);
    return { scale: a === 0 ? 1 : roundUpTo(dtype, fr(a / floatMax(f.elem as Fp8Elem))), zero: 0 };
  }
  const bits = elemBits(elem);
  if (!f.zero) {
    const a = Math.max(-min, max);
    return { scale: a === 0 ? 1 : roundUpTo(dtype, fr(a / intCodeRange(bits, false).hi)), zero: 0 };
  }
  const lo = Math.min(min, 0);
  const range = fr(Math.max(max, 0) - lo);
  if (range === 0) return { scale: 1, zero: 0 };
  const scale = roundUpTo(dtype, fr(range / intCodeRange(bits, true).hi));
  return { scale, zero: roundNearestSat(f.zero, fr(-lo / scale)) };
}

/** The code of one value: round half to even and clamp (ints), or the fp8 encoding. */
function encode(
  f: QuantFormat,
  elem: QuantFormat['elem'],
  v: number,
  p: Params | undefined,
  g: number,
): number {
  const scale = p ? readFloat(p.scale, g) : 1;
  if (f.kind === 'fp8') return fp8Encode(f.elem, p ? fr(v / scale) : v);
  const bits = elemBits(elem);
  if (p?.zero) {
    const { lo, hi } = intCodeRange(bits, true);
    return clamp(roundHalfEven(fr(fr(v / scale) + readFloat(p.zero, g))), lo, hi);
  }
  const { lo, hi } = intCodeRange(bits, false);
  return clamp(roundHalfEven(fr(v / scale)), lo, hi);
}

/** Writes code `c` of the row at word `base` (two's complement for signed codes). */
function pack(words: Uint32Array, base: number, c: number, bits: number, code: number): void {
  const perWord = 32 / bits;
  const i = base + Math.floor(c / perWord);
  const field = (code & ((1 << bits) - 1)) << ((c % perWord) * bits);
  words[i] = (words[i]! | field) >>> 0;
}

/** The last min(R, Nk) tokens of each (b, h), rounded to nearest in 16 bits; rows past them stay 0. */
function recentBuffer(
  r: NonNullable<QuantFormat['recent']>,
  x: Float32Array,
  s: CacheSizes,
  firstRecent: number,
): StoredFloats {
  const out = allocFloats(r.dtype, s.B * s.Hkv * r.tokens * s.D);
  for (let bh = 0; bh < s.B * s.Hkv; bh++)
    for (let t = firstRecent; t < s.Nk; t++)
      for (let c = 0; c < s.D; c++)
        writeFloat(out, (bh * r.tokens + t - firstRecent) * s.D + c, x[(bh * s.Nk + t) * s.D + c]!);
  return out;
}
