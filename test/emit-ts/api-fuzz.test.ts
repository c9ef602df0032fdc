// Fuzzes an emitted module's dispatch with hostile arguments: sizes, offsets, scale and params of
// any type and magnitude, and non-objects where objects belong. Only KernelInputError may escape
// (never a TypeError or a Dawn error); an accepted launch agrees with the runtime's result.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { InputError } from '../../src/runtime/validate.js';
import { createKernel, getDevice, type GpuKernel, type RunInputs } from '../../src/runtime/webgpu.js';
import { emitSource, importModule, type GeneratedKernel, type GeneratedModule } from './support.js';

const source = `attention vals(window: int = 4, cap: f32 = 50.0, flag: bool = false) {
  mask (flag || causal) && q - k < window && 0.5 * k < cap
}
`;
const D = 16;
const runs = Number(process.env.ATTNC_PROPERTY_RUNS ?? 150);

let mod: GeneratedModule;
let emitted: GeneratedKernel;
let runtime: GpuKernel;
beforeAll(async () => {
  const e = await emitSource(source, 'js', { headDim: D });
  mod = await importModule<GeneratedModule>('vals_fuzz', e.files['vals.js']!);
  const device = await getDevice();
  emitted = await mod.createKernel(device);
  runtime = await createKernel(device, e.compiled.artifact);
}, 300_000);
afterAll(() => {
  emitted.destroy();
  runtime.destroy();
});

const hostile = fc.oneof(
  fc.constantFrom(2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 32 + 2, 1e40, 3.4e38, NaN, Infinity, -0, 0.5),
  fc.double(),
  fc.constantFrom(undefined, null, true, '3', [], {}),
);
const mostly = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: hostile });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const arbCase = fc.record({
  sizes: fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        B: mostly(fc.constantFrom(1, 2)),
        Nq: mostly(fc.nat(10)),
        Nk: mostly(fc.nat(10)),
      }),
    },
    { weight: 1, arbitrary: hostile },
  ),
  params: maybe(
    fc.oneof(
      {
        weight: 12,
        arbitrary: fc.record({
          window: maybe(mostly(fc.integer({ min: -2, max: 12 }))),
          cap: maybe(mostly(fc.double({ min: 1, max: 9, noNaN: true }))),
          flag: maybe(mostly(fc.boolean())),
        }),
      },
      { weight: 1, arbitrary: hostile },
    ),
  ),
  qOffset: maybe(mostly(fc.integer({ min: -12, max: 12 }))),
  kOffset: maybe(mostly(fc.integer({ min: -12, max: 12 }))),
  scale: maybe(mostly(fc.double({ min: -1, max: 1, noNaN: true }))),
  seed: fc.integer(),
});

describe('emitted module fuzz: only KernelInputError escapes', () => {
  it(`${runs} hostile dispatch arguments`, async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(arbCase, async (c) => {
        const s = (typeof c.sizes === 'object' && c.sizes !== null ? c.sizes : {}) as Record<string, unknown>;
        const n = (x: unknown, max: number): number =>
          typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max ? x : 1;
        const [B, Nq, Nk] = [n(s.B, 2), n(s.Nq, 10), n(s.Nk, 10)];
        const rand = rng(c.seed);
        const q = randomNormal(B * Nq * D, rand);
        const k = randomNormal(B * Nk * D, rand);
        const v = randomNormal(B * Nk * D, rand);
        const sizes =
          typeof c.sizes === 'object' && c.sizes !== null ? { ...c.sizes, H: 1, Hkv: 1 } : c.sizes;
        const launch = { qOffset: c.qOffset, kOffset: c.kOffset, scale: c.scale };
        const args = { q, k, v, sizes, ...(c.params === undefined ? {} : { params: c.params }) };
        for (const [key, value] of Object.entries(launch))
          if (value !== undefined) Object.assign(args, { [key]: value });
        let res;
        try {
          res = await emitted.dispatch(args);
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(mod.KernelInputError);
          // The runtime refuses the same call.
          const inputs = { ...args, ...(sizes as object), params: c.params } as unknown as RunInputs;
          await expect(runtime.run(inputs)).rejects.toBeInstanceOf(InputError);
          return;
        }
        accepted++;
        const inputs = { ...args, ...(sizes as object), params: c.params } as unknown as RunInputs;
        const want = await runtime.run(inputs);
        // The same WGSL on the same device: the same bits (NaN included, for a huge finite scale).
        expect(res.out).toEqual(want.out);
      }),
      { numRuns: runs },
    );
    expect(accepted).toBeGreaterThan(runs / 10);
  }, 600_000);
});
