// The WGSL quantize module of a paged quantized cache (codegen/wgsl/quantize-paged.ts) on lavapipe:
// a decoder appends tokens in steps into pools of pages in a random order; after every step the
// pools equal src/quant's `quantize` of the tokens so far, scattered by pageQuantCache, bit for bit.
// Then a paged kernel's decode reads pools the module filled and gives exactly what the unpaged
// kernel gives over the contiguous quantize. Bad arguments (a page id outside the pool, a capacity
// below Nk, a contiguous call of a paged module) are refused naming them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { WgslQuantizeSpec } from '../../src/codegen/wgsl/quantize.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { CacheSizes, QuantCache } from '../../src/quant/layout.js';
import { quantize } from '../../src/quant/quantize.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/runtime/f16.js';
import { randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import type { QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { runWgslQuantize } from '../../src/runtime/webgpu-quantize.js';
import { valueArb } from './arbitrary.js';
import {
  appendRange,
  emptyPool,
  expectedPool,
  firstTokens,
  marksAt,
  pageable,
  pagedFormatArb,
  randomPages,
} from './paged-quantize-support.js';

const seed = process.env.CI ? { seed: 20261204 } : {};

function bytes(q: QuantCache): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, t] of Object.entries(q)) {
    const a = t instanceof Uint32Array ? t : (t as { data: ArrayBufferView }).data;
    out[name] = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  }
  return out;
}

function expectSame(got: QuantCache, want: QuantCache, what: string): void {
  const g = bytes(got);
  for (const [name, w] of Object.entries(bytes(want))) {
    const bad = w.findIndex((b, i) => g[name]![i] !== b);
    expect({ what, tensor: name, firstDifferentByte: bad }).toEqual({
      what,
      tensor: name,
      firstDifferentByte: -1,
    });
  }
}

/** Values away from the f32 subnormal range, which the WGSL module flushes (0 and ±0 kept). */
const clear = valueArb.map((v) => (v !== 0 && Math.abs(v) < 2 ** -60 ? Math.sign(v) * 2 ** -60 : v));

const cases = fc.record({
  format: pagedFormatArb,
  P: fc.constantFrom(1, 2, 4, 8, 16),
  D: fc.integer({ min: 1, max: 24 }),
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  input: fc.constantFrom('f32' as const, 'f16' as const),
  values: fc.array(clear, { minLength: 1, maxLength: 24 }),
  steps: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 }),
  salt: fc.nat(),
});

describe('WGSL quantize into a paged cache (lavapipe) equals quantize, paged, bit for bit', () => {
  it('random formats, page sizes and page orders; appends in steps, partly filled pages', async () => {
    const device = await getDevice();
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const format = pageable(c.format, c.P);
        const spec: WgslQuantizeSpec = {
          cache: 'k',
          format,
          dim: c.D,
          input: c.input,
          paged: { pageSize: c.P },
        };
        const Nk = c.steps.reduce((a, b) => a + b, 0);
        const s: CacheSizes = { B: c.B, Hkv: c.Hkv, Nk, D: c.D };
        const r = rng(c.salt + 1);
        const pages = randomPages(c.B, Nk, c.P, r);
        const salient = format.kind === 'int' && format.salient;
        const marks = salient ? randomSalientMarks(salient.by, s, r, Math.max(1, Nk >> 2), 0.3) : undefined;
        const f32 = Float32Array.from({ length: c.B * c.Hkv * Nk * c.D }, (_, i) => {
          const v = c.values[(i * 7 + c.salt) % c.values.length]!;
          return v * (1 + ((i * 13) % 5) / 4);
        });
        const raw = c.input === 'f32' ? f32 : new Uint16Array(f32.map(f32ToF16Bits));
        const exact = c.input === 'f32' ? f32 : new Float32Array([...(raw as Uint16Array)].map(f16BitsToF32));
        let pool = emptyPool(format, s, pages, marks);
        let N0 = 0;
        for (const [j, step] of c.steps.entries()) {
          const N1 = N0 + step;
          const { start, n } = appendRange(format, N0, N1);
          const m = marksAt(marks, s, N1);
          pool = await runWgslQuantize(device, spec, {
            x: firstTokens(raw, s, N1),
            cache: pool,
            sizes: { ...s, Nk: N1 },
            start,
            n,
            pages,
            ...(m ? { salient: m.data, salientN: m.n } : {}),
          });
          const want = expectedPool(format, exact, s, N1, pages, marks);
          expectSame(pool, want, `step ${j}: Nk ${N0} -> ${N1}, rows [${start}, +${n}), P ${c.P}`);
          N0 = N1;
        }
      }),
      { numRuns: 20, endOnFailure: true, ...seed },
    );
  }, 600_000);

  it('a paged decode reads the pools the module filled as the unpaged kernel reads the contiguous quantize', async () => {
    const device = await getDevice();
    const store =
      'store k int4 scale f16 per channel group 4 zero f16 recent 3 f16\n  store v e4m3 scale f16 per token';
    const opts = { target: 'wgsl' as const, headDim: 16, valueDim: 16, limits: deviceLimits(device) };
    const flat = compile(`attention flat() {\n  ${store}\n  mask causal\n}\n`, opts);
    const paged = compile(`attention paged() {\n  cache paged 8\n  ${store}\n  mask causal\n}\n`, opts);
    expect(paged.artifact.quantize?.k?.pageSize).toBe(8);
    expect(paged.artifact.quantize?.k?.bindings.map((b) => b.name)).toContain('blockTable');
    const formats = checkedFormats(paged.decl);
    const B = 2,
      H = 4,
      Hkv = 2,
      Nq = 1,
      Nk = 29,
      D = 16;
    const r = rng(7);
    const pages = randomPages(B, Nk, 8, r);
    const rows = () => Float32Array.from({ length: B * Hkv * Nk * D }, () => r() * 4 - 2);
    const src = { k: rows(), v: rows() };
    const s: CacheSizes = { B, Hkv, Nk, D };
    const pools: { k?: QuantCache; v?: QuantCache } = {};
    const contiguous: { k?: QuantCache; v?: QuantCache } = {};
    for (const w of ['k', 'v'] as const) {
      const f = formats[w];
      if (!f) throw new Error('both caches are quantized');
      const spec: WgslQuantizeSpec = {
        cache: w,
        format: f,
        dim: D,
        input: 'f32',
        paged: { pageSize: 8 },
      };
      let pool = emptyPool(f, s, pages, undefined);
      // Two appends: 0 → 17 tokens, then 17 → 29 (the second rewrites the groups that straddle).
      for (const [N0, N1] of [
        [0, 17],
        [17, Nk],
      ] as const) {
        const { start, n } = appendRange(f, N0, N1);
        pool = await runWgslQuantize(device, spec, {
          x: firstTokens(src[w], s, N1),
          cache: pool,
          sizes: { ...s, Nk: N1 },
          start,
          n,
          pages,
        });
      }
      pools[w] = pool;
      contiguous[w] = quantize(f, src[w], s);
    }
    const q = Float32Array.from({ length: B * H * Nq * D }, () => r() * 2 - 1);
    const base = {
      q,
      B,
      H,
      Hkv,
      Nq,
      Nk,
      tensors: {},
      params: {},
      k: new Float32Array(0),
      v: new Float32Array(0),
    };
    const a = await createKernel(device, flat.artifact, { decode: 'always' });
    const b = await createKernel(device, paged.artifact, { decode: 'always', debug: true });
    try {
      const want = await a.run({ ...base, caches: contiguous });
      const got = await b.run({
        ...base,
        caches: pools,
        kvCache: { blockTable: pages.blockTable, maxPages: pages.maxPages },
      });
      expect(Array.from(got.out).some(Number.isNaN)).toBe(false);
      expect(got.out).toEqual(want.out);
      expect(got.lse).toEqual(want.lse);
    } finally {
      a.destroy();
      b.destroy();
    }
  }, 120_000);

  it('refuses a page id outside the pool, a capacity below Nk, a table shorter than [B, maxPages] and a call without pages', async () => {
    const device = await getDevice();
    const format = checkedFormats(
      compile('attention p() {\n  cache paged 4\n  store kv int8 scale f16 per token\n}', {
        target: 'wgsl',
        headDim: 8,
      }).decl,
    ).k;
    if (!format) throw new Error('quantized');
    const spec: WgslQuantizeSpec = {
      cache: 'k',
      format,
      dim: 8,
      input: 'f32',
      paged: { pageSize: 4 },
    };
    const s: CacheSizes = { B: 1, Hkv: 1, Nk: 8, D: 8 };
    const pages: QuantPages = { pageSize: 4, maxPages: 2, pages: 2, blockTable: Int32Array.from([1, 0]) };
    const call = {
      x: new Float32Array(64),
      cache: emptyPool(format, s, pages, undefined),
      sizes: s,
      start: 0,
      n: 8,
      pages,
    };
    await expect(runWgslQuantize(device, spec, call)).resolves.toBeDefined();
    await expect(
      runWgslQuantize(device, spec, { ...call, pages: { ...pages, blockTable: Int32Array.from([1, 2]) } }),
    ).rejects.toThrow('block_table[0][1] = 2 is not a page of the pool (2 pages)');
    await expect(
      runWgslQuantize(device, spec, {
        ...call,
        pages: { ...pages, maxPages: 1, blockTable: Int32Array.from([1]) },
      }),
    ).rejects.toThrow("the block table's 1 pages of 4 rows hold fewer than Nk = 8 keys");
    // At least [B, maxPages], as run takes it (kv-rows.ts): a longer table's rows past B go unread.
    const longer = { ...pages, blockTable: Int32Array.from([1, 0, -1, -1]) };
    await expect(runWgslQuantize(device, spec, { ...call, pages: longer })).resolves.toBeDefined();
    await expect(
      runWgslQuantize(device, spec, { ...call, pages: { ...pages, blockTable: Int32Array.from([1]) } }),
    ).rejects.toThrow(
      'quantize: pages.blockTable: a paged cache (pages of 4 rows) reads its keys through an Int32Array [B, maxPages] = [1, 2] of page ids (at least 2), got an Int32Array of 1',
    );
    await expect(runWgslQuantize(device, spec, { ...call, start: 6, n: 3 })).rejects.toThrow(
      'rows [6, 6 + 3) are not inside the cache',
    );
    const { pages: _, ...contiguousCall } = call;
    await expect(runWgslQuantize(device, spec, contiguousCall)).rejects.toThrow(
      'the module is for a paged cache',
    );
  }, 60_000);
});
