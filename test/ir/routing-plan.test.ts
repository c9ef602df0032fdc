// The RoutingPlan union (ir/routing.ts) mirrors the AST, and the case analysis the backends share
// is decided once on it: the pass family, the pooled sides, the groups and the CUDA path.
import { describe, expect, it } from 'vitest';
import { cudaRoutingPath } from '../../src/codegen/cuda/routing-case.js';
import { compile } from '../../src/compile.js';
import { pooledSides, routingGroups, routingPasses, type RoutingPlan } from '../../src/ir/routing.js';

const plan = (stmt: string, params = ''): RoutingPlan =>
  compile(`attention s(${params}) {\n  ${stmt}\n  mask causal\n}`, { target: 'wgsl' }).kernel.routing!;

describe('RoutingPlan cases', () => {
  const cases = [
    {
      stmt: 'route blocks(8) topk(2) by mean(q) . max(k)',
      unit: { kind: 'blocks', size: 8 },
      passes: 'pool-rank',
      pooled: { q: true, k: true },
      cuda: 'ranked-blocks',
    },
    {
      stmt: 'route chunks(ids) topk(2) by q . mean(k)',
      params: 'ids: i32[kv]',
      unit: { kind: 'chunks', tensor: 'ids' },
      passes: 'pool-rank',
      pooled: { q: false, k: true },
      cuda: 'select',
    },
    {
      stmt: 'emit blocks(8) topk(2) by q . mean(k)',
      unit: { kind: 'blocks', size: 8 },
      passes: 'pool-rank',
      pooled: { q: false, k: true },
      cuda: 'select',
    },
    {
      stmt: 'select topk(4) by q . k vote groups',
      unit: { kind: 'tokens' },
      passes: 'token-select',
      pooled: { q: false, k: false },
      cuda: 'select',
    },
    {
      stmt: 'route blocks(8) from i',
      params: 'i: i32[batch, kv_heads, queries, 4]',
      unit: { kind: 'blocks', size: 8 },
      passes: 'read-from',
      pooled: { q: false, k: false },
      cuda: 'select',
    },
  ] as const;
  for (const c of cases)
    it(c.stmt, () => {
      const r = plan(c.stmt, 'params' in c ? c.params : '');
      expect(r.unit).toEqual(c.unit);
      expect(routingPasses(r)).toBe(c.passes);
      expect(pooledSides(r)).toEqual(c.pooled);
      expect(cudaRoutingPath(r)).toBe(c.cuda);
      expect(r.attention).toBe(c.stmt.startsWith('emit') ? 'static-mask' : 'selected');
    });

  it('a vote or a `from` tensor decides the selection groups', () => {
    expect(routingGroups(plan('select topk(4) by q . k vote groups'))).toBe('Hkv');
    expect(routingGroups(plan('select topk(4) by q . k vote heads'))).toBe('1');
    const from = plan('route blocks(8) from i', 'i: i32[batch, kv_heads, queries, 4]');
    expect(from.source).toMatchObject({ kind: 'from', tensor: 'i', groups: 'Hkv', capacity: '4' });
    expect(routingGroups(from)).toBe('Hkv');
  });
});
