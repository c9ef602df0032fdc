// Variable chunks on WGSL (`route chunks(t) topk(k) by …`, DHSA) against the float64 oracle:
// random non-decreasing chunk ids with gaps (ids need not be dense), ragged chunks (the call's
// first and last chunks cut by its offsets), every reducer, raw and pooled query sides, vote,
// forced first/local chunks, `emit`, `from` an index tensor, k above the chunk count and
// all-forced; and the runtime's validation of a bad chunk tensor (decreasing, negative, too
// short) naming the buffer.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runKernel } from '../src/cli/run-kernel.js';
import { compile, type Compiled } from '../src/compile.js';
import { verify } from '../src/ir/verify.js';
import { declPredicates, declRouting } from '../src/runtime/ast-eval.js';
import { compareArrays } from '../src/runtime/compare.js';
import { randomNormal, rng } from '../src/runtime/inputs.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';
import { checkSelection, nearTieGap, referenceRouting } from '../src/runtime/reference-routing.js';
import { createKernel, deviceLimits, getDevice, type GpuKernel } from '../src/runtime/webgpu.js';

const runs = Number(process.env.ATTNC_CHUNK_RUNS ?? 40);
const force = 'force first(f) local(l)';
const params = 'ch: i32[kv], top: int = 2, f: int = 0, l: int = 0';

/** [source, head dim, tile]. */
const programs: readonly (readonly [string, number, number])[] = [
  [
    `attention p(${params}) { route chunks(ch) topk(top) by lnmean(q) . lnmean(k) ${force}\n mask causal }`,
    8,
    8,
  ],
  [`attention p(${params}) { route chunks(ch) topk(top) by mean(q) . max(k) ${force} }`, 8, 8],
  [`attention p(${params}) { route chunks(ch) topk(top) by q . first(k) ${force}\n mask causal }`, 4, 4],
  [
    `attention p(${params}) { route chunks(ch) topk(top) by first(q) . mean(k) vote groups ${force}\n mask causal }`,
    8,
    8,
  ],
  [
    `attention p(${params}) { route chunks(ch) topk(top) by q . mean(k) vote heads ${force}\n mask (k + h) % 3 != 1 }`,
    8,
    16,
  ],
  [`attention p(${params}) { emit chunks(ch) topk(top) by max(q) . lnmean(k) ${force}\n mask causal }`, 8, 8],
  [
    `attention p(${params}, idx: i32[batch, heads, queries, top]) { route chunks(ch) from idx ${force}\n mask causal }`,
    8,
    8,
  ],
];

const compiled = new Map<number, { c: Compiled; gpu: GpuKernel }>();
let executed = 0;
let nearTies = 0;

async function kernelFor(i: number): Promise<{ c: Compiled; gpu: GpuKernel }> {
  const hit = compiled.get(i);
  if (hit) return hit;
  const [source, D, tile] = programs[i]!;
  const device = await getDevice();
  const c = compile(source, {
    target: 'wgsl',
    file: 'chunks.attn',
    headDim: D,
    limits: deviceLimits(device),
    schedule: { blockQ: tile, threads: tile, blockK: tile },
    observe: (pass, ir) => expect(verify(ir), `IR after ${pass}`).toEqual([]),
  });
  const entry = { c, gpu: await createKernel(device, c.artifact, { debug: true }) };
  compiled.set(i, entry);
  return entry;
}

interface Case {
  readonly program: number;
  readonly B: number;
  readonly Hkv: number;
  readonly group: number;
  readonly Nq: number;
  readonly Nk: number;
  /** Fraction of the room Nk − Nq left below the queries (q_offset). */
  readonly shift: number;
  /** Probability that a position starts a new chunk, and how far ids jump. */
  readonly cut: number;
  readonly jump: number;
  readonly top: number;
  readonly f: number;
  readonly l: number;
  readonly seed: number;
}

const arbCase: fc.Arbitrary<Case> = fc.record({
  program: fc.integer({ min: 0, max: programs.length - 1 }),
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  group: fc.constantFrom(1, 1, 2, 3),
  Nq: fc.integer({ min: 1, max: 40 }),
  Nk: fc.integer({ min: 1, max: 72 }),
  shift: fc.constantFrom(0, 0.5, 1),
  cut: fc.constantFrom(0.05, 0.2, 0.5, 1),
  jump: fc.constantFrom(1, 1, 3),
  top: fc.constantFrom(0, 1, 2, 3, 40),
  f: fc.constantFrom(0, 0, 1, 2, 99),
  l: fc.constantFrom(0, 0, 1, 2),
  seed: fc.integer(),
});

function chunkIds(n: number, cut: number, jump: number, rand: () => number): Int32Array {
  const out = new Int32Array(n);
  let id = Math.floor(rand() * 3);
  for (let p = 0; p < n; p++) {
    if (p > 0 && rand() < cut) id += 1 + Math.floor(rand() * jump);
    out[p] = id;
  }
  return out;
}

async function check(t: Case): Promise<void> {
  const { c, gpu } = await kernelFor(t.program);
  const D = programs[t.program]![1];
  const H = t.Hkv * t.group;
  const { B, Hkv, Nk } = t;
  const Nq = Math.min(t.Nq, Nk);
  const qOffset = Math.round((Nk - Nq) * t.shift);
  const rand = rng(t.seed);
  const q = randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const ch = chunkIds(Nk, t.cut, t.jump, rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  // `from idx`: chunk ids around the call's, with −1/−2 padding, duplicates and absent ids.
  const fromIdx = c.kernel.routing?.from !== undefined;
  const idxShape = [B, H, Nq, t.top];
  const idx = Int32Array.from(
    { length: fromIdx ? B * H * Nq * t.top : 0 },
    () => Math.floor(rand() * ((ch[Nk - 1] ?? 0) + 5)) - 2,
  );
  const tensors: Record<string, Int32Array> = fromIdx ? { ch, idx } : { ch };
  const res = await gpu.run({ q, k, v, B, H, Hkv, Nq, Nk, params: ps, tensors, qOffset });

  const envTensors = {
    ch: { data: ch, shape: [Nk] },
    ...(fromIdx ? { idx: { data: idx, shape: idxShape } } : {}),
  };
  const env = { params: ps, tensors: envTensors, sizes: { B, H, Hkv, Nq, Nk, D } };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset };
  const pred = declPredicates(c.decl.decl, env);
  const spec = declRouting(c.decl.decl, env)!;
  const routing = referenceRouting(inp, spec, pred.mask);
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)} ids [${ch.join(',')}]`;
  const got = res.indices!;
  expect(got.length, `indices length${where}`).toBe(routing.indices.length);
  let mask = routing.mask;
  if (!got.every((x, i) => x === routing.indices[i])) {
    const gap = nearTieGap(routing);
    expect(gap.relative, `indices differ without a near-tie${where}`).toBeLessThan(1e-4);
    nearTies++;
    for (let b = 0; b < B; b++)
      for (let g = 0; g < routing.G; g++)
        for (let i = 0; i < Nq; i++) {
          const at = ((b * routing.G + g) * Nq + i) * routing.K;
          const row = got.subarray(at, at + routing.K);
          expect(checkSelection(routing, b, g, i, row, 1e-4), `row ${b},${g},${i}${where}`).toBeUndefined();
        }
    const own = { kind: 'from', indices: got, groups: routing.G, capacity: routing.K } as const;
    mask = referenceRouting(inp, { ...spec, source: own }, pred.mask).mask;
  }
  const ref = referenceAttention(inp, { mask, score: pred.score });
  const out = compareArrays(res.out, ref.out);
  const lse = compareArrays(res.lse!, ref.lse, 1);
  executed++;
  expect(out.nanCount, `NaN in out${where}`).toBe(0);
  expect(out.relError, `out${where}`).toBeLessThanOrEqual(1e-5);
  expect(lse.relError, `lse${where}`).toBeLessThanOrEqual(1e-5);
}

afterAll(() => {
  for (const { gpu } of compiled.values()) gpu.destroy();
});

describe('chunk routing on WGSL agrees with the float64 oracle', () => {
  afterAll(() => {
    expect(executed).toBeGreaterThanOrEqual(Math.min(runs, 30));
    if (nearTies > 0) console.log(`routing-chunks: ${nearTies} near-tie case(s) checked with checkSelection`);
  });
  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, (t) => check(t)),
      {
        numRuns: runs,
        ...(process.env.ATTNC_CHUNK_SEED ? { seed: Number(process.env.ATTNC_CHUNK_SEED) } : {}),
      },
    );
  }, 400_000);
});

describe('a bad chunk tensor is an input error naming the buffer', () => {
  it.each([
    [
      'decreasing',
      Int32Array.from([0, 0, 1, 1, 0, 2, 2, 2]),
      /"ch": chunk ids must be non-decreasing, but 1 at 3 > 0 at 4/,
    ],
    ['negative', Int32Array.from([-1, 0, 0, 1, 1, 2, 2, 2]), /"ch": chunk id -1 at position 0 is negative/],
  ])('%s ids', async (_, ch, message) => {
    const { gpu } = await kernelFor(0);
    const [B, H, Hkv, Nq, Nk, D] = [1, 1, 1, 4, 8, 8];
    const x = new Float32Array(Nk * D);
    const run = gpu.run({ q: new Float32Array(Nq * D), k: x, v: x, B, H, Hkv, Nq, Nk, tensors: { ch } });
    await expect(run).rejects.toThrow(message);
  });
  it('positions outside the tensor', async () => {
    const { gpu } = await kernelFor(0);
    const [B, H, Hkv, Nq, Nk, D] = [1, 1, 1, 4, 8, 8];
    const x = new Float32Array(Nk * D);
    const ch = new Int32Array(Nk);
    const run = gpu.run({
      q: new Float32Array(Nq * D),
      k: x,
      v: x,
      B,
      H,
      Hkv,
      Nq,
      Nk,
      tensors: { ch },
      qOffset: 6,
    });
    await expect(run).rejects.toThrow(
      /"ch": chunk ids cover positions \[0, 8\), but the call has query positions \[6, 10\)/,
    );
  });
});

describe('attnc run stdlib/routing/dhsa.attn', () => {
  it('agrees with the oracle and reports the chunk density', async () => {
    const file = 'stdlib/routing/dhsa.attn';
    const base = { B: 1, H: 4, Hkv: 2, Nq: 100, Nk: 256, D: 32, params: {}, seed: 7, repeats: 1 };
    const r = await runKernel(readFileSync(file, 'utf8'), { ...base, file, dtype: 'f32' });
    expect(['exact', 'near-tie']).toContain(r.routing?.indices);
    expect(r.routing!.blockDensity).toBeGreaterThan(0);
    expect(r.routing!.blockDensity).toBeLessThan(1);
    expect(r.out.nanCount).toBe(0);
    expect(r.out.relError).toBeLessThanOrEqual(r.tolerance);
    expect(r.lse!.relError).toBeLessThanOrEqual(r.tolerance);
  });
});
