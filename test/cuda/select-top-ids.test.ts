// CUDA chunk routing (select*.ts, emulated on the CPU) with chunk ids ending at I32_MAX, against
// the float64 oracle. Chunk ids are any non-decreasing ints >= 0, I32_MAX included; the `from`
// pass sorted each row with INT_MAX as "no id", so it dropped chunk I32_MAX, given or forced.
// (Positions stay 2^31 - 1 - 1024 below the limit on CUDA, so block and token ids never reach it.)
import fc from 'fast-check';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import type { RefInputs } from '../../src/runtime/reference.js';
import {
  FORCE_CLAUSE,
  COUNT_PARAMS,
  assertCases,
  expectRoutedRun,
  routingOracle,
} from '../support/oracle-cases.js';
import type { Tally } from '../support/oracle-cases.js';
import { emulatedPrograms } from './emu-call.js';
import { buildSelectEmulation, runSelect } from './select-emu.js';
import { scratchDir } from './support.js';

const I32_MAX = 2147483647;
const source = `attention p(${COUNT_PARAMS}, ch: i32[kv], idx: i32[batch, heads, queries, top]) {
  route chunks(ch) from idx ${FORCE_CLAUSE}
  mask causal
}`;
const D = 8;
const dir = scratchDir('select-top-ids');
const kernelFor = emulatedPrograms(
  dir,
  () =>
    compile(source, {
      target: 'cuda',
      file: 'top.attn',
      headDim: D,
      dtype: 'f32',
      schedule: { engine: 'simt' },
    }),
  buildSelectEmulation,
);
const tally: Tally = { executed: 0, nearTies: 0 };

interface Case {
  readonly H: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly top: number;
  readonly f: number;
  readonly l: number;
  readonly seed: number;
}

/** Runs one call: chunk ids rising to I32_MAX, index rows drawing ids near them and -1/-2 pads. */
async function check(t: Case): Promise<void> {
  const { c, exe } = await kernelFor(0);
  const { H, Nk, top } = t;
  const Nq = Math.min(t.Nq, Nk);
  const [B, Hkv, qOffset] = [1, 1, Nk - Nq];
  const rand = rng(t.seed);
  const q = randomNormal(B * H * Nq * D, rand);
  const k = randomNormal(B * Hkv * Nk * D, rand);
  const v = randomNormal(B * Hkv * Nk * D, rand);
  let id = 0;
  const rising = Array.from({ length: Nk }, (_, p) => (id += p > 0 && rand() < 0.3 ? 1 : 0));
  const ch = Int32Array.from(rising, (x) => I32_MAX - id + x);
  const idx = Int32Array.from({ length: B * H * Nq * top }, () => {
    const x = Math.floor(rand() * (id + 5)) - 2;
    return x < 0 ? x : Math.min(I32_MAX, ch[0]! + x);
  });
  const params = { top, f: t.f, l: t.l };
  const shapes = { ch: [Nk], idx: [B, H, Nq, top] };
  const env = {
    params,
    tensors: { ch: { data: ch, shape: shapes.ch }, idx: { data: idx, shape: shapes.idx } },
    sizes: { B, H, Hkv, Nq, Nk, D },
  };
  const inp: RefInputs = { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D, qOffset, kOffset: 0 };
  const oracle = routingOracle(c, env, inp);
  const res = await runSelect(exe, join(dir, `case-${tally.executed}`), c.artifact, c.kernel, {
    ...{ B, H, Hkv, Nq, Nk, qOffset, kOffset: 0, q, k, v, params },
    scale: Math.fround(1 / Math.sqrt(D)),
    tensors: { ch, idx },
    K: oracle.routing.K,
  });
  const where = `\n${source}\ncase ${JSON.stringify(t)} ids [${ch.join(',')}]`;
  expectRoutedRun(oracle, res, where, tally, { own: { first: 0, local: 0 } });
}

describe('CUDA chunk routing `from` an index tensor, chunk ids ending at I32_MAX', () => {
  it('keeps chunk I32_MAX when it is forced (one key, local(1))', async () => {
    await check({ H: 1, Nq: 1, Nk: 1, top: 0, f: 0, l: 1, seed: 0 });
  }, 300_000);
  it('agrees with the oracle on random calls', async () => {
    const arb = fc.record({
      H: fc.integer({ min: 1, max: 2 }),
      Nq: fc.integer({ min: 1, max: 12 }),
      Nk: fc.integer({ min: 1, max: 40 }),
      top: fc.constantFrom(0, 1, 3, 7),
      f: fc.constantFrom(0, 1),
      l: fc.constantFrom(0, 1, 3),
      seed: fc.integer(),
    });
    await assertCases(
      arb,
      check,
      Number(process.env.ATTNC_CUDA_TOP_IDS_RUNS ?? 20),
      'ATTNC_CUDA_TOP_IDS_SEED',
    );
  }, 600_000);
});
