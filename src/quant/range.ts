// Which parts of a cache a `quantize` kernel rewrites when it quantizes the token rows
// [start, start + n) (docs/LANGUAGE.md, "Quantizing a range of rows"). The rule: after the call the
// cache equals src/quant's `quantize` of the whole source, provided it did before and the source
// changed only in those rows. So a call rewrites every row and scale group that depends on them:
// - per-token scales (and fp8 without a scale): the rows themselves;
// - per-channel groups of g tokens (KIVI keys): every group the range touches, all of its rows;
// - one scale over all tokens (per tensor, per channel without a group) or a normalizer: the whole
//   cache (the range changes statistics that every row's codes depend on).
// The recent window (last min(r, Nk) tokens, kept in 16 bits) is always rewritten whole.
import type { QuantFormat } from './format.js';

/** True when any row's codes depend on every quantized row (a whole-cache statistic). */
export function quantizesWhole(f: QuantFormat): boolean {
  const per = f.scale?.per;
  return f.norm !== undefined || per?.kind === 'tensor' || (per?.kind === 'channel' && !per.group);
}

/** The token rows [first, end) whose codes and scale groups a call over [start, start + n) rewrites. */
export function rewrittenRows(
  f: QuantFormat,
  Nk: number,
  start: number,
  n: number,
): { readonly first: number; readonly end: number } {
  if (!(Number.isInteger(start) && Number.isInteger(n) && start >= 0 && n >= 0 && start + n <= Nk))
    throw new Error(`quantize: rows [${start}, ${start} + ${n}) are not inside the cache's ${Nk} tokens`);
  if (n === 0) return { first: start, end: start };
  if (quantizesWhole(f)) return { first: 0, end: Nk };
  const per = f.scale?.per;
  if (per?.kind === 'channel' && per.group) {
    const g = per.group;
    return { first: Math.floor(start / g) * g, end: Math.min(Nk, Math.ceil((start + n) / g) * g) };
  }
  return { first: start, end: start + n };
}
