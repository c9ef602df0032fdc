// The CUDA manifest's `caches` entry (src/codegen/cuda/quant-manifest.ts): for every quantized
// format, its tensors' args fields, dtypes and shape expressions evaluate to exactly what
// cacheLayout (src/quant/layout.ts) allocates, for ragged Nk too. python/attnc binds and checks a
// quantized call from this entry alone.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { cacheLayout } from '../../src/quant/layout.js';
import { evalShapeExpr } from '../../src/runtime/shape-expr.js';

const STORES = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 32 zero f16\n  store v int4 scale f16 per token group 32 zero f16',
  'store kv e4m3',
  'store kv e5m2 scale f32 per tensor',
  'store k int2 scale f16 per channel group 32 zero f16 recent 128 f16',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from salient',
];

const partKey = {
  codes: 'codes',
  codesHi: 'codesHi',
  scale: 'scale',
  zero: 'zero',
  norm: 'norm',
  recent: 'recent',
};

describe('manifest caches', () => {
  for (const store of STORES)
    it(`match cacheLayout: ${store.split('\n')[0]}`, () => {
      const params = store.includes('salient') ? 'salient: i32[batch, kv_heads, kv]' : '';
      const c = compile(`attention m(${params}) {\n  ${store}\n  mask causal\n}`, {
        target: 'cuda',
        headDim: 128,
        valueDim: 64,
        dtype: 'bf16',
      });
      const m = JSON.parse(c.artifact.files!['m.json']!);
      const fields = new Set(m.args.fields.map((f: { field: string }) => f.field));
      for (const which of ['k', 'v'] as const) {
        const t = c.kernel.formats[which];
        if (t.kind !== 'quant') {
          expect(m.caches[which]).toBeUndefined();
          continue;
        }
        const entry = m.caches[which];
        expect(entry.format).toEqual(t.format);
        expect(entry.salient).toBe(t.salient);
        for (const Nk of [1, 77, 300]) {
          const s = { B: 2, Hkv: 3, Nk, D: which === 'k' ? 128 : 64 };
          const want = cacheLayout(t.format, s).map((x) => ({
            part: x.name,
            dtype: x.dtype,
            shape: x.shape,
          }));
          const got = entry.tensors.map(
            (x: { part: keyof typeof partKey; dtype: string; shape: string[] }) => ({
              part: partKey[x.part],
              dtype: x.dtype,
              shape: x.shape.map((e) => evalShapeExpr(e, s)),
            }),
          );
          expect(got).toEqual(want);
        }
        for (const x of entry.tensors) expect(fields.has(x.field)).toBe(true);
        expect(entry.tensors[0].field).toBe(which);
      }
    });

  it('are absent for float caches', () => {
    const c = compile('attention f() {\n  mask causal\n}', { target: 'cuda', headDim: 64 });
    expect(JSON.parse(c.artifact.files!['f.json']!).caches).toBeUndefined();
  });
});
