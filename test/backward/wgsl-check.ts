// One WGSL backward case on WebGPU (lavapipe in CI): the forward kernel gives out and lse, the
// backward module dq dk dv and the param/tensor gradients, each compared with the float64
// gradient reference (reference-grad.ts, its score partials from the dual-number AST evaluator).
import { compileBackward } from '../../src/backward.js';
import { gradientErrors } from './grad-errors.js';
import { runWgslBackward } from '../../src/runtime/backward-webgpu.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { rng } from '../../src/runtime/inputs.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { makeInputs, type Inputs, type Shape } from '../support/arbitraries.js';
import { drawDlse, evalEnv, f32TensorLengths, gradPredicates } from './support.js';

/** Relative error of each gradient (floor: the largest reference magnitude, at least 1e-3). */
export async function checkWgslBackward(
  source: string,
  shape: Shape,
  seed: number,
  opts: { tile?: number; params?: Record<string, number>; tensors?: Inputs['tensors']; dlse?: boolean } = {},
): Promise<Record<string, number>> {
  const device = await getDevice();
  const tile = opts.tile ?? 16;
  const c = compileBackward(source, {
    file: 'bwd.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    schedule: { blockQ: tile, threads: tile, blockK: tile },
  });
  const params = { ...Object.fromEntries(c.decl.defaults), ...opts.params };
  const made = makeInputs(shape, seed);
  const inputs = { ...made, tensors: { ...made.tensors, ...opts.tensors } };
  const tensors = Object.fromEntries(
    c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc'].data]),
  );
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
  const offsets = {
    ...(shape.qOffset !== undefined ? { qOffset: shape.qOffset } : {}),
    ...(shape.kOffset !== undefined ? { kOffset: shape.kOffset } : {}),
  };
  const fwd = await createKernel(device, c.artifact);
  let res;
  try {
    res = await fwd.run({ q: inputs.q, k: inputs.k, v: inputs.v, ...sizes, tensors, params, ...offsets });
  } finally {
    fwd.destroy();
  }
  const r = rng(seed ^ 0x2545f491);
  const dout = Float32Array.from({ length: shape.B * shape.Hq * shape.Nq * shape.Dv }, () => r() * 2 - 1);
  // Asked: a gradient into lse too.
  const dlse = drawDlse(opts.dlse, shape, r);
  const got = await runWgslBackward(device, c.backward, {
    q: inputs.q,
    k: inputs.k,
    v: inputs.v,
    out: res.out,
    lse: res.lse!,
    dout,
    ...(dlse ? { dlse } : {}),
    ...sizes,
    ...offsets,
    params,
    tensors,
  });
  const env = evalEnv(c.decl.decl, params, shape, inputs);
  const ref = referenceGradients(
    { ...shape, q: inputs.q, k: inputs.k, v: inputs.v },
    gradPredicates(c.decl.decl, env),
    dout,
    f32TensorLengths(c.decl.decl, env),
    dlse,
  );
  const { errors, cmp } = gradientErrors();
  cmp('dq', got.dq, ref.dq);
  cmp('dk', got.dk, ref.dk);
  cmp('dv', got.dv, ref.dv);
  for (const p of c.backward.gradParams)
    cmp(`d$${p}`, [got.dParams[p]!], [ref.dParams.get(p) ?? 0], ref.dParamsScale.get(p));
  for (const t of c.backward.gradTensors)
    cmp(`d${t}`, got.dTensors[t]!, ref.dTensors.get(t)!, ref.dTensorsScale.get(t));
  return errors;
}
