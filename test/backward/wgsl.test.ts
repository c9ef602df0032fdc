// The WGSL backward on WebGPU (lavapipe in CI) against the float64 gradient reference: stdlib
// score modifiers and masks (static, dynamic, tensor-summary classifiers), GQA, offsets, Nq ≠ Nk,
// then random programs.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileBackward } from '../../src/backward.js';
import { runWgslBackward } from '../../src/runtime/backward-webgpu.js';
import { findAdapter } from '../../src/runtime/device.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { printDecl } from '../../src/dsl/print.js';
import { arbProgram, type Shape } from '../support/arbitraries.js';
import { checkWgslBackward } from './wgsl-check.js';

const TOL = 2e-5;
const runs = Number(process.env.ATTNC_BACKWARD_WGSL_RUNS ?? 12);
const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 21, Nk: 37, D: 16, Dv: 8, ...s });

const expectSmall = (errors: Record<string, number>, where: string): void => {
  for (const [name, e] of Object.entries(errors)) expect(e, `${name} ${where}`).toBeLessThanOrEqual(TOL);
};

describe('WGSL backward vs the float64 gradient reference', () => {
  it.each([
    ['causal', {}, {}, false],
    ['full', { Hq: 3, Hkv: 3 }, {}, true],
    ['softcap', { B: 2, Hq: 4, Hkv: 2 }, { cap: 2.5 }, true],
    ['alibi', { Hq: 4, Hkv: 1, Nq: 40, Nk: 40 }, {}, false],
    ['sliding_window', { Nq: 50, Nk: 50 }, { window: 7 }, false],
    ['sink_window', { Nq: 33, Nk: 45 }, { window: 9, sinks: 3 }, false],
    ['document', { B: 2, Hq: 2, Hkv: 1 }, {}, true],
    ['prefix_lm', { Nq: 30, Nk: 30 }, { prefix: 11 }, false],
    ['dilated', { Nq: 25, Nk: 40 }, {}, false],
  ] as const)(
    '%s %j %j, a gradient into lse: %s',
    async (name, s, params, dlse) => {
      const errors = await checkWgslBackward(stdlib(name), shape(s), 7, { params: { ...params }, dlse });
      expectSmall(errors, name);
    },
    120_000,
  );

  it('sink calibration: the per-head gains get their gradient (offsets, Hq = Hkv)', async () => {
    const gain = { data: Float32Array.from([0.5, 2.25]), shape: [2] };
    const s = shape({ Hq: 2, Hkv: 2, qOffset: 5, kOffset: 3 });
    const errors = await checkWgslBackward(stdlib('sink_calibration'), s, 5, {
      params: { sinks: 4 },
      tensors: { gain } as never,
    });
    expect(Object.keys(errors)).toEqual(['dq', 'dk', 'dv', 'dgain']);
    expectSmall(errors, 'sink_calibration');
  }, 120_000);

  it('a learnable bias table and a temperature get their gradients', async () => {
    const src = `attention biased(temp: f32 = 1.25, bias: f32[heads, 64]) {
      score score / temp + bias[h, clamp(q - k, 0, 63)]
      mask causal
    }`;
    const bias = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i) / 4);
    const tensors = { bias: { data: bias, shape: [2, 64] } } as never;
    const s = shape({ Hq: 2, Hkv: 1, Nq: 24, Nk: 24 });
    // With a gradient into lse as well: the param and tensor gradients take it through dscore′.
    const errors = await checkWgslBackward(src, s, 3, { tensors, dlse: true });
    expect(Object.keys(errors)).toEqual(['dq', 'dk', 'dv', 'd$temp', 'dbias']);
    expectSmall(errors, 'bias table');
  }, 120_000);

  it('positions at the top of int32 (offsets near 2^31, the classifier under wrap)', async () => {
    const top = 2147483647;
    const s = shape({ Nq: 21, Nk: 37, qOffset: top - 21 - 4, kOffset: top - 37 - 1 });
    expectSmall(
      await checkWgslBackward(stdlib('sink_window'), s, 9, { params: { window: 6, sinks: 2 } }),
      'near 2^31',
    );
  }, 120_000);

  it('a param gradient from one dominant key: the floor counts dS before its cancellation', async () => {
    // Shrunk from seed 1001 of the random programs: one key takes + c0 and so P ≈ 1 there, where
    // dS = P (dP − Σ P dP) cancels to ~1e-5 from O(1) terms. The f32 kernel is off by ~1 ulp of
    // those terms (2e-8), 2.3e-5 of a 1e-3 floor; the floor must come from |P| (|dP| + |Σ P dP|).
    const src = `attention prop(c0: f32 = 14.75) {
  score !(q / -2 >= k / -2) ? score : score + c0
  mask q != k
}`;
    const s = { B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: 38, qOffset: 38, D: 16, Dv: 8 };
    expectSmall(await checkWgslBackward(src, s, -425506449, { tile: 8 }), 'one dominant key');
  }, 120_000);

  it('a mask no pair passes: every gradient is 0', async () => {
    const src = 'attention none(c: f32 = 2.0) {\n  score score * c\n  mask false\n}';
    expectSmall(await checkWgslBackward(src, shape({}), 2), 'mask false');
  }, 120_000);

  it('bad run arguments get an error naming the argument', async () => {
    const device = await getDevice();
    const c = compileBackward(stdlib('sink_calibration'), { headDim: 8, valueDim: 8 });
    const n = (len: number): Float32Array => new Float32Array(len);
    const ok = {
      q: n(16),
      k: n(24),
      v: n(24),
      out: n(16),
      lse: n(2),
      dout: n(16),
      B: 1,
      H: 1,
      Hkv: 1,
      Nq: 2,
      Nk: 3,
      tensors: { gain: n(1) },
    };
    await expect(runWgslBackward(device, c.backward, { ...ok, dout: n(3) })).rejects.toThrow(
      /dout has 3 elements, expected 16/,
    );
    await expect(runWgslBackward(device, c.backward, { ...ok, tensors: {} })).rejects.toThrow(
      /tensor "gain" was not given/,
    );
    await expect(runWgslBackward(device, c.backward, { ...ok, H: 3, Hkv: 2 })).rejects.toThrow(
      /H \(3\) must be a multiple of Hkv \(2\)/,
    );
    // Each of these ran before (backward-checks.ts): a misspelt param with the default, NaN
    // params / scale into NaN gradients, qOffset 1.5 truncated to 1, a Float64Array q of the
    // right byte length read as f32 words, an unknown tensor ignored.
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ params: { sink: 2 } }, /param "sink": the kernel has no such param \(known: sinks\)/],
      [{ params: { sinks: Number.NaN } }, /param "sinks" \(i32\): expected an integer .* got number NaN/],
      [{ params: { sinks: '2' } }, /param "sinks" \(i32\): .* got string 2/],
      [{ scale: Number.NaN }, /scale: expected a finite number within f32 range, got number NaN/],
      [{ qOffset: 1.5 }, /qOffset: expected an i32 \(integer\), got number 1.5/],
      [{ kOffset: 2147483647 }, /kOffset: key positions \[2147483647, 2147483649\] leave int32/],
      [{ q: new Float64Array(8) }, /q: expected a Float32Array, got Float64Array of 8 elements/],
      [{ dlse: new Float64Array(2) }, /dlse: expected a Float32Array, got Float64Array of 2 elements/],
      [{ dlse: n(3) }, /dlse has 3 elements, expected 2/],
      [
        { tensors: { gain: n(1), gian: n(1) } },
        /tensor "gian": the kernel has no such tensor \(known: gain\)/,
      ],
      [{ tensors: { gain: new Int32Array(1) } }, /tensor "gain": expected a Float32Array, got Int32Array/],
      // Misspelt keys were ignored: qoffset ran with the default offset, dOut beside dout unread.
      [{ qoffset: 1 }, /runWgslBackward\(inputs\): unknown key "qoffset"; did you mean "qOffset"\?/],
      [{ dOut: n(16) }, /runWgslBackward\(inputs\): unknown key "dOut"; did you mean "dout"\?/],
      [{ sinks: 2 }, /"sinks" is a param of kernel "sink_calibration": pass it as params: \{ sinks: … \}/],
    ];
    for (const [bad, message] of refusals)
      await expect(runWgslBackward(device, c.backward, { ...ok, ...bad } as typeof ok)).rejects.toThrow(
        message,
      );
    // These were TypeErrors from inside ("Cannot read properties of undefined").
    const call = (d: unknown, inputs: unknown) =>
      runWgslBackward(d as GPUDevice, c.backward, inputs as typeof ok);
    await expect(call(undefined, ok)).rejects.toThrow(
      /^runWgslBackward\(device, art, inputs\): device must be a GPUDevice \(getDevice\(\)\), got undefined$/,
    );
    await expect(call(device, null)).rejects.toThrow(
      /^runWgslBackward\(device, art, inputs\): inputs must be an object \{ q, k, v, out, lse, dout, B, H, Hkv, Nq, Nk, \.\.\. \}, got null$/,
    );
    // A device with the default limits (8 storage buffers): Dawn's "Invalid PipelineLayout" before.
    const bare = await (await findAdapter())!.adapter.requestDevice();
    bare.pushErrorScope('validation');
    await expect(runWgslBackward(bare, c.backward, ok)).rejects.toThrow(
      /^backward of "sink_calibration": binds 13 storage buffers, the device allows 8 \(request a device with a higher maxStorageBuffersPerShaderStage\)$/,
    );
    expect(await bare.popErrorScope()).toBeNull();
    bare.destroy();
    const res = await runWgslBackward(device, c.backward, { ...ok, params: { sinks: 2 } });
    expect(res.dTensors.gain).toHaveLength(1);
  }, 120_000);

  it('refuses what it cannot do, naming why', () => {
    expect(() => compileBackward(stdlib('causal'), { dtype: 'f16', limits: { shaderF16: true } })).toThrow(
      /f32 only; q is stored as f16/,
    );
    expect(() => compileBackward(stdlib('biformer'), {})).toThrow(
      /does not take routing\/selection kernels; the CUDA SIMT backward takes them/,
    );
  });

  it(`random programs (${runs})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram({ depth: 2 }),
        fc.record({
          B: fc.integer({ min: 1, max: 2 }),
          Hkv: fc.integer({ min: 1, max: 2 }),
          ratio: fc.integer({ min: 1, max: 3 }),
          Nq: fc.integer({ min: 1, max: 40 }),
          Nk: fc.integer({ min: 1, max: 40 }),
          qOffset: fc.option(fc.integer({ min: -8, max: 50 }), { nil: undefined }),
          kOffset: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
        }),
        fc.integer(),
        fc.constantFrom(8, 16),
        async (decl, s, seed, tile) => {
          const sh: Shape = { ...s, Hq: s.Hkv * s.ratio, D: 16, Dv: 8 };
          const src = printDecl(decl);
          expectSmall(
            await checkWgslBackward(src, sh, seed, { tile }),
            `\n${src}\n${JSON.stringify(sh)} seed ${seed} tile ${tile}`,
          );
        },
      ),
      { numRuns: runs },
    );
  }, 600_000);
});
