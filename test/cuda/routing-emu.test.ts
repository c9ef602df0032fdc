// Block routing on CUDA (src/codegen/cuda/routing.ts, routing-attn.ts), executed on the CPU by the
// emulator (routing-emu.ts, emu.ts) and compared with the float64 oracle
// (src/runtime/reference-routing.ts). Executed: route_pool_k, route_pool_q, the SIMT route_topk
// and the SIMT engine's routed attention (tile list, per-row selection walk, predicate-free
// covered tiles), in the launcher's order. Not executed: the tensor-core top-k
// (routing-topk-mma.ts) and the mma/wgmma attentions — inline PTX; f32 storage never emits the
// former, so the raw-query programs here rank on the SIMT pass the launcher would run for them.
// `route chunks` and token selection run through select*.ts (test/cuda/select.test.ts).
// Random shapes (Nq ≠ Nk, query/key offsets that make first and last blocks ragged, GQA with
// voting, k above the block count, all forced) over programs covering every reducer, raw and
// pooled query sides, forced first/local blocks, every tile-class mode of the static mask, a
// tensor mask with summaries, a score modifier and several tile schedules. Indices must equal the
// oracle's (they start poisoned, so an unwritten id fails) except at f32 near-ties, where
// checkSelection must accept them and the attention is compared with the oracle run on the
// kernel's own selection (expectRoutedRun, as the WGSL routing tests do).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, type Compiled } from '../../src/compile.js';
import { PAD_ROOM } from '../../src/codegen/cuda/launcher-checks.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import type { RefInputs } from '../../src/runtime/reference.js';
import {
  FORCE_CLAUSE,
  COUNT_PARAMS,
  arbOffsetCase,
  assertCases,
  expectRoutedRun,
  logNearTies,
  routingOracle,
  slotShape,
  sometimesAtTheTop,
  type OffsetCase,
  type Tally,
} from '../support/oracle-cases.js';
import { buildRoutingEmulation, runRouting, type RoutingRun } from './routing-emu.js';
import { emulatedPrograms } from './emu-call.js';
import { scratchDir } from './support.js';

const runs = Number(process.env.ATTNC_CUDA_ROUTING_RUNS ?? 100);

type Tiles = Partial<Pick<Schedule, 'blockQ' | 'blockK' | 'threads'>>;
const tile = (n: number, threads = 4 * n): Tiles => ({ blockQ: n, blockK: n, threads });

/** [source, head dim, tiles]: each compiles (and builds its emulation) once. */
const programs: readonly (readonly [string, number, Tiles])[] = [
  // No static mask: uniform q-tiles run covered tiles predicate-free (gap bits matter).
  [
    `attention p(${COUNT_PARAMS}) { route blocks(8) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE} }`,
    8,
    tile(8),
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(5) topk(top) by max(q) . lnmean(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
    tile(8),
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(3) topk(top) by q . mean(k) ${FORCE_CLAUSE}\n mask causal }`,
    4,
    tile(4),
  ],
  [
    `attention p(${COUNT_PARAMS}, w: int = 9) { route blocks(7) topk(top) by first(q) . first(k) ${FORCE_CLAUSE}\n mask q - k < w && q >= k }`,
    8,
    tile(8),
  ],
  // A mask the tile classifier calls partial everywhere: route_candidate's pair-by-pair search.
  [
    `attention p(${COUNT_PARAMS}) { route blocks(4) topk(top) by lnmean(q) . max(k) ${FORCE_CLAUSE}\n mask (q + 2 * k) % 3 != 1 }`,
    16,
    tile(8),
  ],
  [
    `attention p(${COUNT_PARAMS}, doc: i32[kv]) { route blocks(6) topk(top) by q . first(k) ${FORCE_CLAUSE}\n mask doc[q] == doc[k] }`,
    8,
    tile(16),
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(1) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n mask causal }`,
    4,
    tile(4),
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(16) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n mask causal\n score score + 0.25 * float(k % 3) }`,
    8,
    tile(8),
  ],
  // Soft voting: per GQA group (NSA) and across all heads, with a head-dependent mask.
  [
    `attention p(${COUNT_PARAMS}) { route blocks(4) topk(top) by q . mean(k) vote groups ${FORCE_CLAUSE}\n mask causal }`,
    8,
    tile(8),
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(6) topk(top) by mean(q) . max(k) vote heads ${FORCE_CLAUSE}\n mask (k + h) % 4 != 0 || q >= k }`,
    8,
    tile(8),
  ],
  // The default SIMT schedule (64 × 64 tiles): several routing blocks per tile.
  [
    `attention p(${COUNT_PARAMS}) { route blocks(32) topk(top) by mean(q) . first(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
    {},
  ],
  // D = 6: head dims that are not a multiple of 4 (the top-k's dot product).
  [
    `attention p(${COUNT_PARAMS}) { route blocks(4) topk(top) by q . max(k) ${FORCE_CLAUSE}\n mask causal }`,
    6,
    tile(8, 16),
  ],
];

const dir = scratchDir('routing-emu');

function compileFor(source: string, D: number, tiles: Tiles): Compiled {
  return compile(source, {
    target: 'cuda',
    file: 'routing.attn',
    headDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt', ...tiles },
  });
}

const kernelFor = emulatedPrograms(
  dir,
  (i) => {
    const [source, D, tiles] = programs[i]!;
    return compileFor(source, D, tiles);
  },
  buildRoutingEmulation,
);

// k above the block count, zero, and "all forced" (f = 99) all occur; key offsets 0, 3, 13, and
// one case in eight ending within 20 of the launcher's last position, 2^31 - 1 - PAD_ROOM.
const arbRoutingCase = sometimesAtTheTop(
  arbOffsetCase({
    programs: programs.length,
    Nq: 24,
    Nk: 56,
    top: [0, 1, 2, 3, 5, 40],
    f: [0, 0, 1, 2, 99],
    l: [0, 0, 1, 2],
  }),
  2 ** 31 - 1 - PAD_ROOM,
);

const tally: Tally = { executed: 0, nearTies: 0 };
let caseNo = 0;

interface Prepared {
  readonly oracle: ReturnType<typeof routingOracle>;
  readonly res: RoutingRun;
}

/** Runs program `program` on inputs q, k, v (drawn from the case's seed unless given). */
async function runProgram(
  t: OffsetCase,
  given?: { q: Float32Array; k: Float32Array; v: Float32Array },
): Promise<Prepared> {
  const { c, exe } = await kernelFor(t.program);
  const D = programs[t.program]![1];
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const q = given?.q ?? randomNormal(B * H * Nq * D, rand);
  const k = given?.k ?? randomNormal(B * Hkv * Nk * D, rand);
  const v = given?.v ?? randomNormal(B * Hkv * Nk * D, rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  for (const p of c.kernel.params)
    if (!(p.name in ps) && p.default !== undefined) ps[p.name] = Number(p.default);
  const sizes = { B, H, Hkv, Nq, Nk, D };
  const tensors: Record<string, Int32Array> = {};
  const shapes: Record<string, number[]> = {};
  for (const slot of c.kernel.tensors) {
    shapes[slot.name] = slotShape(slot, ps, sizes);
    const n = shapes[slot.name]!.reduce((x, y) => x * y, 1);
    // Documents of 1 … 11 keys, some positions moved to the next one.
    tensors[slot.name] = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 11) + (i % 7 === 3 ? 1 : 0));
  }
  const qOffset = t.qOffset ?? Nk - Nq;
  const env = {
    params: ps,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, x]) => [n, { data: x, shape: shapes[n]! }])),
    sizes,
  };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, env, inp);
  const src = oracle.spec.source;
  if (src.kind !== 'topk') throw new Error('block routing programs rank with topk');
  const res = await runRouting(exe, join(dir, `p${t.program}`, `case-${caseNo++}`), c.artifact, c.kernel, {
    B,
    H,
    Hkv,
    Nq,
    Nk,
    qOffset,
    kOffset: t.kOffset,
    scale: Math.fround(1 / Math.sqrt(D)),
    q,
    k,
    v,
    params: ps,
    tensors,
    counts: [src.k, oracle.spec.first ?? 0, oracle.spec.local ?? 0],
  });
  return { oracle, res };
}

async function check(t: OffsetCase): Promise<void> {
  const { oracle, res } = await runProgram(t);
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)}`;
  expectRoutedRun(oracle, res, where, tally);
}

const fixed = (program: number, over: Partial<OffsetCase> = {}): OffsetCase => ({
  program,
  B: 1,
  Hkv: 2,
  group: 2,
  Nq: 11,
  Nk: 37,
  qOffset: undefined,
  kOffset: 0,
  top: 2,
  f: 1,
  l: 1,
  seed: 100 + program,
  ...over,
});

describe('CUDA block routing (emulated on the CPU) agrees with the float64 oracle', () => {
  it('every program runs with fixed shapes: ragged blocks, k above the block count, all forced', async () => {
    await Promise.all(programs.map((_, i) => kernelFor(i)));
    for (let p = 0; p < programs.length; p++) {
      await check(fixed(p));
      await check(fixed(p, { qOffset: 5, kOffset: 3, top: 40, f: 0, l: 2, Nq: 9, seed: 200 + p }));
      await check(fixed(p, { B: 2, Hkv: 1, group: 3, top: 0, f: 99, l: 0, Nk: 20, seed: 300 + p }));
    }
    expect(tally.executed).toBe(3 * programs.length);
  }, 600_000);

  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    const before = tally.executed;
    await assertCases(arbRoutingCase, check, runs, 'ATTNC_CUDA_ROUTING_SEED');
    expect(tally.executed - before).toBeGreaterThanOrEqual(runs);
    logNearTies('cuda routing', tally);
  }, 600_000);

  it('exact ties go to the lower block id and a NaN affinity ranks as -inf', async () => {
    // Program 0 (blocks of 8, pooled means): q = 0 makes every affinity 0, a tie, except block
    // 1's, which a NaN key makes NaN. Blocks 0..4; the two lowest tied ids but 1 are 0 and 2.
    const t = fixed(0, { Hkv: 1, group: 1, Nq: 8, Nk: 40, top: 2, f: 0, l: 0 });
    const D = programs[0]![1];
    const q = new Float32Array(t.Nq * D);
    const k = randomNormal(t.Nk * D, rng(5));
    k[9 * D + 2] = Number.NaN;
    const v = randomNormal(t.Nk * D, rng(6));
    const { oracle, res } = await runProgram(t, { q, k, v });
    expect(Array.from(oracle.routing.indices.subarray(0, 2))).toEqual([0, 2]);
    expect(Array.from(res.indices)).toEqual(Array.from(oracle.routing.indices));
    expectRoutedRun(oracle, res, '\nties', { executed: 0, nearTies: 0 });
  }, 600_000);
});
