// The manifest's pool shapes for a paged quantized cache (quant-manifest.ts `pagedShape`): callers
// without the compiler (python/attnc's paged quantized calls) check pools against them, so each must
// be what src/quant/paged-layout.ts — the one definition the kernels and the runtime address by —
// gives for that tensor, and a per-sequence tensor must have none. No compiler runs here.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { pagedTensorShape } from '../../src/quant/paged-layout.js';
import type { CachePart } from '../../src/quant/paged-layout.js';

interface Tensor {
  field: string;
  part: string;
  shape: string[];
  pagedShape?: string[];
}
type Caches = Record<'k' | 'v', { tensors: Tensor[] } | undefined>;

const D = 128;
const build = (stores: string, paged: number | undefined) => {
  const args = stores.includes('from salient') ? 'salient: i32[batch, kv_heads, kv]' : '';
  const source = `attention pq(${args}) {\n${stores}\n${paged ? `  cache paged ${paged}\n` : ''}}\n`;
  const c = compile(source, { target: 'cuda', headDim: D, dtype: 'bf16' });
  const manifest = JSON.parse(c.artifact.files![`${c.artifact.name}.json`]!) as { caches: Caches };
  return { kernel: c.kernel, caches: manifest.caches };
};

const formats = {
  kivi: [
    '  store k int4 scale f16 per channel group 32 zero f16 recent 128 f16',
    '  store v int2 scale f16 per token group 32 zero f16 recent 128 f16',
  ].join('\n'),
  int8: '  store kv int8 scale f32 per token',
  perChannel: '  store kv int8 scale f16 per channel',
  zipcache: '  store kv int2 scale f16 per token zero f16 norm f16 salient int4 from salient',
};

describe('manifest pool shapes of paged quantized caches', () => {
  for (const [name, stores] of Object.entries(formats)) {
    it(`${name}: every tensor that pages has paged-layout.ts's pool shape, per-sequence ones none`, () => {
      const { kernel, caches } = build(stores, 64);
      const pool = { pageSize: 64, pages: 7 };
      let paged = 0;
      for (const which of ['k', 'v'] as const) {
        const f = kernel.formats[which];
        if (f.kind !== 'quant') continue;
        for (const t of caches[which]!.tensors) {
          const want = pagedTensorShape(f.format, t.part as CachePart, { B: 3, Hkv: 5, Nk: 1000, D }, pool);
          if (t.pagedShape === undefined) {
            // Per sequence: the pool keeps the contiguous shape, which starts with B (or is [1]).
            expect(want[0] === 3 || want.length === 1, `${t.field} has no pool shape`).toBe(true);
            continue;
          }
          paged++;
          const env: Record<string, number> = { pages: 7, Hkv: 5 };
          expect(
            t.pagedShape.map((e) => env[e] ?? Number(e)),
            t.field,
          ).toEqual(want);
        }
      }
      expect(paged).toBeGreaterThanOrEqual(2); // the codes of k and v at least
    });
  }

  it('KIVI: codes and V scales a row a token, K scales a row per 32 tokens, the recent window unpaged', () => {
    const { caches } = build(formats.kivi, 64);
    const shapes = Object.fromEntries(
      [...caches.k!.tensors, ...caches.v!.tensors].map((t) => [t.field, t.pagedShape]),
    );
    expect(shapes).toEqual({
      k: ['pages', 'Hkv', '64', '16'],
      k_scale: ['pages', 'Hkv', '2', '128'],
      k_zero: ['pages', 'Hkv', '2', '128'],
      k_recent: undefined,
      v: ['pages', 'Hkv', '64', '8'],
      v_scale: ['pages', 'Hkv', '64', '4'],
      v_zero: ['pages', 'Hkv', '64', '4'],
      v_recent: undefined,
    });
  });

  it('a kernel without `cache paged` writes no pool shapes', () => {
    const { caches } = build(formats.kivi, undefined);
    for (const t of [...caches.k!.tensors, ...caches.v!.tensors])
      expect(t.pagedShape, t.field).toBeUndefined();
  });
});
