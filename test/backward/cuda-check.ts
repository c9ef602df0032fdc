// One CUDA SIMT backward case on the CPU emulator (cuda-emu.ts): the float64 reference's out and
// lse go in (and, asked, a random dlse), dq dk dv and the param/tensor gradient slots come out, each compared with the float64
// gradient reference (reference-grad.ts). Shared by cuda.test.ts and the fuzz campaign.
// A routing kernel's selection is a constant of the backward: the float64 routing oracle's
// `indices` (reference-routing.ts) are both the kernel's Args.indices and, as the oracle's mask
// (static && selected), the reference's mask. Feeding one selection to both sides means no near
// tie between f32 and float64 rankings can make them disagree.
import { compileCudaBackward } from '../../src/backward.js';
import { gradientErrors } from './grad-errors.js';
import { declRouting } from '../../src/runtime/ast-eval.js';
import { rng } from '../../src/runtime/inputs.js';
import { referenceRouting } from '../../src/runtime/reference-routing.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { makeInputs } from '../support/arbitraries.js';
import type { Inputs, Shape } from '../support/arbitraries.js';
import { emulateCudaBackward } from './cuda-emu.js';
import { drawDlse, evalEnv, f32TensorLengths, gradPredicates } from './support.js';

/** Relative error of each gradient (floor: the largest reference magnitude, at least 1e-3). */
export async function checkCudaBackward(
  source: string,
  sh: Shape,
  seed: number,
  opts: { params?: Record<string, number>; tensors?: Partial<Inputs['tensors']>; dlse?: boolean } = {},
): Promise<Record<string, number>> {
  const c = compileCudaBackward(source, { file: 'bwd.attn', headDim: sh.D, valueDim: sh.Dv });
  const params = { ...(Object.fromEntries(c.decl.defaults) as Record<string, number>), ...opts.params };
  const made = makeInputs(sh, seed);
  const inputs = { ...made, tensors: { ...made.tensors, ...opts.tensors } } as Inputs;
  const env = evalEnv(c.decl.decl, params, sh, inputs);
  const r = rng(seed ^ 0x51ed27);
  const dout = Float32Array.from({ length: sh.B * sh.Hq * sh.Nq * sh.Dv }, () => r() * 2 - 1);
  // dlse: a gradient flowing into lse too (Args.dlse), else null.
  const dlse = drawDlse(opts.dlse, sh, r);
  const lengths = f32TensorLengths(c.decl.decl, env);
  const refInputs = { ...sh, q: inputs.q, k: inputs.k, v: inputs.v };
  const predicates = gradPredicates(c.decl.decl, env);
  const spec = declRouting(c.decl.decl, env);
  const routing = spec && referenceRouting(refInputs, spec, predicates.mask);
  const ref = referenceGradients(
    refInputs,
    routing ? { ...predicates, mask: routing.mask } : predicates,
    dout,
    lengths,
    dlse,
  );
  const tensors = Object.fromEntries(
    c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc'].data]),
  );
  const slots = c.backward.gradParams.length + c.backward.gradTensors.reduce((n, t) => n + lengths[t]!, 0);
  const got = await emulateCudaBackward(c.backward, {
    B: sh.B,
    H: sh.Hq,
    Hkv: sh.Hkv,
    Nq: sh.Nq,
    Nk: sh.Nk,
    qOffset: sh.qOffset ?? sh.Nk - sh.Nq,
    kOffset: sh.kOffset ?? 0,
    scale: Math.fround(1 / Math.sqrt(sh.D)),
    arrays: {
      q: inputs.q,
      k: inputs.k,
      v: inputs.v,
      out: Float32Array.from(ref.out),
      lse: Float32Array.from(ref.lse),
      dout,
    },
    ...(dlse ? { dlse } : {}),
    ...(routing ? { indices: routing.indices } : {}),
    tensors,
    params,
    slots,
  });
  const { errors, cmp } = gradientErrors();
  cmp('dq', got.dq, ref.dq);
  cmp('dk', got.dk, ref.dk);
  cmp('dv', got.dv, ref.dv);
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
