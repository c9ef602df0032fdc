// The tensor-core CUDA backward (bf16) run on the CPU (backward-mma-emu.ts: the emulation shim with
// warp-collective ldmatrix / mma.sync stand-ins) against the float64 gradient reference: stdlib
// masks and modifiers (full, partial and empty q-tiles, summaries), GQA, ragged Nq ≠ Nk, offsets,
// tails of both tiles, a learnable param (softcap's cap) and tensor (sink-calibration gains).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileCudaBackwardMma } from '../../src/backward.js';
import { gradientErrors } from '../backward/grad-errors.js';
import { rng } from '../../src/runtime/inputs.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { makeInputs, type Inputs, type Shape } from '../support/arbitraries.js';
import { evalEnv, f32TensorLengths, gradPredicates } from '../backward/support.js';
import { emulateMmaBackward } from './backward-mma-emu.js';

/** bf16 storage: round to nearest even (inputs here are exact), and back. */
const toBf16 = (x: ArrayLike<number>): Uint16Array => {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  return Uint16Array.from(u, (b) => ((b + 0x7fff + ((b >> 16) & 1)) >>> 16) & 0xffff);
};
const fromBf16 = (x: Uint16Array): Float32Array =>
  new Float32Array(Uint32Array.from(x, (b) => b << 16).buffer);

// bf16 P and dS feed the tensor cores: errors relative to each gradient's largest entry.
const TOL = 1e-2;
const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 70, Nk: 90, D: 64, Dv: 64, ...s });

async function check(
  source: string,
  sh: Shape,
  seed: number,
  opts: {
    params?: Record<string, number>;
    tensors?: Partial<Inputs['tensors']>;
    deterministic?: boolean;
  } = {},
): Promise<Record<string, number>> {
  const c = compileCudaBackwardMma(source, {
    file: 'bwd.attn',
    headDim: sh.D,
    valueDim: sh.Dv,
    dtype: 'bf16',
  });
  const params = { ...(Object.fromEntries(c.decl.defaults) as Record<string, number>), ...opts.params };
  const made = makeInputs(sh, seed);
  const inputs = { ...made, tensors: { ...made.tensors, ...opts.tensors } } as Inputs;
  const env = evalEnv(c.decl.decl, params, sh, inputs);
  const r = rng(seed ^ 0x51ed27);
  const dout = Float32Array.from(
    { length: sh.B * sh.Hq * sh.Nq * sh.Dv },
    () => (Math.floor(r() * 257) - 128) / 128,
  );
  const lengths = f32TensorLengths(c.decl.decl, env);
  const ref = referenceGradients(
    { ...sh, q: inputs.q, k: inputs.k, v: inputs.v },
    gradPredicates(c.decl.decl, env),
    dout,
    lengths,
  );
  const slots = c.backward.gradParams.length + c.backward.gradTensors.reduce((n, t) => n + lengths[t]!, 0);
  const got = await emulateMmaBackward(c.backward, {
    B: sh.B,
    H: sh.Hq,
    Hkv: sh.Hkv,
    Nq: sh.Nq,
    Nk: sh.Nk,
    qOffset: sh.qOffset ?? sh.Nk - sh.Nq,
    kOffset: sh.kOffset ?? 0,
    scale: Math.fround(1 / Math.sqrt(sh.D)),
    storage: {
      q: toBf16(inputs.q),
      k: toBf16(inputs.k),
      v: toBf16(inputs.v),
      out: toBf16(ref.out),
      dout: toBf16(dout),
    },
    lse: Float32Array.from(ref.lse),
    tensors: Object.fromEntries(c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc'].data])),
    params,
    slots,
  });
  const { errors, cmp } = gradientErrors();
  cmp('dq', fromBf16(got.dq), ref.dq);
  cmp('dk', fromBf16(got.dk), ref.dk);
  cmp('dv', fromBf16(got.dv), ref.dv);
  c.backward.gradParams.forEach((p, i) =>
    cmp(`d$${p}`, [got.grads[i]!], [ref.dParams.get(p) ?? 0], ref.dParamsScale.get(p)),
  );
  let at = c.backward.gradParams.length;
  for (const t of c.backward.gradTensors) {
    const n = lengths[t]!;
    cmp(`d${t}`, got.grads.subarray(at, (at += n)), ref.dTensors.get(t)!, ref.dTensorsScale.get(t));
  }
  return errors;
}

const expectSmall = (errors: Record<string, number>, where: string): void => {
  if (process.env.ATTNC_SHOW_ERRORS) console.log(where, errors);
  for (const [name, e] of Object.entries(errors)) expect(e, `${name} ${where}`).toBeLessThanOrEqual(TOL);
};

describe('tensor-core CUDA backward (CPU emulation of mma.sync) vs the float64 gradient reference', () => {
  it.each([
    ['full', {}, {}],
    ['causal', { B: 2, Hq: 4, Hkv: 2 }, {}],
    ['sliding_window', { Nq: 130, Nk: 130 }, { window: 40 }],
    ['document', { Hq: 3, Hkv: 3 }, {}],
    ['dilated', {}, {}],
    ['alibi', { Hq: 4, Hkv: 1 }, {}],
    ['softcap', {}, { cap: 2.5 }],
    ['prefix_lm', { Nq: 90, Nk: 70, qOffset: 3, kOffset: 0 }, { prefix: 20 }],
    ['causal', { D: 128, Dv: 128, Nq: 50, Nk: 75 }, {}],
    ['softcap', { D: 128, Dv: 128, Nq: 40, Nk: 40 }, { cap: 3 }],
    // 35 q-tiles: the last key tiles' ballot scans page past 32 empty q-tiles.
    ['sliding_window', { Nq: 2200, Nk: 2200 }, { window: 40 }],
  ] as const)(
    '%s %j %j',
    async (name, s, params) => {
      expectSmall(await check(stdlib(name), shape(s), 11, { params: { ...params } }), name);
    },
    300_000,
  );

  it.each([
    ['causal', { B: 2, Hq: 4, Hkv: 2 }, {}],
    ['softcap', { Nq: 150, Nk: 170 }, { cap: 2.5 }],
    ['document', { Hq: 3, Hkv: 3 }, {}],
    ['softcap', { D: 128, Dv: 128, Nq: 40, Nk: 40 }, { cap: 3 }],
    ['prefix_lm', { Nq: 90, Nk: 70, qOffset: 3, kOffset: 0 }, { prefix: 20 }],
  ] as const)(
    'deterministic mode (dq by its own kernel): %s %j %j',
    async (name, s, params) => {
      const e = await check(stdlib(name), shape(s), 11, { params: { ...params }, deterministic: true });
      expectSmall(e, `${name} deterministic`);
    },
    300_000,
  );

  it('a learnable tensor: sink-calibration gains', async () => {
    const gain = { data: Float32Array.from([0.5, 2.25]), shape: [2] };
    const e = await check(stdlib('sink_calibration'), shape({ Hq: 2, Hkv: 2 }), 5, {
      params: { sinks: 4 },
      tensors: { gain } as never,
    });
    expect(Object.keys(e)).toEqual(['dq', 'dk', 'dv', 'dgain']);
    expectSmall(e, 'sink_calibration');
  }, 300_000);
});
