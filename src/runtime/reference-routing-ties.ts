// What property tests need to judge a kernel's own selection against the routing oracle
// (reference-routing.ts): how close the ranking came to a tie (nearTieGap, DESIGN §2), and whether
// a selection is one the oracle could have made within a tolerance (checkSelection).
import type { RoutingResult } from './reference-routing-types.js';

/** A ranking metric; NaN (or missing) orders like −∞, so the ranking is total and deterministic. */
export const metricValue = (x: number | undefined): number =>
  x === undefined || Number.isNaN(x) ? -Infinity : x;

const topkOf = (r: RoutingResult): number => (r.spec.source.kind === 'topk' ? r.spec.source.k : 0);

/** The smallest ranking gap at a top-k boundary: how close a kernel's f32 ranking is to a tie. */
export interface TieGap {
  /** metric(k-th) − metric((k+1)-th), minimised over every unit; Infinity if no unit has k+1. */
  readonly gap: number;
  /** `gap` relative to the larger magnitude of the two metrics (for an f32 tolerance). */
  readonly relative: number;
  /** Where the smallest gap is (first row of the unit). */
  readonly at?: { readonly b: number; readonly g: number; readonly row: number };
}

/**
 * The near-tie report DESIGN §2 asks for: for every (batch, group, query unit) whose ranked
 * candidates outnumber k, the gap between the k-th and (k+1)-th. A backend's property test
 * skips (or re-checks with checkSelection) inputs whose `relative` gap is below its precision.
 */
export function nearTieGap(r: RoutingResult): TieGap {
  let best: TieGap = { gap: Infinity, relative: Infinity };
  const k = topkOf(r);
  if (k <= 0) return best;
  for (let b = 0; b < r.B; b++)
    for (let g = 0; g < r.G; g++)
      for (let i = 0; i < r.Nq; i++) {
        const u = r.unitOf(b, g, i);
        if (u.rows[0] !== i || u.ranked.length <= k) continue;
        const x = metricValue(u.metric.get(u.ranked[k - 1] as number));
        const y = metricValue(u.metric.get(u.ranked[k] as number));
        const gap = x - y;
        if (gap < best.gap) {
          const mag = Math.max(Math.abs(x), Math.abs(y));
          best = { gap, relative: mag > 0 ? gap / mag : gap === 0 ? 0 : Infinity, at: { b, g, row: i } };
        }
      }
  return best;
}

/**
 * Judges a kernel's selection for one query row against the oracle's, within `tol` (absolute, on
 * the ranking metric): the forced ids are all there, the rest are candidates, as many as the
 * top-k keeps, and none ranks more than `tol` below an unselected candidate. Returns what is
 * wrong, or undefined. `ids` may hold −1 padding, in any order.
 */
export function checkSelection(
  r: RoutingResult,
  b: number,
  g: number,
  row: number,
  ids: ArrayLike<number>,
  tol: number,
): string | undefined {
  const u = r.unitOf(b, g, row);
  const got = [...new Set(Array.from(ids).filter((id) => id >= 0))].sort((x, y) => x - y);
  if (r.spec.source.kind === 'from') {
    // Nothing is ranked: the selection is exact.
    const same = got.length === u.selected.length && got.every((id, i) => id === u.selected[i]);
    return same ? undefined : `selected [${got.join(', ')}], expected [${u.selected.join(', ')}]`;
  }
  const missing = u.forced.filter((id) => !got.includes(id));
  if (missing.length > 0) return `forced ids ${missing.join(', ')} are missing`;
  const cands = new Set(u.candidates);
  const stray = got.filter((id) => !cands.has(id));
  if (stray.length > 0) return `ids ${stray.join(', ')} are not candidates`;
  const picked = got.filter((id) => !u.forced.includes(id));
  const want = Math.min(topkOf(r), u.ranked.length);
  if (picked.length !== want) return `${picked.length} ranked ids selected, expected ${want}`;
  const chosen = new Set(picked);
  const worst = picked.reduce((m, id) => Math.min(m, metricValue(u.metric.get(id))), Infinity);
  const rest = u.ranked.filter((id) => !chosen.has(id));
  const better = rest.find((id) => metricValue(u.metric.get(id)) > worst + tol);
  return better === undefined ? undefined : `id ${better} ranks above a selected id by more than ${tol}`;
}
