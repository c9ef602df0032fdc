// Token selection, `emit`, `from` and chunk routing over quantized K/V caches on CUDA
// (src/codegen/cuda/select-kv.ts: the pooling, scoring and selected-key attention passes read
// each cache through a dequantizing handle; `emit`'s attention is the core's, which dequantizes in
// its tile loads). Executed on the CPU emulator (test/cuda/select-emu.ts) against the float64
// oracle over the dequantized caches: random shapes (GQA, Nq ≠ Nk, offsets, forced ids, k above
// the key count) × programs covering every element type, granularities with ragged groups,
// zero points, normalizers, recent windows and flagged salient tokens, one cache quantized and
// the other float. Also: each program compiles with nvcc on the tensor-core engines.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { randomNormal, randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { dequantizedInputs, type StoredCache } from '../../src/runtime/reference-quant.js';
import type { RefInputs } from '../../src/runtime/reference.js';
import { buildSelectEmulation, runSelect } from '../cuda/select-emu.js';
import { emulatedPrograms } from '../cuda/emu-call.js';
import { expectOk, run, scratchDir, quickCheckFlags } from '../cuda/support.js';
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

const runs = Number(process.env.ATTNC_CUDA_SELECT_QUANT_RUNS ?? 16);
const SAL = 'sal: i32[batch, kv_heads, kv]';

/** [source, head dim]: each compiles (and builds its emulation) once. */
const programs: readonly (readonly [string, number])[] = [
  [
    `attention p(${COUNT_PARAMS}) {\n  store kv int8 scale f32 per token\n  select topk(top) by q . k ${FORCE_CLAUSE}\n  mask causal\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  store k int4 scale f16 per channel group 3 zero f16 recent 5 f16\n  store v e4m3 scale f32 per token\n  select topk(top) by q . k vote groups ${FORCE_CLAUSE}\n}`,
    8,
  ],
  // V float; D = 6: the scalar scoring loop.
  [
    `attention p(${COUNT_PARAMS}) {\n  store k int2 scale f16 per token zero f16 norm f16\n  emit topk(top) by q . k ${FORCE_CLAUSE}\n  mask causal\n}`,
    6,
  ],
  [
    `attention p(${COUNT_PARAMS}) {\n  store kv e5m2 scale f16 per channel\n  emit blocks(4) topk(top) by mean(q) . mean(k) ${FORCE_CLAUSE}\n  mask causal\n}`,
    8,
  ],
  // K float, V quantized.
  [
    `attention p(${COUNT_PARAMS}, idx: i32[batch, kv_heads, queries, top]) {\n  store v int4 scale f32 per token group 8 zero f16\n  select from idx ${FORCE_CLAUSE}\n  mask causal\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv]) {\n  store kv int4 scale f16 per token group 8 recent 3 bf16\n  route chunks(ch) topk(top) by lnmean(q) . lnmean(k) ${FORCE_CLAUSE}\n  mask causal\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, ch: i32[kv], ${SAL}) {\n  store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal\n  route chunks(ch) topk(top) by q . max(k) vote groups ${FORCE_CLAUSE}\n}`,
    8,
  ],
  [
    `attention p(${COUNT_PARAMS}, idx: i32[batch, heads, queries, top]) {\n  store k int8 scale f16 per channel group 32 zero f16\n  route blocks(4) from idx ${FORCE_CLAUSE}\n  mask causal\n}`,
    4,
  ],
];

const dir = scratchDir('select-quant');
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

/** Non-decreasing chunk ids with gaps, runs of 1 … 9. */
function chunkIds(n: number, rand: () => number): Int32Array {
  let id = Math.floor(rand() * 3);
  let left = 0;
  return Int32Array.from({ length: n }, () => {
    if (left-- <= 0) [id, left] = [id + 1 + Math.floor(rand() * 2), Math.floor(rand() * 9)];
    return id;
  });
}

async function check(t0: OffsetCase): Promise<void> {
  const { c, exe } = await kernelFor(t0.program);
  const chunked = c.kernel.routing?.unit.kind === 'chunks';
  // Chunk ids are indexed by position: the call's positions lie in [0, Nk).
  const t = chunked
    ? { ...t0, Nq: Math.min(t0.Nq, t0.Nk), kOffset: 0, qOffset: Math.max(0, t0.Nk - Math.min(t0.Nq, t0.Nk)) }
    : t0;
  const D = programs[t.program]![1];
  const H = t.Hkv * t.group;
  const { B, Hkv, Nq, Nk } = t;
  const rand = rng(t.seed);
  const formats = checkedFormats(c.decl);
  const stored = randomStoredInputs(formats, { B, Hkv, Nk, D, Dv: D }, rand);
  const q = randomNormal(B * H * Nq * D, rand);
  // A float cache comes as plain values (the quantized ones as caches).
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  const ps: Record<string, number> = { top: t.top, f: t.f, l: t.l };
  const sizes = { B, H, Hkv, Nq, Nk, D };
  const tensors: Record<string, Int32Array> = {};
  const shapes: Record<string, number[]> = {};
  for (const slot of c.kernel.tensors) {
    shapes[slot.name] = slotShape(slot, ps, sizes);
    const n = shapes[slot.name]!.reduce((a, b) => a * b, 1);
    if (slot.name === 'ch') tensors.ch = chunkIds(n, rand);
    else if (slot.name === 'sal') tensors.sal = Int32Array.from(stored.salient.sal!.data);
    else {
      const ids = c.kernel.routing?.unit.kind === 'tokens' ? Nk + t.kOffset : 30;
      tensors[slot.name] = Int32Array.from({ length: n }, () => Math.floor(rand() * (ids + 6)) - 3);
    }
  }
  const qOffset = t.qOffset ?? Nk - Nq;
  const env = {
    params: ps,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, x]) => [n, { data: x, shape: shapes[n]! }])),
    sizes,
  };
  const caches: { k?: StoredCache; v?: StoredCache } = {};
  for (const which of ['k', 'v'] as const) {
    const format = formats[which];
    if (format === undefined) continue;
    const marks = formats.salientTensor?.[which] ? stored.salient.sal : undefined;
    caches[which] = { format, cache: stored.caches[which]!, ...(marks ? { marks } : {}) };
  }
  const plain: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: t.kOffset };
  const oracle = routingOracle(c, env, dequantizedInputs(plain, caches));
  const caseDir = join(dir, `p${t.program}`, `case-${tally.executed}`);
  const res = await runSelect(exe, caseDir, c.artifact, c.kernel, {
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
    K: oracle.routing.K,
    caches: stored.caches,
  });
  const where = `\n${programs[t.program]![0]}\ncase ${JSON.stringify(t)}`;
  expectRoutedRun(oracle, res, where, tally, { own: { first: 0, local: 0 } });
}

describe('CUDA selection over quantized K/V caches (emulated) agrees with the oracle', () => {
  it('every program once, a fixed case each', async () => {
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

  it(`${runs} random shapes × ${programs.length} programs`, async () => {
    await assertCases(arbSelectCase, check, runs, 'ATTNC_SELECT_QUANT_SEED');
    expect(tally.executed).toBeGreaterThanOrEqual(runs);
    logNearTies('cuda select over quantized caches', tally);
  }, 900_000);

  it('compiles with nvcc on the mma (sm_80) and wgmma-ws (sm_90a) engines, warnings as errors', async () => {
    const at = scratchDir('select-quant-nvcc');
    // One translation unit per engine (each artifact is its own namespace), as stdlib-nvcc does.
    for (const [engine, arch] of [
      ['mma', 'sm_80'],
      ['wgmma-ws', 'sm_90a'],
    ] as const) {
      const codes = programs.map(([source], p) => {
        const { artifact } = compile(source.replace('attention p(', `attention p${p}(`), {
          target: 'cuda',
          headDim: 128,
          arch,
          schedule: { engine },
        });
        expect(artifact.code).toMatch(/SelDq[KV]/);
        return artifact.code;
      });
      // A float selection without a mask (its attention once declared an unused qpos).
      const unmasked = `attention pf(${COUNT_PARAMS}) {\n  select topk(top) by q . k\n}`;
      codes.push(
        compile(unmasked, { target: 'cuda', headDim: 128, arch, schedule: { engine } }).artifact.code,
      );
      const tu = join(at, `${arch}.cu`);
      writeFileSync(tu, codes.join('\n'));
      const flags = quickCheckFlags(arch);
      expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
    }
  }, 900_000);
});
