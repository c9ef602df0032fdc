// The oracle for data-dependent sparsity (docs/LANGUAGE.md, "Pooling, routing and selection"):
// pooling, affinity, candidates, deterministic top-k, forced units, voting and index tensors,
// computed directly and naively in float64 with no code shared with src/ir. Its result is a
// membership test that referenceAttention ANDs with the static mask, plus the selected ids in the
// layout a kernel emits them, the selected-block density, and what property tests need to judge
// a kernel's own selection (nearTieGap, checkSelection).
import type { AttentionDecl } from '../dsl/ast.js';
import { declPredicates, declRouting, type EvalEnv } from './ast-eval.js';
import { referenceAttention, type RefInputs, type RefResult } from './reference.js';
import type {
  PoolReducer,
  RoutingResult,
  RoutingSpec,
  RoutingUnit,
  UnitSelection,
} from './reference-routing-types.js';

export type * from './reference-routing-types.js';
import { metricValue as val } from './reference-routing-ties.js';
export { checkSelection, nearTieGap, type TieGap } from './reference-routing-ties.js';

type StaticMask = (b: number, h: number, q: number, k: number) => boolean;

function fail(msg: string): never {
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
function pool(
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

function dot(a: Float64Array, b: Float64Array): number {
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
interface Layout {
  readonly keyId: readonly number[];
  readonly keysOf: ReadonlyMap<number, readonly number[]>;
  readonly present: readonly number[];
  readonly queryId: readonly number[];
  /** Rows that share a selection: a pooled query block, else each row alone. */
  readonly units: readonly (readonly number[])[];
}

function layout(spec: RoutingSpec, Nq: number, Nk: number, qOffset: number, kOffset: number): Layout {
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

/** The ranking metric: the one head's affinity, or (vote) Σ over heads of its softmax. */
function rankMetric(affs: readonly ReadonlyMap<number, number>[], vote: boolean): Map<number, number> {
  const metric = new Map<number, number>();
  if (!vote) {
    for (const [id, a] of affs[0] ?? []) metric.set(id, val(a));
    return metric;
  }
  for (const aff of affs) {
    let m = -Infinity;
    for (const a of aff.values()) m = Math.max(m, val(a));
    if (m === -Infinity) continue; // a head with no finite affinity casts no vote
    let z = 0;
    for (const a of aff.values()) z += Math.exp(val(a) - m);
    for (const [id, a] of aff) metric.set(id, (metric.get(id) ?? 0) + Math.exp(val(a) - m) / z);
  }
  return metric;
}

function validate(spec: RoutingSpec, kOffset: number): void {
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

export function referenceRouting(inp: RefInputs, spec: RoutingSpec, staticMask?: StaticMask): RoutingResult {
  const { q, k, B, Hq, Hkv, Nq, Nk, D } = inp;
  const qOffset = inp.qOffset ?? Nk - Nq;
  const kOffset = inp.kOffset ?? 0;
  validate(spec, kOffset);
  const scale = Math.fround(inp.scale ?? 1 / Math.sqrt(D));
  const { source } = spec;
  const [first, local] = [spec.first ?? 0, spec.local ?? 0];
  const perGroup = Hq / Hkv;
  const G =
    source.kind === 'from' ? source.groups : spec.vote === 'heads' ? 1 : spec.vote === 'groups' ? Hkv : Hq;
  if (G !== 1 && G !== Hkv && G !== Hq) fail(`${G} selection groups: expected 1, Hkv or Hq`);
  const group = (h: number): number => (G === Hq ? h : G === Hkv ? Math.floor(h / perGroup) : 0);
  const { keyId, keysOf, present, queryId, units } = layout(spec, Nq, Nk, qOffset, kOffset);
  const allowed = (b: number, h: number, i: number, j: number): boolean =>
    staticMask ? staticMask(b, h, i + qOffset, j + kOffset) : true;

  const K = (source.kind === 'topk' ? source.k : source.capacity) + first + local;
  const indices = new Int32Array(B * G * Nq * K).fill(-1);
  const byRow: UnitSelection[] = new Array(B * G * Nq);
  for (let b = 0; b < B; b++) {
    const pooledK = new Map<string, Float64Array>();
    const keyVec = (kvh: number, id: number, r: PoolReducer | 'raw'): Float64Array => {
      const key = `${kvh}:${id}`;
      const v = pooledK.get(key) ?? pool(k, (b * Hkv + kvh) * Nk, keysOf.get(id) ?? [], D, r);
      pooledK.set(key, v);
      return v;
    };
    for (let g = 0; g < G; g++) {
      const heads = [...Array(Hq).keys()].filter((h) => group(h) === g);
      for (const rows of units) {
        const anchor = queryId[rows[0] as number] as number;
        // Per voting head: the ids it has an allowed pair with, and their affinities.
        const perHead = heads.map((h) => {
          const cand = present.filter((id) =>
            rows.some((i) => keysOf.get(id)?.some((j) => allowed(b, h, i, j))),
          );
          const aff = new Map<number, number>();
          if (source.kind === 'topk') {
            const qv = pool(q, (b * Hq + h) * Nq, rows, D, source.q);
            for (const id of cand)
              aff.set(id, scale * dot(qv, keyVec(Math.floor(h / perGroup), id, source.key)));
          }
          return { cand, aff };
        });
        const candSet = new Set(perHead.flatMap((x) => x.cand));
        const candidates = present.filter((id) => candSet.has(id));
        const metric = rankMetric(
          perHead.map((x) => x.aff),
          spec.vote !== undefined,
        );
        if (source.kind === 'topk') for (const id of candidates) if (!metric.has(id)) metric.set(id, 0);
        const isForced = (id: number): boolean => id < first || (id > anchor - local && id <= anchor);
        const forced = candidates.filter(isForced);
        const ranked = candidates
          .filter((id) => !isForced(id))
          .sort((x, y) => val(metric.get(y)) - val(metric.get(x)) || x - y);
        let chosen: number[] = [];
        if (source.kind === 'topk') chosen = ranked.slice(0, source.k);
        else
          for (const i of rows) {
            const at = ((b * G + g) * Nq + i) * source.capacity;
            for (let c = 0; c < source.capacity; c++) chosen.push(source.indices[at + c] as number);
          }
        chosen = chosen.filter((id) => id >= 0 && keysOf.has(id)); // −1 pads; other ids have no keys here
        const selected = [...new Set([...forced, ...chosen])].sort((x, y) => x - y);
        const sel: UnitSelection = { rows, anchor, candidates, metric, forced, ranked, selected };
        for (const i of rows) {
          byRow[(b * G + g) * Nq + i] = sel;
          indices.set(selected, ((b * G + g) * Nq + i) * K);
        }
      }
    }
  }
  return finish(inp, spec, { G, K, indices, group, byRow, keyId, present, staticMask });
}

/** Membership, the combined mask and the densities of a computed routing. */
function finish(
  inp: RefInputs,
  spec: RoutingSpec,
  r: {
    G: number;
    K: number;
    indices: Int32Array;
    group: (h: number) => number;
    byRow: readonly UnitSelection[];
    keyId: readonly number[];
    present: readonly number[];
    staticMask: StaticMask | undefined;
  },
): RoutingResult {
  const { B, Hq, Nq, Nk } = inp;
  const qOffset = inp.qOffset ?? Nk - Nq;
  const kOffset = inp.kOffset ?? 0;
  const { G, group, byRow, keyId, staticMask } = r;
  const sets = byRow.map((s) => new Set(s.selected));
  const unitOf = (b: number, g: number, i: number): UnitSelection =>
    byRow[(b * G + g) * Nq + i] ?? fail(`no unit for b=${b} g=${g} row=${i}`);
  const selected = (b: number, h: number, qp: number, kp: number): boolean => {
    const [i, j] = [qp - qOffset, kp - kOffset];
    if (i < 0 || i >= Nq || j < 0 || j >= Nk) return false;
    return sets[(b * G + group(h)) * Nq + i]?.has(keyId[j] as number) ?? false;
  };
  const mask = (b: number, h: number, qp: number, kp: number): boolean =>
    (staticMask ? staticMask(b, h, qp, kp) : true) && (spec.restrict === false || selected(b, h, qp, kp));
  let picked = 0;
  let pairs = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++)
      for (let i = 0; i < Nq; i++) {
        picked += unitOf(b, group(h), i).selected.length;
        for (let j = 0; j < Nk; j++) if (mask(b, h, i + qOffset, j + kOffset)) pairs++;
      }
  const rows = B * Hq * Nq;
  const density = rows * r.present.length > 0 ? picked / (rows * r.present.length) : 0;
  const pairDensity = rows * Nk > 0 ? pairs / (rows * Nk) : 0;
  const { K, indices } = r;
  return { spec, B, Nq, G, K, indices, group, unitOf, selected, mask, density, pairDensity };
}

/**
 * The whole oracle for one declaration: its static mask and score (declPredicates), its routing
 * (declRouting → referenceRouting), and dense attention under the combined mask.
 */
export function referenceDecl(
  decl: AttentionDecl,
  inp: RefInputs,
  env: EvalEnv,
): RefResult & { routing?: RoutingResult } {
  const pred = declPredicates(decl, env);
  const spec = declRouting(decl, env);
  if (spec === undefined) return referenceAttention(inp, pred);
  const routing = referenceRouting(inp, spec, pred.mask);
  return { ...referenceAttention(inp, { mask: routing.mask, score: pred.score }), routing };
}
