// Which tokens of a cache are salient (stored with wider codes), from the runtime tensor a
// `salient … from t` clause names: flags `[B, Hkv, Nk]` (non-zero = salient) or token indices
// `[B, Hkv, N]` (negative entries are padding; entries outside [0, Nk) are ignored; repeats are
// harmless).
import type { SalientBy } from './format.js';
import type { CacheSizes } from './layout.js';

export interface SalientMarks {
  readonly by: SalientBy;
  readonly data: Int32Array;
  /** The last dimension: Nk for flags, N for an index list. */
  readonly n: number;
}

/** One byte per token, [B, Hkv, Nk]: 1 where the token is salient. */
export function salientFlags(marks: SalientMarks, s: CacheSizes): Uint8Array {
  const out = new Uint8Array(s.B * s.Hkv * s.Nk);
  const want = s.B * s.Hkv * marks.n;
  if (marks.data.length !== want)
    throw new Error(`salient tensor: length ${marks.data.length}, expected ${want} for [B, Hkv, ${marks.n}]`);
  if (marks.by === 'flags' && marks.n !== s.Nk)
    throw new Error(`salient flags: last dimension ${marks.n}, expected Nk = ${s.Nk}`);
  for (let row = 0; row < s.B * s.Hkv; row++)
    for (let i = 0; i < marks.n; i++) {
      const m = marks.data[row * marks.n + i]!;
      if (marks.by === 'flags') out[row * s.Nk + i] = m !== 0 ? 1 : 0;
      else if (m >= 0 && m < s.Nk) out[row * s.Nk + m] = 1;
    }
  return out;
}
