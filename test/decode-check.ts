// Shared by the decode tests: compile a program for WGSL, run it in decode mode (split-KV + lse
// merge) on WebGPU and compare with the dense float64 reference.
import { renderedCoopDecodeTuning, retuneCoopDecode } from '../src/codegen/wgsl/decode-coop.js';
import type { CoopDecodeTuning } from '../src/codegen/wgsl/decode-coop-tuning.js';
import { compile } from '../src/compile.js';
import type { Artifact } from '../src/codegen/artifact.js';
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
  /** WGSL engine: 'coop' runs the coop engine's split-KV module (codegen/wgsl/decode-coop*.ts). */
  readonly engine?: 'row' | 'coop';
  /** Coop engine: knobs of its decode module other than the defaults (small splits: many of them). */
  readonly coopTuning?: Partial<CoopDecodeTuning>;
  /** Coop engine: false keeps subgroup operations out (lane sums through workgroup memory only). */
  readonly subgroups?: boolean;
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
    schedule: {
      blockQ: tile,
      threads: c.engine === 'coop' ? 2 * tile : tile,
      blockK: c.blockK ?? tile,
      ...(c.subgroups === false ? { subgroups: false } : {}),
    },
    ...(c.engine ? { wgslEngine: c.engine } : {}),
  });
  const artifact = c.coopTuning ? retuned(compiled.artifact, c.coopTuning) : compiled.artifact;
  const inputs = makeInputs(shape, c.seed ?? 1, { magnitude: c.magnitude ?? 1 });
  const params = { ...Object.fromEntries(compiled.decl.defaults), ...c.params };
  const gpu = await createKernel(device, artifact, { decode: c.mode ?? 'always', debug: true });
  const f16 = c.dtype === 'f16';
  // f16 runs: the reference sees the f16-rounded inputs.
  const store = (x: Float32Array): Float32Array | Uint16Array => (f16 ? toF16(x) : x);
  try {
    const { res, ref } = await runDense(gpu, compiled, shape, inputs, params, store);
    const tuning = c.coopTuning ? ` tuning ${JSON.stringify(c.coopTuning)}` : '';
    const where = `\n${c.source}\nshape ${JSON.stringify(shape)} seed ${c.seed ?? 1} tile ${tile} mode ${c.mode ?? 'always'}${tuning}`;
    expectAgreement(res, ref, where, c.tolerance ?? (f16 ? 2e-3 : 1e-5));
    return res;
  } finally {
    gpu.destroy();
  }
}

function retuned(artifact: Artifact, tuning: Partial<CoopDecodeTuning>): Artifact {
  // All-empty kernels have no decode variant and stay on the row engine: nothing to re-tune.
  if (!artifact.decode || artifact.schedule.wgslEngine !== 'coop') return artifact;
  // Over the module's own knobs: wide code loads (the default over quantized caches) keep their lanes.
  const full = { ...renderedCoopDecodeTuning(artifact.decode), ...tuning };
  return { ...artifact, decode: retuneCoopDecode(artifact.decode, full) };
}
