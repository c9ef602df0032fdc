// The Hopper (wgmma) CUDA backward (codegen/cuda/backward-wgmma.ts), without the producer warpgroup
// (asked for as `producer: false`, whatever WGMMA_BWD_PRODUCER says; backward-wgmma-ws.test.ts
// checks the producer variant). Neither this machine nor the
// CPU emulator runs wgmma, so here: the index math of the tile (the dS store's swizzled address)
// checked on the host, the emitted structure (instruction shapes, groups, fences, classification),
// and nvcc sm_90a builds of every stdlib pattern × bf16/f16 × D 64/128 with warnings as errors and
// no spills past the measured exceptions. The numerics are checked on the H200 by
// bench/cuda/backward.py (every kernel against torch autograd before timing).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCudaBackwardWgmma } from '../../src/backward.js';
import { CompileError } from '../../src/diagnostics.js';
import { expectNoSpills, expectOk, run, scratchDir, sassOnly } from './support.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');

const patterns = [
  'full',
  'causal',
  'sliding_window',
  'sink_window',
  'prefix_lm',
  'document',
  'dilated',
  'alibi',
  'softcap',
  'neighbourhood',
  'modality',
  'sink_calibration',
  'heavy_hitter',
] as const;

/** pswz<ROWS> of wgmma-device.ts: the 128B-swizzled panel layout. */
const pswz = (rows: number, row: number, col: number): number =>
  (col >> 6) * (rows * 64) + row * 64 + ((((col >> 3) ^ row) & 7) << 3);

describe('wgmma backward: tile index math', () => {
  it("stores dS at [query][key] through the swizzle, a bijection onto the 64 × 128 tile, with the n-tile's rows as a constant offset", () => {
    const seen = new Set<number>();
    for (let warp = 0; warp < 8; warp++)
      for (let lane = 0; lane < 32; lane++)
        for (let j = 0; j < 8; j++)
          for (let e = 0; e < 4; e++) {
            const [g, t4] = [lane >> 2, lane & 3];
            const kl = warp * 16 + g + 8 * (e >> 1);
            const ql = j * 8 + t4 * 2 + (e & 1);
            // The emitted form (the j term outside the swizzle) equals the plain one.
            const emitted = pswz(64, t4 * 2 + (e & 1), kl) + (kl & 7) + j * (8 * 64);
            expect(emitted).toBe(pswz(64, ql, kl) + (kl & 7));
            seen.add(emitted);
          }
    expect(seen.size).toBe(64 * 128);
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(64 * 128 - 1);
  });
});

describe('wgmma backward: emitted structure', () => {
  const causal = compileCudaBackwardWgmma(stdlib('causal'), {
    file: 'causal.attn',
    headDim: 128,
    dtype: 'bf16',
    producer: false,
  }).backward;
  it('runs Sᵀ and dPᵀ as m64n64k16 from shared memory, dV and dK as register-A m64n64k16, dQ from shared dS', () => {
    const c = causal.code;
    expect(c).toContain('wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16');
    expect(c).toMatch(/wg_qk\(s, kd \+ du/);
    expect(c).toMatch(/wg_qk\(dp, vd \+ du/);
    expect(c).toMatch(/wg_pv<0>\(dv, pa, ot_d/);
    expect(c).toMatch(/wg_pv<1>\(dk, pa, qt_d/);
    expect(c).toMatch(/wg_dq\(acc, sd \+ du/);
    expect(c).toContain('add2(dst + n * 8, acc[n][2 * r], acc[n][2 * r + 1])');
    // dS goes through the generic proxy and is read by the async one: a fence before the barrier.
    expect(c).toMatch(/proxy_fence\(\);[^\n]*\n\s*__syncthreads\(\); \/\/ dS complete/);
    expect(c).toContain('__launch_bounds__(THREADS, 1) bwd_dkdv');
    expect(causal.threads).toBe(256);
    expect(causal.kind).toBe('cuda-backward-wgmma');
  });
  it('classifies q-tiles as the forward does: empty ones skipped, full ones without the predicate', () => {
    expect(causal.code).toContain('tile(!full || k_tail || (qt + 1) * BM > a.Nq, qt, buf);');
    // One copy of the tile body, the predicate behind a run-time flag (two copies spill at D = 128).
    expect(causal.code).toContain('auto tile = [&](const bool MASKED, const int qt, const int buf) {');
    expect(causal.code).toContain('if (MASKED) {');
    expect(causal.code).not.toContain('if constexpr (MASKED)');
    expect(causal.code).toContain('const int nq = next_tile(qt + 1, nfull);');
  });
  it('deterministic mode: bwd_dkdv without the dQ product, bwd_dq (mma.sync) for dq', () => {
    const det = compileCudaBackwardWgmma(stdlib('softcap'), {
      file: 'softcap.attn',
      headDim: 64,
      dtype: 'f16',
      deterministic: true,
      producer: false,
    }).backward;
    const dkdv = det.code.slice(
      det.code.indexOf('bwd_dkdv(const Args a)'),
      det.code.indexOf('bwd_dq(const Args a)'),
    );
    expect(dkdv).not.toContain('wg_dq(');
    expect(dkdv).not.toContain('dq_acc');
    expect(det.code).toContain('bwd_reduce<<<');
    expect(det.deterministic).toBe(true);
  });
  it('refuses what it cannot run with the reason', () => {
    expect(() =>
      compileCudaBackwardWgmma(stdlib('causal'), {
        file: 'causal.attn',
        headDim: 128,
        valueDim: 64,
        dtype: 'bf16',
      }),
    ).toThrow(CompileError);
    expect(() =>
      compileCudaBackwardWgmma(stdlib('causal'), {
        file: 'causal.attn',
        headDim: 128,
        valueDim: 64,
        dtype: 'bf16',
      }),
    ).toThrow(/wgmma CUDA backward needs valueDim = headDim/);
  });
});

/**
 * Measured spills of bwd_dkdv (bytes stored/loaded, CUDA 13, bf16 = f16). At D = 128 the dK and dV
 * accumulators take 128 of the 255 registers and Sᵀ, dPᵀ 64 more. With the masked and full tile
 * bodies as two inlined copies every masked pattern spilled 64-192 bytes (heavy_hitter 192/258);
 * with one copy (the predicate behind a run-time flag) what is left is 4-16 bytes stored, ≤ 24
 * loaded (document 16/24, causal 16/14, heavy_hitter 12/12, neighbourhood 4/4); full 0. At D = 64
 * only document, 8/8. Round 16 (the mask's one-sided parts in shared memory, backward-mask-hoists.ts):
 * modality 28/38, the rest unchanged or less (dilated 8/10). Round 17: dilated in residue-class
 * order (backward-residue.ts) 20/30. The bound keeps them from growing.
 */
const KNOWN: Readonly<Record<number, { readonly names: readonly RegExp[]; readonly bytes: number }>> = {
  64: { names: [/attnc_document_backward\w*bwd_dkdvE/], bytes: 8 },
  128: { names: [/attnc_(?!full_)\w+_backward\w*bwd_dkdvE/], bytes: 40 },
};

/**
 * The producer-warpgroup dK/dV kernel (the default since 2026-12-04) with the default tile-body knobs
 * (WGMMA_BWD_TUNE, round 9), D = 128, all stdlib patterns in one file: sink_calibration 104/94 bytes
 * stored/loaded (28/30 untuned: splitMask's second element loop, with the gain tensor's reads),
 * softcap 44/42 (24), the rest ≤ 28. Round 21: document and modality (76/78 before) take the
 * ping-pong kernel with their tile walk handed over (backward-wgmma-handoff.ts): 144/188 and 196/240
 * at D = 128, 104/112 and 112/136 at D = 64 — document's was faster all the same (docs/BACKWARD.md);
 * sink_calibration 120/126 with each head's first key tile first (firstTilesFirst's three
 * coordinates; the cheap masks spill less with it). Round 22: dS by stmatrix (dsMatrix) moves a
 * few bytes either way (causal 24/22 → 40/42, softcap 44/42 → 24/26, dilated 12/10 → 8/8), document
 * 144/188 → 172/220 and modality 196/240 → 196/244 — document's was faster all the same (H100 16K:
 * 3.11 → 3.07–3.09 ms). The bounds keep them from growing.
 */
const PRODUCER_KNOWN = {
  names: [
    [/attnc_(document|modality)_backward\w*bwd_dkdvE/, 248] as const,
    [/attnc_sink_calibration_backward\w*bwd_dkdvE/, 128] as const,
    /attnc_\w+_backward\w*bwd_dkdvE/,
  ],
  bytes: 104,
};

describe('wgmma backward: nvcc sm_90a', () => {
  // Every stdlib pattern on the default engine (the producer warpgroup) at both head dims, and on
  // the kernel without it at D 128. bf16 only: f16 differs in one type name (the deterministic
  // build below takes both).
  for (const [producer, headDim] of [
    [true, 64],
    [true, 128],
    [false, 128],
  ] as const) {
    const what = producer ? 'the default (producer warpgroup)' : 'producer: false';
    it(`builds every stdlib pattern for bf16, D = ${headDim}, ${what}: warnings as errors, no spills`, async () => {
      const dir = scratchDir(`bwd-wgmma-${producer ? 'ws' : 'wg'}-${headDim}`);
      const parts = patterns.map(
        (name) =>
          compileCudaBackwardWgmma(stdlib(name), { file: `${name}.attn`, headDim, dtype: 'bf16', producer })
            .backward.code,
      );
      const cu = join(dir, 'backward.cu');
      writeFileSync(cu, parts.join('\n'));
      const flags = [...sassOnly('sm_90a'), '-O3', '-cubin', '-Werror', 'all-warnings', '-Xptxas', '-v'];
      const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.cubin')], undefined, 900_000);
      expectOk(r, 'nvcc sm_90a');
      const known = producer ? PRODUCER_KNOWN : KNOWN[headDim]!;
      expectNoSpills(r.stderr, 3 * parts.length, known.names, known.bytes);
    }, 900_000);
  }
  it('builds the deterministic mode (bf16 and f16, D 64 and 128): warnings as errors, no spills', async () => {
    const dir = scratchDir('bwd-wgmma-det');
    const parts: string[] = [];
    for (const dtype of ['bf16', 'f16'] as const)
      for (const headDim of [64, 128])
        for (const name of ['causal', 'softcap', 'document', 'full'])
          parts.push(
            compileCudaBackwardWgmma(stdlib(name), {
              file: `${name}.attn`,
              headDim,
              dtype,
              deterministic: true,
              producer: false,
            }).backward.code.replaceAll(
              `attnc_${name}_backward`,
              `attnc_${name}_${dtype}_${headDim}_backward`,
            ),
          );
    const cu = join(dir, 'backward.cu');
    writeFileSync(cu, parts.join('\n'));
    const flags = ['-arch=sm_90a', '-O3', '-c', '-Werror', 'all-warnings', '-Xptxas', '-v'];
    const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.o')], undefined, 900_000);
    expectOk(r, 'nvcc sm_90a');
    // The deterministic mma bwd_dq keeps the mma backward's measured exceptions.
    expectNoSpills(r.stderr, 4 * parts.length, [/attnc_(document|softcap)_\w+_backward\w*bwd_(dkdv|dq)E/]);
  }, 900_000);
});
