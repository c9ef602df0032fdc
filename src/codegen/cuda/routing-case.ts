// Which CUDA pass family runs a routing plan, decided once on the IR's cases (ir/routing.ts
// routingPasses): ranked pooled blocks that the attention visits run routing.ts's dedicated
// passes (pool, shared-memory top-k, a tile bitmap in the attention); every other plan — tokens,
// `from`, chunks and `emit` — runs select.ts's slot-based passes. Kept apart from both so that
// the args layout can ask without importing either.
import type { AttentionKernel } from '../../ir/kernel.js';
import { isRankedBlocks, routingPasses, type RankedBlocksPlan, type RoutingPlan } from '../../ir/routing.js';

export type CudaRoutingPath = 'ranked-blocks' | 'select';

export function cudaRoutingPath(r: RoutingPlan): CudaRoutingPath {
  switch (routingPasses(r)) {
    case 'read-from':
    case 'token-select':
      return 'select';
    case 'pool-rank':
      return r.unit.kind === 'blocks' && r.attention === 'selected' ? 'ranked-blocks' : 'select';
  }
}

/** Whether select.ts (not routing.ts's ranked block routing) runs `k`'s routing. */
export const selectHandles = (k: AttentionKernel): boolean =>
  k.routing !== undefined && cudaRoutingPath(k.routing) === 'select';

/** `k`'s plan for routing.ts's passes (they run ranked blocks only). */
export function rankedBlocksOf(k: AttentionKernel): RankedBlocksPlan {
  const r = k.routing;
  if (r === undefined || !isRankedBlocks(r) || cudaRoutingPath(r) !== 'ranked-blocks')
    throw new Error('internal: CUDA block routing called for a plan it does not run');
  return r;
}

/**
 * The query heads [lo, hi) whose affinities rank ranked-block group g (C text over Args `a`): every
 * head (vote heads), the kv head's GQA group (vote groups), or head g alone (no vote).
 */
export function voterRange(vote: RankedBlocksPlan['source']['vote']): readonly [string, string] {
  return vote === 'heads'
    ? ['0', 'a.H']
    : vote === 'groups'
      ? ['g * (a.H / a.Hkv)', '(g + 1) * (a.H / a.Hkv)']
      : ['g', 'g + 1'];
}
