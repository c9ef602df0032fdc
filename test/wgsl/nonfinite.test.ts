// docs/LANGUAGE.md "Non-finite values" on WebGPU: NaN/Inf planted in q, k and v (for allowed and
// masked keys) and non-finite scores from a score expression, in prefill, split-KV decode and a
// routed kernel, each compared with the reference under the contract (test/support/nonfinite.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { toF16 } from '../../src/runtime/f16.js';
import { referenceDecl } from '../../src/runtime/reference-routing.js';
import { createKernel, deviceLimits, getDevice, type GpuKernel } from '../../src/runtime/webgpu.js';
import { expectContract, plantedInputs, type NfShape, type Plant } from '../support/nonfinite.js';

const D = 8;
const TILE = 8;

// k == ninf: log(0) = -inf (weight 0); k == pinf: exp(> 88) = +inf; k == nan: log(-1) = NaN.
// The non-finite values come from the inputs, not from constants.
const SCORED = `attention nf_scored(ninf: int = -1, pinf: int = -1, nan: int = -1) {
  score k == ninf ? log(score - score) : (k == pinf ? exp(score + 1000.0) : (k == nan ? log(score - score - 1.0) : score))
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

async function check(
  source: string,
  shape: Omit<NfShape, 'D' | 'Dv'>,
  plants: readonly Plant[],
  opts: { params?: Record<string, number>; decode?: 'always' | 'never'; seed?: number; f16?: boolean } = {},
): Promise<void> {
  const device = await getDevice();
  const c = compile(source, {
    target: 'wgsl',
    file: 'nonfinite.attn',
    headDim: D,
    limits: deviceLimits(device),
    schedule: { blockQ: TILE, threads: TILE, blockK: TILE },
    ...(opts.f16 ? { dtype: 'f16' as const } : {}),
  });
  const gpu = await createKernel(device, c.artifact, { debug: true, decode: opts.decode ?? 'never' });
  kernels.push(gpu);
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
  expectContract(res, ref, where, opts.f16 ? 2e-3 : 1e-5);
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
});
