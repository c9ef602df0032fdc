// docs/LANGUAGE.md "Non-finite values" in the coop engine's decode module: NaN/Inf planted in q, k
// and v (allowed and masked keys) and non-finite scores from a score expression, in decode mode
// with many small splits and several lane groups, against the reference under the contract
// (test/support/nonfinite.ts). Both lane-sum paths: shuffles (lanes 4) and, with lanes 8 over
// D = 8 (2 vec4 columns, lanes without columns), lanes 8 and the no-subgroup schedule.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { retuneCoopDecode } from '../../src/codegen/wgsl/decode-coop.js';
import type { CoopDecodeTuning } from '../../src/codegen/wgsl/decode-coop-tuning.js';
import { compile, type Compiled } from '../../src/compile.js';
import { referenceDecl } from '../../src/runtime/reference-routing.js';
import { createKernel, deviceLimits, getDevice, type GpuKernel } from '../../src/runtime/webgpu.js';
import { expectContract, plantedInputs, type NfShape, type Plant } from '../support/nonfinite.js';

const D = 8;
const SCORED = `attention nf_scored(ninf: int = -1, pinf: int = -1, nan: int = -1) {
  score k == ninf ? log(score - score) : (k == pinf ? exp(score + 1000.0) : (k == nan ? log(score - score - 1.0) : (score < 100.0 ? score : 0.0)))
  mask causal
}`;
const SLIDING = `attention nf_window(window: int = 5) { mask causal && q - k < window }`;

/** Variants: (lanes, subgroups allowed, merge knobs); 32-key splits of 4 lane groups × 2 keys × 4 steps. */
const variants = [
  { lanes: 4, subgroups: true },
  { lanes: 8, subgroups: true },
  { lanes: 4, subgroups: false },
  // The wide merge: a slab per vec4 column (2 workgroups per row), 8 split subsets (some empty).
  { lanes: 4, subgroups: true, merge: { mergeCols: 1, mergeThreads: 8 } },
] as const;

const kernels: GpuKernel[] = [];
afterAll(() => kernels.forEach((k) => k.destroy()));
const built = new Map<string, Promise<{ c: Compiled; gpu: GpuKernel }>>();

function kernelFor(source: string, variant: number) {
  const key = `${variant}/${source}`;
  let hit = built.get(key);
  if (!hit) {
    hit = (async () => {
      const device = await getDevice();
      const v = variants[variant]!;
      const c = compile(source, {
        target: 'wgsl',
        file: 'nonfinite.attn',
        headDim: D,
        limits: deviceLimits(device),
        wgslEngine: 'coop',
        schedule: { blockQ: 8, blockK: 8, threads: 16, ...(v.subgroups ? {} : { subgroups: false }) },
      });
      const tuning: CoopDecodeTuning = {
        threads: 4 * v.lanes,
        lanes: v.lanes,
        chunk: 2,
        rows: 3,
        splitKeys: 32,
        ...('merge' in v ? v.merge : {}),
      };
      const artifact = { ...c.artifact, decode: retuneCoopDecode(c.artifact.decode!, tuning) };
      const gpu = await createKernel(device, artifact, { debug: true, decode: 'always' });
      kernels.push(gpu);
      return { c, gpu };
    })();
    built.set(key, hit);
  }
  return hit;
}

async function check(
  source: string,
  shape: Omit<NfShape, 'D' | 'Dv'>,
  plants: readonly Plant[],
  opts: { params?: Record<string, number>; seed?: number; variant?: number; nanOptional?: boolean } = {},
): Promise<void> {
  const { c, gpu } = await kernelFor(source, opts.variant ?? 0);
  const s: NfShape = { ...shape, D, Dv: D };
  const inputs = plantedInputs(s, opts.seed ?? 3, plants);
  const params = { ...Object.fromEntries(c.decl.defaults), ...opts.params };
  const sizes = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  const res = await gpu.run({ ...inputs, ...sizes, params });
  const env = { params, tensors: {}, sizes: { ...sizes, D } };
  const ref = referenceDecl(c.decl.decl, { ...inputs, ...sizes, Hq: s.H, D, Dv: D }, env);
  const where = ` (${c.kernel.name}, variant ${opts.variant ?? 0}, ${JSON.stringify(shape)}, ${res.decodeSplits} splits)`;
  expect(res.decodeSplits, `decode mode${where}`).toBe(Math.max(1, Math.ceil(s.Nk / 32)));
  expectContract(res, ref, where, 1e-5, { nanOptional: opts.nanOptional === true });
}

const NaN_ = Number.NaN;
const Inf = Number.POSITIVE_INFINITY;

describe('coop decode follows the non-finite contract', () => {
  it('a poisoned partial makes the merged row NaN; NaN v of a masked key; +inf and -inf scores', async () => {
    for (const variant of [0, 1, 2, 3]) {
      // kv head 0: key 100 NaN (both rows), kv head 1: v of the last key NaN (masked for row 0).
      await check(
        SCORED,
        { B: 1, H: 2, Hkv: 2, Nq: 2, Nk: 150 },
        [
          ['k', 0, 0, 100, 1, NaN_],
          ['v', 0, 1, 149, 2, NaN_],
        ],
        { variant },
      );
      await check(SCORED, { B: 1, H: 2, Hkv: 1, Nq: 3, Nk: 170 }, [['v', 0, 0, 20, 3, Inf]], {
        variant,
        params: { pinf: 120, ninf: 168 },
      });
    }
  }, 120_000);

  it('property: random plants and non-finite scores agree with the reference', async () => {
    const special = fc.constantFrom(NaN_, Inf, -Inf);
    const arbCase = fc
      .record({
        program: fc.nat(1),
        variant: fc.nat(variants.length - 1),
        H: fc.constantFrom(1, 2, 4),
        Nq: fc.integer({ min: 1, max: 6 }),
        Nk: fc.integer({ min: 1, max: 140 }),
        seed: fc.nat(1000),
      })
      .chain((t) =>
        fc.record({
          t: fc.constant(t),
          plants: fc.array(
            fc.tuple(
              fc.constantFrom('q' as const, 'k' as const, 'v' as const),
              fc.nat(t.H - 1),
              fc.nat(Math.max(t.Nq, t.Nk) - 1),
              fc.nat(D - 1),
              special,
            ),
            { minLength: 1, maxLength: 3 },
          ),
          scores: fc.array(fc.integer({ min: -1, max: t.Nk - 1 }), { minLength: 3, maxLength: 3 }),
        }),
      );
    await fc.assert(
      fc.asyncProperty(arbCase, async ({ t, plants, scores }) => {
        // An infinite q·k through SCORED's `score - score` is platform-defined on WGSL: there q
        // and k get NaN only (as in nonfinite.test.ts).
        const fit = plants.map(([n, h, row, d, x]): Plant => {
          const value = n !== 'v' && t.program === 0 ? NaN_ : x;
          return [n, 0, n === 'q' ? h : 0, n === 'q' ? row % t.Nq : row % t.Nk, d, value];
        });
        const [ninf, pinf, nan] = scores as [number, number, number];
        const params: Record<string, number> = t.program === 0 ? { ninf, pinf, nan } : {};
        const shape = { B: 1, H: t.H, Hkv: 1, Nq: t.Nq, Nk: t.Nk };
        await check([SCORED, SLIDING][t.program]!, shape, fit, {
          params,
          seed: t.seed,
          variant: t.variant,
          nanOptional: true,
        });
      }),
      { numRuns: 20 },
    );
  }, 600_000);
});
