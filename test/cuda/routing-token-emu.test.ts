// Raw-query block routing in bf16 on the mma engine, run on the CPU (routing-token-emu.ts): the
// tensor-core top-k and the mma.sync form of the token-granular attention (token-attn.ts,
// token-mma.ts), with their PTX emulated lane by lane. The oracle is the float64 reference on
// the bf16-rounded inputs. The top-k ranks in about 2^-16 relative precision (split keys), so a
// selection differing from the oracle's must still be a valid top-k within 1e-3 of the cut; the
// attention is then compared with the reference run on the kernel's own selection, to the
// precision of bf16 probabilities (P is rounded to bf16 before P·V, as on the GPU).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, type Compiled } from '../../src/compile.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { referenceAttention, type RefInputs } from '../../src/runtime/reference.js';
import { checkSelection, referenceRouting } from '../../src/runtime/reference-routing.js';
import {
  COUNT_PARAMS,
  FORCE_CLAUSE,
  arbOffsetCase,
  assertCases,
  expectAgreement,
  routingOracle,
  slotShape,
  type OffsetCase,
} from '../support/oracle-cases.js';
import { emulatedPrograms } from './emu-call.js';
import {
  buildTokenEmulation,
  fromBf16Bits,
  keyMajor,
  runTokenRouting,
  toBf16Bits,
} from './routing-token-emu.js';
import { scratchDir } from './support.js';
import { evalShapeExpr } from '../../src/runtime/shape-expr.js';

const runs = Number(process.env.ATTNC_CUDA_TOKEN_RUNS ?? 12);

/** [source, head dim]: NSA-like voting, per-head selection with a modifier, 3-key blocks, blocks spanning tiles. */
const programs: readonly (readonly [string, number])[] = [
  [
    `attention p(${COUNT_PARAMS}) { route blocks(8) topk(top) by q . mean(k) vote groups ${FORCE_CLAUSE}\n mask causal }`,
    64,
  ],
  [
    `attention p(${COUNT_PARAMS}, w: int = 19) { route blocks(16) topk(top) by q . max(k) ${FORCE_CLAUSE}\n mask q - k < w && q >= k\n score score + 0.25 * float((q + k) % 3) }`,
    64,
  ],
  [
    `attention p(${COUNT_PARAMS}) { route blocks(3) topk(top) by q . first(k) vote groups ${FORCE_CLAUSE}\n mask causal }`,
    64,
  ],
  [`attention p(${COUNT_PARAMS}) { route blocks(24) topk(top) by q . lnmean(k) ${FORCE_CLAUSE} }`, 64],
  // One selection for all heads: the top-k's steps walk the chunk once per kv head.
  [
    `attention p(${COUNT_PARAMS}) { route blocks(4) topk(top) by q . mean(k) vote heads ${FORCE_CLAUSE}\n mask causal }`,
    64,
  ],
];

const dir = scratchDir('routing-token-emu');

function compileFor(source: string, D: number, tokenOrder?: 'key'): Compiled {
  return compile(source, {
    target: 'cuda',
    file: 'routing.attn',
    headDim: D,
    dtype: 'bf16',
    schedule: { engine: 'mma', ...(tokenOrder ? { tokenOrder } : {}) },
  });
}

/** The ranking's constants set (bench variants until the H200 says which is faster). */
function withConstants(c: Compiled, knobs: Readonly<Record<string, number>>): Compiled {
  let code = c.artifact.code;
  for (const [name, value] of Object.entries(knobs)) {
    const from = new RegExp(`constexpr int ${name} = \\d+;`, 'g');
    if ((code.match(from) ?? []).length !== 1) throw new Error(`not one "constexpr int ${name}" in the code`);
    code = code.replace(from, `constexpr int ${name} = ${value};`);
  }
  return { ...c, artifact: { ...c.artifact, code } };
}
// Program i + programs.length: program i with ROUTE_QVEC = 1 and ROUTE_QREG = 0 (the ranking's permuted k dimension
// and 128-bit query loads).
const QVEC = programs.length;
// Program i + 2 · programs.length: program i with Schedule.tokenOrder 'key' (token-keymajor.ts).
const KEY = 2 * QVEC;
// ROUTE_QREG = 1 (the vote statistics voter-outer, query fragments in registers) is the default:
// programs 0 .. programs.length - 1. Program i + 3 · programs.length: both ranking knobs (QVEC's
// permuted fragments held in registers); + 4 · programs.length: ROUTE_QREG = 2 (two voters'
// fragments held, a chunk staged once for both).
const QREG = 0;
const ALL = 3 * QVEC;
const QREG2 = 4 * QVEC;
const knobsOf = (i: number): Readonly<Record<string, number>> =>
  i >= QREG2
    ? { ROUTE_QREG: 2 }
    : i >= ALL
      ? { ROUTE_QVEC: 1, ROUTE_QREG: 1 }
      : i >= QVEC && i < KEY
        ? { ROUTE_QVEC: 1, ROUTE_QREG: 0 }
        : {};
const variantName = (i: number): string => {
  if (i >= KEY && i < ALL) return ' (key-major)';
  const knobs = Object.entries(knobsOf(i)).map(([n, v]) => `${n} ${v}`);
  return knobs.length ? ` (${knobs.join(', ')})` : '';
};
const kernelFor = emulatedPrograms(
  dir,
  (i) => {
    const [source, D] = programs[i % QVEC]!;
    if (i >= KEY && i < ALL) return compileFor(source, D, 'key');
    return withConstants(compileFor(source, D), knobsOf(i));
  },
  buildTokenEmulation,
);

const bf16 = (x: Float32Array): Float32Array => fromBf16Bits(toBf16Bits(x));
let caseNo = 0;

/** Powers of two the drawn q and k are multiplied by (exact: q · k is unchanged when they cancel). */
interface Magnitudes {
  readonly q: number;
  readonly k: number;
}

async function check(t: OffsetCase, mag: Magnitudes = { q: 1, k: 1 }): Promise<void> {
  const { c, exe } = await kernelFor(t.program);
  const [source, D] = programs[t.program % QVEC]!;
  const where = `\n${source}${variantName(t.program)}\ncase ${JSON.stringify(t)} ${JSON.stringify(mag)}`;
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const times = (x: Float32Array, m: number): Float32Array => x.map((v) => v * m);
  const q = bf16(times(randomNormal(B * H * Nq * D, rand), mag.q));
  const k = bf16(times(randomNormal(B * Hkv * Nk * D, rand), mag.k));
  const v = bf16(randomNormal(B * Hkv * Nk * D, rand));
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  for (const p of c.kernel.params)
    if (!(p.name in ps) && p.default !== undefined) ps[p.name] = Number(p.default);
  const sizes = { B, H, Hkv, Nq, Nk, D };
  for (const slot of c.kernel.tensors) slotShape(slot, ps, sizes);
  const qOffset = t.qOffset ?? Nk - Nq;
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, { params: ps, tensors: {}, sizes }, inp);
  const src = oracle.spec.source;
  if (src.kind !== 'topk') throw new Error('block routing programs rank with topk');
  const res = await runTokenRouting(
    exe,
    join(dir, `p${t.program}`, `case-${caseNo++}`),
    c.artifact,
    c.kernel,
    {
      ...{ B, H, Hkv, Nq, Nk, qOffset, kOffset: t.kOffset },
      scale: Math.fround(1 / Math.sqrt(D)),
      q,
      k,
      v,
      params: ps,
      tensors: {},
      counts: [src.k, oracle.spec.first ?? 0, oracle.spec.local ?? 0],
    },
  );
  const { routing } = oracle;
  expect(res.indices.length, `indices length${where}`).toBe(routing.indices.length);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < routing.G; g++)
      for (let i = 0; i < Nq; i++) {
        const at = ((b * routing.G + g) * Nq + i) * routing.K;
        const row = res.indices.subarray(at, at + routing.K);
        expect(checkSelection(routing, b, g, i, row, 1e-3), `row ${b},${g},${i}${where}`).toBeUndefined();
      }
  const own = { kind: 'from', indices: res.indices, groups: routing.G, capacity: routing.K } as const;
  const mask = referenceRouting(inp, { ...oracle.spec, source: own }, oracle.pred.mask).mask;
  const ref = referenceAttention(inp, { mask, score: oracle.pred.score });
  expectAgreement(res, ref, where, 2e-2);
}

const fixed = (program: number, over: Partial<OffsetCase> = {}): OffsetCase => ({
  program,
  B: 1,
  Hkv: 2,
  group: 2,
  Nq: 21,
  Nk: 70,
  qOffset: undefined,
  kOffset: 0,
  top: 3,
  f: 1,
  l: 1,
  seed: 500 + program,
  ...over,
});

describe('raw-query block routing in bf16: tensor-core top-k and mma token attention (emulated)', () => {
  it('every program with fixed shapes: GQA groups of 2 and 5, offsets, all forced, k = 0', async () => {
    await Promise.all(programs.map((_, i) => kernelFor(i)));
    for (let p = 0; p < programs.length; p++) {
      await check(fixed(p));
      await check(
        fixed(p, { Hkv: 1, group: 5, qOffset: 7, kOffset: 3, top: 40, f: 0, l: 2, Nq: 9, seed: 600 + p }),
      );
      await check(fixed(p, { B: 2, Hkv: 1, group: 3, top: 0, f: 99, l: 0, Nk: 20, seed: 700 + p }));
    }
  }, 600_000);

  it('several 32-block chunks and query blocks: the pipelined staging, lists across chunks', async () => {
    // Blocks of 3 / 8 / 4 keys: 134, 75 and 100 key blocks (3-5 chunks); 66-140 rows (140: 2 query
    // blocks of 128 rows).
    await check(fixed(2, { Nq: 140, Nk: 400, top: 5, f: 1, l: 2, seed: 801 }));
    await check(fixed(0, { Nq: 70, Nk: 600, Hkv: 1, group: 4, top: 13, f: 1, l: 2, seed: 802 }));
    await check(fixed(4, { Nq: 66, Nk: 400, Hkv: 2, group: 2, qOffset: 0, top: 7, f: 0, l: 1, seed: 803 }));
  }, 600_000);

  it('ROUTE_QVEC 1: keys split in the permuted k order match the 128-bit query fragments', async () => {
    for (const p of [0, 2, 4]) {
      await check(fixed(QVEC + p, { seed: 900 + p }));
      await check(
        fixed(QVEC + p, {
          Hkv: 1,
          group: 5,
          qOffset: 7,
          kOffset: 3,
          top: 40,
          f: 0,
          l: 2,
          Nq: 9,
          seed: 910 + p,
        }),
      );
    }
    await check(fixed(QVEC + 2, { Nq: 140, Nk: 400, top: 5, f: 1, l: 2, seed: 921 }));
    await check(fixed(QVEC + 0, { Nq: 70, Nk: 600, Hkv: 1, group: 4, top: 13, f: 1, l: 2, seed: 922 }));
  }, 600_000);

  it('ROUTE_QREG (1, 2): voter-outer statistics from held fragments', async () => {
    // The knob is in the emitted code, QREG 1 by default (withConstants throws if a name is missing);
    // the QVEC programs keep QREG 0's path (the statistics from L2) tested.
    const [src0, D0] = programs[0]!;
    const code = compileFor(src0, D0).artifact.code;
    expect(code).toContain('constexpr int ROUTE_QREG = 1;');
    const cases = (base: number, p: number): OffsetCase[] => [
      fixed(base + p, { seed: 1100 + base + p }),
      // One kv head of 5 voters, offsets, 40 > key blocks (every candidate ranked), no first block.
      fixed(base + p, {
        Hkv: 1,
        group: 5,
        qOffset: 7,
        kOffset: 3,
        top: 40,
        f: 0,
        l: 2,
        Nq: 9,
        seed: 1200 + p,
      }),
      fixed(base + p, { B: 2, Hkv: 1, group: 3, top: 0, f: 99, l: 0, Nk: 20, seed: 1300 + p }),
    ];
    // QREG matters only with a vote (programs 0, 2, 4); with QVEC it changes every program.
    for (const p of [0, 2, 4]) for (const t of cases(QREG, p)) await check(t);
    for (let p = 0; p < programs.length; p++) for (const t of cases(ALL, p)) await check(t);
    // Several chunks and voters: each voter's chunks restaged, its statistics flushed between them.
    for (const base of [QREG, ALL]) {
      await check(fixed(base + 2, { Nq: 140, Nk: 400, top: 5, f: 1, l: 2, seed: 1401 }));
      await check(fixed(base + 0, { Nq: 70, Nk: 600, Hkv: 1, group: 4, top: 13, f: 1, l: 2, seed: 1402 }));
      await check(
        fixed(base + 4, { Nq: 66, Nk: 400, Hkv: 2, group: 2, qOffset: 0, top: 7, f: 0, l: 1, seed: 1403 }),
      );
    }
    await check(fixed(ALL + 1, { Nq: 70, Nk: 600, Hkv: 1, group: 2, top: 13, f: 1, l: 2, seed: 1404 }));
    // Two voters a step: sets of 2, 2, 1 (5 voters), sets split at a kv head (vote heads, 2 a head:
    // one set each; 3 a head: 2 + 1), several chunks.
    for (const t of cases(QREG2, 0)) await check(t);
    for (const t of cases(QREG2, 4)) await check(t);
    await check(
      fixed(QREG2 + 4, { Nq: 66, Nk: 400, Hkv: 2, group: 3, qOffset: 0, top: 7, f: 0, l: 1, seed: 1406 }),
    );
    await check(fixed(QREG2 + 0, { Nq: 70, Nk: 600, Hkv: 1, group: 5, top: 13, f: 1, l: 2, seed: 1407 }));
  }, 900_000);

  it('queries or pooled keys far from 1 (past 65504, near 1e-6) rank as in f32', async () => {
    // q · 2^17 (|q| up to ~5e5) with k · 2^-17 (pooled |k| ~1e-6 .. 3e-5), and q · 2^-20 (~1e-6) with
    // k · 2^20 (~1e6): the affinities are those of the unscaled draw, so the tolerances are unchanged.
    // The hi + lo parts keep f32's exponent range in bf16 (an f16 split would overflow or go subnormal).
    const big: Magnitudes = { q: 2 ** 17, k: 2 ** -17 };
    const tiny: Magnitudes = { q: 2 ** -20, k: 2 ** 20 };
    for (const base of [0, ALL])
      for (let p = 0; p < programs.length; p++)
        for (const mag of [big, tiny]) {
          await check(fixed(base + p, { seed: 1500 + p }), mag);
          await check(
            fixed(base + p, { Nq: 70, Nk: 600, Hkv: 1, group: 4, top: 13, f: 1, l: 2, seed: 1510 + p }),
            mag,
          );
        }
  }, 900_000);

  it(`${Math.ceil(runs / 2)} random shapes, ROUTE_QVEC and ROUTE_QREG`, async () => {
    const arb = arbOffsetCase({
      programs: programs.length,
      Nq: 24,
      Nk: 56,
      top: [0, 1, 2, 3, 5, 40],
      f: [0, 0, 1, 2, 99],
      l: [0, 0, 1, 2],
    });
    const knobbed = (t: OffsetCase): Promise<void> => check({ ...t, program: ALL + t.program });
    await assertCases(arb, knobbed, Math.ceil(runs / 2), 'ATTNC_CUDA_TOKEN_SEED');
  }, 600_000);

  it('key-major (tokenOrder key): inverted lists, attention per key block, merge per row', async () => {
    // The knob really changes the kernels, and only when asked.
    const [src0, D0] = programs[0]!;
    expect(keyMajor(compileFor(src0, D0, 'key').artifact)).toBe(true);
    expect(compileFor(src0, D0).artifact.code).not.toContain('tkm_');
    // The manifest's scratch shape grows by the key-major parts (B 1, H 4, Hkv 2, Nq 100, Nk 200,
    // cap 5, DV 64, 8-key blocks): counts 2 · 26, starts and units 2 · 2 · 27, per partial its list
    // entry, lse and 32 floats of bf16 O (4 · 100 · 5 · 34), 24 floats of alignment.
    const shape = (c: Compiled): number => {
      const m = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
      const env = { B: 1, H: 4, Hkv: 2, Nq: 100, Nk: 200, D: D0, Dv: D0, top: 3, f: 1, l: 1 };
      return evalShapeExpr(m.routing.scratch.shape[0], env);
    };
    expect(shape(compileFor(src0, D0, 'key')) - shape(compileFor(src0, D0))).toBe(
      2 * 1 * 26 + 2 * 2 * 27 + 4 * 100 * 5 * 34 + 24,
    );
    for (let p = 0; p < programs.length; p++) {
      await check(fixed(KEY + p, { seed: 1000 + p }));
      // One kv head of 5 heads, offsets, 40 > key blocks, no first block; then k = 0, all first.
      await check(
        fixed(KEY + p, {
          Hkv: 1,
          group: 5,
          qOffset: 7,
          kOffset: 3,
          top: 40,
          f: 0,
          l: 2,
          Nq: 9,
          seed: 1010 + p,
        }),
      );
      await check(fixed(KEY + p, { B: 2, Hkv: 1, group: 3, top: 0, f: 99, l: 0, Nk: 20, seed: 1020 + p }));
    }
    // No slots at all (top, first and local 0): the scatter's slot walk once divided by cap = 0.
    await check(fixed(KEY + 0, { Hkv: 1, group: 1, Nq: 1, Nk: 1, top: 0, f: 0, l: 0, seed: 1030 }));
    // Several token chunks (TKM_CHUNK 256) and key blocks with more rows than one work unit (256).
    await check(fixed(KEY + 0, { Nq: 300, Nk: 320, Hkv: 1, group: 4, top: 5, f: 1, l: 2, seed: 1031 }));
    await check(fixed(KEY + 2, { Nq: 140, Nk: 400, top: 5, f: 1, l: 2, seed: 1032 }));
    await check(
      fixed(KEY + 4, { Nq: 150, Nk: 160, Hkv: 2, group: 2, qOffset: 0, top: 3, f: 1, l: 1, seed: 1033 }),
    );
  }, 600_000);

  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    const arb = arbOffsetCase({
      programs: programs.length,
      Nq: 24,
      Nk: 56,
      top: [0, 1, 2, 3, 5, 40],
      f: [0, 0, 1, 2, 99],
      l: [0, 0, 1, 2],
    });
    await assertCases(arb, check, runs, 'ATTNC_CUDA_TOKEN_SEED');
  }, 600_000);

  it(`${Math.ceil(runs / 2)} random shapes, key-major`, async () => {
    const arb = arbOffsetCase({
      programs: programs.length,
      Nq: 24,
      Nk: 56,
      top: [0, 1, 2, 3, 5, 40],
      f: [0, 0, 1, 2, 99],
      l: [0, 0, 1, 2],
    });
    const keyed = (t: OffsetCase): Promise<void> => check({ ...t, program: KEY + t.program });
    await assertCases(arb, keyed, Math.ceil(runs / 2), 'ATTNC_CUDA_TOKEN_SEED');
  }, 600_000);
});
