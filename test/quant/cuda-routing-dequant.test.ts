// CUDA block routing over quantized K/V caches: route_pool_k pools the dequantized keys
// (src/codegen/cuda/routing.ts, through k_dequant), the routed attention dequantizes in its tile
// loads. Run on the CPU emulator (SIMT, f32; test/cuda/routing-emu.ts) against the oracle over
// the dequantized caches (referenceStoredDecl), and compiled with nvcc on the tensor-core engines.
// Selection, emit, chunks and from: cuda-select-dequant.test.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { buildRoutingEmulation, runRouting } from '../cuda/routing-emu.js';
import { expectOk, run, scratchDir, writeArtifact, quickCheckFlags } from '../cuda/support.js';

const programs: readonly string[] = [
  'attention rq0(top: int = 2) {\n  store kv int8 scale f32 per token\n  route blocks(4) topk(top) by mean(q) . mean(k)\n}',
  'attention rq1(top: int = 2) {\n  store k int4 scale f16 per channel group 3 zero f16 recent 5 f16\n  store v e4m3 scale f32 per token\n  route blocks(8) topk(top) by q . max(k)\n  mask causal\n}',
  'attention rq2(top: int = 1) {\n  store k int2 scale f16 per token zero f16 norm f16\n  route blocks(4) topk(top) by first(q) . first(k) vote groups\n  mask causal\n}',
];

const shapes = [
  { B: 2, H: 2, Hkv: 1, Nq: 13, Nk: 29 },
  { B: 1, H: 4, Hkv: 2, Nq: 16, Nk: 16 },
];

describe.concurrent('CUDA block routing over quantized K/V (CPU emulation)', () => {
  const dir = scratchDir('tcquant-routing');
  programs.forEach((source, p) =>
    it(
      source.split('\n').slice(1).join('; '),
      async () => {
        const D = 8;
        const c = compile(source, {
          target: 'cuda',
          headDim: D,
          dtype: 'f32',
          schedule: { engine: 'simt', blockQ: 8, blockK: 8, threads: 32 },
        });
        const exe = await buildRoutingEmulation(dir, c.artifact, c.kernel);
        const top = Number(c.kernel.params[0]!.default);
        for (const [i, s] of shapes.entries()) {
          const rand = rng(31 * p + i);
          const stored = randomStoredInputs(checkedFormats(c.decl), { ...s, D, Dv: D }, rand);
          const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
          // A float V (rq2) comes as plain values; the quantized ones as caches.
          const v = new Float32Array(s.B * s.Hkv * s.Nk * D).map(() => rand() * 2 - 1);
          const scale = Math.fround(1 / Math.sqrt(D));
          const qOffset = s.Nk - s.Nq;
          const got = await runRouting(exe, join(dir, c.kernel.name, `case${i}`), c.artifact, c.kernel, {
            ...s,
            qOffset,
            kOffset: 0,
            scale,
            q,
            k: new Float32Array(0),
            v,
            params: { top },
            tensors: {},
            counts: [top, 0, 0],
            caches: stored.caches,
          });
          const inp = {
            q,
            k: new Float32Array(0),
            v,
            B: s.B,
            Hq: s.H,
            Hkv: s.Hkv,
            Nq: s.Nq,
            Nk: s.Nk,
            D,
            Dv: D,
          };
          const env = { params: { top }, tensors: {}, sizes: { ...s, D } };
          const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
          const what = `${c.kernel.name} ${JSON.stringify(s)}`;
          const out = compareArrays(got.out, ref.out, ref.outScale);
          expect(out.nanCount, what).toBe(0);
          expect(out.relError, what).toBeLessThan(2e-5);
        }
      },
      240_000,
    ),
  );

  it('compiles on mma (sm_80) and wgmma (sm_90a) with nvcc, warnings as errors', async () => {
    for (const [engine, arch] of [
      ['mma', 'sm_80'],
      ['wgmma', 'sm_90a'],
    ] as const) {
      const { artifact } = compile(programs[1]!.replace('rq1', `rq_${engine}`), {
        target: 'cuda',
        headDim: 128,
        schedule: { engine },
      });
      expect(artifact.code).toContain('k_dequant(a, bh * (size_t)a.Nk + t0 + p, t0 + p, d, bh)');
      const cu = writeArtifact(dir, artifact);
      const flags = quickCheckFlags(arch);
      expectOk(
        await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', cu, '-o', join(dir, `${engine}.o`)]),
        cu,
      );
    }
  }, 600_000);

  it('compiles token selection over quantized caches on CUDA too (cuda-select-dequant.test.ts)', () => {
    const select = 'attention t() {\n  store kv int8 scale f32 per token\n  select topk(8) by q . k\n}';
    expect(compile(select, { target: 'cuda' }).artifact.code).toContain('struct SelDqK {');
    // WGSL runs it (wgsl-routing-dequant.test.ts).
    expect(compile(select, { target: 'wgsl' }).kernel.formats.k.kind).toBe('quant');
  });
});
