// Token selection, `emit`, `from` and chunks on CUDA (codegen/cuda/select*.ts): every entry of
// the selection stdlib kernels builds with nvcc -arch=sm_90a on each engine (simt f32, mma and
// wgmma bf16) at D = 64 and 128, warnings as errors; the launcher runs the passes in order, the
// restricted attention returns before the engine's kernel, `emit` falls through to it; the host
// checks name the buffers; and the constructs CUDA used to reject now compile.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { Engine } from '../../src/ir/kernel.js';
import { expectOk, run, scratchDir, quickCheckFlags, hostExecutableFlags } from './support.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const kernels = [
  ['tokenselect', 'tokenselect'],
  ['tidaldecode', 'tidal_select'],
  ['tidaldecode', 'tidal_reuse'],
  ['recycled', 'recycled_full'],
  ['recycled', 'recycled_step'],
  ['dhsa', 'dhsa'],
] as const;
const engines = [
  ['simt', 'f32'],
  ['mma', 'bf16'],
  ['wgmma', 'bf16'],
] as const;

function cuda(file: string, entry: string, engine: Engine, dtype: 'f32' | 'bf16', headDim: number) {
  return compile(readStdlib(`${file}.attn`), {
    target: 'cuda',
    file: stdlibPath(`${file}.attn`),
    headDim,
    dtype,
    schedule: { engine },
    entry,
  }).artifact;
}

const launcher = (code: string, name: string): string =>
  code.slice(code.indexOf(`extern "C" int attnc_${name}_launch`));

describe('token selection, emit, from and chunks on CUDA', () => {
  for (const [engine, dtype] of engines) {
    it(`the ${kernels.length} selection stdlib entries build with nvcc (${engine}, ${dtype}, D=64/128)`, async () => {
      const dir = scratchDir(`select-${engine}`);
      const parts: string[] = [];
      for (const [file, entry] of kernels)
        for (const headDim of [64, 128]) {
          const a = cuda(file, entry, engine, dtype, headDim);
          expect(a.schedule.engine).toBe(engine);
          parts.push(a.code.replaceAll(`attnc_${a.name}`, `attnc_${a.name}_d${headDim}`));
        }
      const tu = join(dir, 'select.cu');
      writeFileSync(tu, parts.join('\n'));
      const flags = quickCheckFlags('sm_90a');
      expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'select.o')]), `nvcc ${tu}`);
    }, 600_000);
  }

  it('runs score → top-k → attention over the selection, and returns before the engine kernel', () => {
    const a = cuda('tokenselect', 'tokenselect', 'wgmma', 'bf16', 128);
    const l = launcher(a.code, 'tokenselect');
    const order = ['sel_vote_stats<<<', 'sel_score<<<', 'sel_topk<<<', 'sel_attn<<<', 'sel_merge<<<'];
    const at = order.map((s) => l.indexOf(s));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    // Few rows and many keys: the multi-block top-k (select-wide.ts) instead of sel_topk, in order.
    const wide = ['wkey', 'whist0', 'whist1', 'whist2', 'whist3', 'wcount', 'wout'].map((p) =>
      l.indexOf(`sel_${p}<<<`),
    );
    expect(wide[0]).toBeGreaterThan(
      l.indexOf('if (attnc_tokenselect::sel_cap(a) > 0 && attnc_tokenselect::sel_wide(a))'),
    );
    expect([...wide].sort((x, y) => x - y)).toEqual(wide);
    expect(wide[6]).toBeLessThan(at[2]!);
    // Decoding: the read-K-once vote statistics (select-vote.ts) instead of sel_vote_stats.
    const vkv = l.indexOf('sel_vote_kv<<<');
    expect(vkv).toBeGreaterThan(
      l.indexOf('if (attnc_tokenselect::sel_wide(a) && attnc_tokenselect::sel_keep_aff(a))'),
    );
    expect(vkv).toBeLessThan(at[0]!);
    expect(l.indexOf('} else {', vkv)).toBeLessThan(at[0]!);
    const ret = l.indexOf('return ATTNC_OK;', at[4]);
    expect(ret).toBeGreaterThan(at[4]!);
    expect(l.indexOf('attnc_tokenselect_attention<<<')).toBeGreaterThan(ret);
    expect(a.bindings.find((b) => b.name === 'indices')).toMatchObject({
      shape: ['B', '1', 'Nq', 'budget + 0 + 0'],
    });
    const m = JSON.parse(a.files!['tokenselect.json']!);
    expect(m.routing).toMatchObject({ unit: 'tokens', vote: 'heads', restrict: true });
    expect(m.functions.routeScratchElems).toBe('attnc_tokenselect_route_scratch_elems');
  });

  it('emit ranks then runs the unrestricted engine attention; from sorts the given ids', () => {
    const emit = launcher(cuda('tidaldecode', 'tidal_select', 'mma', 'bf16', 128).code, 'tidal_select');
    expect(emit.indexOf('sel_topk<<<')).toBeGreaterThan(0);
    expect(emit).not.toContain('sel_attn<<<');
    expect(emit.indexOf('attnc_tidal_select_attention<<<')).toBeGreaterThan(emit.indexOf('sel_topk<<<'));
    const from = cuda('recycled', 'recycled_step', 'simt', 'f32', 64);
    const l = launcher(from.code, 'recycled_step');
    expect(l).toContain('sel_from<<<');
    expect(l).not.toContain('sel_score');
    expect(l).toContain('tensor idx: %d ids per row');
    expect(l).toContain('capacity of idx');
    const dhsa = launcher(cuda('dhsa', 'dhsa', 'simt', 'f32', 64).code, 'dhsa');
    expect(
      ['sel_pool_k<<<', 'sel_pool_q<<<', 'sel_score<<<', 'sel_topk<<<'].every((s) => dhsa.includes(s)),
    ).toBe(true);
    expect(dhsa).toContain('tensor chunk: chunk ids cover positions');
  });

  it('the launcher names the tensor for bad `from` and chunk inputs (host checks, no GPU needed)', async () => {
    const dir = scratchDir('select-host');
    const reuse = cuda('tidaldecode', 'tidal_reuse', 'simt', 'f32', 64);
    const dhsa = cuda('dhsa', 'dhsa', 'simt', 'f32', 64);
    writeFileSync(join(dir, 'reuse.cu'), reuse.code);
    writeFileSync(join(dir, 'dhsa.cu'), dhsa.code);
    // Fake, aligned device pointers: every failing check returns before any CUDA call.
    const main = String.raw`
#include <stdio.h>
#include "reuse.cu"
#include "dhsa.cu"
#define FAKE(p) ((p) = (decltype(p))(void*)0x10000)
int main() {
  AttncArgs_tidal_reuse r;
  attnc_tidal_reuse_args_init(&r, 1, 4, 2, 3, 100);
  FAKE(r.q); FAKE(r.k); FAKE(r.v); FAKE(r.out); FAKE(r.lse); FAKE(r.indices); FAKE(r.route_scratch); FAKE(r.idx);
  r.budget = 20000;
  printf("%d %s\n", attnc_tidal_reuse_launch(&r, 0), attnc_tidal_reuse_last_error());
  AttncArgs_dhsa d;
  attnc_dhsa_args_init(&d, 1, 4, 2, 3, 100);
  FAKE(d.q); FAKE(d.k); FAKE(d.v); FAKE(d.out); FAKE(d.lse); FAKE(d.indices); FAKE(d.route_scratch); FAKE(d.chunk);
  d.q_offset = 98;
  printf("%d %s\n", attnc_dhsa_launch(&d, 0), attnc_dhsa_last_error());
  d.q_offset = 0; d.k_offset = 5;
  printf("%d %s\n", attnc_dhsa_launch(&d, 0), attnc_dhsa_last_error());
  return 0;
}
`;
    writeFileSync(join(dir, 'main.cu'), main);
    const exe = join(dir, 'host-checks');
    expectOk(
      await run(NVCC, [...hostExecutableFlags('sm_90a'), join(dir, 'main.cu'), '-o', exe], dir),
      'nvcc host checks',
    );
    const r = await run(exe, []);
    expectOk(r, 'host checks');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^1 attnc_tidal_reuse: tensor idx: 20000 ids per row .* at most 16384/);
    expect(lines[1]).toMatch(
      /^1 attnc_dhsa: tensor chunk: chunk ids cover positions \[0, 100\), but the call has query positions \[98, 101\)/,
    );
    expect(lines[2]).toMatch(/^1 attnc_dhsa: tensor chunk: .*key positions \[5, 105\)/);
  });

  it('compiles the constructs CUDA used to reject', () => {
    for (const src of [
      'attention t() {\n  select topk(8) by q . k\n}',
      'attention t(d: i32[kv]) {\n  route chunks(d) topk(2) by mean(q) . mean(k)\n}',
      'attention t(i: i32[batch, heads, queries, 4]) {\n  route blocks(16) from i\n}',
    ])
      expect(compile(src, { target: 'cuda', headDim: 64 }).artifact.code).toContain('_sel_');
  });
});
