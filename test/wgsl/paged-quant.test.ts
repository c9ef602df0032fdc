// Paged quantized K/V caches on WGSL (lavapipe): `cache paged P` with `store` reads codes, wide
// salient codes and per-token / per-channel-group scales from pools of pages through the block
// table (codegen/wgsl/dequant.ts kv_qrow; quant/paged-layout.ts). The paged kernel over shuffled
// pools (poisoned elsewhere: NaN scales, all-ones codes) must give exactly what the unpaged kernel
// gives over the contiguous cache — same arithmetic, other addresses — for the row and coop
// engines, prefill and decode, the importance output, and random formats × page sizes × shapes.
// The unpaged kernels are checked against the reference in test/quant/wgsl-*.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { Artifact } from '../../src/codegen/artifact.js';
import { checkedFormats, type Granularity, type QuantFormat } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { runKernel } from '../../src/cli/run-kernel.js';
import { formatArb } from '../quant/arbitrary.js';
import { storeStatement, withFlaggedSalient } from '../quant/format-source.js';

interface Shape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
}

// ATTNC_PAGED_QUANT_SEED replays a seed a failing run printed in its describe title.
const seed0 = process.env.ATTNC_PAGED_QUANT_SEED
  ? Number(process.env.ATTNC_PAGED_QUANT_SEED)
  : process.env.CI
    ? 20261204
    : Math.floor(Math.random() * 2 ** 31);

/** `f` with a per-channel token group that divides a page of P rows (a power of two ≤ P). */
function pageable(f: QuantFormat, P: number): QuantFormat {
  const per = f.scale?.per;
  if (!f.scale || per?.kind !== 'channel' || !per.group) return f;
  const group = Math.min(P, 2 ** Math.floor(Math.log2(per.group)));
  return { ...f, scale: { ...f.scale, per: { kind: 'channel', group } as Granularity } } as QuantFormat;
}

function randomPages(s: Shape, P: number, r: () => number): QuantPages {
  const maxPages = Math.ceil(s.Nk / P) + (r() < 0.5 ? 1 : 0);
  const pages = s.B * maxPages + 2;
  const ids = Array.from({ length: pages }, (_, i) => i).sort(() => r() - 0.5);
  return {
    pageSize: P,
    maxPages,
    pages,
    blockTable: Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!),
  };
}

/** Storage buffers the decode module of `a` binds (0 without one): what chooseDecode counts. */
const decodeStorageBuffers = (a: Artifact): number =>
  a.decode?.artifact.bindings.filter((b) => b.role !== 'uniforms').length ?? 0;

async function pagedVsUnpaged(
  store: string,
  body: string,
  P: number,
  s: Shape,
  engine: 'row' | 'coop',
  decode: 'never' | 'always',
  seed: number,
): Promise<void> {
  const device = await getDevice();
  const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  const opts = {
    target: 'wgsl' as const,
    headDim: s.D,
    valueDim: s.D,
    limits: deviceLimits(device),
    wgslEngine: engine,
    schedule: { blockQ: 8, blockK: 8, threads: engine === 'coop' ? 16 : 8 },
  };
  const flat = compile(`attention flat(${params}) {\n  ${store}\n${body}\n}\n`, opts);
  const paged = compile(`attention paged(${params}) {\n  cache paged ${P}\n  ${store}\n${body}\n}\n`, opts);
  const formats = checkedFormats(paged.decl);
  const rand = rng(seed);
  const stored = randomStoredInputs(formats, { ...s, Dv: s.D }, rand);
  const q = new Float32Array(s.B * s.H * s.Nq * s.D).map(() => rand() * 2 - 1);
  const pages = randomPages(s, P, rand);
  const pools: { k?: QuantCache; v?: QuantCache } = {};
  for (const w of ['k', 'v'] as const) {
    const f = formats[w];
    if (f && stored.caches[w])
      pools[w] = pageQuantCache(f, stored.caches[w]!, { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: s.D }, pages);
  }
  const tensors: Record<string, Int32Array> = stored.salient.sal ? { sal: stored.salient.sal.data } : {};
  const base = { q, B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, tensors, params: {} };
  const empty = new Float32Array(0);
  const pagedInputs = {
    ...base,
    k: empty,
    v: empty,
    caches: pools,
    kvCache: { blockTable: pages.blockTable, maxPages: pages.maxPages },
  };
  // A paged decode module binds the block table besides the flat one's buffers: where that
  // passes the device's storage-buffer limit, decode 'always' is refused, naming both counts
  // (the default 'auto' takes the prefill kernel), and the comparison runs on the prefill kernel.
  const overLimit =
    decode === 'always' &&
    decodeStorageBuffers(paged.artifact) > device.limits.maxStorageBuffersPerShaderStage;
  if (overLimit) {
    const refused = await createKernel(device, paged.artifact, { decode, debug: true });
    try {
      await expect(refused.run(pagedInputs)).rejects.toThrow(
        /decode mode of kernel "paged" binds \d+ storage buffers; the device allows \d+/,
      );
    } finally {
      refused.destroy();
    }
  }
  const mode = overLimit ? 'never' : decode;
  const a = await createKernel(device, flat.artifact, { decode: mode });
  const b = await createKernel(device, paged.artifact, { decode: mode, debug: true });
  try {
    const want = await a.run({ ...base, k: empty, v: empty, caches: stored.caches });
    const got = await b.run(pagedInputs);
    const where = `${store} | ${body.trim()} | P ${P} ${engine} ${mode} ${JSON.stringify(s)}`;
    expect(Array.from(got.out).some(Number.isNaN), where).toBe(false);
    expect(got.out, where).toEqual(want.out);
    expect(got.lse, where).toEqual(want.lse);
    expect(got.importance, where).toEqual(want.importance);
  } finally {
    a.destroy();
    b.destroy();
  }
}

const fixedStores: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 4 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  'store k int2 scale f16 per channel group 8 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  'store k e4m3\n  store v e5m2 scale f16 per channel',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
];

const shapes: readonly Shape[] = [
  { B: 2, H: 4, Hkv: 2, Nq: 13, Nk: 45, D: 16 },
  { B: 1, H: 3, Hkv: 1, Nq: 2, Nk: 70, D: 16 },
];

describe(`WGSL paged quantized K/V caches equal the unpaged kernel's results (seed ${seed0})`, () => {
  fixedStores.forEach((store, i) =>
    it(
      store.replace(/\n\s*/g, '; '),
      async () => {
        // Both engines for every format, each shape on one of them (alternating over the formats:
        // every engine meets every shape, page size and decode mode); a pipeline takes seconds
        // to build on lavapipe, and this file was CI's longest.
        for (const [j, s] of shapes.entries())
          await pagedVsUnpaged(
            store,
            '  mask causal',
            [8, 32][j]!,
            s,
            (i + j) % 2 === 0 ? 'row' : 'coop',
            j === 1 ? 'always' : 'never',
            seed0 + 10 * i + j,
          );
      },
      300_000,
    ),
  );

  it('the importance pass reads the pools too', async () => {
    await pagedVsUnpaged(
      fixedStores[1]!,
      '  importance normalized\n  mask causal',
      16,
      shapes[0]!,
      'row',
      'never',
      seed0 + 99,
    );
  }, 120_000);

  it('random formats over random page sizes', async () => {
    const seed = process.env.CI ? 13 : seed0 % 100_000;
    const cases = fc.sample(
      fc.record({
        k: formatArb.map(withFlaggedSalient),
        v: formatArb.map(withFlaggedSalient),
        P: fc.constantFrom(1, 2, 4, 16, 64),
        Nk: fc.integer({ min: 1, max: 90 }),
        Nq: fc.integer({ min: 1, max: 12 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        decode: fc.constantFrom('never' as const, 'always' as const),
      }),
      { numRuns: 4, seed },
    );
    for (const [i, r] of cases.entries()) {
      const store = `${storeStatement('k', pageable(r.k, r.P))}\n  ${storeStatement('v', pageable(r.v, r.P))}`;
      const s = { B: 2, H: 2 * r.Hkv, Hkv: r.Hkv, Nq: Math.min(r.Nq, r.Nk), Nk: r.Nk, D: 16 };
      await pagedVsUnpaged(store, '  mask causal', r.P, s, 'row', r.decode, seed + i);
    }
  }, 600_000);

  it('refuses a block table page outside the pool, naming it', async () => {
    const device = await getDevice();
    const c = compile('attention pr() {\n  cache paged 4\n  store kv int8 scale f32 per token\n}\n', {
      target: 'wgsl',
      headDim: 16,
      limits: deviceLimits(device),
    });
    const s = { B: 1, H: 1, Hkv: 1, Nq: 1, Nk: 6, D: 16 };
    const stored = randomStoredInputs(checkedFormats(c.decl), { ...s, Dv: 16 }, rng(1));
    const pages: QuantPages = { pageSize: 4, maxPages: 2, pages: 2, blockTable: Int32Array.from([1, 0]) };
    const sizes = { B: 1, Hkv: 1, Nk: 6, D: 16 };
    const f = checkedFormats(c.decl).k!;
    const pools = {
      k: pageQuantCache(f, stored.caches.k!, sizes, pages),
      v: pageQuantCache(f, stored.caches.v!, sizes, pages),
    };
    const gpu = await createKernel(device, c.artifact, {});
    try {
      const run = (table: Int32Array) =>
        gpu.run({
          ...s,
          q: new Float32Array(16),
          k: new Float32Array(0),
          v: new Float32Array(0),
          caches: pools,
          kvCache: { blockTable: table, maxPages: 2 },
        });
      await expect(run(Int32Array.from([1, 0]))).resolves.toBeDefined();
      await expect(run(Int32Array.from([1, 2]))).rejects.toThrow(
        /kvCache.blockTable\[0\]\[1\] = 2 is not a page of the quantized cache's pool \(2 pages\)/,
      );
    } finally {
      gpu.destroy();
    }
  }, 60_000);

  it('attnc run: a paged KIVI cache and a paged salient index list agree with the reference', async () => {
    const sources = [
      'attention pkivi() {\n  cache paged 32\n  store k int2 scale f16 per channel group 32 zero f16 recent 16 f16\n  store v int2 scale f16 per token group 16 zero f16 recent 16 f16\n  mask causal\n}\n',
      'attention plist(nsal: int = 6, sal: i32[batch, kv_heads, nsal]) {\n  cache paged 8\n  store kv int4 scale f16 per token zero f16 salient int8 from sal\n  mask causal\n}\n',
    ];
    for (const [i, source] of sources.entries()) {
      const r = await runKernel(source, {
        ...{ B: 2, H: 4, Hkv: 2, Nq: 3, Nk: 90, D: 16 },
        ...{ file: 'p.attn', dtype: 'f32', params: {}, seed: 7 + i, repeats: 1 },
      });
      expect(r.out.relError, source).toBeLessThan(r.tolerance);
      expect(r.cacheLayout, source).toMatch(/^paged: /);
    }
  }, 120_000);
});
