// The oracle for data-dependent sparsity (docs/LANGUAGE.md, "Pooling, routing and selection"):
// pooling, affinity, candidates, deterministic top-k, forced units, voting and index tensors,
// computed directly and naively in float64 with no code shared with src/ir. Its result is a
// membership test that referenceAttention ANDs with the static mask, plus the selected ids in the
// layout a kernel emits them, the selected-block density, and what property tests need to judge
// a kernel's own selection (nearTieGap, checkSelection).
import type { AttentionDecl } from '../dsl/ast.js';
import { declPredicates, declRouting, type EvalEnv } from './ast-eval.js';
import { referenceAttention, type RefInputs, type RefResult } from './reference.js';
import type { PoolReducer, RoutingResult, RoutingSpec, UnitSelection } from './reference-routing-types.js';
import { dot, fail, layout, pool, validate } from './reference-routing-layout.js';
import type { Layout } from './reference-routing-layout.js';

export type * from './reference-routing-types.js';
import { metricValue as val } from './reference-routing-ties.js';
export { checkSelection, nearTieGap, type TieGap } from './reference-routing-ties.js';

type StaticMask = (b: number, h: number, q: number, k: number) => boolean;

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

export function referenceRouting(inp: RefInputs, spec: RoutingSpec, staticMask?: StaticMask): RoutingResult {
  const c = routingCall(inp, spec, staticMask);
  const { B, Hq, Nq } = inp;
  const { G, K, group } = c;
  const indices = new Int32Array(B * G * Nq * K).fill(-1);
  const byRow: UnitSelection[] = new Array(B * G * Nq);
  for (let b = 0; b < B; b++) {
    const keyVec = pooledKeys(c, b);
    for (let g = 0; g < G; g++) {
      const heads = [...Array(Hq).keys()].filter((h) => group(h) === g);
      for (const rows of c.lay.units) {
        const sel = selectUnit(c, b, g, heads, rows, keyVec);
        for (const i of rows) {
          byRow[(b * G + g) * Nq + i] = sel;
          indices.set(sel.selected, ((b * G + g) * Nq + i) * K);
        }
      }
    }
  }
  const { keyId, present } = c.lay;
  return finish(inp, spec, { G, K, indices, group, byRow, keyId, present, staticMask });
}

/** What every unit's selection in one call shares: sizes, counts, groups, ids and the static mask. */
interface RoutingCall {
  readonly inp: RefInputs;
  readonly spec: RoutingSpec;
  readonly scale: number;
  readonly first: number;
  readonly local: number;
  /** Query heads per kv head. */
  readonly perGroup: number;
  /** Selection groups (1, Hkv or Hq) and the group of each query head. */
  readonly G: number;
  readonly group: (h: number) => number;
  /** Index-row width: the selected ids at most, −1 padded. */
  readonly K: number;
  readonly lay: Layout;
  readonly allowed: (b: number, h: number, i: number, j: number) => boolean;
}

/** Validates the spec and fixes everything that does not depend on the batch, group or unit. */
function routingCall(inp: RefInputs, spec: RoutingSpec, staticMask: StaticMask | undefined): RoutingCall {
  const { Hq, Hkv, Nq, Nk, D } = inp;
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
  const lay = layout(spec, Nq, Nk, qOffset, kOffset);
  const allowed = (b: number, h: number, i: number, j: number): boolean =>
    staticMask ? staticMask(b, h, i + qOffset, j + kOffset) : true;
  const K = (source.kind === 'topk' ? source.k : source.capacity) + first + local;
  return { inp, spec, scale, first, local, perGroup, G, group, K, lay, allowed };
}

/** Pooled key vectors of batch b, memoised per (kv head, id): every group and unit reuses them. */
function pooledKeys(
  c: RoutingCall,
  b: number,
): (kvh: number, id: number, r: PoolReducer | 'raw') => Float64Array {
  const { k, Hkv, Nk, D } = c.inp;
  const pooledK = new Map<string, Float64Array>();
  return (kvh, id, r) => {
    const key = `${kvh}:${id}`;
    const v = pooledK.get(key) ?? pool(k, (b * Hkv + kvh) * Nk, c.lay.keysOf.get(id) ?? [], D, r);
    pooledK.set(key, v);
    return v;
  };
}

/** One unit's selection: candidates, ranking, forced ids, and the ids chosen or given. */
function selectUnit(
  c: RoutingCall,
  b: number,
  g: number,
  heads: readonly number[],
  rows: readonly number[],
  keyVec: ReturnType<typeof pooledKeys>,
): UnitSelection {
  const { spec, first, local, lay } = c;
  const { source } = spec;
  const anchor = lay.queryId[rows[0] as number] as number;
  const perHead = heads.map((h) => headAffinities(c, b, h, rows, keyVec));
  const candSet = new Set(perHead.flatMap((x) => x.cand));
  const candidates = lay.present.filter((id) => candSet.has(id));
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
  const chosen = chosenIds(c, b, g, rows, ranked).filter((id) => id >= 0 && lay.keysOf.has(id)); // −1 pads; other ids have no keys here
  const selected = [...new Set([...forced, ...chosen])].sort((x, y) => x - y);
  return { rows, anchor, candidates, metric, forced, ranked, selected };
}

/** One voting head: the ids it has an allowed pair with, and (top-k) their affinities. */
function headAffinities(
  c: RoutingCall,
  b: number,
  h: number,
  rows: readonly number[],
  keyVec: ReturnType<typeof pooledKeys>,
): { cand: number[]; aff: Map<number, number> } {
  const { q, Hq, Nq, D } = c.inp;
  const { source } = c.spec;
  const { keysOf, present } = c.lay;
  const cand = present.filter((id) => rows.some((i) => keysOf.get(id)?.some((j) => c.allowed(b, h, i, j))));
  const aff = new Map<number, number>();
  if (source.kind === 'topk') {
    const qv = pool(q, (b * Hq + h) * Nq, rows, D, source.q);
    for (const id of cand) aff.set(id, c.scale * dot(qv, keyVec(Math.floor(h / c.perGroup), id, source.key)));
  }
  return { cand, aff };
}

/** Top-k takes the k best ranked ids; `from` reads the given index rows of the unit's queries. */
function chosenIds(
  c: RoutingCall,
  b: number,
  g: number,
  rows: readonly number[],
  ranked: number[],
): number[] {
  const { source } = c.spec;
  if (source.kind === 'topk') return ranked.slice(0, source.k);
  const chosen: number[] = [];
  for (const i of rows) {
    const at = ((b * c.G + g) * c.inp.Nq + i) * source.capacity;
    for (let s = 0; s < source.capacity; s++) chosen.push(source.indices[at + s] as number);
  }
  return chosen;
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
