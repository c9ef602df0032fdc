// Fuzzing the API with hostile options and run inputs (issue 9): `compile` throws only
// CompileError whatever its options, and createKernel(...).run on WebGPU throws only InputError
// for sizes, offsets, params and arrays it cannot take; a run it accepts agrees with the float64
// reference. (The CLI is fuzzed in fuzz.test.ts.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { InputError } from '../../src/runtime/validate.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

/** More cases for a bug hunt (ATTNC_FUZZ_SCALE=10). */
const scale = Number(process.env.ATTNC_FUZZ_SCALE ?? 1);
const seen = { runOk: 0, inputError: 0 };

/** Whether a position, or a difference q − k of positions, leaves int32 (well-formed numbers only). */
function wraps(qOffset: number, Nq: number, kOffset: number, Nk: number): boolean {
  if (![qOffset, Nq, kOffset, Nk].every(Number.isSafeInteger) || Nq <= 0 || Nk <= 0) return false;
  const [qHi, kHi] = [qOffset + Nq - 1, kOffset + Nk - 1];
  const fits = (x: number): boolean => x >= -2147483648 && x <= 2147483647;
  return ![qOffset, qHi, kOffset, kHi, qHi - kOffset, qOffset - kHi].every(fits);
}

const hostileNumber = fc.oneof(
  fc.integer({ min: 0, max: 40 }),
  fc.constantFrom(-1, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 1e12, 99999999999),
);

describe('API fuzz', () => {
  it('compile throws only CompileError, whatever the options', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          'attention c() { mask causal }',
          'attention w(w: int = 4) { mask q - k < w }',
          '\x1b(((',
          '',
        ),
        fc.record(
          {
            target: fc.constantFrom('wgsl', 'cuda'),
            headDim: hostileNumber,
            valueDim: hostileNumber,
            entry: fc.constantFrom('c', 'w', 'nope'),
            dtype: fc.constantFrom('f32', 'f16', 'bf16'),
          },
          { requiredKeys: ['target'] },
        ),
        (source, options) => {
          try {
            compile(source, options as Parameters<typeof compile>[1]);
          } catch (e) {
            expect(e, `${JSON.stringify(options)}: ${(e as Error).stack}`).toBeInstanceOf(CompileError);
          }
        },
      ),
      { numRuns: 150 * scale },
    );
  });

  it('createKernel(...).run throws only InputError on hostile inputs, and what it runs agrees', async () => {
    const device = await getDevice();
    const source = 'attention w(w: int = 6) { mask causal && q - k < w }';
    const { artifact } = compile(source, { target: 'wgsl', headDim: 8, limits: deviceLimits(device) });
    const kernel = await createKernel(device, artifact);
    /** Mostly sane, sometimes hostile: each field on its own, so most draws still run. */
    const mostly = (sane: fc.Arbitrary<number>) =>
      fc.oneof({ arbitrary: sane, weight: 7 }, { arbitrary: hostileNumber, weight: 1 });
    const shapes = fc.record({
      B: mostly(fc.integer({ min: 1, max: 2 })),
      H: mostly(fc.integer({ min: 1, max: 2 })),
      Nq: mostly(fc.integer({ min: 0, max: 40 })),
      Nk: mostly(fc.integer({ min: 1, max: 40 })),
      qOffset: fc.option(mostly(fc.integer({ min: -50, max: 50 })), { nil: undefined }),
      kOffset: fc.option(mostly(fc.integer({ min: 0, max: 50 })), { nil: undefined }),
      w: fc.option(mostly(fc.integer({ min: -3, max: 50 })), { nil: undefined }),
      lengthSkew: fc.constantFrom(0, 0, 0, 0, 0, -1, 1),
    });
    try {
      await fc.assert(
        fc.asyncProperty(shapes, async (s) => {
          const len = (n: number): number =>
            Number.isSafeInteger(n) && n >= 0 && n * 8 <= 1 << 20 ? n * 8 + s.lengthSkew : 0;
          const qLen = len(s.B * s.H * s.Nq);
          const kLen = len(s.B * s.H * s.Nk);
          const rand = rng(7);
          const q = randomNormal(Math.max(0, qLen), rand);
          const k = randomNormal(Math.max(0, kLen), rand);
          const v = randomNormal(Math.max(0, kLen), rand);
          const inputs = {
            q,
            k,
            v,
            B: s.B,
            H: s.H,
            Hkv: s.H,
            Nq: s.Nq,
            Nk: s.Nk,
            ...(s.qOffset === undefined ? {} : { qOffset: s.qOffset }),
            ...(s.kOffset === undefined ? {} : { kOffset: s.kOffset }),
            ...(s.w === undefined ? {} : { params: { w: s.w } }),
          };
          let result;
          try {
            result = await kernel.run(inputs);
          } catch (e) {
            expect(e, `${JSON.stringify(s)}: ${(e as Error).stack}`).toBeInstanceOf(InputError);
            seen.inputError++;
            return;
          }
          const w = s.w ?? 6;
          const qOffset = s.qOffset ?? s.Nk - s.Nq;
          const kOffset = s.kOffset ?? 0;
          // Positions, and differences q − k, that leave int32 are refused (docs/LANGUAGE.md).
          expect(wraps(qOffset, s.Nq, kOffset, s.Nk), JSON.stringify(s)).toBe(false);
          const ref = referenceAttention(
            { q, k, v, B: s.B, Hq: s.H, Hkv: s.H, Nq: s.Nq, Nk: s.Nk, D: 8, Dv: 8, qOffset, kOffset },
            // Index arithmetic is int32 with wrap (DESIGN §2): `q - k` wraps as the kernel's does.
            { mask: (_b, _h, qp, kp) => qp >= kp && ((qp - kp) | 0) < w },
          );
          const agreement = compareArrays(result.out, ref.out, ref.outScale);
          expect(agreement.relError, JSON.stringify(s)).toBeLessThanOrEqual(1e-5);
          expect(agreement.nanCount, JSON.stringify(s)).toBe(0);
          seen.runOk++;
        }),
        { numRuns: 80 * scale },
      );
    } finally {
      kernel.destroy();
    }
  });
});

describe('API fuzz coverage', () => {
  it('reached real work: accepted runs and InputErrors', () => {
    expect(seen.runOk, JSON.stringify(seen)).toBeGreaterThanOrEqual(10 * scale);
    expect(seen.inputError, JSON.stringify(seen)).toBeGreaterThanOrEqual(10 * scale);
  });
});
