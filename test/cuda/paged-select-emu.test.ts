// Selection (select, emit, from, chunks) and the importance pass over paged K/V caches on CUDA
// (select-score.ts / select-attn.ts / importance.ts read rows through kv-rows.ts's block table),
// on the CPU emulator against the float64 oracle over the logical K/V: random shapes (GQA,
// Nq ≠ Nk, offsets, forced ids, partly filled last pages) with pools in HND and NHD page layouts,
// pages in a random order, and every element the layout does not address NaN, so a read outside
// the addressed rows poisons the output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMP_KEYS } from '../../src/codegen/cuda/importance.js';
import { compile } from '../../src/compile.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { scatterKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';
import { referenceAttention, type RefInputs } from '../../src/runtime/reference.js';
import {
  COUNT_PARAMS,
  FORCE_CLAUSE,
  arbOffsetCase,
  assertCases,
  expectRoutedRun,
  logNearTies,
  routingOracle,
  slotShape,
  type OffsetCase,
  type Tally,
} from '../support/oracle-cases.js';
import { buildEmulation } from './emu.js';
import { EmuSpec, emulatedPrograms, type ArgField, type EmuCall } from './emu-call.js';
import { buildSelectEmulation, runSelect } from './select-emu.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const runs = Number(process.env.ATTNC_CUDA_PAGED_SELECT_RUNS ?? 16);
const D = 8;

/** [source, page size]. */
const programs: readonly (readonly [string, number])[] = [
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 4\n  select topk(top) by q . k ${FORCE_CLAUSE}\n  mask causal\n}`,
    4,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 8\n  emit blocks(4) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n  mask causal\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, idx: i32[batch, kv_heads, queries, top]) {\n  cache paged 4\n  select from idx ${FORCE_CLAUSE}\n  mask causal\n}`,
    4,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv]) {\n  cache paged 8\n  route chunks(ch) topk(top) by q . max(k) vote groups ${FORCE_CLAUSE}\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  cache paged 16\n  emit topk(top) by q . k vote groups ${FORCE_CLAUSE}\n  mask causal\n}`,
    16,
  ],
];

/**
 * Physical K and V pools sharing one block table (pages in a random order, one spare page per
 * batch at random), NaN wherever the layout addresses nothing; HND or NHD pages.
 */
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

/** Non-decreasing chunk ids with gaps, runs of 1 … 9. */
function chunkIds(n: number, rand: () => number): Int32Array {
  let id = Math.floor(rand() * 3);
  let left = 0;
  return Int32Array.from({ length: n }, () => {
    if (left-- <= 0) [id, left] = [id + 1 + Math.floor(rand() * 2), Math.floor(rand() * 9)];
    return id;
  });
}

const dir = scratchDir('paged-select');
const kernelFor = emulatedPrograms(
  dir,
  (i) =>
    compile(programs[i]![0], {
      target: 'cuda',
      file: 'paged.attn',
      headDim: D,
      dtype: 'f32',
      schedule: { engine: 'simt' },
    }),
  buildSelectEmulation,
);

const tally: Tally = { executed: 0, nearTies: 0 };

async function check(t0: OffsetCase): Promise<void> {
  const { c, exe } = await kernelFor(t0.program);
  const chunked = c.kernel.routing?.unit.kind === 'chunks';
  const t = chunked
    ? { ...t0, Nq: Math.min(t0.Nq, t0.Nk), kOffset: 0, qOffset: Math.max(0, t0.Nk - Math.min(t0.Nq, t0.Nk)) }
    : t0;
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const q = randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const pools = pagedCaches(k, v, { B, Hkv, Nk, W: D }, programs[t.program]![1], rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  const sizes = { B, H, Hkv, Nq, Nk, D };
  const tensors: Record<string, Int32Array> = {};
  const shapes: Record<string, number[]> = {};
  for (const slot of c.kernel.tensors) {
    shapes[slot.name] = slotShape(slot, ps, sizes);
    const n = shapes[slot.name]!.reduce((a, b) => a * b, 1);
    tensors[slot.name] =
      slot.name === 'ch'
        ? chunkIds(n, rand)
        : Int32Array.from({ length: n }, () => Math.floor(rand() * (Nk + t.kOffset + 6)) - 3);
  }
  const qOffset = t.qOffset ?? Nk - Nq;
  const env = {
    params: ps,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, x]) => [n, { data: x, shape: shapes[n]! }])),
    sizes,
  };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, env, inp);
  const res = await runSelect(
    exe,
    join(dir, `p${t.program}`, `case-${tally.executed}`),
    c.artifact,
    c.kernel,
    {
      B,
      H,
      Hkv,
      Nq,
      Nk,
      qOffset,
      kOffset: t.kOffset,
      scale: Math.fround(1 / Math.sqrt(D)),
      q,
      k: pools.k,
      v: pools.v,
      params: ps,
      tensors,
      K: oracle.routing.K,
      kvLayouts: { k: pools.layout, v: pools.layout },
    },
  );
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)}`;
  expectRoutedRun(oracle, res, where, tally, { own: { first: 0, local: 0 } });
}

describe('CUDA selection over paged K/V caches (emulated) agrees with the oracle', () => {
  it('every program once, a fixed case each', async () => {
    for (let p = 0; p < programs.length; p++)
      await check({
        ...{ program: p, B: 2, Hkv: 2, group: 2, Nq: 5, Nk: 37, qOffset: undefined, kOffset: 0 },
        ...{ top: 3, f: 1, l: 1, seed: 300 + p },
      });
  }, 900_000);

  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    const arb = arbOffsetCase({
      programs: programs.length,
      Nq: 12,
      Nk: 60,
      top: [0, 1, 2, 3, 7, 100],
      f: [0, 0, 1, 3, 99],
      l: [0, 0, 1, 4],
    });
    await assertCases(arb, check, runs, 'ATTNC_PAGED_SELECT_SEED');
    expect(tally.executed).toBeGreaterThanOrEqual(runs);
    logNearTies('cuda select over paged caches', tally);
  }, 900_000);
});

describe('CUDA importance over a paged K/V cache (emulated) agrees with the oracle', () => {
  it('both modes, GQA, decode-sized and prefill-sized calls, HND and NHD pages', async () => {
    for (const mode of ['sum', 'normalized'] as const) {
      const c = compile(`attention pi() {\n  cache paged 8\n  importance ${mode}\n  mask causal\n}`, {
        target: 'cuda',
        headDim: D,
        dtype: 'f32',
        schedule: { engine: 'simt', blockQ: 16, blockK: 16, threads: 16 },
      });
      const at = join(dir, `imp-${mode}`);
      mkdirSync(at, { recursive: true });
      const exe = await buildEmulation(at, c.artifact, c.kernel);
      const shapes = [
        { B: 2, H: 4, Hkv: 2, Nq: 9, Nk: 29 },
        { B: 1, H: 3, Hkv: 1, Nq: 1, Nk: 150 },
      ];
      for (const [i, s] of shapes.entries()) {
        const rand = rng(17 * i + (mode === 'sum' ? 1 : 2));
        const q = randomNormal(s.B * s.H * s.Nq * D, rand);
        const k = randomNormal(s.B * s.Hkv * s.Nk * D, rand);
        const v = randomNormal(s.B * s.Hkv * s.Nk * D, rand);
        const pools = pagedCaches(k, v, { B: s.B, Hkv: s.Hkv, Nk: s.Nk, W: D }, 8, rand);
        const call: EmuCall = {
          ...{ ...s, qOffset: s.Nk - s.Nq, kOffset: 0, scale: Math.fround(1 / Math.sqrt(D)) },
          ...{ q, k: pools.k, v: pools.v, params: {}, tensors: {} },
        };
        const caseDir = join(at, `case${i}`);
        mkdirSync(caseDir, { recursive: true });
        const spec = new EmuSpec(caseDir);
        const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!) as {
          args: { fields: ArgField[] };
          sharedBytes: number;
        };
        const sizes: Record<string, number> = { ...s, q_offset: call.qOffset, k_offset: 0 };
        for (const f of manifest.args.fields) {
          if (spec.kvLayoutField(f, { k: pools.layout, v: pools.layout })) continue;
          if (spec.commonField(f, call, c.kernel)) continue;
          if (f.role === 'importance') spec.output(f.offset, 4 * s.B * s.H * s.Nk, 'importance.bin');
          else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
          else throw new Error(`paged importance emulation: unexpected field ${f.field} (${f.role})`);
        }
        spec.qscale(c.kernel, call.scale);
        const entry = (role: string): number => c.artifact.entryPoints.findIndex((e) => e.role === role);
        const sched = c.kernel.schedule;
        spec.line(
          `launch ${entry('attention')} ${Math.ceil(s.Nq / sched.blockQ)} ${s.H} ${s.B} ${sched.threads} ${manifest.sharedBytes}`,
        );
        spec.line(
          `launch ${entry('importance')} ${Math.ceil(s.Nk / IMP_KEYS)} ${s.Hkv} ${s.B} ${IMP_KEYS} 0`,
        );
        await spec.run(exe);
        const sz = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
        const pred = declPredicates(c.decl.decl, { params: {}, tensors: {}, sizes: { ...sz, D } });
        const ref = referenceAttention({ q, k, v, ...sz, Hq: s.H, D, Dv: D }, pred);
        const what = `${mode} ${JSON.stringify(s)}`;
        const out = compareArrays(new Float32Array(spec.read('out.bin')), ref.out, ref.outScale);
        expect(out.nanCount, what).toBe(0);
        expect(out.relError, what).toBeLessThanOrEqual(1e-5);
        const expected = mode === 'sum' ? ref.importance : ref.importanceNormalized;
        const got = compareArrays(new Float32Array(spec.read('importance.bin')), expected);
        expect(got.nanCount, what).toBe(0);
        expect(got.relError, `importance ${what}`).toBeLessThanOrEqual(1e-5);
      }
    }
  }, 600_000);
});

describe('paged selection and importance build with nvcc', () => {
  it('every program and the importance pass, mma (sm_80) and wgmma (sm_90a), warnings as errors', async () => {
    const at = scratchDir('paged-select-nvcc');
    const sources = [
      ...programs.map(([src], i) => src.replace('attention p(', `attention p${i}(`)),
      'attention pi() {\n  cache paged 8\n  importance normalized\n  mask causal\n}',
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
