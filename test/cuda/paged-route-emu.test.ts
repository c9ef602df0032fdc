// Ranked block routing (`route blocks(n) topk(k)`) over paged K/V caches on CUDA: the pooling pass
// (routing.ts route_pool_k) reads each block's rows through the block table (kv-rows.ts), as the
// routed attention does; executed on the CPU emulator (routing-emu.ts) against the float64 oracle
// over the logical K/V, with pools of pages in a random order (HND or NHD), NaN wherever the
// layout addresses nothing, random shapes (GQA with votes, Nq ≠ Nk, offsets, partly filled last
// pages, forced blocks), blocks smaller and larger than a page.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { scatterKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';
import type { RefInputs } from '../../src/runtime/reference.js';
import {
  COUNT_PARAMS,
  FORCE_CLAUSE,
  arbOffsetCase,
  assertCases,
  expectRoutedRun,
  logNearTies,
  routingOracle,
  type OffsetCase,
  type Tally,
} from '../support/oracle-cases.js';
import { emulatedPrograms } from './emu-call.js';
import { buildRoutingEmulation, runRouting } from './routing-emu.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const runs = Number(process.env.ATTNC_CUDA_PAGED_ROUTE_RUNS ?? 12);
const D = 8;

/** [source, page size]: blocks within a page, blocks spanning pages, raw and pooled queries. */
const programs: readonly (readonly [string, number])[] = [
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 16\n  route blocks(4) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n  mask causal\n}`,
    16,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 4\n  route blocks(8) topk(top) by q . max(k) vote groups ${FORCE_CLAUSE}\n  mask causal\n}`,
    4,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 2\n  route blocks(5) topk(top) by max(q) . lnmean(k) ${FORCE_CLAUSE}\n}`,
    2,
  ],
];

function pagedCaches(k: Float32Array, v: Float32Array, n: KvSizes, P: number, rand: () => number) {
  const maxPages = Math.ceil(n.Nk / P) + (rand() < 0.5 ? 1 : 0);
  const pool = n.B * maxPages + 2;
  const ids = Array.from({ length: pool }, (_, i) => i).sort(() => rand() - 0.5);
  const blockTable = Int32Array.from({ length: n.B * maxPages }, (_, i) => ids[i]!);
  const page = n.Hkv * P * n.W;
  const strides =
    rand() < 0.5 ? { batch: page, head: P * n.W, row: n.W } : { batch: page, head: n.W, row: n.Hkv * n.W };
  const layout: KvCacheLayout = { kind: 'paged', pageSize: P, strides, blockTable, maxPages };
  const scatter = (logical: Float32Array): Float32Array => {
    const cache = new Float32Array(pool * page).fill(Number.NaN);
    scatterKv(logical, cache, layout, n);
    return cache;
  };
  return { k: scatter(k), v: scatter(v), layout };
}

const dir = scratchDir('paged-route');
const kernelFor = emulatedPrograms(
  dir,
  (i) =>
    compile(programs[i]![0], {
      target: 'cuda',
      file: 'paged-route.attn',
      headDim: D,
      dtype: 'f32',
      schedule: { engine: 'simt', blockQ: 8, blockK: 8, threads: 32 },
    }),
  buildRoutingEmulation,
);

const tally: Tally = { executed: 0, nearTies: 0 };

async function check(t: OffsetCase): Promise<void> {
  const { c, exe } = await kernelFor(t.program);
  expect(c.kernel.formats.paged?.pageSize).toBe(programs[t.program]![1]);
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const q = randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const pools = pagedCaches(k, v, { B, Hkv, Nk, W: D }, programs[t.program]![1], rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  const qOffset = t.qOffset ?? Nk - Nq;
  const env = { params: ps, tensors: {}, sizes: { B, H, Hkv, Nq, Nk, D } };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, env, inp);
  const src = oracle.spec.source;
  if (src.kind !== 'topk') throw new Error('block routing programs rank with topk');
  const res = await runRouting(
    exe,
    join(dir, `p${t.program}`, `case-${tally.executed}`),
    c.artifact,
    c.kernel,
    {
      ...{ B, H, Hkv, Nq, Nk, qOffset, kOffset: t.kOffset, scale: Math.fround(1 / Math.sqrt(D)) },
      ...{ q, k: pools.k, v: pools.v, params: ps, tensors: {} },
      counts: [src.k, oracle.spec.first ?? 0, oracle.spec.local ?? 0],
      kvLayouts: { k: pools.layout, v: pools.layout },
    },
  );
  expectRoutedRun(oracle, res, `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)}`, tally);
}

describe('CUDA ranked block routing over paged K/V caches (emulated) agrees with the oracle', () => {
  it('every program once, a fixed case each', async () => {
    for (let p = 0; p < programs.length; p++)
      await check({
        ...{ program: p, B: 2, Hkv: 2, group: 2, Nq: 7, Nk: 37, qOffset: undefined, kOffset: 0 },
        ...{ top: 2, f: 1, l: 1, seed: 500 + p },
      });
  }, 900_000);

  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    const arb = arbOffsetCase({
      programs: programs.length,
      Nq: 12,
      Nk: 60,
      top: [0, 1, 2, 3, 100],
      f: [0, 0, 1, 99],
      l: [0, 0, 1, 4],
    });
    await assertCases(arb, check, runs, 'ATTNC_PAGED_ROUTE_SEED');
    logNearTies('cuda routing over paged caches', tally);
  }, 900_000);
});

describe('paged ranked block routing builds with nvcc', () => {
  it('pooled and raw queries (token form, tensor-core top-k), quantized K, mma (sm_80) and wgmma (sm_90a)', async () => {
    const at = scratchDir('paged-route-nvcc');
    const sources = [
      `attention pr_tok(${COUNT_PARAMS}) {\n  cache paged 4\n  route blocks(8) topk(top) by q . max(k) vote groups ${FORCE_CLAUSE}\n  mask causal\n}`,
      `attention pr_raw(top: int = 8) {\n  cache paged 64\n  route blocks(64) topk(top) by q . mean(k)\n  mask causal\n}`,
      `attention pr_q(top: int = 8) {\n  cache paged 64\n  store k int4 scale f16 per channel group 32 zero f16\n  route blocks(64) topk(top) by mean(q) . mean(k)\n  mask causal\n}`,
    ];
    for (const [engine, arch] of [
      ['mma', 'sm_80'],
      ['wgmma', 'sm_90a'],
    ] as const) {
      const tu = join(at, `${arch}.cu`);
      const codes = sources.map((src) =>
        compile(src, { target: 'cuda', headDim: 128, arch, schedule: { engine } }),
      );
      for (const c of codes) expect(c.kernel.schedule.engine).toBe(engine);
      writeFileSync(tu, codes.map((c) => c.artifact.code).join('\n'));
      const flags = quickCheckFlags(arch);
      expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
    }
  }, 900_000);
});
