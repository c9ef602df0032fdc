// Goldens of the coop engine's decode module (test/golden/coop/decode-*.wgsl) for a few stdlib
// kernels: one per tile-class mode (full: static; causal, sliding window: dynamic; document: a
// tensor-summary classifier; softcap: a score expression), on the H200's adapter limits at D = 128,
// f32 (as test/golden/coop/). Regenerate with `UPDATE_GOLDEN=1 npx vitest run test/wgsl/decode-coop-golden.test.ts`.
// Also the knob checks and re-tuning, which need no GPU.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { retuneCoopDecode } from '../../src/codegen/wgsl/decode-coop.js';
import {
  coopDecodeTuningProblem,
  defaultCoopDecodeTuning,
} from '../../src/codegen/wgsl/decode-coop-tuning.js';
import { compile } from '../../src/compile.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';

const update = process.env.UPDATE_GOLDEN === '1';
const gpuLimits = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups: true };

const coopDecode = (file: string, headDim = 128) => {
  const { artifact } = compile(readStdlib(file), {
    target: 'wgsl',
    file: stdlibPath(file),
    headDim,
    wgslEngine: 'coop',
    limits: gpuLimits,
  });
  if (!artifact.decode) throw new Error(`${file}: no decode variant`);
  return artifact.decode;
};

describe('golden coop decode modules', () => {
  it.each(['full.attn', 'causal.attn', 'sliding_window.attn', 'document.attn', 'softcap.attn'])(
    '%s',
    (file) => {
      const code = coopDecode(file).artifact.code;
      const path = `test/golden/coop/decode-${file.replace(/\.attn$/, '')}.wgsl`;
      if (update || (!existsSync(path) && !process.env.CI)) writeFileSync(path, code);
      expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
      expect(code).toBe(readFileSync(path, 'utf8'));
    },
  );
});

describe('coop decode knobs', () => {
  it('defaults (the H200 sweep): 8 lanes per key row or a lane per vec4 column if fewer, 256-key splits; the manifest follows them', () => {
    expect(defaultCoopDecodeTuning(coopDecode('causal.attn').artifact.schedule)).toEqual({
      threads: 64,
      lanes: 8,
      chunk: 2,
      rows: 4,
      splitKeys: 256,
      mergeCols: 8,
    });
    expect(defaultCoopDecodeTuning(coopDecode('causal.attn', 8).artifact.schedule).lanes).toBe(2); // 2 vec4 columns
    const d = coopDecode('causal.attn', 24);
    expect(d.splitKeys).toBe(256);
    const split = d.artifact.entryPoints.find((e) => e.name === 'attention_split')!;
    expect(split.workgroupSize).toEqual([64, 1, 1]);
    expect(split.grid[0]).toBe('cdiv(Nk, 256) * cdiv(cdiv(H, Hkv) * Nq, 4)');
  });

  it('name the knob that is wrong', () => {
    const ok = { threads: 128, lanes: 32, chunk: 4, rows: 4, splitKeys: 512 };
    expect(coopDecodeTuningProblem(ok)).toBeUndefined();
    expect(coopDecodeTuningProblem({ ...ok, lanes: 12 })).toMatch(/decode lanes: expected a power of 2/);
    expect(coopDecodeTuningProblem({ ...ok, lanes: 64 })).toMatch(/decode lanes/);
    expect(coopDecodeTuningProblem({ ...ok, threads: 48 })).toMatch(
      /decode threads: expected a multiple of lanes/,
    );
    expect(coopDecodeTuningProblem({ ...ok, rows: 17 })).toMatch(/decode rows: expected at most 16/);
    expect(coopDecodeTuningProblem({ ...ok, splitKeys: 500 })).toMatch(
      /decode splitKeys: expected a multiple .* = 16/,
    );
    expect(coopDecodeTuningProblem({ ...ok, chunk: 0 })).toMatch(/decode chunk: expected a positive integer/);
    expect(coopDecodeTuningProblem({ ...ok, threads: 1.5 })).toMatch(/decode threads/);
    expect(coopDecodeTuningProblem({ ...ok, mergeCols: 8 })).toBeUndefined();
    expect(coopDecodeTuningProblem({ ...ok, mergeCols: 8, mergeThreads: 64 })).toBeUndefined();
    expect(coopDecodeTuningProblem({ ...ok, mergeThreads: 64 })).toMatch(/mergeThreads: only with mergeCols/);
    expect(coopDecodeTuningProblem({ ...ok, mergeCols: 0 })).toMatch(/decode mergeCols/);
    expect(coopDecodeTuningProblem({ ...ok, mergeCols: 8, mergeThreads: 60 })).toMatch(
      /decode mergeThreads: expected a multiple of mergeCols \(8\)/,
    );
    expect(coopDecodeTuningProblem({ ...ok, mergeCols: 8, mergeThreads: 2048 })).toMatch(
      /decode mergeThreads/,
    );
  });

  it('re-tuning replaces the knob block, the split launch and the scratch size, and nothing else', () => {
    const d = coopDecode('sliding_window.attn');
    const t = { threads: 256, lanes: 16, chunk: 2, rows: 8, splitKeys: 1024 };
    const r = retuneCoopDecode(d, t);
    expect(r.splitKeys).toBe(1024);
    // blockQ = packed rows per workgroup: the runtime's scratch estimate rounds to those tiles.
    expect([d.artifact.schedule.blockQ, r.artifact.schedule.blockQ]).toEqual([4, 8]);
    expect(r.artifact.code).toContain('const DC_THREADS: u32 = 256u;');
    expect(r.artifact.code).toContain('const DC_SPLIT_KEYS: u32 = 1024u;');
    const split = r.artifact.entryPoints.find((e) => e.name === 'attention_split')!;
    expect(split.workgroupSize).toEqual([256, 1, 1]);
    expect(split.grid[0]).toBe('cdiv(Nk, 1024) * cdiv(cdiv(H, Hkv) * Nq, 8)');
    expect(r.artifact.bindings.find((b) => b.name === 'decode_part')!.shape[0]).toContain('cdiv(Nk, 1024)');
    // Back to the defaults: byte-identical to the rendered module.
    const back = retuneCoopDecode(r, defaultCoopDecodeTuning(d.artifact.schedule));
    expect(back.artifact.code).toBe(d.artifact.code);
    expect(back.artifact.entryPoints).toEqual(d.artifact.entryPoints);
    expect(() => retuneCoopDecode(d, { ...t, splitKeys: 1000 })).toThrow(/decode splitKeys/);
    // The wide merge: its pass replaces the default one (and back), its launch follows the slabs.
    const wide = retuneCoopDecode(d, {
      ...defaultCoopDecodeTuning(d.artifact.schedule),
      mergeCols: 8,
      mergeThreads: 128,
    });
    expect(wide.artifact.code).toContain('const DW_COLS: u32 = 8u;');
    expect(wide.artifact.code).not.toContain('DM_THREADS');
    expect(wide.artifact.code.split('fn attention_merge(').length).toBe(2);
    const merge = wide.artifact.entryPoints.find((e) => e.name === 'attention_merge')!;
    expect(merge.workgroupSize).toEqual([128, 1, 1]);
    expect(merge.grid).toEqual(['Nq * 4', 'H', 'B']); // D = 128: 32 vec4 columns in slabs of 8
    const unwide = retuneCoopDecode(wide, defaultCoopDecodeTuning(d.artifact.schedule));
    expect(unwide.artifact.code).toBe(d.artifact.code);
    expect(unwide.artifact.entryPoints).toEqual(d.artifact.entryPoints);
    const row = compile(readStdlib('causal.attn'), { target: 'wgsl', headDim: 64 }).artifact.decode!;
    expect(() => retuneCoopDecode(row, t)).toThrow(/no decode tuning block/);
  });
});
