// The Hopper warpgroup-MMA engine (wgmma), asked for by `engine: 'wgmma'` (the CUDA default for
// f16/bf16 at D = 64/128 is wgmma-ws, see wgmma-ws.test.ts, except dilated and routed kernels,
// which keep wgmma): every stdlib kernel builds for sm_90a in both dtypes and head dims with
// no warning and no register spill, and the generated code has the promised structure (wgmma
// from 128B-swizzled shared memory, empty tiles never loaded). Numerics: bench/cuda/check.py on
// an H100 (docs/PERFORMANCE.md); the CPU emulator cannot run wgmma.
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
const bigSmem = { maxWorkgroupStorageBytes: 227 * 1024 };

const build = (file: string, headDim: number, dtype: StorageDType, large = false) =>
  compile(readStdlib(file), {
    target: 'cuda',
    file: stdlibPath(file),
    headDim,
    dtype,
    schedule: { engine: 'wgmma' },
    // The decode variant is the same whatever the prefill engine: mma.test.ts and decode.test.ts
    // build it, so this file's units hold the engine's kernels alone (half the nvcc time).
    decode: false,
    ...(large ? { limits: bigSmem } : {}),
  });

describe('wgmma engine selection', () => {
  it('asked for at D = 64 and 128: 128-key tiles where shared memory allows', () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const base = { engine: 'wgmma', blockQ: 128, threads: 256, stages: 2 };
      expect(build('causal.attn', 64, dtype).artifact.schedule).toMatchObject({ ...base, blockK: 128 });
      // 160 KiB at D = 128: within the default (Hopper's 227 KiB), not within an sm_80 part's 99 KiB.
      expect(build('causal.attn', 128, dtype).artifact.schedule).toMatchObject({ ...base, blockK: 128 });
      const sm80 = compile(readFileSync('stdlib/causal.attn', 'utf8'), {
        target: 'cuda',
        headDim: 128,
        dtype,
        schedule: { engine: 'wgmma' },
        limits: { maxWorkgroupStorageBytes: 101376 },
      });
      expect(sm80.artifact.schedule).toMatchObject({ ...base, blockK: 64 });
    }
  });

  it('engine overrides pick their own tiles; breaking the warpgroup layout falls back', () => {
    const src = readFileSync('stdlib/full.attn', 'utf8');
    const with_ = (schedule: object) =>
      compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16', schedule }).artifact.schedule;
    expect(with_({ engine: 'mma' })).toMatchObject({ engine: 'mma', blockK: 64 });
    expect(with_({ engine: 'simt' }).engine).toBe('simt');
    expect(with_({ blockQ: 64, threads: 128 })).toMatchObject({ engine: 'wgmma', blockQ: 64 });
    expect(with_({ blockQ: 32, threads: 64 })).toMatchObject({ engine: 'mma', blockQ: 32 });
  });

  it('refuses schedules the wgmma core cannot run', () => {
    const wg = {
      ...testSchedule,
      engine: 'wgmma' as const,
      headDim: 64,
      valueDim: 64,
      blockQ: 128,
      blockK: 64,
    };
    const bad = [
      [{ ...wg, dtype: 'f32', threads: 256 }, /f16 or bf16/],
      [{ ...wg, dtype: 'bf16', threads: 128 }, /a warpgroup per 64 rows/],
      [{ ...wg, dtype: 'bf16', threads: 64, blockQ: 32 }, /a warpgroup per 64 rows/],
      [{ ...wg, dtype: 'bf16', threads: 256, headDim: 256, valueDim: 256 }, /headDim in \{64, 128\}/],
      [{ ...wg, dtype: 'bf16', threads: 256, blockK: 256 }, /blockK in/],
    ] as const;
    for (const [s, msg] of bad) expect(() => renderCuda(fullKernel(s), meta)).toThrow(msg);
  });
});

describe('wgmma code structure', () => {
  const code = (file: string) => build(file, 128, 'bf16').artifact.code;

  it('full: wgmma from swizzled shared memory, no predicate anywhere', () => {
    const c = code('full.attn');
    expect(c).toContain('wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16');
    expect(c).toContain('wgmma.wait_group.sync.aligned 0;');
    // cp.async (generic proxy) → wgmma (async proxy): fenced before the barrier, every tile.
    expect(c.match(/proxy_fence\(\);\n\s+__syncthreads\(\);/g)?.length).toBe(2);
    expect(c).toContain('(1ull << 62)'); // 128B swizzle in the descriptors
    expect(c).not.toContain('/* predicate */');
    expect(c).not.toContain('classify');
    expect(c.split('mma16816(').length - 1).toBe(1); // the shared helper's definition, never called
  });

  it('causal: empty tiles are skipped before any load; full tiles take the unmasked path', () => {
    const c = code('causal.attn');
    const loop = c.slice(c.indexOf('int kt = next_tile(0, kt_full)'));
    expect(loop.match(/load_kv\((\w+),/g)).toEqual(['load_kv(kt,', 'load_kv(nk,']);
    expect(loop).toMatch(/const int nk = next_tile\(kt \+ 1, nk_full\);\n\s+if \(nk < nkt\) load_kv\(nk/);
    expect(c).toContain('if (classify(kt, full)) return kt; // empty tile: skipped, nothing loaded');
    expect(c).toContain('else tile(Flag<false>{}, kt, buf); // full tile: no predicate');
    expect(c).toMatch(/if constexpr \(MASKED\) \{ if \(!\(.*\)\) y = -INFINITY; \}/);
  });

  it('f16 and D = 64: the f16 wgmma, 128-key score tiles', () => {
    const c = build('full.attn', 64, 'f16').artifact.code;
    expect(c).toContain('wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16');
    expect(c).toContain('__floats2half2_rn');
  });
});

// Device code only (-cubin). One translation unit per dtype, both head dims, to stay in budget.
describe('stdlib on the wgmma engine compiles with nvcc, without spills', () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    it(`all ${stdlib.length} stdlib kernels, ${dtype}, D = 64 and 128 (128-key tiles)`, async () => {
      const dir = scratchDir(`wgmma-${dtype}`);
      const parts = [64, 128].flatMap((headDim) =>
        stdlib.map((file) => {
          const { kernel } = build(file, headDim, dtype, true);
          expect(kernel.schedule.engine).toBe('wgmma');
          // Distinct C names per head dim, so both share one translation unit.
          return renderCuda({ ...kernel, name: `${kernel.name}_d${headDim}` }, meta).code;
        }),
      );
      const tu = join(dir, 'wgmma.cu');
      writeFileSync(tu, parts.join('\n'));
      const flags = ['-arch=sm_90a', '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
      const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'wgmma.cubin')]);
      expectOk(r, `nvcc ${tu}`);
      // Known exceptions: dilated's attention at D = 128 (16 bytes since q and out take 64-bit strides, qo-rows.ts);
      // round 26: the neighbourhood default at D = 128, three blocks an SM (168 registers), 12 bytes
      // — timed with them, the fastest build on the H200 (patch-tweaks.ts).
      expectNoSpills(r.stderr, 2 * stdlib.length, [
        /^attnc_dilated_d128_attention$/,
        [/^attnc_neighbourhood_d128_attention$/, 16],
      ]);
    });
  }
});
