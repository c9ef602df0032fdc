// The CUDA SIMT backward (f32, deterministic) executed by the CPU emulator against the float64
// gradient reference, on stdlib patterns, learnable tensors and random programs; and nvcc
// (-arch=sm_90a, warnings as errors) accepts the artifacts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCudaBackward } from '../../src/backward.js';
import { printDecl } from '../../src/dsl/print.js';
import { arbProgram } from '../support/arbitraries.js';
import type { Shape } from '../support/arbitraries.js';
import { expectOk, run, scratchDir, quickCheckFlags } from '../cuda/support.js';
import { checkCudaBackward as check } from './cuda-check.js';

const TOL = 2e-5;
const runs = Number(process.env.ATTNC_BACKWARD_CUDA_RUNS ?? 6);
const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 19, Nk: 27, D: 16, Dv: 8, ...s });

const expectSmall = (errors: Record<string, number>, where: string): void => {
  for (const [name, e] of Object.entries(errors)) expect(e, `${name} ${where}`).toBeLessThanOrEqual(TOL);
};

const biasSource = `attention biased(temp: f32 = 1.25, bias: f32[heads, 64]) {
  score score / temp + bias[h, clamp(q - k, 0, 63)]
  mask causal
}`;
const emptySource = 'attention none(c: f32 = 2.0) {\n  score score * c\n  mask false\n}';
const bias = { data: Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i) / 4), shape: [2, 64] };
const gain = { data: Float32Array.from([0.5, 2.25]), shape: [2] };

describe('CUDA SIMT backward (CPU emulation) vs the float64 gradient reference', () => {
  it.each([
    ['causal', {}, {}, false],
    ['softcap', { B: 2, Hq: 4, Hkv: 2 }, { cap: 2.5 }, true],
    ['alibi', { Hq: 4, Hkv: 1 }, {}, false],
    ['sliding_window', { Nq: 30, Nk: 30 }, { window: 7 }, false],
    ['document', { B: 2 }, {}, true],
  ] as const)(
    '%s %j %j, a gradient into lse: %s',
    async (name, s, params, dlse) => {
      expectSmall(await check(stdlib(name), shape(s), 11, { params: { ...params }, dlse }), name);
    },
    120_000,
  );

  it('learnable tensors: sink-calibration gains (offsets) and a bias table with a temperature', async () => {
    const sink = await check(
      stdlib('sink_calibration'),
      shape({ Hq: 2, Hkv: 2, qOffset: 5, kOffset: 3 }),
      5,
      {
        params: { sinks: 4 },
        tensors: { gain } as never,
      },
    );
    expect(Object.keys(sink)).toEqual(['dq', 'dk', 'dv', 'dgain']);
    expectSmall(sink, 'sink_calibration');
    // With a gradient into lse as well: the param and tensor gradients take it through dscore′.
    const biased = await check(biasSource, shape({ Nq: 24, Nk: 24 }), 3, {
      tensors: { bias } as never,
      dlse: true,
    });
    expect(Object.keys(biased)).toEqual(['dq', 'dk', 'dv', 'd$temp', 'dbias']);
    expectSmall(biased, 'bias table');
  }, 120_000);

  it('positions at the top of int32 (offsets near 2^31, the classifier under wrap)', async () => {
    const top = 2147483647;
    const s = shape({ Nq: 21, Nk: 37, qOffset: top - 21 - 4, kOffset: top - 37 - 1 });
    expectSmall(await check(stdlib('sink_window'), s, 9, { params: { window: 6, sinks: 2 } }), 'near 2^31');
  }, 120_000);

  it('a mask no pair passes: every gradient is 0', async () => {
    expectSmall(await check(emptySource, shape({}), 2), 'mask false');
  }, 120_000);

  it(`random programs (${runs})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram({ depth: 2 }),
        fc.record({
          B: fc.integer({ min: 1, max: 2 }),
          Hkv: fc.integer({ min: 1, max: 2 }),
          ratio: fc.integer({ min: 1, max: 3 }),
          Nq: fc.integer({ min: 1, max: 24 }),
          Nk: fc.integer({ min: 1, max: 24 }),
          qOffset: fc.option(fc.integer({ min: -8, max: 30 }), { nil: undefined }),
          kOffset: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
        }),
        fc.integer(),
        async (decl, s, seed) => {
          const sh: Shape = { ...s, Hq: s.Hkv * s.ratio, D: 16, Dv: 8 };
          const src = printDecl(decl);
          const dlse = (seed & 1) === 1; // half the draws put a gradient on lse too
          expectSmall(
            await check(src, sh, seed, { dlse }),
            `\n${src}\n${JSON.stringify(sh)} seed ${seed} dlse ${dlse}`,
          );
        },
      ),
      { numRuns: runs },
    );
  }, 600_000);

  it('nvcc -arch=sm_90a accepts the artifacts (warnings as errors)', async () => {
    const dir = scratchDir('bwd-nvcc');
    const sources = ['causal', 'softcap', 'alibi', 'document', 'sink_calibration'].map(stdlib);
    const codes = [...sources, biasSource, emptySource].map(
      (s) => compileCudaBackward(s, { headDim: 64 }).backward.code,
    );
    const tu = join(dir, 'backward.cu');
    writeFileSync(tu, codes.join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
  }, 300_000);
});
