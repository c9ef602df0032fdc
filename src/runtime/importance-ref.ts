// The importance side output from the dense reference's result (reference.ts computes the sum
// Σ_i p_ij and the N×N mask): 'sum' as is, 'normalized' divided per key by the number of query
// rows whose mask allows it (ZipCache's normalisation), 0 for a key no row sees.
import type { ImportanceMode } from '../ir/kernel.js';
import type { RefResult } from './reference.js';

export interface ImportanceSizes {
  readonly B: number;
  readonly Hq: number;
  readonly Nq: number;
  readonly Nk: number;
}

/** [B, Hq, Nk] importance of `ref` in `mode`. */
export function referenceImportance(ref: RefResult, s: ImportanceSizes, mode: ImportanceMode): Float64Array {
  if (mode === 'sum') return ref.importance;
  const out = new Float64Array(ref.importance.length);
  for (let bh = 0; bh < s.B * s.Hq; bh++) {
    for (let j = 0; j < s.Nk; j++) {
      let seen = 0;
      for (let i = 0; i < s.Nq; i++) seen += ref.mask[(bh * s.Nq + i) * s.Nk + j]!;
      const at = bh * s.Nk + j;
      out[at] = seen === 0 ? 0 : ref.importance[at]! / seen;
    }
  }
  return out;
}
