// Shared by the decode tests: compile a program for WGSL, run it in decode mode (split-KV + lse
// merge) on WebGPU and compare with the dense float64 reference.
import { compile } from '../src/compile.js';
import { toF16 } from '../src/runtime/f16.js';
import { createKernel, deviceLimits, getDevice, type RunResult } from '../src/runtime/webgpu.js';
import { makeInputs, type Shape } from './support/arbitraries.js';
import { expectAgreement, runDense } from './support/oracle-cases.js';

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
  /** WGSL engine of the main module (decode mode runs the row engine's split-KV module either way). */
  readonly engine?: 'row' | 'coop';
}

/** Runs `c` and checks out/lse against the reference; returns the run for further assertions. */
export async function checkDecode(c: DecodeCase): Promise<RunResult> {
  const device = await getDevice();
  const { shape } = c;
  const tile = c.tile ?? 16;
  const compiled = compile(c.source, {
    target: 'wgsl',
    file: 'decode.attn',
    headDim: shape.D,
    valueDim: shape.Dv,
    limits: deviceLimits(device),
    ...(c.dtype ? { dtype: c.dtype } : {}),
    schedule: { blockQ: tile, threads: c.engine === 'coop' ? 2 * tile : tile, blockK: c.blockK ?? tile },
    ...(c.engine ? { wgslEngine: c.engine } : {}),
  });
  const inputs = makeInputs(shape, c.seed ?? 1, { magnitude: c.magnitude ?? 1 });
  const params = { ...Object.fromEntries(compiled.decl.defaults), ...c.params };
  const gpu = await createKernel(device, compiled.artifact, { decode: c.mode ?? 'always', debug: true });
  const f16 = c.dtype === 'f16';
  // f16 runs: the reference sees the f16-rounded inputs.
  const store = (x: Float32Array): Float32Array | Uint16Array => (f16 ? toF16(x) : x);
  try {
    const { res, ref } = await runDense(gpu, compiled, shape, inputs, params, store);
    const where = `\n${c.source}\nshape ${JSON.stringify(shape)} seed ${c.seed ?? 1} tile ${tile} mode ${c.mode ?? 'always'}`;
    expectAgreement(res, ref, where, c.tolerance ?? (f16 ? 2e-3 : 1e-5));
    return res;
  } finally {
    gpu.destroy();
  }
}
