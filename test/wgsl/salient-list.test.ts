// Salient tokens given as an index list on WGSL (lavapipe): the pre-pass entry point scatters the
// list into the `<t>_flags` scratch (codegen/wgsl/salient-list.ts), launched first in the attention
// module and in the decode modules; every dequantizing load reads the flag. Against the oracle,
// which reads the list itself (quant/marks.ts): row and coop engines, prefill and decode, packed
// and paged caches, the importance output, lists with padding, repeats and out-of-range entries.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

interface Shape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

const D = 16;

async function check(
  store: string,
  extra: string,
  s: Shape,
  engine: 'row' | 'coop',
  decode: 'never' | 'always' | 'auto',
  P: number | undefined,
  seed: number,
): Promise<void> {
  const device = await getDevice();
  const src = `attention wl(nsal: int = 4, sal: i32[batch, kv_heads, nsal]) {\n${P ? `  cache paged ${P}\n` : ''}  ${store}\n${extra}  mask causal\n}`;
  const c = compile(src, {
    target: 'wgsl',
    headDim: D,
    limits: deviceLimits(device),
    wgslEngine: engine,
    schedule: { blockQ: 8, blockK: 8, threads: engine === 'coop' ? 16 : 8 },
  });
  expect(c.artifact.entryPoints[0]!.name).toBe('salient_flags_sal');
  const rand = rng(seed);
  const formats = checkedFormats(c.decl);
  const n = 1 + Math.floor(rand() * Math.ceil(s.Nk / 3));
  const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand, () => n);
  const marks = stored.salient.sal!;
  const list = Int32Array.from(marks.data, (x, i) => {
    if (x >= 0) return x;
    const pick = rand();
    return pick < 0.3
      ? -1 - Math.floor(rand() * 5)
      : pick < 0.6
        ? s.Nk + Math.floor(rand() * 4)
        : marks.data[i - (i % n)]!;
  });
  let caches: { k?: QuantCache; v?: QuantCache } = stored.caches;
  let pages: QuantPages | undefined;
  if (P !== undefined) {
    const maxPages = Math.ceil(s.Nk / P) + 1;
    const count = s.B * maxPages + 1;
    const ids = Array.from({ length: count }, (_, i) => i).sort(() => rand() - 0.5);
    pages = {
      pageSize: P,
      maxPages,
      pages: count,
      blockTable: Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!),
    };
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
    caches = {
      ...(formats.k ? { k: pageQuantCache(formats.k, stored.caches.k!, sizes, pages) } : {}),
      ...(formats.v ? { v: pageQuantCache(formats.v, stored.caches.v!, sizes, pages) } : {}),
    };
  }
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  const empty = new Float32Array(0);
  const gpu = await createKernel(device, c.artifact, { decode, debug: true });
  try {
    const res = await gpu.run({
      ...s,
      q,
      k: empty,
      v: empty,
      caches,
      tensors: { sal: list },
      params: { nsal: n },
      ...(pages ? { kvCache: { blockTable: pages.blockTable, maxPages: pages.maxPages } } : {}),
    });
    if (decode === 'always' && c.artifact.decode) expect(res.decodeSplits).toBeGreaterThan(0);
    const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
    const env = {
      params: { nsal: n },
      tensors: { sal: { data: list, shape: [s.B, s.Hkv, n] } },
      sizes: { ...s, D },
    };
    const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
    const what = `${store} ${extra.trim()} ${engine} ${decode} P ${P} ${JSON.stringify(s)}`;
    const out = compareArrays(res.out, ref.out, ref.outScale);
    expect(out.nanCount, what).toBe(0);
    expect(out.relError, what).toBeLessThan(2e-5);
    if (extra.includes('importance')) {
      const imp = compareArrays(res.importance!, ref.importanceNormalized!);
      expect(imp.relError, `importance ${what}`).toBeLessThan(1e-5);
    }
  } finally {
    gpu.destroy();
  }
}

const stores = [
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
  'store k int4 scale f32 per token group 8 salient int8 from sal recent 4 f16\n  store v int8 scale f16 per token',
];
const shapes: Shape[] = [
  { B: 2, H: 4, Hkv: 2, Nq: 11, Nk: 45 },
  { B: 1, H: 3, Hkv: 1, Nq: 2, Nk: 70 },
];

describe('WGSL salient tokens from an index list agree with the reference', () => {
  for (const [p, store] of stores.entries())
    it(
      store.replace(/\n\s*/g, '; '),
      async () => {
        // ZipCache's kv format with a list binds 17 storage buffers in decode mode (the list and
        // its flags besides 15 others): above lavapipe's 16, so 'auto' runs the prefill module.
        const dec = p === 0 ? 'auto' : 'always';
        for (const [i, s] of shapes.entries())
          for (const engine of ['row', 'coop'] as const)
            await check(store, '', s, engine, i === 1 ? dec : 'never', undefined, 10 * p + i);
        await check(store, '', shapes[0]!, 'row', 'never', 8, 77 + p);
        await check(store, '', shapes[1]!, 'row', dec, 16, 78 + p);
      },
      300_000,
    );

  it('the importance pass reads the flags too', async () => {
    await check(stores[0]!, '  importance normalized\n', shapes[0]!, 'row', 'never', undefined, 5);
  }, 120_000);
});
