// docs/LANGUAGE.md "Non-finite values" on WebGPU: NaN/Inf planted in q, k and v (for allowed and
// masked keys) and non-finite scores from a score expression, in prefill, split-KV decode and a
// routed kernel, each compared with the reference under the contract (test/support/nonfinite.ts).
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compile, type Compiled } from '../../src/compile.js';
import { toF16 } from '../../src/runtime/f16.js';
import { referenceDecl } from '../../src/runtime/reference-routing.js';
import { createKernel, deviceLimits, getDevice, type GpuKernel } from '../../src/runtime/webgpu.js';
import { expectContract, plantedInputs, type NfShape, type Plant } from '../support/nonfinite.js';

const D = 8;
const TILE = 8;

// k == ninf: log(0) = -inf (weight 0); k == pinf: exp(> 88) = +inf; k == nan: log(-1) = NaN.
// Elsewhere a NaN q·k would become 0.0 (NaN < 100 is false): it must poison the row anyway.
// The non-finite values come from the inputs, not from constants.
const SCORED = `attention nf_scored(ninf: int = -1, pinf: int = -1, nan: int = -1) {
  score k == ninf ? log(score - score) : (k == pinf ? exp(score + 1000.0) : (k == nan ? log(score - score - 1.0) : (score < 100.0 ? score : 0.0)))
  mask causal
}`;
const ROUTED = `attention nf_routed(ninf: int = -1, pinf: int = -1) {
  route blocks(8) topk(2) by mean(q) . mean(k)
  score k == ninf ? log(score - score) : (k == pinf ? exp(score + 1000.0) : score)
  mask causal
}`;

const kernels: GpuKernel[] = [];
// CI's lavapipe has shader-f16 (so CI always runs the f16 case); elsewhere it may be skipped.
const hasF16 = (await getDevice()).features.has('shader-f16');
afterAll(() => kernels.forEach((k) => k.destroy()));

/** Each (program, dtype, decode mode) compiles once per file. */
const built = new Map<string, Promise<{ c: Compiled; gpu: GpuKernel }>>();
function kernelFor(source: string, f16: boolean, decode: 'always' | 'never') {
  const key = `${f16}/${decode}/${source}`;
  let hit = built.get(key);
  if (!hit) {
    hit = (async () => {
      const device = await getDevice();
      const c = compile(source, {
        target: 'wgsl',
        file: 'nonfinite.attn',
        headDim: D,
        limits: deviceLimits(device),
        schedule: { blockQ: TILE, threads: TILE, blockK: TILE },
        ...(f16 ? { dtype: 'f16' as const } : {}),
      });
      const gpu = await createKernel(device, c.artifact, { debug: true, decode });
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
  opts: {
    params?: Record<string, number>;
    decode?: 'always' | 'never';
    seed?: number;
    f16?: boolean;
    /** The case need not produce a NaN (random plants may all land on masked keys). */
    nanOptional?: boolean;
  } = {},
): Promise<void> {
  const { c, gpu } = await kernelFor(source, opts.f16 === true, opts.decode ?? 'never');
  const s: NfShape = { ...shape, D, Dv: D };
  const inputs = plantedInputs(s, opts.seed ?? 3, plants);
  const params = { ...Object.fromEntries(c.decl.defaults), ...opts.params };
  const sizes = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  // Planted inputs are multiples of 1/64 in [-1, 1] (or NaN/Inf): exact in f16.
  const stored = opts.f16 ? { q: toF16(inputs.q), k: toF16(inputs.k), v: toF16(inputs.v) } : inputs;
  const res = await gpu.run({ ...stored, ...sizes, params });
  const env = { params, tensors: {}, sizes: { ...sizes, D } };
  const ref = referenceDecl(c.decl.decl, { ...inputs, ...sizes, Hq: s.H, D, Dv: D }, env);
  const where = ` (${c.kernel.name}, ${JSON.stringify(shape)}${res.decodeSplits ? `, ${res.decodeSplits} splits` : ''})`;
  if (opts.decode === 'always' && !(res.decodeSplits! > 1)) throw new Error(`no split-KV decode${where}`);
  if (ref.routing) expect([...res.indices!], `indices${where}`).toEqual([...ref.routing.indices]);
  expectContract(res, ref, where, opts.f16 ? 2e-3 : 1e-5, { nanOptional: opts.nanOptional === true });
}

const NaN_ = Number.NaN;
const Inf = Number.POSITIVE_INFINITY;

describe('WGSL kernels follow the non-finite contract', () => {
  it('prefill, causal: NaN in k (row 6), q, v of allowed and masked keys, Inf in v', async () => {
    await check(SCORED, { B: 1, H: 2, Hkv: 1, Nq: 20, Nk: 20 }, [
      ['k', 0, 0, 6, 3, NaN_], // rows 6.. of both heads: NaN; rows 0..5 never see key 6
      ['q', 0, 1, 2, 0, NaN_], // head 1 row 2
      ['v', 0, 0, 1, 2, NaN_], // allowed for rows 1..5 (column 2), masked for row 0
      ['v', 0, 0, 3, 5, Inf], // column 5 of rows 3..5: +inf (or NaN)
    ]);
  });

  it('prefill, score expression: +inf and NaN scores poison the row, -inf weighs 0', async () => {
    const shape = { B: 1, H: 1, Hkv: 1, Nq: 19, Nk: 19 };
    // Row 0 sees only key 0 (score -inf): empty. Rows 12.. see key 12 (+inf); rows 17.. key 17 (NaN).
    await check(SCORED, shape, [['v', 0, 0, 0, 1, NaN_]], { params: { ninf: 0, pinf: 12, nan: 17 } });
  });

  it('split-KV decode: a poisoned partial makes the merged row NaN; NaN v of a masked key', async () => {
    // 3 splits of 256 keys; kv head 0: key 300 NaN (both rows), kv head 1: v of the last key NaN
    // (masked for row 0, allowed for row 1), and a +inf score at key 700 of every row.
    await check(
      SCORED,
      { B: 1, H: 2, Hkv: 2, Nq: 2, Nk: 600 },
      [
        ['k', 0, 0, 300, 1, NaN_],
        ['v', 0, 1, 599, 2, NaN_],
      ],
      { decode: 'always' },
    );
    await check(SCORED, { B: 1, H: 2, Hkv: 1, Nq: 3, Nk: 700 }, [], {
      decode: 'always',
      params: { pinf: 450, ninf: 698 },
    });
  });

  it.skipIf(!hasF16 && !process.env.CI)('f16 storage: NaN stores as NaN, in prefill and decode', async () => {
    const plants: Plant[] = [
      ['k', 0, 0, 6, 3, NaN_],
      ['v', 0, 0, 3, 5, Inf],
    ];
    await check(SCORED, { B: 1, H: 1, Hkv: 1, Nq: 12, Nk: 12 }, plants, { f16: true });
    await check(SCORED, { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 300 }, plants, { f16: true, decode: 'always' });
  });

  it('block routing: non-finite scores and NaN v of a selected key', async () => {
    await check(ROUTED, { B: 1, H: 2, Hkv: 1, Nq: 32, Nk: 32 }, [['v', 0, 0, 30, 4, NaN_]], {
      params: { pinf: 20, ninf: 1 },
    });
  });
  // Random shapes, programs and plants (a few NaN/±Inf in q, k, v; non-finite score positions).
  const SLIDING = `attention nf_window(window: int = 5) { mask causal && q - k < window }`;
  const programs = [SCORED, SLIDING];
  const special = fc.constantFrom(NaN_, Inf, -Inf);
  const arbCase = fc
    .record({
      program: fc.nat(programs.length - 1),
      H: fc.constantFrom(1, 2),
      Nq: fc.integer({ min: 1, max: 24 }),
      extraK: fc.integer({ min: 0, max: 12 }),
      seed: fc.nat(1000),
      n: fc.integer({ min: 1, max: 3 }),
    })
    .chain((t) =>
      fc.record({
        t: fc.constant(t),
        plants: fc.array(
          fc.tuple(
            fc.constantFrom('q', 'k', 'v'),
            fc.nat(t.H - 1),
            fc.nat(t.Nq + t.extraK - 1),
            fc.nat(D - 1),
            special,
          ),
          { minLength: t.n, maxLength: t.n },
        ),
        scores: fc.array(fc.integer({ min: -1, max: t.Nq + t.extraK - 1 }), { minLength: 3, maxLength: 3 }),
      }),
    );
  it('property: random plants and non-finite scores agree with the reference', async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, async ({ t, plants, scores }) => {
        const Nk = t.Nq + t.extraK;
        // An infinite q·k through SCORED's `score - score` is platform-defined on WGSL (compilers
        // may fold it to 0; docs/LANGUAGE.md): there q and k get NaN only.
        const value = (n: string, x: number) => (n !== 'v' && t.program === 0 ? NaN_ : x);
        const fit = plants.map(([n, h, row, d, x]): Plant => [
          n,
          0,
          h,
          n === 'q' ? row % t.Nq : row,
          d,
          value(n, x),
        ]);
        const [ninf, pinf, nan] = scores as [number, number, number];
        const params: Record<string, number> = t.program === 0 ? { ninf, pinf, nan } : {};
        const shape = { B: 1, H: t.H, Hkv: t.H, Nq: t.Nq, Nk };
        await check(programs[t.program]!, shape, fit, { params, seed: t.seed, nanOptional: true });
      }),
      { numRuns: 25 },
    );
  });
});
