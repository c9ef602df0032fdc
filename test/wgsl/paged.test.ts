// Strided and paged K/V caches on WGSL (codegen/wgsl/kv-load.ts's address functions, the runtime's
// kvCache, runtime/kv-rows.ts) on lavapipe against the dense reference over the logical K/V
// (gatherKv): the row and coop engines, prefill and decode mode, random shapes (GQA, Nq ≠ Nk,
// ragged Nk, partly filled last pages), a capacity > Nk, BNHD views, HND and NHD pages in a random
// order. Unaddressed elements are NaN, so a read outside the addressed rows poisons the output.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { toF16 } from '../../src/runtime/f16.js';
import { rng } from '../../src/runtime/inputs.js';
import { gatherKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import type { KvCacheInput } from '../../src/runtime/kv-rows.js';
import {
  pagedKinds,
  pagedLayout,
  pagedTable,
  physicalCache,
  stridedKinds,
  stridedLayout,
  type LayoutKind,
} from '../support/kv-layouts.js';
import { expectAgreement, runDense } from '../support/oracle-cases.js';
import { makeInputs, type Shape } from '../support/arbitraries.js';
import { lightCoopDecode } from '../support/light-decode.js';

const seed0 = process.env.CI ? 20261203 : Math.floor(Math.random() * 2 ** 31);

interface Case {
  readonly shape: Shape;
  readonly kind: LayoutKind;
  readonly engine: 'row' | 'coop';
  readonly decode: 'never' | 'always';
  readonly pageSize: number;
  readonly dtype: 'f32' | 'f16';
  readonly seed: number;
}

function randomCase(
  seed: number,
  kind: LayoutKind,
  engine: 'row' | 'coop',
  decode: 'never' | 'always',
): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const Hkv = pick([1, 2]);
  const Nk = 1 + Math.floor(r() * 150);
  const Nq = decode === 'always' ? 1 + Math.floor(r() * 4) : 1 + Math.floor(r() * 40);
  const D = engine === 'coop' ? pick([8, 16]) : pick([6, 16]);
  return {
    shape: { B: pick([1, 2]), Hq: Hkv * pick([1, 2, 3]), Hkv, Nq, Nk, D, Dv: D },
    kind,
    engine,
    decode,
    pageSize: pick([1, 4, 16, 32]),
    dtype: 'f32',
    seed,
  };
}

const source = (c: Case): string =>
  c.kind.endsWith('pages')
    ? `attention paged() {\n  cache paged ${c.pageSize}\n  mask causal && q - k < 100\n}\n`
    : 'attention strided() {\n  mask causal && q - k < 100\n}\n';

/** Runs one case on the GPU and checks it against the reference over the logical K/V. */
async function check(c: Case): Promise<void> {
  const device = await getDevice();
  const { shape } = c;
  const compiled = compile(source(c), {
    target: 'wgsl',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    dtype: c.dtype,
    schedule: { blockQ: 8, blockK: 8, threads: c.engine === 'coop' ? 16 : 8 },
    wgslEngine: c.engine,
  });
  const align = compiled.artifact.kvRows?.align ?? 1;
  expect(align).toBe(c.engine === 'coop' && compiled.kernel.schedule.wgslEngine === 'coop' ? 4 : 1);
  const r = rng(c.seed + 1);
  const inputs = makeInputs(shape, c.seed);
  const n = (W: number): KvSizes => ({ B: shape.B, Hkv: shape.Hkv, Nk: shape.Nk, W });
  const table = c.kind.endsWith('pages') ? pagedTable(shape, c.pageSize, r) : undefined;
  const place = (logical: Float32Array, W: number): { cache: Float32Array; layout: KvCacheLayout } => {
    const l = table
      ? pagedLayout(c.kind as (typeof pagedKinds)[number], n(W), c.pageSize, table)
      : stridedLayout(c.kind, n(W), r, align);
    return { cache: physicalCache(logical, n(W), l), layout: l.layout };
  };
  const k = place(inputs.k, shape.D);
  const v = place(inputs.v, shape.Dv);
  // The table a run gets is one made for a larger batch, as engines allocate them: a last row of
  // -1s, past B, that a read would turn into garbage (or a refusal) and that the run leaves alone.
  const longer = (t: Int32Array, maxPages: number): Int32Array =>
    Int32Array.from([...t, ...new Array<number>(maxPages).fill(-1)]);
  const kvCache: KvCacheInput = {
    k: k.layout.strides,
    v: v.layout.strides,
    ...(table ? { blockTable: longer(table.blockTable, table.maxPages), maxPages: table.maxPages } : {}),
  };
  // The reference sees what the caches hold at the layout's places.
  expect(gatherKv(k.cache, k.layout, n(shape.D))).toEqual(inputs.k);
  const store = (x: Float32Array): Float32Array | Uint16Array => (c.dtype === 'f16' ? toF16(x) : x);
  // The coop decode module at fewer invocations (lightCoopDecode): the addressing is the point here.
  const gpu = await createKernel(device, lightCoopDecode(compiled.artifact), {
    decode: c.decode,
    debug: true,
  });
  try {
    const run = gpu.run.bind(gpu);
    // runDense passes q/k/v as given: the physical caches replace the logical ones, with their layout.
    const physical = {
      run: (i: Parameters<typeof run>[0]) => run({ ...i, k: store(k.cache), v: store(v.cache), kvCache }),
      destroy: () => undefined,
    };
    const { res, ref } = await runDense(physical, compiled, shape, inputs, {}, store);
    if (c.decode === 'always' && compiled.artifact.decode) expect(res.decodeSplits).toBeGreaterThan(0);
    const where = `\ncase ${JSON.stringify({ ...c, shape })}`;
    expectAgreement(res, ref, where, c.dtype === 'f16' ? 2e-3 : 1e-5);
  } finally {
    gpu.destroy();
  }
}

describe(`WGSL strided and paged K/V agree with the reference (seed ${seed0})`, () => {
  for (const engine of ['row', 'coop'] as const)
    for (const decode of ['never', 'always'] as const)
      it(`${engine} engine, decode ${decode}: capacity, BNHD, HND and NHD pages`, async () => {
        let seed = seed0 + (engine === 'coop' ? 1000 : 0) + (decode === 'always' ? 500 : 0);
        for (const kind of [...stridedKinds, ...pagedKinds])
          for (let i = 0; i < 2; i++) await check(randomCase(seed++, kind, engine, decode));
      }, 240_000);

  it('f16 caches: a strided and a paged one', async () => {
    for (const kind of ['bnhd', 'nhd-pages'] as const)
      await check({ ...randomCase(seed0 + 7, kind, 'row', 'never'), dtype: 'f16' });
  }, 120_000);
});

/** The run's result with the K/V packed, and again from BNHD views (same kernel, same values). */
async function packedVsStrided(source: string, params: Record<string, number>): Promise<void> {
  const device = await getDevice();
  const shape: Shape = { B: 2, Hq: 4, Hkv: 2, Nq: 37, Nk: 150, D: 16, Dv: 16 };
  const compiled = compile(source, { target: 'wgsl', headDim: 16, limits: deviceLimits(device) });
  const inputs = makeInputs(shape, 3);
  const r = rng(4);
  const n: KvSizes = { B: shape.B, Hkv: shape.Hkv, Nk: shape.Nk, W: 16 };
  const [lk, lv] = [stridedLayout('bnhd', n, r), stridedLayout('capacity', n, r)];
  const tensors = Object.fromEntries(
    compiled.kernel.tensors.map((t) => [t.name, Int32Array.from({ length: 2 * 4 * 150 }, (_, i) => i % 3)]),
  );
  const base = { q: inputs.q, B: 2, H: 4, Hkv: 2, Nq: 37, Nk: 150, params, tensors };
  const gpu = await createKernel(device, compiled.artifact, { decode: 'never' });
  try {
    const packed = await gpu.run({ ...base, k: inputs.k, v: inputs.v });
    const strided = await gpu.run({
      ...base,
      k: physicalCache(inputs.k, n, lk),
      v: physicalCache(inputs.v, n, lv),
      kvCache: { k: lk.layout.strides, v: lv.layout.strides },
    });
    expect(strided.out).toEqual(packed.out);
    expect(strided.lse).toEqual(packed.lse);
    expect(strided.indices).toEqual(packed.indices);
    expect(strided.importance).toEqual(packed.importance);
    expect(packed.indices ?? packed.importance).toBeDefined();
  } finally {
    gpu.destroy();
  }
}

describe('passes beside the attention read strided K/V through the same address functions', () => {
  it('block routing (pooling pass), token selection (key scores) and the importance pass', async () => {
    await packedVsStrided(
      'attention br(top: int = 2) {\n  route blocks(16) topk(top) by mean(q) . mean(k)\n}\n',
      {},
    );
    await packedVsStrided(
      'attention ts(budget: int = 20) {\n  select topk(budget) by q . k vote heads\n  mask causal\n}\n',
      {},
    );
    await packedVsStrided('attention hh() {\n  importance sum\n  mask causal\n}\n', {});
  }, 240_000);
});

/**
 * The paged kernel of `body` over shuffled pools of pages (NaN elsewhere) against the unpaged
 * kernel over packed K/V: the same arithmetic, so out, lse, indices and importance are equal.
 */
async function packedVsPaged(
  body: string,
  P: number,
  shape: Shape,
  decode: 'never' | 'always',
): Promise<void> {
  const device = await getDevice();
  const limits = deviceLimits(device);
  const opts = { target: 'wgsl' as const, headDim: shape.D, limits, wgslEngine: 'row' as const };
  const packedC = compile(`attention unpaged() {\n${body}\n}\n`, opts);
  const pagedC = compile(`attention paged() {\n  cache paged ${P}\n${body}\n}\n`, opts);
  const inputs = makeInputs(shape, 5 + P);
  const r = rng(6 + P);
  const n: KvSizes = { B: shape.B, Hkv: shape.Hkv, Nk: shape.Nk, W: shape.D };
  const table = pagedTable(shape, P, r);
  const kind = r() < 0.5 ? 'hnd-pages' : 'nhd-pages';
  const l = pagedLayout(kind, n, P, table);
  const tensors = Object.fromEntries(
    packedC.kernel.tensors.map((t) => [
      t.name,
      Int32Array.from({ length: shape.B * shape.Hq * shape.Nk }, (_, i) => i % 3),
    ]),
  );
  const base = {
    q: inputs.q,
    B: shape.B,
    H: shape.Hq,
    Hkv: shape.Hkv,
    Nq: shape.Nq,
    Nk: shape.Nk,
    params: {},
    tensors,
  };
  const a = await createKernel(device, packedC.artifact, { decode });
  const b = await createKernel(device, pagedC.artifact, { decode, debug: true });
  try {
    const packed = await a.run({ ...base, k: inputs.k, v: inputs.v });
    const paged = await b.run({
      ...base,
      k: physicalCache(inputs.k, n, l),
      v: physicalCache(inputs.v, n, l),
      kvCache: {
        k: l.layout.strides,
        v: l.layout.strides,
        blockTable: table.blockTable,
        maxPages: table.maxPages,
      },
    });
    const where = `${body} P ${P} ${kind} ${JSON.stringify(shape)}`;
    expect(paged.out, where).toEqual(packed.out);
    expect(paged.lse, where).toEqual(packed.lse);
    expect(paged.indices, where).toEqual(packed.indices);
    expect(paged.importance, where).toEqual(packed.importance);
    expect(packed.indices ?? packed.importance, where).toBeDefined();
  } finally {
    a.destroy();
    b.destroy();
  }
}

describe('WGSL routing, selection and importance over paged K/V (the address functions, kv-load.ts)', () => {
  const shapes: Shape[] = [
    { B: 2, Hq: 4, Hkv: 2, Nq: 21, Nk: 75, D: 16, Dv: 16 },
    { B: 1, Hq: 3, Hkv: 1, Nq: 2, Nk: 130, D: 8, Dv: 8 },
  ];
  const bodies = [
    '  route blocks(16) topk(2) by mean(q) . mean(k)',
    '  route blocks(8) topk(3) by q . max(k) vote groups\n  mask causal',
    '  select topk(20) by q . k vote heads\n  mask causal',
    '  emit topk(12) by q . k vote groups\n  mask causal',
    '  importance normalized\n  mask causal',
  ];
  for (const [i, body] of bodies.entries())
    it(
      body.trim().replace(/\n\s*/g, '; '),
      async () => {
        for (const [j, shape] of shapes.entries())
          await packedVsPaged(body, [4, 16, 1][(i + j) % 3]!, shape, j === 1 ? 'always' : 'never');
      },
      240_000,
    );

  it('the compiler takes them (no refusal at `cache`)', () => {
    for (const body of bodies)
      expect(() =>
        compile(`attention t() {\n  cache paged 8\n${body}\n}\n`, { target: 'wgsl', headDim: 16 }),
      ).not.toThrow();
  });
});
