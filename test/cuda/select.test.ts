// Token selection, `emit`, `from` and chunk routing on CUDA (src/codegen/cuda/select*.ts),
// executed on the CPU by the emulator (select-emu.ts) and compared with the float64 oracle
// (src/runtime/reference-routing.ts): random shapes (Nq ≠ Nk, offsets, GQA, k above the key
// count, all forced) over programs covering voting, forced ids, every tile class of the static
// mask, a score modifier, block- and token-level `emit`, `from` tensors with padding, duplicates
// and out-of-range ids, and variable chunks with each pooling. Indices must equal the oracle's
// except at f32 near-ties, where checkSelection must accept them and the attention is compared
// with the oracle run on the kernel's own selection. Scoring runs in rounds of query rows (the
// metric scratch is O(Nq·k + Nk)); the emulation's small round floor makes most cases multi-round.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
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
  type OffsetCase,
  type Tally,
} from '../support/oracle-cases.js';
import { buildSelectEmulation, runSelect } from './select-emu.js';
import { emulatedPrograms } from './emu-call.js';
import { scratchDir } from './support.js';

const runs = Number(process.env.ATTNC_CUDA_SELECT_RUNS ?? 30);

/** [source, head dim]: each compiles (and builds its emulation) once. */
const programs: readonly (readonly [string, number])[] = [
  [`attention p(${COUNT_PARAMS}) { select topk(top) by q . k }`, 8],
  [`attention p(${COUNT_PARAMS}) { select topk(top) by q . k ${FORCE_CLAUSE}\n mask causal }`, 4],
  [`attention p(${COUNT_PARAMS}) { select topk(top) by q . k vote heads ${FORCE_CLAUSE}\n mask causal }`, 8],
  [
    `attention p(${COUNT_PARAMS}) { select topk(top) by q . k vote groups ${FORCE_CLAUSE}\n mask (k + h) % 3 != 0 || q >= k }`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, doc: i32[kv]) { select topk(top) by q . k ${FORCE_CLAUSE}\n mask doc[q] == doc[k]\n score score + 0.5 * float(k % 2) }`,
    8,
  ],
  [`attention p(${COUNT_PARAMS}) { emit topk(top) by q . k vote groups ${FORCE_CLAUSE}\n mask causal }`, 8],
  [`attention p(${COUNT_PARAMS}) { select topk(top) by q . k emit indices\n mask q - k < 9 && q >= k }`, 4],
  // D = 6: the scalar scoring loop and one-element attention loads.
  [`attention p(${COUNT_PARAMS}) { select topk(top) by q . k vote groups ${FORCE_CLAUSE}\n mask causal }`, 6],
  [
    `attention p(${COUNT_PARAMS}) { emit blocks(4) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, idx: i32[batch, kv_heads, queries, top]) { select from idx ${FORCE_CLAUSE}\n mask causal }`,
    8,
  ],
  [`attention p(${COUNT_PARAMS}, idx: i32[batch, 1, queries, 3]) { select from idx }`, 8],
  [
    `attention p(${COUNT_PARAMS}, idx: i32[batch, heads, queries, top]) { route blocks(4) from idx ${FORCE_CLAUSE}\n mask causal }`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv]) { route chunks(ch) topk(top) by lnmean(q) . lnmean(k) ${FORCE_CLAUSE}\n mask causal }`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv]) { route chunks(ch) topk(top) by q . max(k) vote groups ${FORCE_CLAUSE} }`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv]) { route chunks(ch) topk(top) by first(q) . mean(k) ${FORCE_CLAUSE}\n mask causal }`,
    4,
  ],
];

const dir = scratchDir('select');
const kernelFor = emulatedPrograms(
  dir,
  (i) => {
    const [source, D] = programs[i]!;
    return compile(source, {
      target: 'cuda',
      file: 'select.attn',
      headDim: D,
      dtype: 'f32',
      schedule: { engine: 'simt' },
    });
  },
  buildSelectEmulation,
);

const arbSelectCase = arbOffsetCase({
  programs: programs.length,
  Nq: 12,
  Nk: 60,
  top: [0, 1, 2, 3, 7, 100],
  f: [0, 0, 1, 3, 99],
  l: [0, 0, 1, 4],
});

const tally: Tally = { executed: 0, nearTies: 0 };
/** Cases whose scoring ran in several rounds of query rows (EMU_ROUND_FLOATS makes them common). */
let multiRound = 0;

/** Cases ranked by the wide (multi-block) top-k (select-wide.ts; EMU_WIDE_* make them common). */
let wideRanked = 0;
/** Cases whose vote statistics came from sel_vote_kv (select-vote.ts: decode, one kv head a block). */
let voteKvScored = 0;

/** `ties`: zero queries, so every candidate's metric is equal and ties span the top-k's blocks. */
async function check(t0: OffsetCase, ties = false): Promise<void> {
  const { c, exe } = await kernelFor(t0.program);
  const chunked = c.kernel.routing?.unit.kind === 'chunks';
  // Chunk ids are indexed by position: the call's positions lie in [0, Nk).
  const t = chunked
    ? {
        ...t0,
        Nq: Math.min(t0.Nq, t0.Nk),
        kOffset: 0,
        qOffset:
          t0.qOffset === undefined
            ? undefined
            : Math.max(0, Math.min(t0.qOffset, t0.Nk - Math.min(t0.Nq, t0.Nk))),
      }
    : t0;
  const D = programs[t.program]![1];
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const q = ties ? new Float32Array(B * H * Nq * D) : randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  const sizes = { B, H, Hkv, Nq, Nk, D };
  const tensors: Record<string, Int32Array> = {};
  const shapes: Record<string, number[]> = {};
  for (const slot of c.kernel.tensors) {
    shapes[slot.name] = slotShape(slot, ps, sizes);
    const n = shapes[slot.name]!.reduce((a, b) => a * b, 1);
    if (slot.name === 'doc')
      tensors.doc = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 11) + (i % 7 === 3 ? 1 : 0));
    else if (slot.name === 'ch') {
      // Non-decreasing chunk ids with gaps, runs of 1 … 9.
      let id = Math.floor(rand() * 3);
      let left = 0;
      tensors.ch = Int32Array.from({ length: n }, () => {
        if (left-- <= 0) [id, left] = [id + 1 + Math.floor(rand() * 2), Math.floor(rand() * 9)];
        return id;
      });
    } else {
      const ids = c.kernel.routing?.unit.kind === 'tokens' ? Nk + t.kOffset : 30;
      tensors[slot.name] = Int32Array.from({ length: n }, () => Math.floor(rand() * (ids + 6)) - 3);
    }
  }
  const qOffset = t.qOffset ?? Nk - Nq;
  const scale = Math.fround(1 / Math.sqrt(D));
  const env = {
    params: ps,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, x]) => [n, { data: x, shape: shapes[n]! }])),
    sizes,
  };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, env, inp);
  const caseDir = join(dir, `p${t.program}`, `case-${tally.executed}`);
  const res = await runSelect(exe, caseDir, c.artifact, c.kernel, {
    B,
    H,
    Hkv,
    Nq,
    Nk,
    qOffset,
    kOffset: t.kOffset,
    scale,
    q,
    k,
    v,
    params: ps,
    tensors,
    K: oracle.routing.K,
  });
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)}`;
  // The kernel's own selection already holds the forced ids.
  expectRoutedRun(oracle, res, where, tally, { own: { first: 0, local: 0 } });
  if (res.rounds > 1) multiRound++;
  if (res.wideRounds > 0) wideRanked++;
  if (res.voteKvRounds > 0) voteKvScored++;
}

describe('CUDA selection (emulated on the CPU) agrees with the float64 oracle', () => {
  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    await Promise.all(programs.map((_, i) => kernelFor(i)));
    await assertCases(arbSelectCase, check, runs, 'ATTNC_SELECT_SEED');
    expect(tally.executed).toBeGreaterThanOrEqual(runs);
    if (runs >= 20) expect(multiRound, 'cases scored in several rounds').toBeGreaterThan(0);
    if (runs >= 20) expect(wideRanked, 'cases ranked by the wide top-k').toBeGreaterThan(0);
    logNearTies('cuda select', tally);
  }, 900_000);

  it('every program runs at least once with a fixed seed per program', async () => {
    for (let p = 0; p < programs.length; p++)
      await check({
        program: p,
        B: 1,
        Hkv: 2,
        group: 2,
        Nq: 5,
        Nk: 37,
        qOffset: undefined,
        kOffset: 0,
        top: 3,
        f: 1,
        l: 1,
        seed: 100 + p,
      });
  }, 900_000);

  it('the wide top-k: long rows over many blocks, decode and prefill, random and all-tied metrics', async () => {
    const before = wideRanked;
    const tokens = programs.flatMap(([src], p) => (/select topk\(top\) by q \. k/.test(src) ? [p] : []));
    expect(tokens.length).toBeGreaterThan(3);
    for (const p of tokens)
      for (const [Nq, ties] of [
        [1, false],
        [1, true],
        [3, true],
      ] as const)
        await check(
          {
            program: p,
            B: 1,
            Hkv: 2,
            group: 2,
            Nq,
            Nk: 203,
            qOffset: undefined,
            kOffset: 0,
            top: 37,
            f: 1,
            l: 2,
            seed: 300 + p,
          },
          ties,
        );
    expect(wideRanked - before, 'calls ranked by the wide top-k').toBeGreaterThan(0);
  }, 900_000);

  it('the read-K-once vote (sel_vote_kv): two ragged spans, GQA, vote heads and groups, random and all-tied', async () => {
    const before = voteKvScored;
    const voting = programs.flatMap(([src], p) => (/topk\(top\) by q \. k vote/.test(src) ? [p] : []));
    expect(voting.length).toBeGreaterThan(2);
    // k large enough that the round keeps its affinities (EMU_ROUND_FLOATS is tiny), as decoding does.
    for (const p of voting)
      for (const [Nq, group, ties, top] of [
        [1, 3, false, 260],
        [1, 2, true, 150],
        [2, 2, false, 150],
        [2, 1, false, 41],
      ] as const)
        await check(
          {
            program: p,
            B: 1,
            Hkv: 2,
            group,
            Nq,
            Nk: 300, // 2 scoring spans of 256, the last ragged
            qOffset: undefined,
            kOffset: 0,
            top,
            f: 1,
            l: 2,
            seed: 500 + p,
          },
          ties,
        );
    // Every voting program, vote heads (one group over both kv heads) included.
    expect(voteKvScored - before, 'calls scored by sel_vote_kv').toBeGreaterThanOrEqual(3 * voting.length);
  }, 900_000);
});
