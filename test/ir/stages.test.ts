// The stage list (ir/stages.ts): computed once by the pipeline, printed by --dump-ir, and the
// source of every artifact's entry points on both backends.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { dumpIR } from '../../src/ir/dump.js';
import type { AttentionIR } from '../../src/ir/program.js';
import { renderStages, type Stage, type StageTable } from '../../src/ir/stages.js';

const doc = 'attention d(doc: i32[kv]) { mask doc[q] == doc[k] }';
const routed = 'attention r(top: int = 2) { route blocks(64) topk(top) by mean(q) . mean(k)\n mask causal }';
const emitted = 'attention e() { emit topk(8) by q . k\n mask causal }';

describe('stages', () => {
  it('lists summaries, routing passes and the attention in launch order', () => {
    const stages = (src: string): readonly Stage[] => compile(src, { target: 'wgsl' }).kernel.stages;
    expect(stages(doc)).toEqual([
      { kind: 'summary', tensor: 'doc' },
      { kind: 'attention', keys: 'all' },
    ]);
    expect(stages(routed)).toEqual([
      { kind: 'pool', side: 'k' },
      { kind: 'pool', side: 'q' },
      { kind: 'rank', passes: 'pool-rank' },
      { kind: 'attention', keys: 'selected' },
    ]);
    expect(stages(emitted)).toEqual([
      { kind: 'rank', passes: 'token-select' },
      { kind: 'attention', keys: 'all' },
    ]);
  });

  it('the importance output is a last stage, after the attention whose lse it reads', () => {
    for (const target of ['wgsl', 'cuda'] as const) {
      const { kernel, artifact } = compile(doc, { target, importance: 'normalized' });
      expect(kernel.stages.at(-1)).toEqual({ kind: 'importance', mode: 'normalized' });
      expect(artifact.entryPoints.at(-1)!.name).toContain('importance');
    }
    let ir: AttentionIR | undefined;
    compile(doc, { target: 'wgsl', importance: 'sum', observe: (_p, x) => (ir = x) });
    expect(dumpIR(ir!, 'stages')).toContain('stages: summary(doc) → attention(all keys) → importance(sum)');
  });

  it('--dump-ir prints them', () => {
    let ir: AttentionIR | undefined;
    compile(routed, { target: 'wgsl', observe: (_p, x) => (ir = x) });
    expect(dumpIR(ir!, 'stages')).toContain(
      'stages: pool(k) → pool(q) → rank(pool-rank) → attention(selected keys)',
    );
  });

  it('each stage renders to its entry points, in order, on both backends', () => {
    const wgsl = compile(routed, { target: 'wgsl' }).artifact.entryPoints.map((e) => e.name);
    expect(wgsl).toEqual(['route_pool_k', 'route_pool_q', 'route_topk', 'attention']);
    const cuda = compile(routed, { target: 'cuda', headDim: 64 }).artifact.entryPoints.map((e) => e.name);
    expect(cuda).toEqual([
      'attnc_r_route_pool_k',
      'attnc_r_route_pool_q',
      'attnc_r_route_topk',
      'attnc_r_attention',
    ]);
    const sel = compile('attention s() { select topk(8) by q . k }', {
      target: 'cuda',
      headDim: 64,
    }).artifact;
    expect(sel.entryPoints.map((e) => e.name)).toEqual([
      'attnc_s_sel_score',
      'attnc_s_sel_topk',
      // The multi-block top-k for few rows and many keys (select-wide.ts), in launch order.
      ...['wkey', 'whist0', 'whist1', 'whist2', 'whist3', 'wcount', 'wout'].map((p) => `attnc_s_sel_${p}`),
      'attnc_s_sel_attn',
      'attnc_s_sel_merge',
      'attnc_s_attention',
    ]);
  });

  it('a renderer table must cover every stage kind', () => {
    // @ts-expect-error -- `attention` has no renderer: the mapped type makes that a type error.
    const partial: StageTable<string, null> = { summary: () => 's', pool: () => 'p', rank: () => 'r' };
    const full: StageTable<string, null> = { ...partial, attention: (s) => `a:${s.keys}` };
    expect(renderStages([{ kind: 'attention', keys: 'all' }], full, null)).toEqual(['a:all']);
  });
});
