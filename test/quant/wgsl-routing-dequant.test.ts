// WGSL routing over quantized K/V caches (lavapipe): the pooling pass (route_pool_k) and the key
// scores of token selection (sel_aff) read K through k_dequant (src/codegen/wgsl/routing.ts,
// routing-select-helpers.ts), the attention through its dequantizing tile load. Block, chunk and
// token routing and `emit` over several formats, GQA and Nq ≠ Nk, against referenceStoredDecl.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

const programs: readonly string[] = [
  'attention w0(top: int = 2) {\n  store kv int8 scale f32 per token\n  route blocks(4) topk(top) by mean(q) . mean(k)\n}',
  'attention w1(top: int = 5) {\n  store k int4 scale f16 per channel group 3 zero f16 recent 3 f16\n  store v e5m2 scale f16 per channel\n  select topk(top) by q . k\n  mask causal\n}',
  'attention w2(chunk: i32[kv], top: int = 2) {\n  store k e4m3 scale f32 per token group 4 norm f32\n  route chunks(chunk) topk(top) by lnmean(q) . lnmean(k) force local(1)\n  mask causal\n}',
  'attention w3(top: int = 4) {\n  store kv int2 scale f16 per token zero f16\n  emit topk(top) by q . k vote groups\n  mask causal\n}',
  'attention w4(top: int = 2) {\n  store k int8 scale f16 per channel\n  route blocks(3) topk(top) by q . max(k) vote heads\n}',
];

const shapes = [
  { B: 2, H: 2, Hkv: 1, Nq: 9, Nk: 23 },
  { B: 1, H: 4, Hkv: 2, Nq: 12, Nk: 12 },
];

/** Non-decreasing chunk ids over Nk keys (chunks of 1 to 5 keys). */
function chunkIds(Nk: number, rand: () => number): Int32Array {
  const ids = new Int32Array(Nk);
  let id = 0;
  for (let i = 0, left = 0; i < Nk; i++, left--) {
    if (left <= 0) {
      left = 1 + Math.floor(rand() * 5);
      if (i > 0) id++;
    }
    ids[i] = id;
  }
  return ids;
}

describe('WGSL routing over quantized K/V caches', () => {
  programs.forEach((source, p) =>
    it(
      source.split('\n').slice(1, -1).join('; '),
      async () => {
        const D = 8;
        const device = await getDevice();
        const c = compile(source, {
          target: 'wgsl',
          headDim: D,
          limits: deviceLimits(device),
          schedule: { blockQ: 8, blockK: 8, threads: 8 },
        });
        const gpu = await createKernel(device, c.artifact, { debug: true, decode: 'never' });
        try {
          for (const [i, s] of shapes.entries()) {
            const rand = rng(101 * p + i);
            const stored = randomStoredInputs(checkedFormats(c.decl), { ...s, D, Dv: D }, rand);
            const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
            const v = new Float32Array(s.B * s.Hkv * s.Nk * D).map(() => rand() * 2 - 1);
            const empty = new Float32Array(0);
            const tensors: Record<string, Int32Array> = source.includes('chunk:')
              ? { chunk: chunkIds(s.Nk, rand) }
              : {};
            const params = { top: Number(c.kernel.params.find((x) => x.name === 'top')!.default) };
            const res = await gpu.run({ ...s, q, k: empty, v, caches: stored.caches, tensors, params });
            const inp = { q, k: empty, v, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
            const envTensors: EvalEnv['tensors'] = tensors.chunk
              ? { chunk: { data: tensors.chunk, shape: [s.Nk] } }
              : {};
            const ref = referenceStoredDecl(
              c.decl,
              inp,
              { params, tensors: envTensors, sizes: { ...s, D } },
              stored.caches,
            );
            const what = `${c.kernel.name} ${JSON.stringify(s)}`;
            const out = compareArrays(res.out, ref.out, ref.outScale);
            expect(out.nanCount, what).toBe(0);
            expect(out.relError, what).toBeLessThan(1e-5);
          }
        } finally {
          gpu.destroy();
        }
      },
      120_000,
    ),
  );
});
