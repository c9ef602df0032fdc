// Runs WGSL artifacts on WebGPU (the device comes from device.ts: Dawn in Node, navigator.gpu in
// browsers). Pipelines are created once per kernel; buffers per run, freed after it.
import type { Artifact, Binding, DecodeVariant } from '../codegen/artifact.js';
import { checkWgslSchedule } from '../codegen/wgsl/limits.js';
import { deviceLimits } from './device.js';
import type { CompiledModule, RunContext } from './webgpu-run.js';
import { launchOnce } from './webgpu-run.js';
import { describeValue } from './params.js';
import { misspeltKey } from '../misspelt.js';
import { strayInputIssues } from './stray-inputs.js';
import { InputError, type RunInputs } from './validate.js';

export { deviceLimits, getDevice } from './device.js';
export type { RunInputs } from './validate.js';

export interface RunResult {
  /** [B, H, Nq, Dv] (f16 kernels: converted to f32). */
  out: Float32Array;
  /** [B, H, Nq], natural log; −inf for rows with no allowed key. */
  lse?: Float32Array;
  /** GPU time of all passes from timestamp queries; else wall time from submit to mapped results. */
  gpuMs?: number;
  /**
   * Kernels compiled with `importance`: [B, H, Nk], per key Σ over query rows of its softmax
   * weight ('sum'), or that divided by the number of rows whose mask allows it ('normalized').
   */
  importance?: Float32Array;
  /** Routing kernels: the selected block ids, [B, H, Nq, K] ascending, padded with −1. */
  indices?: Int32Array;
  /** Debug runs only: each summary buffer ([blocks, 2] min/max pairs), by tensor name. */
  summaries?: Record<string, Int32Array | Float32Array>;
  /** Set when the run took decode mode (artifact.decode): the number of KV splits. */
  decodeSplits?: number;
}

export interface KernelOptions {
  /** Poison outputs and summaries (NaN / garbage) before each run and return the summaries, so
   * tests catch anything the kernel fails to write. */
  readonly debug?: boolean;
  /**
   * Decode mode (split-KV + lse merge, for artifacts that carry `decode`): 'auto' (default) takes
   * it when Nq ≤ decode.maxNq and the KV spans at least two splits and the scratch fits the
   * device; 'always' whenever the artifact has it; 'never' runs the main entry points only.
   */
  readonly decode?: 'auto' | 'always' | 'never';
}

export interface GpuKernel {
  run(inputs: RunInputs): Promise<RunResult>;
  destroy(): void;
}

// GPUShaderStage.COMPUTE, spelled out so a device made elsewhere works without the globals that
// the `webgpu` package installs (the buffer usage bits: webgpu-launch.ts).
const COMPUTE_STAGE = 0x4;

/** A WGSL compile error with the offending shader line under it. */
function formatCompileErrors(artifact: Artifact, messages: readonly GPUCompilationMessage[]): string {
  const lines = artifact.code.split('\n');
  const parts = messages.map((m) => {
    const src = lines[m.lineNum - 1] ?? '';
    const gutter = String(m.lineNum).length;
    const caret = ' '.repeat(Math.max(0, m.linePos - 1)) + '^'.repeat(Math.max(1, Math.min(m.length, 80)));
    return `${m.lineNum}:${m.linePos}: ${m.message}\n  ${m.lineNum} | ${src}\n  ${' '.repeat(gutter)} | ${caret}`;
  });
  return `WGSL of kernel "${artifact.name}" does not compile:\n${parts.join('\n')}`;
}

function bufferType(b: Binding): GPUBufferBindingType {
  if (b.role === 'uniforms') return 'uniform';
  return b.access === 'read' ? 'read-only-storage' : 'storage';
}

/**
 * createKernel's arguments from JS callers: a TypeError naming the one that is wrong, instead of
 * "Cannot read properties of null" from inside. Passing compile()'s whole result for its
 * `.artifact` is the likely slip.
 */
function checkKernelArguments(device: unknown, artifact: unknown): void {
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (!isObject(device) || typeof device.createBuffer !== 'function')
    throw new TypeError(
      `createKernel(device, artifact): device must be a GPUDevice (getDevice()), got ${describeValue(device)}`,
    );
  if (!isObject(artifact) || typeof artifact.target !== 'string') {
    const hint = isObject(artifact) && isObject(artifact.artifact) ? ': pass compile(...).artifact' : '';
    throw new TypeError(
      `createKernel(device, artifact): artifact must be an Artifact from compile()${hint}, got ${describeValue(artifact)}`,
    );
  }
}

const DECODE_MODES = ['auto', 'always', 'never'];

/**
 * createKernel's options: a value outside its kind ran as the default (decode: 'nope' as 'auto'),
 * and a misspelt key was dropped. Other keys pass, as misspelt.ts's rule says.
 */
function checkKernelOptions(options: unknown): void {
  const where = 'createKernel(device, artifact, options)';
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(
      `${where}: options must be an object { debug?, decode? }, got ${describeValue(options)}`,
    );
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    const meant = misspeltKey(key, ['debug', 'decode']);
    if (meant !== undefined && meant !== key)
      throw new TypeError(`${where}: unknown option "${key}"; did you mean "${meant}"?`);
  }
  if (o.decode !== undefined && !DECODE_MODES.includes(o.decode as string))
    throw new TypeError(
      `${where}: decode must be "auto", "always" or "never", got ${describeValue(o.decode)}`,
    );
  if (o.debug !== undefined && typeof o.debug !== 'boolean')
    throw new TypeError(`${where}: debug must be true or false, got ${describeValue(o.debug)}`);
}

/** createKernel's arguments and options, the target, the schedule against the device's limits. */
function checkKernelCreation(device: GPUDevice, artifact: Artifact, options: KernelOptions): void {
  checkKernelArguments(device, artifact);
  checkKernelOptions(options);
  if (artifact.target !== 'wgsl')
    throw new Error(`createKernel: artifact "${artifact.name}" targets ${artifact.target}, not wgsl`);
  checkWgslSchedule(artifact.schedule, deviceLimits(device));
  const storageCount = artifact.bindings.filter((b) => b.role !== 'uniforms').length;
  if (storageCount > device.limits.maxStorageBuffersPerShaderStage) {
    throw new Error(
      `kernel "${artifact.name}" binds ${storageCount} storage buffers; the device allows ${device.limits.maxStorageBuffersPerShaderStage}`,
    );
  }
}

/** run()'s argument: an object of inputs, none of them unknown to the kernel. */
function checkRunInputs(artifact: Artifact, inputs: RunInputs): void {
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs))
    throw new InputError([
      `run(inputs): expected an object { q, k, v, B, H, Hkv, Nq, Nk, ... }, got ${describeValue(inputs)}`,
    ]);
  const stray = strayInputIssues(artifact, inputs);
  if (stray.length) throw new InputError(stray);
}

/** Compiles `artifact`'s pipelines once; each run() allocates its buffers and frees them after. */
export async function createKernel(
  device: GPUDevice,
  artifact: Artifact,
  options: KernelOptions = {},
): Promise<GpuKernel> {
  checkKernelCreation(device, artifact, options);

  const main = await compileModule(device, artifact);
  // The decode module is compiled on its first use (most kernels never run in decode mode).
  let decodeModule: Promise<CompiledModule> | undefined;
  const ctx: RunContext = {
    device,
    kernelName: artifact.name,
    debug: !!options.debug,
    timestamps: device.features.has('timestamp-query'),
  };
  let destroyed = false;

  async function run(inputs: RunInputs): Promise<RunResult> {
    if (destroyed) throw new Error(`kernel "${artifact.name}" was destroyed`);
    checkRunInputs(artifact, inputs);
    const decode = artifact.decode;
    const decodeSplits = decode && chooseDecode(device, decode, inputs, options.decode ?? 'auto');
    if (decode && decodeSplits) decodeModule ??= compileModule(device, decode.artifact);
    const art = decode && decodeSplits ? decode.artifact : artifact;
    const compiled = decode && decodeSplits ? await decodeModule! : main;
    return launchOnce(ctx, art, compiled, inputs, decodeSplits);
  }

  return {
    run,
    destroy() {
      destroyed = true;
    },
  };
}

/** Compiles one WGSL module and a pipeline per entry point, all under one bind group layout. */
async function compileModule(device: GPUDevice, artifact: Artifact): Promise<CompiledModule> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: artifact.code, label: artifact.name });
  const info = await module.getCompilationInfo();
  const moduleError = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) throw new Error(formatCompileErrors(artifact, errors));
  if (moduleError) throw new Error(`WGSL of kernel "${artifact.name}": ${moduleError.message}`);

  // One explicit layout for all entry points, so a single bind group serves every pass.
  const bindGroupLayout = device.createBindGroupLayout({
    label: artifact.name,
    entries: artifact.bindings.map((b) => ({
      binding: b.index,
      visibility: COMPUTE_STAGE,
      buffer: { type: bufferType(b) },
    })),
  });
  const layout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] });
  // An entry point may be launched several times (token selection's radix rounds): one pipeline
  // per name.
  const byName = new Map<string, Promise<GPUComputePipeline>>();
  const pipelines = await Promise.all(
    artifact.entryPoints.map(async (ep) => {
      try {
        const hit = byName.get(ep.name);
        if (hit) return await hit;
        const made = device.createComputePipelineAsync({
          label: `${artifact.name}.${ep.name}`,
          layout,
          compute: { module, entryPoint: ep.name },
        });
        byName.set(ep.name, made);
        return await made;
      } catch (e) {
        throw new Error(`kernel "${artifact.name}", entry point ${ep.name}: ${(e as Error).message}`);
      }
    }),
  );
  return { bindGroupLayout, pipelines };
}

/**
 * The KV split count when this run should take decode mode, else 0. Sizes are only read here
 * (validateRun checks them); invalid ones fall through to the main path, which reports them.
 */
function chooseDecode(
  device: GPUDevice,
  decode: DecodeVariant,
  inputs: RunInputs,
  mode: 'auto' | 'always' | 'never',
): number {
  const { Nq, Nk, B, H, Hkv } = inputs;
  if (mode === 'never' || ![Nq, Nk, B, H, Hkv].every((x) => Number.isSafeInteger(x) && x >= 0)) return 0;
  if (Hkv === 0 || H % Hkv !== 0) return 0;
  const splits = Math.ceil(Nk / decode.splitKeys);
  const storage = decode.artifact.bindings.filter((b) => b.role !== 'uniforms').length;
  if (storage > device.limits.maxStorageBuffersPerShaderStage) {
    if (mode === 'auto') return 0;
    throw new Error(
      `decode mode of kernel "${decode.artifact.name}" binds ${storage} storage buffers; the device allows ${device.limits.maxStorageBuffersPerShaderStage}`,
    );
  }
  if (mode === 'always') return Math.max(splits, 1);
  if (Nq > decode.maxNq || splits < 2) return 0;
  const s = decode.artifact.schedule;
  const rowTiles = Math.ceil(((H / Hkv) * Nq) / s.blockQ);
  const scratchBytes = 4 * B * Hkv * rowTiles * splits * s.blockQ * (s.valueDim + 2);
  return scratchBytes <= device.limits.maxStorageBufferBindingSize ? splits : 0;
}
