// Artifact records of CUDA selection (select.ts): the manifest, the launch records of its passes
// (informational: the launcher of select-host.ts runs them), binding shapes and the scratch bound.
import { show } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  attendsSelected,
  capacityShapeExpr,
  pooledSides,
  routingGroups,
  routingVote,
  type RoutingPlan,
} from '../../ir/routing.js';
import type { Binding, EntryPoint } from '../artifact.js';
import { SEL_POOL_THREADS, SEL_SPAN, selName } from './select.js';
import { voteKv } from './select-vote.js';
import { SEL_ATTN_THREADS } from './select-attn.js';
import { SEL_WIDE_ROUNDS, SEL_WIDE_THREADS, WIDE_PASSES, wideTopk } from './select-wide.js';
import { SEL_FROM_THREADS, SEL_TOPK_THREADS } from './select-topk.js';

export const selScratchElemsName = (k: AttentionKernel): string => `attnc_${k.name}_route_scratch_elems`;

/** Query rows per scoring round (`rows` in scratchShape), as select.ts's sel_rows computes it. */
function roundRows(k: AttentionKernel): string {
  const r = k.routing!;
  const G = routingGroups(r);
  const per = `B * (${G} * Nk${routingVote(r) ? ` + H * cdiv(Nk, ${SEL_SPAN}) * 2` : ''})`;
  return `min(Nq, max(1, max(2^24, 8 * B * ${G} * Nq * ${capacityShapeExpr(r)}) / (${per})))`;
}

/** An upper bound of the scratch floats as a shape expression. */
function scratchShape(k: AttentionKernel): string {
  const r = k.routing!;
  const D = k.schedule.headDim;
  const parts: string[] = [];
  const pooled = pooledSides(r);
  if (pooled.k) parts.push(`B * Hkv * Nk * ${D}`);
  if (pooled.q) parts.push(`B * H * Nq * ${D}`);
  if (r.source.kind === 'topk') parts.push(`B * ${routingGroups(r)} * rows * Nk`);
  if (routingVote(r)) parts.push(`B * H * rows * cdiv(Nk, ${SEL_SPAN}) * 2`);
  if (routingVote(r)) parts.push('B * H * rows * Nk');
  if (attendsSelected(r)) parts.push(`B * H * Nq * 16 * ${k.schedule.valueDim + 2}`);
  // The wide top-k's counters (select-wide.ts) at the smallest chunk, so an upper bound.
  if (wideTopk(r))
    parts.push(
      `B * ${routingGroups(r)} * rows * (${SEL_WIDE_ROUNDS * 256} + 2 * cdiv(Nk, ${SEL_WIDE_THREADS}))`,
    );
  return parts.join(' + ') || '0';
}

export function selectFieldDoc(k: AttentionKernel, role: 'indices' | 'scratch'): string {
  const r = k.routing!;
  return role === 'indices'
    ? `int[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r)}], written: selected ${r.unit.kind} ids (ascending, -1 padded)`
    : `scratch: ${selScratchElemsName(k)}() floats`;
}

export function selectManifest(k: AttentionKernel): object {
  const r: RoutingPlan = k.routing!;
  const src = r.source;
  return {
    unit: r.unit.kind,
    ...(r.unit.kind === 'blocks' ? { blockSize: r.unit.size } : {}),
    ...(r.unit.kind === 'chunks' ? { chunks: r.unit.tensor } : {}),
    ...(src.kind === 'from'
      ? { from: { tensor: src.tensor, groups: src.groups, capacity: src.capacity } }
      : { q: src.q, k: src.k, topk: show(src.count) }),
    vote: routingVote(r) ?? null,
    first: show(r.first),
    local: show(r.local),
    restrict: attendsSelected(r),
    indices: { dtype: 'i32', shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)] },
    scratch: {
      dtype: 'f32',
      elemsFunction: selScratchElemsName(k),
      shape: [scratchShape(k)],
      ...(src.kind === 'from' ? {} : { rows: roundRows(k) }),
    },
  };
}

/** A launch record of selection pass `pass` (informational for CUDA: the launcher runs them). */
const selEntry = (
  k: AttentionKernel,
  pass: string,
  threads: number,
  grid: [string, string, string],
  bindings: string[],
): EntryPoint => ({
  name: selName(k, pass),
  role: 'routing',
  workgroupSize: [threads, 1, 1],
  grid,
  bindings,
});

const userTensors = (k: AttentionKernel): string[] => k.tensors.map((t) => t.name);

/** Launch record of the `pool` stage of `side`. */
export function selectPoolEntry(k: AttentionKernel, side: 'k' | 'q'): EntryPoint {
  const grid: [string, string, string] = side === 'k' ? ['Nk', 'Hkv', 'B'] : ['Nq', 'H', 'B'];
  return selEntry(k, `pool_${side}`, SEL_POOL_THREADS, grid, [side, 'route_scratch', ...userTensors(k)]);
}

/** Launch records of the `rank` stage: `from` reads the tensor; else (vote,) score and top-k. */
export function selectRankEntries(k: AttentionKernel): EntryPoint[] {
  const r = k.routing!;
  const G = routingGroups(r);
  const user = userTensors(k);
  const span = `cdiv(Nk, ${SEL_SPAN}) * Nq`;
  if (r.source.kind === 'from')
    return [selEntry(k, 'from', SEL_FROM_THREADS, ['Nq', G, 'B'], ['indices', ...user])];
  return [
    ...(routingVote(r)
      ? [selEntry(k, 'vote_stats', SEL_SPAN, [span, G, 'B'], ['q', 'k', 'route_scratch', ...user])]
      : []),
    ...(voteKv(k)
      ? [selEntry(k, 'vote_kv', SEL_SPAN, [`${span} * vparts`, G, 'B'], ['q', 'k', 'route_scratch', ...user])]
      : []),
    selEntry(k, 'score', SEL_SPAN, [span, G, 'B'], ['q', 'k', 'route_scratch', ...user]),
    selEntry(k, 'topk', SEL_TOPK_THREADS, ['Nq', G, 'B'], ['route_scratch', 'indices', ...user]),
    ...(wideTopk(r)
      ? WIDE_PASSES.map((p) =>
          selEntry(k, p, SEL_WIDE_THREADS, ['wchunks * Nq', G, 'B'], ['route_scratch', 'indices', ...user]),
        )
      : []),
  ];
}

/** The attention over each row's selected keys: split over key ranges, then merged. */
export function selectAttentionEntries(k: AttentionKernel): EntryPoint[] {
  const user = userTensors(k);
  return [
    selEntry(
      k,
      'attn',
      SEL_ATTN_THREADS,
      ['splits * Nq', 'H', 'B'],
      ['q', 'k', 'v', 'out', 'lse', 'indices', 'route_scratch', ...user],
    ),
    selEntry(k, 'merge', SEL_ATTN_THREADS, ['Nq', 'H', 'B'], ['route_scratch', 'out', 'lse']),
  ];
}

export function selectBindingShapes(
  k: AttentionKernel,
): Record<'indices' | 'scratch', { dtype: Binding['dtype']; shape: string[]; access: Binding['access'] }> {
  const r = k.routing!;
  return {
    indices: {
      dtype: 'i32',
      shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)!],
      access: 'read_write',
    },
    scratch: { dtype: 'f32', shape: [scratchShape(k)], access: 'read_write' },
  };
}
