// The ids, units and pooled vectors of one referenceRouting call, and the checks of its spec: the
// bookkeeping half of the routing oracle, kept apart from the selection rules (reference-routing.ts).
import type { PoolReducer, RoutingSpec, RoutingUnit } from './reference-routing-types.js';

export function fail(msg: string): never {
  throw new Error(`referenceRouting: ${msg}`);
}

/** Id of position p under the unit, validating chunk ids (in range, integer, ≥ 0). */
function idOf(unit: RoutingUnit, p: number): number {
  if (unit.kind === 'tokens') return p;
  if (unit.kind === 'blocks') return Math.floor(p / unit.size);
  if (p < 0 || p >= unit.ids.length)
    fail(`position ${p} is outside the chunk-id tensor (${unit.ids.length})`);
  const id = unit.ids[p] as number;
  if (!Number.isInteger(id) || id < 0) fail(`chunk id ${id} at position ${p} is not an integer >= 0`);
  return id;
}

/** Reduces `rows` (ascending) of a [.., N, D] tensor at `base` to one D-vector. */
export function pool(
  x: ArrayLike<number>,
  base: number,
  rows: readonly number[],
  D: number,
  r: PoolReducer | 'raw',
): Float64Array {
  const out = new Float64Array(D);
  const row0 = rows[0] as number;
  if (r === 'raw' && rows.length !== 1) fail(`a raw side needs one row per unit, found ${rows.length}`);
  if (r === 'raw' || r === 'first') {
    for (let d = 0; d < D; d++) out[d] = x[(base + row0) * D + d] as number;
    return out;
  }
  if (r === 'max') out.fill(-Infinity);
  for (const i of rows) {
    for (let d = 0; d < D; d++) {
      const v = x[(base + i) * D + d] as number;
      out[d] = r === 'max' ? Math.max(out[d] as number, v) : (out[d] as number) + v;
    }
  }
  if (r === 'max') return out;
  const f = r === 'lnmean' ? Math.sqrt(rows.length) / rows.length : 1 / rows.length;
  for (let d = 0; d < D; d++) out[d] = (out[d] as number) * f;
  return out;
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let d = 0; d < a.length; d++) s += (a[d] as number) * (b[d] as number);
  return s;
}

/** Groups 0 … n−1 by key, in order of first appearance (keys are non-decreasing here). */
function groupBy(n: number, key: (i: number) => number): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const id = key(i);
    const g = m.get(id);
    if (g) g.push(i);
    else m.set(id, [i]);
  }
  return m;
}

/** The ids of one call: keys grouped by id (ascending), each query row's id, the query units. */
export interface Layout {
  readonly keyId: readonly number[];
  readonly keysOf: ReadonlyMap<number, readonly number[]>;
  readonly present: readonly number[];
  readonly queryId: readonly number[];
  /** Rows that share a selection: a pooled query block, else each row alone. */
  readonly units: readonly (readonly number[])[];
}

export function layout(spec: RoutingSpec, Nq: number, Nk: number, qOffset: number, kOffset: number): Layout {
  const { unit, source } = spec;
  const keyId = Array.from({ length: Nk }, (_, j) => idOf(unit, j + kOffset));
  for (let j = 1; j < Nk; j++) {
    if ((keyId[j] as number) < (keyId[j - 1] as number))
      fail(`chunk ids decrease at position ${j + kOffset}`);
  }
  const keysOf = groupBy(Nk, (j) => keyId[j] as number);
  const queryId = Array.from({ length: Nq }, (_, i) => idOf(unit, i + qOffset));
  const pooledQ = source.kind === 'topk' && source.q !== 'raw';
  const units = pooledQ
    ? [...groupBy(Nq, (i) => queryId[i] as number).values()]
    : Array.from({ length: Nq }, (_, i) => [i]);
  return { keyId, keysOf, present: [...keysOf.keys()], queryId, units };
}

/** Rejects block sizes and counts that are not integers in range, and negative key positions. */
export function validate(spec: RoutingSpec, kOffset: number): void {
  const { unit, source } = spec;
  if (unit.kind === 'blocks' && !(Number.isInteger(unit.size) && unit.size >= 1)) {
    fail(`the block size must be an integer >= 1, got ${unit.size}`);
  }
  const counts = { first: spec.first ?? 0, local: spec.local ?? 0, k: source.kind === 'topk' ? source.k : 0 };
  for (const [name, n] of Object.entries(counts)) {
    if (!Number.isInteger(n) || n < 0) fail(`${name} must be an integer >= 0, got ${n}`);
  }
  // Ids are absolute and −1 pads an index row, so no key may have a negative position.
  if (kOffset < 0) fail(`routing needs key positions >= 0, but kOffset is ${kOffset}`);
}
