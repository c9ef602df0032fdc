// What CUDA decode mode an artifact carries (decode.ts renders it, launcher.ts launches it): the
// lanes' vector width, whether there is a decode path at all, and the lean mode of its tensor-core
// kernel, which the manifest records (the schedule's decodeLean resolved: decode-mma-lean.ts).
import { elementBytes, hasQuantizedKv } from '../../ir/formats.js';
import type { AttentionKernel, DecodeLean } from '../../ir/kernel.js';
import { hasMmaDecode } from './decode-mma.js';
import { decodeLeanOf } from './decode-mma-lean.js';
import { quantVectorWidth } from './decode-quant.js';

/** Elements per vector load: 16 bytes or less, dividing D and Dv into 8-lane chunks. */
export function decodeVectorWidth(k: AttentionKernel): number {
  const s = k.schedule;
  // Quantized caches: a lane's chunk is whole code words where it can be (decode-quant.ts).
  if (hasQuantizedKv(k.formats)) return quantVectorWidth(s.headDim, s.valueDim);
  const bytes = elementBytes(k.formats.k);
  for (const vw of [8, 4, 2, 1]) {
    if (vw * bytes <= 16 && s.headDim % (8 * vw) === 0 && s.valueDim % (8 * vw) === 0) return vw;
  }
  return 0;
}

/**
 * Whether the artifact gets a decode path: not left out (CompileOptions.decode), not routed, some
 * tile non-empty, D and Dv multiples of 8. Quantized K/V caches dequantize in its chunk loads
 * (decode-quant.ts).
 */
export function hasCudaDecode(k: AttentionKernel): boolean {
  const empty = k.tiles.kind === 'static' && k.tiles.value === 'empty';
  return k.decodeVariant !== false && k.routing === undefined && !empty && decodeVectorWidth(k) > 0;
}

/**
 * Whether few-query launches take the decode path. Not with `qk int8`: decode computes Q·Kᵀ in f32,
 * and one kernel must give one answer whatever Nq is (the prefill engine runs them).
 */
export const carriesDecode = (k: AttentionKernel): boolean => hasCudaDecode(k) && k.qkInt8 === undefined;

/** The lean mode the artifact's tensor-core decode kernel is emitted with; undefined where it has none. */
export function decodeLeanRecord(k: AttentionKernel): DecodeLean | undefined {
  return carriesDecode(k) && hasMmaDecode(k, decodeVectorWidth(k)) ? decodeLeanOf(k) : undefined;
}
