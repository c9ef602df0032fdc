// Random quantized caches for a compiled kernel's run (`attnc run`, tests): the caches a run binds
// (`caches: { k, v }`) and, for the reference, the values they define (the oracle's reading,
// reference-quant.ts), so a dense reference over those values is the reference of the kernel.
import type { TensorFormats } from '../ir/formats.js';
import type { KVFormats } from '../quant/format.js';
import { cacheBytes, type QuantCache } from '../quant/layout.js';
import { randomStoredInputs } from './inputs.js';
import { referenceDequantize } from './reference-quant.js';

export interface StoredRun {
  /** What the run binds for each quantized cache. */
  readonly caches: { k?: QuantCache; v?: QuantCache };
  /** The f32 values each quantized cache holds, [B, Hkv, Nk, D or Dv]: the reference's k / v. */
  readonly values: { k?: Float32Array; v?: Float32Array };
  /** Bytes of each quantized cache (every tensor of its layout). */
  readonly bytes: { k?: number; v?: number };
}

/** The quantized caches of `formats` (none when k and v are floats), from normal values. */
export function storedRun(
  formats: TensorFormats,
  s: { B: number; Hkv: number; Nk: number; D: number; Dv: number },
  rand: () => number,
): StoredRun {
  const kv: KVFormats = {
    ...(formats.k.kind === 'quant' ? { k: formats.k.format } : {}),
    ...(formats.v.kind === 'quant' ? { v: formats.v.format } : {}),
  };
  const made = randomStoredInputs(kv, s, rand);
  const caches = made.caches;
  const values: { k?: Float32Array; v?: Float32Array } = {};
  const bytes: { k?: number; v?: number } = {};
  for (const which of ['k', 'v'] as const) {
    const f = kv[which];
    const cache = caches[which];
    if (f === undefined || cache === undefined) continue;
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: which === 'k' ? s.D : s.Dv };
    values[which] = referenceDequantize(f, cache, sizes);
    bytes[which] = cacheBytes(f, sizes);
  }
  return { caches, values, bytes };
}
