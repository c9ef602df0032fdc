// The oracle's reading of a quantized K/V cache (docs/LANGUAGE.md, "K/V storage formats"). Written
// apart from src/quant's kernel-facing code so that one cannot hide a bug of the other: fp8 and
// 16-bit floats decode through tables and arithmetic (not bit operations), codes are read from
// each word by division, and the scale group of an element is located from the definition.
// Shared with src/quant: the element registry's records (the definitions, not their decoders),
// the format types, the cache container and how a `store` statement becomes a format
// (checkedFormats).
import type { CheckedDecl } from '../dsl/checker.js';
import { elemSpec, floatElems, type FloatElemSpec } from '../quant/elem-registry.js';
import { checkedFormats, type QuantFormat } from '../quant/format.js';
import type { CacheSizes, QuantCache, StoredFloats } from '../quant/layout.js';
import type { SalientMarks } from '../quant/marks.js';
import type { EvalEnv } from './ast-eval.js';
import { referenceDecl } from './reference-routing.js';
import type { RefInputs } from './reference.js';

/**
 * All 256 values of an 8-bit float format, by code, from its registry record's definition:
 * sign · 2^(e − bias) · (1 + m/2^M), subnormals at e = 0; the top exponent holds ±Inf and NaNs
 * (`ieee`) or only the NaN S.1…1.1…1 (`nan-only`).
 */
function fp8Table(spec: FloatElemSpec): Float64Array {
  const { exponentBits: expBits, mantissaBits: mantBits, bias } = spec;
  const table = new Float64Array(256);
  for (let code = 0; code < 256; code++) {
    const negative = code >= 128;
    const e = Math.floor((code % 128) / 2 ** mantBits);
    const m = code % 2 ** mantBits;
    const top = 2 ** expBits - 1;
    let v: number;
    if (e === top && spec.specials === 'ieee') v = m === 0 ? Infinity : NaN;
    else if (e === top && m === 2 ** mantBits - 1)
      v = NaN; // nan-only: S.1…1.1…1 only
    else if (e === 0) v = (m / 2 ** mantBits) * 2 ** (1 - bias);
    else v = (1 + m / 2 ** mantBits) * 2 ** (e - bias);
    table[code] = negative ? -v : v;
  }
  return table;
}

const fp8Tables = new Map(floatElems.map((e) => [e, fp8Table(elemSpec(e))]));

function halfValue(bits: number): number {
  const negative = bits >= 0x8000;
  const e = Math.floor((bits % 0x8000) / 1024);
  const m = bits % 1024;
  const v = e === 31 ? (m === 0 ? Infinity : NaN) : e === 0 ? m * 2 ** -24 : (1024 + m) * 2 ** (e - 25);
  return negative ? -v : v;
}

const view = new DataView(new ArrayBuffer(4));
function bfloatValue(bits: number): number {
  view.setUint16(0, bits);
  view.setUint16(2, 0);
  return view.getFloat32(0);
}

function floatAt(t: StoredFloats, i: number): number {
  const v = t.data[i];
  if (v === undefined)
    throw new Error(`reference dequantize: index ${i} is outside a ${t.dtype} tensor of ${t.data.length}`);
  return t.dtype === 'f32' ? v : t.dtype === 'f16' ? halfValue(v) : bfloatValue(v);
}

/** Field `c` of a token row: the c-th `bits`-wide field counting from each word's lowest bits. */
function field(words: Uint32Array, rowWords: number, row: number, c: number, bits: number): number {
  const perWord = 32 / bits;
  const word = words[row * rowWords + Math.floor(c / perWord)] ?? 0;
  return Math.floor(word / 2 ** ((c % perWord) * bits)) % 2 ** bits;
}

/** Salient tokens, one flag per [b, h, t], read straight from the marks' definition. */
function salientOf(marks: SalientMarks, s: CacheSizes): boolean[] {
  const flags = new Array<boolean>(s.B * s.Hkv * s.Nk).fill(false);
  for (let bh = 0; bh < s.B * s.Hkv; bh++)
    for (let i = 0; i < marks.n; i++) {
      const m = marks.data[bh * marks.n + i] ?? 0;
      if (marks.by === 'flags') flags[bh * s.Nk + i] = m !== 0;
      else if (m >= 0 && m < s.Nk) flags[bh * s.Nk + m] = true;
    }
  return flags;
}

/** Flat index of the scale covering (b, h, t, c), from the granularity's definition. */
function groupOf(f: QuantFormat, s: CacheSizes, b: number, h: number, t: number, c: number): number {
  const per = f.scale?.per;
  if (per === undefined || per.kind === 'tensor') return 0;
  const bh = b * s.Hkv + h;
  if (per.kind === 'token') {
    const g = per.group ?? s.D;
    return (bh * s.Nk + t) * Math.ceil(s.D / g) + Math.floor(c / g);
  }
  const g = per.group ?? Math.max(s.Nk, 1);
  return (bh * Math.ceil(s.Nk / g) + Math.floor(t / g)) * s.D + c;
}

/** The f32 value the format defines for every element of the cache, [B, Hkv, Nk, D]. */
export function referenceDequantize(
  f: QuantFormat,
  q: QuantCache,
  s: CacheSizes,
  marks?: SalientMarks,
): Float32Array {
  const out = new Float32Array(s.B * s.Hkv * s.Nk * s.D);
  const window = Math.min(f.recent?.tokens ?? 0, s.Nk);
  const wide = f.kind === 'int' ? f.salient?.elem : undefined;
  const salient = wide && marks ? salientOf(marks, s) : [];
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.Hkv; h++)
      for (let t = 0; t < s.Nk; t++)
        for (let c = 0; c < s.D; c++) {
          const bh = b * s.Hkv + h;
          const at = (bh * s.Nk + t) * s.D + c;
          if (f.recent && q.recent && t >= s.Nk - window) {
            out[at] = floatAt(q.recent, (bh * f.recent.tokens + (t - (s.Nk - window))) * s.D + c);
            continue;
          }
          const isWide = wide !== undefined && salient[bh * s.Nk + t] === true;
          const elem = isWide ? wide : f.elem;
          const bits = elemSpec(elem).bits;
          const words = isWide ? q.codesHi : q.codes;
          if (words === undefined) throw new Error('reference dequantize: salient tokens need codesHi');
          const raw = field(words, Math.ceil(s.D / (32 / bits)), bh * s.Nk + t, c, bits);
          let v: number;
          if (f.kind === 'fp8') v = fp8Tables.get(f.elem)![raw]!;
          else if (f.zero) v = raw;
          else v = raw >= 2 ** (bits - 1) ? raw - 2 ** bits : raw;
          if (f.scale && q.scale) {
            const g = groupOf(f, s, b, h, t, c);
            if (f.kind === 'int' && f.zero && q.zero) v = Math.fround(v - floatAt(q.zero, g));
            v = Math.fround(v * floatAt(q.scale, g));
          }
          if (f.norm && q.norm) v = Math.fround(v * floatAt(q.norm, bh * s.D + c));
          out[at] = v;
        }
  return out;
}

/** One quantized cache as the oracle receives it. */
export interface StoredCache {
  readonly format: QuantFormat;
  readonly cache: QuantCache;
  /** The salient tokens' marks, when the format has them. */
  readonly marks?: SalientMarks;
}

/**
 * `inp` with its `k` and/or `v` replaced by the values their quantized caches define (`v` over
 * Dv channels), for referenceAttention or referenceDecl: attention over a quantized cache is
 * attention over its dequantized values.
 */
export function dequantizedInputs<I extends RefInputs>(
  inp: I,
  stored: { k?: StoredCache; v?: StoredCache },
): I {
  const sizes = (D: number): CacheSizes => ({ B: inp.B, Hkv: inp.Hkv, Nk: inp.Nk, D });
  const read = (c: StoredCache, D: number): Float32Array =>
    referenceDequantize(c.format, c.cache, sizes(D), c.marks);
  return {
    ...inp,
    ...(stored.k ? { k: read(stored.k, inp.D) } : {}),
    ...(stored.v ? { v: read(stored.v, inp.Dv) } : {}),
  };
}

/**
 * The oracle for a declaration with `store` statements: its caches (quantized by the caller,
 * e.g. with src/quant's `quantize`) read through their formats, salient marks taken from the
 * tensor param each `salient … from t` names (in `env`), then referenceDecl as for any other
 * declaration.
 */
export function referenceStoredDecl(
  checked: CheckedDecl,
  inp: RefInputs,
  env: EvalEnv,
  caches: { k?: QuantCache; v?: QuantCache },
): ReturnType<typeof referenceDecl> {
  const formats = checkedFormats(checked);
  const stored: { k?: StoredCache; v?: StoredCache } = {};
  for (const which of ['k', 'v'] as const) {
    const format = formats[which];
    if (format === undefined) continue;
    const cache = caches[which];
    if (cache === undefined)
      throw new Error(`referenceStoredDecl: the ${which} cache is stored quantized; pass caches.${which}`);
    const tensor = formats.salientTensor?.[which];
    const marks = tensor === undefined ? undefined : marksOf(format, tensor, env);
    stored[which] = { format, cache, ...(marks ? { marks } : {}) };
  }
  return referenceDecl(checked.decl, dequantizedInputs(inp, stored), env);
}

function marksOf(f: QuantFormat, tensor: string, env: EvalEnv): SalientMarks | undefined {
  if (f.kind !== 'int' || !f.salient) return undefined;
  const t = env.tensors[tensor];
  if (t === undefined)
    throw new Error(`referenceStoredDecl: tensor '${tensor}' (the salient tokens) is missing`);
  const n = t.shape[2];
  if (t.shape.length !== 3 || n === undefined)
    throw new Error(
      `referenceStoredDecl: tensor '${tensor}' must be [B, Hkv, N], got [${t.shape.join(', ')}]`,
    );
  return { by: f.salient.by, data: Int32Array.from(t.data), n };
}
