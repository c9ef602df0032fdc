// Variable chunks on WGSL (`route chunks(t) topk(k) by …`, DHSA) against the float64 oracle:
// random non-decreasing chunk ids with gaps (ids need not be dense), ragged chunks (the call's
// first and last chunks cut by its offsets), every reducer, raw and pooled query sides, vote,
// forced first/local chunks, `emit`, `from` an index tensor, k above the chunk count,
// all-forced and chunk ids ending at I32_MAX; and the runtime's validation of a bad chunk tensor (decreasing, negative, too
// short) naming the buffer.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runKernel } from '../src/cli/run-kernel.js';
import { randomNormal, rng } from '../src/runtime/inputs.js';
import type { RefInputs } from '../src/runtime/reference.js';
import {
  FORCE_CLAUSE,
  COUNT_PARAMS,
  arbCase,
  assertCases,
  expectRoutedRun,
  logNearTies,
  routingOracle,
  wgslKernels,
  type BaseCase,
  type Tally,
  type WgslProgram,
} from './support/oracle-cases.js';

const runs = Number(process.env.ATTNC_CHUNK_RUNS ?? 40);
const params = `ch: i32[kv], ${COUNT_PARAMS}`;

/** [source, head dim, tile]. */
const programs: readonly WgslProgram[] = [
  [
    `attention p(${params}) { route chunks(ch) topk(top) by lnmean(q) . lnmean(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
    8,
  ],
  [`attention p(${params}) { route chunks(ch) topk(top) by mean(q) . max(k) ${FORCE_CLAUSE} }`, 8, 8],
  [
    `attention p(${params}) { route chunks(ch) topk(top) by q . first(k) ${FORCE_CLAUSE}\n mask causal }`,
    4,
    4,
  ],
  [
    `attention p(${params}) { route chunks(ch) topk(top) by first(q) . mean(k) vote groups ${FORCE_CLAUSE}\n mask causal }`,
    8,
    8,
  ],
  [
    `attention p(${params}) { route chunks(ch) topk(top) by q . mean(k) vote heads ${FORCE_CLAUSE}\n mask (k + h) % 3 != 1 }`,
    8,
    16,
  ],
  [
    `attention p(${params}) { emit chunks(ch) topk(top) by max(q) . lnmean(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
    8,
  ],
  [
    `attention p(${params}, idx: i32[batch, heads, queries, top]) { route chunks(ch) from idx ${FORCE_CLAUSE}\n mask causal }`,
    8,
    8,
  ],
];

// Both WGSL engines: the row engine, and the coop engine's routed tile loop (coop-route.ts).
const engines = {
  row: wgslKernels(programs, 'chunks.attn'),
  coop: wgslKernels(programs, 'chunks.attn', 'coop'),
} as const;
type Engine = keyof typeof engines;
const { kernelFor } = engines.row;
const tallies: Record<Engine, Tally> = {
  row: { executed: 0, nearTies: 0 },
  coop: { executed: 0, nearTies: 0 },
};

interface Case extends BaseCase {
  /** Fraction of the room Nk − Nq left below the queries (q_offset). */
  readonly shift: number;
  /** Probability that a position starts a new chunk, and how far ids jump. */
  readonly cut: number;
  readonly jump: number;
  /** The last chunk id is I32_MAX (one case in eight), where a chunk's end id + 1 wraps. */
  readonly idsAtTheTop: boolean;
}

const arbChunkCase: fc.Arbitrary<Case> = arbCase<Pick<Case, 'shift' | 'cut' | 'jump' | 'idsAtTheTop'>>(
  { programs: programs.length, Nq: 40, Nk: 72, top: [0, 1, 2, 3, 40], f: [0, 0, 1, 2, 99], l: [0, 0, 1, 2] },
  {
    shift: fc.constantFrom(0, 0.5, 1),
    cut: fc.constantFrom(0.05, 0.2, 0.5, 1),
    jump: fc.constantFrom(1, 1, 3),
    idsAtTheTop: fc.constantFrom(false, false, false, false, false, false, false, true),
  },
);
const I32_MAX = 2147483647;

function chunkIds(n: number, t: Case, rand: () => number): Int32Array {
  const out = new Int32Array(n);
  let id = Math.floor(rand() * 3);
  for (let p = 0; p < n; p++) {
    if (p > 0 && rand() < t.cut) id += 1 + Math.floor(rand() * t.jump);
    out[p] = id;
  }
  const shift = t.idsAtTheTop ? I32_MAX - id : 0;
  return out.map((x) => x + shift);
}

async function check(engine: Engine, t: Case): Promise<void> {
  const { c, gpu } = await engines[engine].kernelFor(t.program);
  expect(c.kernel.schedule.wgslEngine).toBe(engine === 'coop' ? 'coop' : undefined);
  const D = programs[t.program]![1];
  const H = t.Hkv * t.group;
  const { B, Hkv, Nk } = t;
  const Nq = Math.min(t.Nq, Nk);
  const qOffset = Math.round((Nk - Nq) * t.shift);
  const rand = rng(t.seed);
  const q = randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const ch = chunkIds(Nk, t, rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  // `from idx`: chunk ids around the call's, with −1/−2 padding, duplicates and absent ids.
  const fromIdx = c.kernel.routing?.source.kind === 'from';
  const idxShape = [B, H, Nq, t.top];
  const last = ch[Nk - 1] ?? 0;
  const [lo, span] = t.idsAtTheTop ? [Math.max(0, ch[0]! - 3), last - ch[0]! + 6] : [0, last + 5];
  const idx = Int32Array.from({ length: fromIdx ? B * H * Nq * t.top : 0 }, () => {
    const x = Math.floor(rand() * span) - 2;
    return x < 0 ? x : Math.min(I32_MAX, lo + x);
  });
  const tensors: Record<string, Int32Array> = fromIdx ? { ch, idx } : { ch };
  const res = await gpu.run({ q, k, v, B, H, Hkv, Nq, Nk, params: ps, tensors, qOffset });

  const envTensors = {
    ch: { data: ch, shape: [Nk] },
    ...(fromIdx ? { idx: { data: idx, shape: idxShape } } : {}),
  };
  const env = { params: ps, tensors: envTensors, sizes: { B, H, Hkv, Nq, Nk, D } };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset };
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)} ids [${ch.join(',')}]`;
  expectRoutedRun(routingOracle(c, env, inp), res, `${where} (${engine} engine)`, tallies[engine]);
}

afterAll(() => {
  for (const e of Object.values(engines)) e.destroy();
});

describe.each(['row', 'coop'] as const)(
  'chunk routing on the WGSL %s engine agrees with the float64 oracle',
  (engine) => {
    // The coop engine shares the selection passes: half the cases check its attention.
    const n = engine === 'row' ? runs : Math.ceil(runs / 2);
    afterAll(() => {
      expect(tallies[engine].executed).toBeGreaterThanOrEqual(Math.min(n, 15));
      logNearTies(`routing-chunks ${engine}`, tallies[engine]);
    });
    it(`${n} random shapes × ${programs.length} programs`, async () => {
      await assertCases(arbChunkCase, (t) => check(engine, t), n, 'ATTNC_CHUNK_SEED');
    }, 400_000);
  },
);

// One key in chunk I32_MAX: its end, id + 1, wrapped to I32_MIN and the chunk looked empty, so
// route_sort dropped it as a forced id (`from`, local(2)) and the coop engine skipped its tile.
describe.each(['row', 'coop'] as const)(
  'chunk routing on the WGSL %s engine at chunk id I32_MAX',
  (engine) => {
    const one = { B: 1, Hkv: 1, group: 1, Nq: 1, Nk: 1, shift: 0, cut: 0.05, jump: 1, idsAtTheTop: true };
    it.each([0, 6])('program %i keeps chunk I32_MAX', async (program) => {
      await check(engine, { ...one, program, top: 0, f: 0, l: 2, seed: 0 });
    });
  },
);

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

describe('attnc run stdlib/dhsa.attn', () => {
  it('agrees with the oracle and reports the chunk density', async () => {
    const file = 'stdlib/dhsa.attn';
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
