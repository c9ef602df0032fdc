// Block routing in the IR and the WGSL artifact, without a GPU: the plan lowering builds, what
// verify rejects, --dump-ir, the pipeline of entry points and bindings, and the positioned errors
// for the constructs no backend implements yet.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import { dumpIR } from '../../src/ir/dump.js';
import { Op } from '../../src/ir/ops.js';
import type { AttentionIR } from '../../src/ir/program.js';
import { verify } from '../../src/ir/verify.js';

const biformer = readFileSync('stdlib/biformer.attn', 'utf8');

function irs(source: string): Map<string, AttentionIR> {
  const seen = new Map<string, AttentionIR>();
  compile(source, { target: 'wgsl', observe: (pass, ir) => seen.set(pass, ir) });
  return seen;
}

function compileError(source: string, target: 'wgsl' | 'cuda' = 'wgsl'): CompileError {
  try {
    compile(source, { target, file: 'r.attn' });
  } catch (e) {
    if (e instanceof CompileError) return e;
    throw e;
  }
  throw new Error('expected a CompileError');
}

describe('routing plan', () => {
  it('lowers route blocks(n) topk(k) by … force … into a plan that every pass keeps', () => {
    const src = `attention r(top: int = 3) {
  route blocks(16) topk(top + 1) by q . max(k) force first(1) local(2)
  mask causal
}`;
    for (const [pass, ir] of irs(src)) {
      expect(verify(ir), pass).toEqual([]);
      const r = ir.routing!;
      expect(r).toMatchObject({
        unit: { kind: 'blocks', size: 16 },
        source: { kind: 'topk', q: 'raw', k: 'max' },
        attention: 'selected',
      });
      expect(r.source.count.op).toBe(Op.ADD);
      expect([r.first.arg, r.local.arg]).toEqual([1, 2]);
    }
  });

  it('a vote shares one selection per group: indices are [B, G, Nq, K]', () => {
    const groups = compile(readFileSync('stdlib/nsa_select.attn', 'utf8'), { target: 'wgsl' });
    expect(groups.kernel.routing?.source).toMatchObject({ kind: 'topk', vote: 'groups' });
    const idx = groups.artifact.bindings.find((b) => b.role === 'indices')!;
    expect(idx.shape).toEqual(['B', 'Hkv', 'Nq', 'top + 1 + 2']);
    const topk = groups.artifact.entryPoints.find((e) => e.name === 'route_topk')!;
    expect(topk.grid[1]).toBe('Hkv');
    const heads = compile('attention s() { route blocks(8) topk(2) by mean(q) . mean(k) vote heads }', {
      target: 'wgsl',
    });
    expect(heads.artifact.bindings.find((b) => b.role === 'indices')!.shape[1]).toBe('1');
    // The voters' softmax statistics live in the scratch buffer: O(B·H·units), not O(N²).
    expect(heads.artifact.bindings.find((b) => b.role === 'scratch')!.shape[0]).toContain(
      'B * H * (cdiv(Nq, 8) + 1) * 2',
    );
  });

  it('has no plan (and no indices) without a route', () => {
    const c = compile('attention c() { mask causal }', { target: 'wgsl' });
    expect(c.kernel.routing).toBeUndefined();
    expect(c.artifact.bindings.some((b) => b.role === 'indices')).toBe(false);
  });

  it('verify rejects a bad block size, a per-element count and a mistyped param', () => {
    const ir = irs(biformer).get('lower')!;
    const g = ir.graph;
    const bad: AttentionIR = {
      ...ir,
      routing: {
        ...ir.routing!,
        unit: { kind: 'blocks', size: 0 },
        source: { kind: 'topk', count: g.var('q'), q: 'raw', k: 'mean' },
        first: g.node(Op.PARAM, 'f32', [], 'top'),
        local: g.node(Op.DIV, 'i32', [g.var('Nk'), g.const(2)]),
      },
    };
    const errs = verify(bad).join('\n');
    expect(errs).toContain('block size 0');
    expect(errs).toContain('reads q, not a size');
    expect(errs).toContain('routing.first is not i32');
    expect(errs).toContain('not a shape expression');
  });

  it('verify rejects chunk and index tensors the kernel does not declare as i32', () => {
    const ir = irs(biformer).get('lower')!;
    const g = ir.graph;
    const from = {
      kind: 'from',
      tensor: 'idx',
      groups: 'H',
      capacity: '4',
      count: g.const(4, 'i32'),
    } as const;
    const routing = { ...ir.routing!, unit: { kind: 'chunks', tensor: 'ids' }, source: from } as const;
    const errs = verify({ ...ir, routing }).join('\n');
    expect(errs).toContain('routing.chunks: "ids" is not a declared i32 tensor of rank 1');
    expect(errs).toContain('routing.from: "idx" is not a declared i32 tensor of rank 4');
  });

  it('--dump-ir shows the routing pipeline and the indices output', () => {
    const dump = dumpIR(irs(biformer).get('schedule')!, 'schedule');
    expect(dump).toContain('outputs: out, lse, indices');
    expect(dump).toContain('routing: blocks(64) topk($top) by mean(q) . mean(k) force first(0) local(0)');
    expect(dump).toContain('pool_k → pool_q → route_topk → attention');
    expect(dump).toContain('indices: i32[B, H, Nq, top + 0 + 0]');
  });
});

describe('routing artifact (WGSL)', () => {
  it('runs pool → top-k before the attention, with O(N·k) buffers', () => {
    const { artifact } = compile(biformer, { target: 'wgsl' });
    expect(artifact.entryPoints.map((e) => e.name)).toEqual([
      'route_pool_k',
      'route_pool_q',
      'route_topk',
      'attention',
    ]);
    const byName = new Map(artifact.bindings.map((b) => [b.name, b]));
    expect(byName.get('indices')).toMatchObject({ role: 'indices', dtype: 'i32' });
    expect(byName.get('indices')!.shape).toEqual(['B', 'H', 'Nq', 'top + 0 + 0']);
    expect(byName.get('route_pool')!.shape).toEqual([
      'B * Hkv * (cdiv(Nk, 64) + 1) * D + B * H * (cdiv(Nq, 64) + 1) * D',
    ]);
    // The attention reads the selection, not the pooled scratch.
    const attn = artifact.entryPoints.find((e) => e.name === 'attention')!;
    expect(attn.bindings).toContain('indices');
    expect(attn.bindings).not.toContain('route_pool');
    expect(artifact.code).toContain('var<workgroup> tile_hit: u32;');
  });

  it('a raw query side ranks per row and pools keys only', () => {
    const src = 'attention r(top: int = 2) { route blocks(8) topk(top) by q . first(k)\n mask causal }';
    const { artifact } = compile(src, { target: 'wgsl' });
    expect(artifact.entryPoints.map((e) => e.name)).toEqual(['route_pool_k', 'route_topk', 'attention']);
    expect(artifact.entryPoints.find((e) => e.name === 'route_topk')!.grid[0]).toBe('cdiv(Nq, 64)');
  });

  it('the top-k pass binds the tensors and summaries its candidacy test reads', () => {
    const src =
      'attention r(doc: i32[kv], top: int = 2) { route blocks(8) topk(top) by mean(q) . mean(k)\n mask doc[q] == doc[k] }';
    const { artifact } = compile(src, { target: 'wgsl' });
    const topk = artifact.entryPoints.find((e) => e.name === 'route_topk')!;
    expect(topk.bindings).toEqual(expect.arrayContaining(['doc', 'doc_summary', 'indices']));
  });
});

describe('token selection, emit and from compile for WGSL', () => {
  const names = (src: string): string[] =>
    compile(src, { target: 'wgsl' }).artifact.entryPoints.map((e) => e.name);
  it('select ranks with a radix select over the keys, then sorts each row', () => {
    const rounds = Array.from({ length: 8 }, () => ['sel_hist', 'sel_pick']).flat();
    expect(names('attention s() { select topk(8) by q . k }')).toEqual([
      'sel_init',
      ...rounds,
      'sel_write',
      'route_sort',
      'attention',
    ]);
    expect(names('attention s() { select topk(8) by q . k vote heads }').slice(1, 3)).toEqual([
      'sel_vote_max',
      'sel_vote_sum',
    ]);
  });
  it('from only sorts the tensor rows; emit attends under the static mask alone', () => {
    const from = 'attention s(i: i32[batch, heads, queries, 4]) { route blocks(8) from i }';
    expect(names(from)).toEqual(['route_sort', 'attention']);
    const { artifact } = compile(from, { target: 'wgsl' });
    expect(artifact.bindings.find((b) => b.name === 'indices')!.shape).toEqual(['B', 'H', 'Nq', '4 + 0 + 0']);
    const emit = compile('attention s() { emit topk(8) by q . k\n mask causal }', { target: 'wgsl' });
    expect(emit.artifact.code).not.toContain('route_sel(sel_base');
    const select = compile('attention s() { select topk(8) by q . k\n mask causal }', { target: 'wgsl' });
    expect(select.artifact.code).toContain('route_sel(sel_base');
  });
});

describe('constructs not compiled yet are positioned errors', () => {
  it('token selection compiles on CUDA now (test/cuda/select*.test.ts run it)', () => {
    const a = compile('attention s() {\n  select topk(8) by q . k\n}', {
      target: 'cuda',
      headDim: 64,
    }).artifact;
    expect(a.code).toContain('attnc_s_sel_topk');
  });

  it('counts the index shape cannot express', () => {
    const e = compileError('attention s() { route blocks(8) topk(Nk / 64) by mean(q) . mean(k) }');
    expect(e.message).toContain('routing counts must use only + - *');
  });
});
