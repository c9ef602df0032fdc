// Random quantized caches for a compiled kernel's run (`attnc run`, tests): the caches a run binds
// (`caches: { k, v }`) and, for the reference, the values they define (the oracle's reading,
// reference-quant.ts), so a dense reference over those values is the reference of the kernel.
import type { TensorFormats } from '../ir/formats.js';
import { cacheBytes, type QuantCache } from '../quant/layout.js';
import type { SalientMarks } from '../quant/marks.js';
import { randomQuantizedCache } from './inputs.js';
import { referenceDequantize } from './reference-quant.js';

export interface StoredRun {
  /** What the run binds for each quantized cache. */
  readonly caches: { k?: QuantCache; v?: QuantCache };
  /** The f32 values each quantized cache holds, [B, Hkv, Nk, D or Dv]: the reference's k / v. */
  readonly values: { k?: Float32Array; v?: Float32Array };
  /** Bytes of each quantized cache (every tensor of its layout). */
  readonly bytes: { k?: number; v?: number };
}

/**
 * The quantized caches of `formats` (none when k and v are floats), from normal values; salient
 * tokens are those the run's flag tensor (in `tensors`, by the format's tensor name) marks.
 */
export function storedRun(
  formats: TensorFormats,
  s: { B: number; Hkv: number; Nk: number; D: number; Dv: number },
  rand: () => number,
  tensors: Readonly<Record<string, Int32Array | Float32Array>> = {},
): StoredRun {
  const caches: { k?: QuantCache; v?: QuantCache } = {};
  const values: { k?: Float32Array; v?: Float32Array } = {};
  const bytes: { k?: number; v?: number } = {};
  for (const which of ['k', 'v'] as const) {
    const t = formats[which];
    if (t.kind !== 'quant') continue;
    const f = t.format;
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: which === 'k' ? s.D : s.Dv };
    const by = f.kind === 'int' ? f.salient?.by : undefined;
    const marks =
      t.salient === undefined || by === undefined
        ? undefined
        : marksOf(tensors, t.salient, by, by === 'flags' ? s.Nk : undefined, s.B * s.Hkv);
    const cache = randomQuantizedCache(f, sizes, rand, marks).cache;
    caches[which] = cache;
    values[which] = referenceDequantize(f, cache, sizes, marks);
    bytes[which] = cacheBytes(f, sizes);
  }
  return { caches, values, bytes };
}

/** The salient marks in tensor `name`: flags [B, Hkv, Nk], or an index list [B, Hkv, N]. */
function marksOf(
  tensors: Readonly<Record<string, Int32Array | Float32Array>>,
  name: string,
  by: SalientMarks['by'],
  Nk: number | undefined,
  rows: number,
): SalientMarks {
  const t = tensors[name];
  if (!(t instanceof Int32Array))
    throw new Error(
      `storedRun: the salient ${by === 'flags' ? 'flags' : 'index list'} '${name}' (an Int32Array) is missing`,
    );
  return { by, data: t, n: Nk ?? (rows > 0 ? t.length / rows : 0) };
}
