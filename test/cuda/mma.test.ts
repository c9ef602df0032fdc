// The tensor-core (mma.sync) engine, chosen by `engine: 'mma'` (the default is now wgmma, see
// wgmma.test.ts) for f16/bf16 at D = 64/128; every stdlib kernel builds for sm_90a in both dtypes and head dims with no warning and no
// register spill; and the generated code has the tile structure the design promises. The CPU
// emulator cannot run mma PTX: numerics are checked on a GPU by bench/cuda/check.py.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { compile } from '../../src/compile.js';
import type { StorageDType } from '../../src/ir/kernel.js';
import { fullKernel, testSchedule } from '../support/hand-kernels.js';
import { expectNoSpills, expectOk, meta, run, scratchDir } from './support.js';
import { readStdlib, staticStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
// Mask/score kernels; the routing/selection ones build in routing-nvcc and select-nvcc.test.ts.
const stdlib = staticStdlib;

// The default engine is wgmma (wgmma.test.ts); these tests ask for mma.sync explicitly.
const build = (file: string, headDim: number, dtype: StorageDType) =>
  compile(readStdlib(file), {
    target: 'cuda',
    file: stdlibPath(file),
    headDim,
    dtype,
    schedule: { engine: 'mma' },
  });

describe('mma engine selection', () => {
  it('tensor cores for 16-bit storage at D = 64 and 128, SIMT otherwise', () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      for (const headDim of [64, 128]) {
        const s = build('causal.attn', headDim, dtype).artifact.schedule;
        expect(s).toMatchObject({ engine: 'mma', blockQ: 128, blockK: 64, threads: 256, stages: 2 });
      }
    }
    const plain = (headDim: number, dtype: StorageDType) =>
      compile(readFileSync('stdlib/causal.attn', 'utf8'), { target: 'cuda', headDim, dtype }).artifact
        .schedule;
    expect(plain(64, 'f32').engine).toBe('simt');
    expect(plain(32, 'bf16').engine).toBe('simt');
  });

  it('user overrides that break the warp-per-16-rows layout fall back to SIMT', () => {
    const src = readFileSync('stdlib/full.attn', 'utf8');
    const odd = compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16', schedule: { threads: 64 } });
    expect(odd.artifact.schedule.engine).toBe('simt');
    const simt = compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16', schedule: { engine: 'simt' } });
    expect(simt.artifact.schedule).toMatchObject({ engine: 'simt', blockQ: 64 });
    const q64 = compile(src, {
      target: 'cuda',
      headDim: 128,
      dtype: 'f16',
      schedule: { blockQ: 64, threads: 128, engine: 'mma' },
    });
    expect(q64.artifact.schedule).toMatchObject({ engine: 'mma', blockQ: 64 });
  });

  it('WGSL schedules carry no engine (their hashes do not change)', () => {
    const s = compile(readFileSync('stdlib/full.attn', 'utf8'), { target: 'wgsl', headDim: 64 }).artifact
      .schedule;
    expect(s.engine).toBeUndefined();
  });

  it('refuses schedules the mma core cannot run', () => {
    const mma = {
      ...testSchedule,
      engine: 'mma' as const,
      headDim: 64,
      valueDim: 64,
      blockQ: 64,
      blockK: 64,
    };
    const bad = [
      [{ ...mma, dtype: 'f32', threads: 128 }, /f16 or bf16/],
      [{ ...mma, dtype: 'bf16', threads: 64 }, /threads = 2·blockQ/],
      [{ ...mma, dtype: 'bf16', threads: 128, headDim: 96, valueDim: 96 }, /headDim in/],
      [{ ...mma, dtype: 'bf16', threads: 128, stages: 3 }, /at most 2 stages/],
    ] as const;
    for (const [s, msg] of bad) expect(() => renderCuda(fullKernel(s), meta)).toThrow(msg);
  });
});

describe('mma code structure', () => {
  const code = (file: string) => build(file, 128, 'bf16').artifact.code;

  it('full: mma.sync and ldmatrix, no predicate anywhere, tails masked by position only', () => {
    const c = code('full.attn');
    expect(c).toContain('mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32');
    expect(c).toContain('ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16');
    expect(c).toContain('cp.async.cg.shared.global');
    expect(c).not.toContain('/* predicate */');
    expect(c).not.toContain('classify');
  });

  it('causal: empty tiles are skipped before any cp.async; full tiles take the unmasked path', () => {
    const c = code('causal.attn');
    const loop = c.slice(c.indexOf('int kt = next_tile(0, kt_full)'));
    // Every K/V load names a tile that next_tile has found non-empty.
    expect(loop.match(/load_kv\((\w+),/g)).toEqual(['load_kv(kt,', 'load_kv(nk,']);
    expect(loop).toMatch(/const int nk = next_tile\(kt \+ 1, nk_full\);\n\s+if \(nk < nkt\) load_kv\(nk/);
    // Ballot scans (32 tiles a step) bound the non-empty range before the loop; inside it each
    // tile is classified before anything is loaded.
    expect(c).toContain('if (classify(kt, full)) return kt; // empty tile: skipped, nothing loaded');
    expect(c.indexOf('for (int base = 0; base < nkt; base += 32)')).toBeLessThan(c.indexOf('load_kv(kt, 0)'));
    // A classifier that reads summaries (document) is asked 32 tiles at a time, throughout.
    const doc = code('document.attn');
    expect(doc).toContain('const bool ne = kt + lane < nkt && classify(kt + lane, f);');
    expect(doc).toContain('const unsigned rest = ne_bits & (0xffffffffu << (kt - scan));');
    expect(c).toContain('else tile(Flag<false>{}, kt, buf); // full tile: no predicate');
    expect(c).toMatch(/if constexpr \(MASKED\) \{ if \(!\(.*\)\) y = -INFINITY; \}/);
  });

  it('a score modifier sees natural units and is scaled by log2 e after', () => {
    const c = code('softcap.attn');
    expect(c).toMatch(/float y = \(.*\) \* LOG2E;/);
    expect(c).toContain('const float x = s[j][e] * qscale;');
  });

  it('f16 uses the f16 mma and half2 packing', () => {
    const c = build('full.attn', 64, 'f16').artifact.code;
    expect(c).toContain('mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32');
    expect(c).toContain('__floats2half2_rn');
  });
});

// Device code only (-cubin): stdlib-nvcc.test.ts already builds the host side of the bf16 TUs.
describe('stdlib on the mma engine compiles with nvcc, without spills', () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    for (const headDim of [64, 128]) {
      it(`all ${stdlib.length} stdlib kernels, ${dtype}, D=${headDim}`, async () => {
        const dir = scratchDir(`mma-${dtype}-${headDim}`);
        const parts = stdlib.map((file) => {
          const { artifact } = build(file, headDim, dtype);
          expect(artifact.schedule.engine).toBe('mma');
          return artifact.code;
        });
        const tu = join(dir, 'mma.cu');
        writeFileSync(tu, parts.join('\n'));
        const flags = ['-arch=sm_90a', '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
        const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'mma.cubin')]);
        expectOk(r, `nvcc ${tu}`);
        // One report per kernel: the attention kernels and the summary kernels of lookups. Known
        // exceptions at D = 64 (2026-12-03): modality's attention (68 bytes; its K/V rows are
        // KvRows handles with 64-bit strides now), document's attention (48 stores / 88 loads
        // since q and out take 64-bit strides too, qo-rows.ts) and document's pipelined decode split (104).
        expectNoSpills(r.stderr, stdlib.length, [
          /^attnc_modality_attention$/,
          /^attnc_document_attention$/,
          /attnc_document3dec12split_kernel/,
        ]);
      });
    }
  }
});
