// The stage list of a kernel: the passes a backend launches, in order, as a typed list computed
// once here (pipeline pass `stages`) instead of re-derived by each backend. Each backend renders
// the list through a table keyed by stage kind (codegen/*/stages.ts), typed so that a kind it
// has no renderer for is a compile error; an artifact's entry points come from that rendering.
// The kinds are those the backends emit today (docs/DESIGN-NOTES.md): tensor summaries for tile
// classification, then a routing plan's pooling and ranking passes, then the attention. Split-KV
// decoding and its merge are a variant of the attention stage (WGSL's decode module, CUDA's
// decode path), not stages of their own. The importance pass, when asked for, comes last: it
// reads the final lse.
import type { ImportanceMode, SummarySlot } from './kernel.js';
import { pooledSides, routingPasses, type RoutingPasses, type RoutingPlan } from './routing.js';

export type Stage =
  /** Min/max per block of a 1-D tensor that tile classification reads (RANGE_MIN/RANGE_MAX). */
  | { readonly kind: 'summary'; readonly tensor: string }
  /** Routing: one pooled vector per unit (block or chunk) of a side, into the scratch buffer. */
  | { readonly kind: 'pool'; readonly side: 'k' | 'q' }
  /** Routing: fill `indices` — rank pooled units, radix-select keys, or read a `from` tensor. */
  | { readonly kind: 'rank'; readonly passes: RoutingPasses }
  /** The attention: over every key the mask allows, or over each row's selected ids only. */
  | { readonly kind: 'attention'; readonly keys: 'all' | 'selected' }
  /** The importance output: a second pass over key tiles that reads the attention's final lse. */
  | { readonly kind: 'importance'; readonly mode: ImportanceMode };

export type StageKind = Stage['kind'];

/** A renderer per stage kind: `{ [K in StageKind]: render a Stage of kind K }`. */
export type StageTable<Out, Cx> = {
  readonly [K in StageKind]: (stage: Extract<Stage, { kind: K }>, cx: Cx) => Out;
};

/** Renders every stage through `table` (the mapped type makes a missing kind a type error). */
export function renderStages<Out, Cx>(stages: readonly Stage[], table: StageTable<Out, Cx>, cx: Cx): Out[] {
  return stages.map((s) => (table[s.kind] as (stage: Stage, cx: Cx) => Out)(s, cx));
}

/** The stages of a kernel with `summaries` and (optionally) a routing plan, in launch order. */
export function kernelStages(k: {
  readonly summaries?: readonly SummarySlot[];
  readonly routing?: RoutingPlan;
  readonly outputs?: { readonly importance?: ImportanceMode };
}): readonly Stage[] {
  const stages: Stage[] = (k.summaries ?? []).map(({ tensor }) => ({ kind: 'summary', tensor }));
  const r = k.routing;
  if (r) {
    const pooled = pooledSides(r);
    if (pooled.k) stages.push({ kind: 'pool', side: 'k' });
    if (pooled.q) stages.push({ kind: 'pool', side: 'q' });
    stages.push({ kind: 'rank', passes: routingPasses(r) });
  }
  stages.push({ kind: 'attention', keys: r?.attention === 'selected' ? 'selected' : 'all' });
  const importance = k.outputs?.importance;
  if (importance) stages.push({ kind: 'importance', mode: importance });
  return Object.freeze(stages);
}

/** One line per stage, for --dump-ir. */
export function dumpStages(stages: readonly Stage[]): string {
  const text = (s: Stage): string => {
    switch (s.kind) {
      case 'summary':
        return `summary(${s.tensor})`;
      case 'pool':
        return `pool(${s.side})`;
      case 'rank':
        return `rank(${s.passes})`;
      case 'attention':
        return `attention(${s.keys} keys)`;
      case 'importance':
        return `importance(${s.mode})`;
    }
  };
  return `stages: ${stages.map(text).join(' → ')}`;
}
