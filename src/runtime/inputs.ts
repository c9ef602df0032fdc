// Deterministic random inputs for `attnc run`, the REPL and tests: q/k/v plus contents for the
// kernel's tensor params that make sense for the stdlib (ids as sorted segments, positive floats).
import type { TensorSlot } from '../ir/kernel.js';
import type { KVFormats, QuantFormat, SalientBy } from '../quant/format.js';
import type { CacheSizes, QuantCache } from '../quant/layout.js';
import type { SalientMarks } from '../quant/marks.js';
import { quantize } from '../quant/quantize.js';

/** mulberry32: a tiny seeded PRNG, so runs are reproducible from `--seed`. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomNormal(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * scale;
  }
  return out;
}

export interface Sizes {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

/** A tensor param's concrete shape: named sizes, literals and int params resolved. */
export function tensorShape(
  t: TensorSlot,
  sizes: Sizes,
  params: Readonly<Record<string, number | boolean>>,
): number[] {
  return t.dims.map((d) =>
    d.kind === 'literal' ? d.value : d.kind === 'param' ? Number(params[d.name] ?? 0) : sizes[d.name],
  );
}

export function tensorLength(
  t: TensorSlot,
  sizes: Sizes,
  params: Readonly<Record<string, number | boolean>>,
): number {
  return tensorShape(t, sizes, params).reduce((a, b) => a * b, 1);
}

/**
 * i32 tensors: sorted segment ids 0..(≈8 segments), with the first segment id 0 — documents for
 * `doc`, and text (0) / image (>0) spans alternating for `span`-style masks. f32 tensors:
 * values in [0.5, 1.5], positive so gains and slopes are valid.
 */
export function randomTensor(t: TensorSlot, length: number, rand: () => number): Int32Array | Float32Array {
  if (t.dtype === 'f32') {
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = 0.5 + rand();
    return out;
  }
  const out = new Int32Array(length);
  const segments = Math.max(1, Math.min(8, Math.floor(length / 16)));
  let id = 0;
  for (let i = 0; i < length; i++) {
    if (i > 0 && rand() < segments / length) id++;
    out[i] = id;
  }
  return out;
}

/**
 * Random marks of salient tokens for a `salient … from t` clause: flags [B, Hkv, Nk] with about
 * `fraction` of the tokens set, or an index list [B, Hkv, n] of distinct tokens (−1 padded).
 */
export function randomSalientMarks(
  by: SalientBy,
  s: CacheSizes,
  rand: () => number,
  n = Math.ceil(s.Nk / 8),
  fraction = 0.125,
): SalientMarks {
  if (by === 'flags') {
    const data = new Int32Array(s.B * s.Hkv * s.Nk);
    for (let i = 0; i < data.length; i++) data[i] = rand() < fraction ? 1 : 0;
    return { by, data, n: s.Nk };
  }
  const data = new Int32Array(s.B * s.Hkv * n).fill(-1);
  for (let bh = 0; bh < s.B * s.Hkv; bh++) {
    const tokens = [...Array(s.Nk).keys()];
    for (let i = tokens.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
    }
    tokens.slice(0, n).forEach((t, i) => (data[bh * n + i] = t));
  }
  return { by, data, n };
}

/**
 * A random quantized cache for `attnc run` and tests: normal f32 values (times `scale`) quantized
 * into format `f`. `raw` is what was quantized; kernels read `cache`.
 */
export function randomQuantizedCache(
  f: QuantFormat,
  s: CacheSizes,
  rand: () => number,
  marks?: SalientMarks,
  scale = 1,
): { raw: Float32Array; cache: QuantCache } {
  const raw = randomNormal(s.B * s.Hkv * s.Nk * s.D, rand, scale);
  return { raw, cache: quantize(f, raw, s, marks) };
}

/** What `attnc run` feeds a kernel with `store` statements, beside q and the tensor params. */
export interface StoredInputs {
  /** The quantized caches, for the kernel's buffers and the oracle. */
  readonly caches: { k?: QuantCache; v?: QuantCache };
  /** The f32 values they were quantized from. */
  readonly raw: { k?: Float32Array; v?: Float32Array };
  /** Contents for each salient tensor param, by name (flags or an index list). */
  readonly salient: Record<string, SalientMarks>;
}

/**
 * Random caches for a declaration's formats: [B, Hkv, Nk, D] keys and [B, Hkv, Nk, Dv] values,
 * normal f32 quantized; a salient tensor shared by k and v gets one set of marks. `salientN`
 * is the last dimension of an index-list tensor (its declared size).
 */
export function randomStoredInputs(
  formats: KVFormats,
  s: { B: number; Hkv: number; Nk: number; D: number; Dv: number },
  rand: () => number,
  salientN: (tensor: string) => number = () => Math.ceil(s.Nk / 8),
): StoredInputs {
  const caches: { k?: QuantCache; v?: QuantCache } = {};
  const raw: { k?: Float32Array; v?: Float32Array } = {};
  const salient: Record<string, SalientMarks> = {};
  for (const which of ['k', 'v'] as const) {
    const f = formats[which];
    if (f === undefined) continue;
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: which === 'k' ? s.D : s.Dv };
    const tensor = formats.salientTensor?.[which];
    let marks: SalientMarks | undefined;
    if (f.kind === 'int' && f.salient && tensor !== undefined) {
      marks = salient[tensor] ?? randomSalientMarks(f.salient.by, sizes, rand, salientN(tensor));
      salient[tensor] = marks;
    }
    const made = randomQuantizedCache(f, sizes, rand, marks);
    caches[which] = made.cache;
    raw[which] = made.raw;
  }
  return { caches, raw, salient };
}
