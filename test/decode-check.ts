// Shared by the decode tests: compile a program for WGSL, run it in decode mode (split-KV + lse
// merge) on WebGPU and compare with the dense float64 reference.
import { expect } from 'vitest';
import { compile } from '../src/compile.js';
import { declPredicates } from '../src/runtime/ast-eval.js';
import { compareArrays } from '../src/runtime/compare.js';
import { toF16 } from '../src/runtime/f16.js';
import { referenceAttention } from '../src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice, type RunResult } from '../src/runtime/webgpu.js';
import { makeInputs, type Shape } from './support/arbitraries.js';

export interface DecodeCase {
  readonly source: string;
  readonly shape: Shape;
  readonly seed?: number;
  readonly magnitude?: number;
  /** blockQ = threads = blockK = tile (small tiles give several splits at small Nk). */
  readonly tile?: number;
  readonly blockK?: number;
  readonly dtype?: 'f32' | 'f16';
  readonly mode?: 'auto' | 'always' | 'never';
  readonly params?: Record<string, number>;
  readonly tolerance?: number;
}

/** Runs `c` and checks out/lse against the reference; returns the run for further assertions. */
export async function checkDecode(c: DecodeCase): Promise<RunResult> {
  const device = await getDevice();
  const { shape } = c;
  const tile = c.tile ?? 16;
  const { artifact, kernel, decl } = compile(c.source, {
    target: 'wgsl',
    file: 'decode.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    ...(c.dtype ? { dtype: c.dtype } : {}),
    schedule: { blockQ: tile, threads: tile, blockK: c.blockK ?? tile },
  });
  const inputs = makeInputs(shape, c.seed ?? 1, { magnitude: c.magnitude ?? 1 });
  const params = { ...Object.fromEntries(decl.defaults), ...c.params };
  const tensors = Object.fromEntries(kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc']]));
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
  const gpu = await createKernel(device, artifact, { decode: c.mode ?? 'always', debug: true });
  const f16 = c.dtype === 'f16';
  // f16 runs: the reference sees the f16-rounded inputs.
  const store = (x: Float32Array): Float32Array | Uint16Array => (f16 ? toF16(x) : x);
  try {
    const res = await gpu.run({
      q: store(inputs.q),
      k: store(inputs.k),
      v: store(inputs.v),
      ...sizes,
      tensors: Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.data])),
      params,
      ...(shape.qOffset !== undefined ? { qOffset: shape.qOffset } : {}),
      ...(shape.kOffset !== undefined ? { kOffset: shape.kOffset } : {}),
    });
    const pred = declPredicates(decl.decl, { params, tensors, sizes: { ...sizes, D: shape.D } });
    const ref = referenceAttention(
      {
        ...inputs,
        ...sizes,
        Hq: shape.Hq,
        D: shape.D,
        Dv: shape.Dv,
        qOffset: shape.qOffset,
        kOffset: shape.kOffset,
      },
      pred,
    );
    const where = `\n${c.source}\nshape ${JSON.stringify(shape)} seed ${c.seed ?? 1} tile ${tile} mode ${c.mode ?? 'always'}`;
    const out = compareArrays(res.out, ref.out);
    const lse = compareArrays(res.lse!, ref.lse, 1);
    const tol = c.tolerance ?? (f16 ? 2e-3 : 1e-5);
    expect(out.nanCount, `NaN in out${where}`).toBe(0);
    expect(out.relError, `out${where}`).toBeLessThanOrEqual(tol);
    expect(lse.relError, `lse${where}`).toBeLessThanOrEqual(tol);
    return res;
  } finally {
    gpu.destroy();
  }
}
