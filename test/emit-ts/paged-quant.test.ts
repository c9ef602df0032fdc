// Emitted modules over a paged quantized cache (docs/LANGUAGE.md "Paged quantized caches"): the
// codes and side tensors are pools typed [pages, Hkv, N, ·] (kvCache.pages, default B·max_pages),
// the block table a binding; dispatch gives what the runtime gives over the same pools (which
// test/wgsl/paged-quant.test.ts checks against the unpaged kernel), and a page id outside the
// pools or a pool of the wrong size is a KernelInputError naming it.
import { describe, expect, it } from 'vitest';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { createKernel, getDevice } from '../../src/runtime/webgpu.js';
import { dispatchArgs, emitSource, importTs, type GeneratedModule } from './support.js';

const source = `attention pq(sal: i32[batch, kv_heads, kv]) {
  cache paged 8
  store k int4 scale f16 per channel group 8 zero f16 recent 3 f16
  store v int2 scale f16 per token zero f16 norm f16 salient int4 from sal
  mask causal
}
`;

describe('emitted module of a paged quantized cache', () => {
  it('types the pools, dispatches like the runtime, and names a stray page id', async () => {
    const device = await getDevice();
    const e = await emitSource(source, 'ts', { headDim: 16 });
    const name = e.compiled.artifact.name;
    const text = e.files[`${name}.ts`]!;
    expect(text).toContain('/** u32[pages, Hkv, 8, cdiv(D, 8)] */');
    expect(text).toContain('pages?: number;');
    const mod = await importTs<GeneratedModule>(name, text);
    const kernel = await mod.createKernel(device);
    const c = { B: 2, H: 4, Hkv: 2, Nq: 5, Nk: 37 };
    const formats = checkedFormats(e.compiled.decl);
    const rand = rng(9);
    const stored = randomStoredInputs(formats, { ...c, D: 16, Dv: 16 }, rand);
    const maxPages = 6;
    const pages: QuantPages = {
      pageSize: 8,
      maxPages,
      pages: c.B * maxPages,
      blockTable: Int32Array.from({ length: c.B * maxPages }, (_, i) => (i * 7) % (c.B * maxPages)),
    };
    const sizes = { B: c.B, Hkv: c.Hkv, Nk: c.Nk, D: 16 };
    const pools = {
      k: pageQuantCache(formats.k!, stored.caches.k!, sizes, pages),
      v: pageQuantCache(formats.v!, stored.caches.v!, sizes, pages),
    };
    const part = (x: QuantCache[keyof QuantCache]): unknown => (x && !ArrayBuffer.isView(x) ? x.data : x);
    const buffers: Record<string, unknown> = {};
    for (const w of ['k', 'v'] as const)
      for (const [p, x] of Object.entries(pools[w]))
        buffers[p === 'codes' ? w : `${w}_${p}`] = part(x as QuantCache[keyof QuantCache]);
    const q = new Float32Array(c.B * c.H * c.Nq * 16).map(() => rand() - 0.5);
    const sal = stored.salient.sal!.data;
    const args = {
      ...dispatchArgs(c, { q, ...buffers, sal }),
      block_table: pages.blockTable,
      kvCache: { max_pages: maxPages },
    };
    const got = await kernel.dispatch(args);
    const gpu = await createKernel(device, e.compiled.artifact, { decode: 'never' });
    try {
      const want = await gpu.run({
        ...c,
        q,
        k: new Float32Array(0),
        v: new Float32Array(0),
        caches: pools,
        tensors: { sal },
        kvCache: { blockTable: pages.blockTable, maxPages },
      });
      expect(Array.from(got.out).some(Number.isNaN)).toBe(false);
      expect(got.out).toEqual(want.out);
    } finally {
      gpu.destroy();
    }
    const fails = async (a: object, ...words: string[]): Promise<void> => {
      const err = await kernel.dispatch(a).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toBeInstanceOf(mod.KernelInputError);
      for (const w of words) expect(String((err as Error).message)).toContain(w);
    };
    const table = Int32Array.from(pages.blockTable);
    table[1] = 12;
    await fails({ ...args, block_table: table }, 'block_table[0][1] = 12 is not a page of "k"');
    await fails({ ...args, kvCache: { max_pages: maxPages, pages: 13 } }, 'input "k"', '13');
    kernel.destroy();
  }, 120_000);

  it('a salient index list: the module makes the flag scratch and runs the pre-pass', async () => {
    const device = await getDevice();
    const src = `attention zl(nsal: int = 4, sal: i32[batch, kv_heads, nsal]) {
  cache paged 4
  store kv int2 scale f16 per token zero f16 salient int4 from sal
  mask causal
}
`;
    const e = await emitSource(src, 'ts', { headDim: 16 });
    const mod = await importTs<GeneratedModule>('zl', e.files['zl.ts']!);
    const kernel = await mod.createKernel(device);
    const c = { B: 2, H: 2, Hkv: 1, Nq: 3, Nk: 21 };
    const formats = checkedFormats(e.compiled.decl);
    const rand = rng(4);
    const n = 5;
    const stored = randomStoredInputs(formats, { ...c, D: 16, Dv: 16 }, rand, () => n);
    const maxPages = 6;
    const pages: QuantPages = {
      pageSize: 4,
      maxPages,
      pages: c.B * maxPages,
      blockTable: Int32Array.from({ length: c.B * maxPages }, (_, i) => (i * 5) % (c.B * maxPages)),
    };
    const sizes = { B: c.B, Hkv: c.Hkv, Nk: c.Nk, D: 16 };
    const pools = {
      k: pageQuantCache(formats.k!, stored.caches.k!, sizes, pages),
      v: pageQuantCache(formats.v!, stored.caches.v!, sizes, pages),
    };
    const buffers: Record<string, unknown> = {};
    for (const w of ['k', 'v'] as const)
      for (const [p, x] of Object.entries(pools[w]))
        buffers[p === 'codes' ? w : `${w}_${p}`] = ArrayBuffer.isView(x) ? x : (x as { data: unknown }).data;
    const q = new Float32Array(c.B * c.H * c.Nq * 16).map(() => rand() - 0.5);
    const sal = stored.salient.sal!.data;
    const got = await kernel.dispatch({
      ...dispatchArgs({ ...c, params: { nsal: n } }, { q, ...buffers, sal }),
      block_table: pages.blockTable,
      kvCache: { max_pages: maxPages },
    });
    const gpu = await createKernel(device, e.compiled.artifact, { decode: 'never' });
    try {
      const want = await gpu.run({
        ...c,
        q,
        k: new Float32Array(0),
        v: new Float32Array(0),
        caches: pools,
        tensors: { sal },
        params: { nsal: n },
        kvCache: { blockTable: pages.blockTable, maxPages },
      });
      expect(Array.from(got.out).some(Number.isNaN)).toBe(false);
      expect(got.out).toEqual(want.out);
    } finally {
      gpu.destroy();
      kernel.destroy();
    }
  }, 120_000);
});
