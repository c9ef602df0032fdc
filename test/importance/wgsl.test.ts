// The importance output on WebGPU (lavapipe in CI) against the dense float64 reference: random
// mask/score programs, shapes (GQA, Nq ≠ Nk, ragged tails, offsets), decode shapes (a few query
// rows over a longer KV, through the split-KV module and the main one), both modes, both
// engines. Relative error ≤ 1e-5 in f32 (unit-magnitude inputs: with scores in the thousands an
// f32 lse alone is off by more than that).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import type { ImportanceMode } from '../../src/ir/kernel.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { toF16 } from '../../src/runtime/f16.js';
import { referenceImportance } from '../../src/runtime/importance-ref.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { readStdlib } from '../support/stdlib.js';
import { arbProgram, arbShape, makeInputs, type Shape } from '../support/arbitraries.js';
import { runDense } from '../support/oracle-cases.js';

const runs = Number(process.env.ATTNC_IMPORTANCE_RUNS ?? 20);

interface Case {
  readonly engine: 'row' | 'coop';
  readonly mode: ImportanceMode;
  readonly decode: 'auto' | 'always' | 'never';
  readonly tile: number;
  readonly seed: number;
  /** Storage dtype (default f32); f16 inputs are exact, the importance still f32 arithmetic. */
  readonly dtype?: 'f32' | 'f16';
}

/** Decode-like shapes: 1–4 query rows over up to 300 keys. */
const arbDecodeShape = arbShape({ maxN: 300 }).map((s): Shape => ({ ...s, Nq: 1 + (s.Nq % 4) }));

async function check(
  source: string,
  shape: Shape,
  c: Case,
  poison?: (k: Float32Array) => void,
): Promise<void> {
  const device = await getDevice();
  const compiled = compile(source, {
    target: 'wgsl',
    file: 'importance.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    wgslEngine: c.engine,
    schedule:
      c.engine === 'row'
        ? { blockQ: c.tile, threads: c.tile, blockK: c.tile }
        : { blockQ: 16, threads: 32, blockK: 16 },
    importance: c.mode,
    ...(c.dtype ? { dtype: c.dtype } : {}),
  });
  const gpu = await createKernel(device, compiled.artifact, { debug: true, decode: c.decode });
  try {
    const inputs = makeInputs(shape, c.seed);
    poison?.(inputs.k);
    const params = Object.fromEntries(compiled.decl.defaults);
    const store = c.dtype === 'f16' ? toF16 : (x: Float32Array) => x;
    const { res, ref } = await runDense(gpu, compiled, shape, inputs, params, store);
    const expected = referenceImportance(ref, shape, c.mode);
    const where = `\n${source}\nshape ${JSON.stringify(shape)} case ${JSON.stringify(c)}`;
    expect(res.importance, `no importance output${where}`).toBeDefined();
    const got = compareArrays(res.importance!, expected);
    expect(got.nanCount, `NaN importance${where}`).toBe(0);
    expect(got.relError, `importance relative error${where}`).toBeLessThanOrEqual(1e-5);
  } finally {
    gpu.destroy();
  }
}

const arbCase = fc.record({
  engine: fc.constantFrom('row', 'row', 'row', 'coop') as fc.Arbitrary<'row' | 'coop'>,
  mode: fc.constantFrom('sum', 'normalized') as fc.Arbitrary<ImportanceMode>,
  decode: fc.constantFrom('auto', 'always', 'never') as fc.Arbitrary<Case['decode']>,
  tile: fc.constantFrom(8, 16, 32),
  seed: fc.integer(),
});

describe('WGSL importance agrees with the reference', () => {
  it('random programs × shapes (prefill)', async () => {
    await fc.assert(
      fc.asyncProperty(arbProgram(), arbShape({ maxN: 80 }), arbCase, (decl, shape, c) =>
        check(printDecl(decl), shape, c),
      ),
      { numRuns: runs },
    );
  }, 1_200_000);

  it('random programs × decode shapes', async () => {
    await fc.assert(
      fc.asyncProperty(arbProgram(), arbDecodeShape, arbCase, (decl, shape, c) =>
        check(printDecl(decl), shape, c),
      ),
      { numRuns: runs },
    );
  }, 1_200_000);

  it('causal, normalized: key j is seen by the rows at or after it', async () => {
    const source = 'attention causal() {\n  mask q >= k\n}';
    const shape: Shape = { B: 1, Hq: 2, Hkv: 1, Nq: 37, Nk: 37, D: 16, Dv: 16 };
    for (const mode of ['sum', 'normalized'] as const)
      await check(source, shape, { engine: 'row', mode, decode: 'never', tile: 16, seed: 7 });
  }, 120_000);

  it('f16 storage, decode and prefill modules', async () => {
    const device = await getDevice();
    expect(deviceLimits(device).shaderF16, 'the test adapter has shader-f16').toBe(true);
    const source = readStdlib('sliding_window.attn');
    const shape: Shape = { B: 1, Hq: 4, Hkv: 2, Nq: 3, Nk: 150, D: 16, Dv: 16 };
    for (const decode of ['always', 'never'] as const)
      await check(source, shape, { engine: 'row', mode: 'sum', decode, tile: 16, seed: 3, dtype: 'f16' });
  }, 120_000);

  it('a NaN key poisons the rows that see it: they add nothing (as in the reference)', async () => {
    const source = 'attention causal() {\n  mask q >= k\n}';
    const shape: Shape = { B: 1, Hq: 2, Hkv: 1, Nq: 40, Nk: 40, D: 8, Dv: 8 };
    const nanKey = (k: Float32Array): void => void k.fill(NaN, 20 * 8, 21 * 8);
    await check(
      source,
      shape,
      { engine: 'row', mode: 'normalized', decode: 'never', tile: 16, seed: 2 },
      nanKey,
    );
  }, 120_000);

  it('a mask that allows nothing writes zeros (every tile statically empty)', async () => {
    const source = 'attention never() {\n  mask false\n}';
    const shape: Shape = { B: 2, Hq: 4, Hkv: 2, Nq: 5, Nk: 70, D: 8, Dv: 8 };
    await check(source, shape, { engine: 'row', mode: 'normalized', decode: 'auto', tile: 16, seed: 1 });
  }, 120_000);
});
