// Round trip on lavapipe: the artifact's own WGSL quantize modules fill both caches from random
// f32 rows, then the attention reads them; the output agrees with the float64 reference over
// the values those caches hold (referenceStoredDecl), for random formats × granularities × shapes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { WgslQuantizeSpec } from '../../src/codegen/wgsl/quantize.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { quantize } from '../../src/quant/quantize.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomNormal, randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { runWgslQuantize } from '../../src/runtime/webgpu-quantize.js';
import { formatArb } from './arbitrary.js';
import { storeStatement, withFlaggedSalient } from './format-source.js';

const seed = process.env.CI ? { seed: 20261203 } : {};

const shape = fc.record({
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  Nq: fc.integer({ min: 1, max: 9 }),
  Nk: fc.integer({ min: 1, max: 40 }),
  D: fc.integer({ min: 1, max: 20 }),
  seed: fc.integer(),
});

describe('quantize (WGSL) → attention (WGSL) equals the reference over the quantized values', () => {
  it('random formats and shapes', async () => {
    const device = await getDevice();
    await fc.assert(
      fc.asyncProperty(formatArb, formatArb, shape, async (kf0, vf0, s) => {
        const kf = withFlaggedSalient(kf0);
        const vf = withFlaggedSalient(vf0);
        const salient = [kf, vf].some((f) => f.kind === 'int' && f.salient);
        const source = `attention t(${salient ? 'sal: i32[batch, kv_heads, kv]' : ''}) {\n  ${storeStatement('k', kf)}\n  ${storeStatement('v', vf)}\n  mask causal\n}`;
        const c = compile(source, {
          target: 'wgsl',
          headDim: s.D,
          valueDim: s.D,
          limits: deviceLimits(device),
          schedule: { blockQ: 8, threads: 8, blockK: 8 },
        });
        const modules = c.artifact.quantize!;
        expect(Object.keys(modules).sort()).toEqual(['k', 'v']);
        const formats = checkedFormats(c.decl);
        const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: s.D };
        const rand = rng(s.seed);
        const marks = salient ? randomSalientMarks('flags', sizes, rand) : undefined;
        const caches: { k?: QuantCache; v?: QuantCache } = {};
        for (const which of ['k', 'v'] as const) {
          const f: QuantFormat = formats[which]!;
          const spec: WgslQuantizeSpec = { cache: which, format: f, dim: s.D, input: 'f32' };
          const x = randomNormal(s.B * s.Hkv * s.Nk * s.D, rand);
          const empty = quantize(f, new Float32Array(x.length), sizes, marks);
          caches[which] = await runWgslQuantize(device, spec, {
            x,
            cache: empty,
            sizes,
            start: 0,
            n: s.Nk,
            ...(marks ? { salient: marks.data, salientN: marks.n } : {}),
          });
        }
        const H = s.Hkv;
        const q = randomNormal(s.B * H * s.Nq * s.D, rand);
        const tensors: Record<string, Int32Array> = marks ? { sal: marks.data } : {};
        const gpu = await createKernel(device, c.artifact);
        try {
          const empty = new Float32Array(0);
          const run = { B: s.B, H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
          const res = await gpu.run({ ...run, q, k: empty, v: empty, caches, tensors });
          const inp = {
            q,
            k: empty,
            v: empty,
            B: s.B,
            Hq: H,
            Hkv: s.Hkv,
            Nq: s.Nq,
            Nk: s.Nk,
            D: s.D,
            Dv: s.D,
          };
          const env: EvalEnv = {
            params: {},
            tensors: marks ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } } : {},
            sizes: { ...run, D: s.D },
          };
          const ref = referenceStoredDecl(c.decl, inp, env, caches);
          const out = compareArrays(res.out, ref.out, ref.outScale);
          expect(out.nanCount, source).toBe(0);
          expect(out.relError, `${source}\n${JSON.stringify(s)}`).toBeLessThan(1e-5);
        } finally {
          gpu.destroy();
        }
      }),
      { numRuns: 8, endOnFailure: true, ...seed },
    );
  }, 300_000);
});
