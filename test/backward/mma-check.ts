// One tensor-core (mma.sync) CUDA backward case on the CPU (test/cuda/backward-mma-emu.ts): 16-bit
// q k v out dout and the f32 lse (and, asked, a random dlse) go in, dq dk dv and the param/tensor gradient slots come out,
// each compared with the float64 gradient reference (reference-grad.ts). Shared by
// backward-mma-emu.test.ts (stdlib masks), backward-mma-emu-property.test.ts (random programs)
// and the fuzz campaign's `bwd-emu` target.
import { compileCudaBackwardMma } from '../../src/backward.js';
import { bf16Bits, bf16Value } from '../../src/quant/floats.js';
import { fromF16, toF16 } from '../../src/runtime/f16.js';
import { rng } from '../../src/runtime/inputs.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { makeInputs } from '../support/arbitraries.js';
import type { Inputs, Shape } from '../support/arbitraries.js';
import { emulateMmaBackward } from '../cuda/backward-mma-emu.js';
import type { MmaBackwardResult } from '../cuda/backward-mma-emu.js';
import type { CudaBackwardMmaArtifact } from '../../src/codegen/cuda/backward-mma.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { gradientErrors } from './grad-errors.js';
import { drawDlse, evalEnv, f32TensorLengths, gradPredicates } from './support.js';

export type HalfDType = 'bf16' | 'f16';

/**
 * bf16/f16 P and dS feed the tensor cores: each gradient's error relative to its largest entry
 * stays within this (backward-mma-emu.test.ts's stdlib cases).
 */
export const MMA_GRAD_TOL = 1e-2;

/** 16-bit storage of `x` (inputs here are multiples of 1/128 in [-1, 1]: exact in both). */
const store = (dtype: HalfDType, x: ArrayLike<number>): Uint16Array =>
  dtype === 'f16' ? toF16(x) : Uint16Array.from(Array.from(x, bf16Bits));
const load = (dtype: HalfDType, x: Uint16Array): Float32Array =>
  dtype === 'f16' ? fromF16(x) : Float32Array.from(x, bf16Value);

export interface MmaCheckOptions {
  readonly dtype?: HalfDType;
  readonly params?: Record<string, number>;
  readonly tensors?: Partial<Inputs['tensors']>;
  /** dq by bwd_dq (no atomics) and the ordered param reduction (backward-mma-dq.ts). */
  readonly deterministic?: boolean;
  /** sm_80 unless given (the emulator runs mma.sync whatever the arch). */
  readonly arch?: 'sm_80' | 'sm_86' | 'sm_89';
  /** A random gradient into lse as well (Args.dlse; else null). */
  readonly dlse?: boolean;
  /** Schedule overrides (e.g. patchTweaks 'backward': the dK/dV kernel in patch order). */
  readonly schedule?: Partial<Schedule>;
}

/** The artifact of `source` in the asked mode, checked to be that mode. */
function compileFor(
  source: string,
  sh: Shape,
  dtype: HalfDType,
  opts: MmaCheckOptions,
): ReturnType<typeof compileCudaBackwardMma> {
  const c = compileCudaBackwardMma(source, {
    file: 'bwd.attn',
    headDim: sh.D,
    valueDim: sh.Dv,
    dtype,
    ...(opts.arch ? { arch: opts.arch } : {}),
    ...(opts.deterministic ? { deterministic: true } : {}),
    ...(opts.schedule ? { schedule: opts.schedule } : {}),
  });
  // The stdlib test's deterministic cases once passed the option nowhere and ran the atomic dq.
  if (c.backward.deterministic !== (opts.deterministic === true))
    throw new Error(`checkMmaBackward: asked deterministic ${opts.deterministic}, got the other mode`);
  return c;
}

/** Relative error of each gradient (floor: the largest reference magnitude, at least 1e-3). */
export async function checkMmaBackward(
  source: string,
  sh: Shape,
  seed: number,
  opts: MmaCheckOptions = {},
): Promise<Record<string, number>> {
  const dtype = opts.dtype ?? 'bf16';
  const c = compileFor(source, sh, dtype, opts);
  const params = { ...(Object.fromEntries(c.decl.defaults) as Record<string, number>), ...opts.params };
  const made = makeInputs(sh, seed);
  const inputs = { ...made, tensors: { ...made.tensors, ...opts.tensors } } as Inputs;
  const env = evalEnv(c.decl.decl, params, sh, inputs);
  const r = rng(seed ^ 0x51ed27);
  const dout = Float32Array.from(
    { length: sh.B * sh.Hq * sh.Nq * sh.Dv },
    () => (Math.floor(r() * 257) - 128) / 128,
  );
  const dlse = drawDlse(opts.dlse, sh, r);
  const lengths = f32TensorLengths(c.decl.decl, env);
  const ref = referenceGradients(
    { ...sh, q: inputs.q, k: inputs.k, v: inputs.v },
    gradPredicates(c.decl.decl, env),
    dout,
    lengths,
    dlse,
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
      q: store(dtype, inputs.q),
      k: store(dtype, inputs.k),
      v: store(dtype, inputs.v),
      out: store(dtype, ref.out),
      dout: store(dtype, dout),
    },
    lse: Float32Array.from(ref.lse),
    ...(dlse ? { dlse } : {}),
    tensors: Object.fromEntries(c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc'].data])),
    params,
    slots,
  });
  return compareGradients(c.backward, dtype, got, ref, lengths);
}

/** Each gradient of the emulated run against the reference's (gradientErrors' floors). */
function compareGradients(
  art: CudaBackwardMmaArtifact,
  dtype: HalfDType,
  got: MmaBackwardResult,
  ref: ReturnType<typeof referenceGradients>,
  lengths: Record<string, number>,
): Record<string, number> {
  const { errors, cmp } = gradientErrors();
  cmp('dq', load(dtype, got.dq), ref.dq);
  cmp('dk', load(dtype, got.dk), ref.dk);
  cmp('dv', load(dtype, got.dv), ref.dv);
  art.gradParams.forEach((p, i) =>
    cmp(`d$${p}`, [got.grads[i]!], [ref.dParams.get(p) ?? 0], ref.dParamsScale.get(p)),
  );
  let at = art.gradParams.length;
  for (const t of art.gradTensors) {
    const n = lengths[t]!;
    cmp(`d${t}`, got.grads.subarray(at, (at += n)), ref.dTensors.get(t)!, ref.dTensorsScale.get(t));
  }
  return errors;
}
