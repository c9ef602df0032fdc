/// <reference types="@webgpu/types" preserve="true" />
// Runs WGSL artifacts on WebGPU (the device comes from device.ts: Dawn in Node, navigator.gpu in
// browsers). Pipelines are created once per kernel; buffers per run, freed after it.
import type { Artifact, Binding, DecodeVariant } from '../codegen/artifact.js';
import { checkWgslSchedule } from '../codegen/wgsl/limits.js';
import { deviceLimits } from './device.js';
import { fromF16 } from './f16.js';
import { evalShapeExpr, type ShapeEnv } from './shape-expr.js';
import { packUniforms, uniformBytes } from './uniforms.js';
import { isWritten, storeOutput } from './webgpu-outputs.js';
import { describeValue } from './params.js';
import { strayInputIssues } from './stray-inputs.js';
import { bindingData, InputError, validateRun, type RunInputs } from './validate.js';

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

// GPUBufferUsage / GPUShaderStage bits, spelled out so a device made elsewhere works without the
// globals that the `webgpu` package installs.
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;
const QUERY_RESOLVE = 0x200;
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

const elementBytes = (b: Binding): number => (b.dtype === 'f16' || b.dtype === 'bf16' ? 2 : 4);
/** Buffer sizes are multiples of 4 (copy alignment) and never 0 (bindings must be non-empty). */
const paddedBytes = (bytes: number): number => Math.max(16, Math.ceil(bytes / 4) * 4);

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

/** Compiles `artifact`'s pipelines once; each run() allocates its buffers and frees them after. */
export async function createKernel(
  device: GPUDevice,
  artifact: Artifact,
  options: KernelOptions = {},
): Promise<GpuKernel> {
  checkKernelArguments(device, artifact);
  if (artifact.target !== 'wgsl')
    throw new Error(`createKernel: artifact "${artifact.name}" targets ${artifact.target}, not wgsl`);
  checkWgslSchedule(artifact.schedule, deviceLimits(device));
  const storageCount = artifact.bindings.filter((b) => b.role !== 'uniforms').length;
  if (storageCount > device.limits.maxStorageBuffersPerShaderStage) {
    throw new Error(
      `kernel "${artifact.name}" binds ${storageCount} storage buffers; the device allows ${device.limits.maxStorageBuffersPerShaderStage}`,
    );
  }

  const main = await compileModule(device, artifact);
  // The decode module is compiled on its first use (most kernels never run in decode mode).
  let decodeModule: Promise<CompiledModule> | undefined;
  const timestamps = device.features.has('timestamp-query');
  let destroyed = false;

  async function run(inputs: RunInputs): Promise<RunResult> {
    if (destroyed) throw new Error(`kernel "${artifact.name}" was destroyed`);
    if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs))
      throw new InputError([
        `run(inputs): expected an object { q, k, v, B, H, Hkv, Nq, Nk, ... }, got ${describeValue(inputs)}`,
      ]);
    const stray = strayInputIssues(artifact, inputs);
    if (stray.length) throw new InputError(stray);
    const decode = artifact.decode;
    const decodeSplits = decode && chooseDecode(device, decode, inputs, options.decode ?? 'auto');
    if (decode && decodeSplits) decodeModule ??= compileModule(device, decode.artifact);
    const art = decode && decodeSplits ? decode.artifact : artifact;
    const { bindGroupLayout, pipelines } = decode && decodeSplits ? await decodeModule! : main;
    const r = validateRun(art, inputs);
    const grids = launchGrids(device, art, r.env);
    const owned: GPUBuffer[] = [];
    const make = (label: string, size: number, usage: number): GPUBuffer => {
      const buf = device.createBuffer({ label, size, usage });
      owned.push(buf);
      return buf;
    };
    let scopes = 0;
    try {
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      scopes = 2;
      const buffers = new Map<string, GPUBuffer>();
      const readbacks: { name: string; src: GPUBuffer; dst: GPUBuffer; binding: Binding; n: number }[] = [];
      for (const b of art.bindings) {
        if (b.role === 'uniforms') {
          const u = make('uniforms', uniformBytes(art), UNIFORM | COPY_DST);
          device.queue.writeBuffer(u, 0, packUniforms(art, r));
          buffers.set(b.name, u);
          continue;
        }
        const n = r.shapes.get(b.name)!.reduce((x, y) => x * y, 1);
        const size = paddedBytes(n * elementBytes(b));
        if (size > device.limits.maxStorageBufferBindingSize) {
          throw new InputError([
            `buffer "${b.name}" needs ${size} bytes; the device binds at most ${device.limits.maxStorageBufferBindingSize}`,
          ]);
        }
        const written = isWritten(b);
        const buf = make(b.name, size, STORAGE | COPY_DST | (written ? COPY_SRC : 0));
        buffers.set(b.name, buf);
        if (!written) {
          upload(device, buf, bindingData(b, inputs) as ArrayBufferView, size);
        } else {
          if (options.debug) poison(device, buf, b, size);
          const internal = b.role === 'summary' || b.role === 'scratch';
          if (b.role !== 'scratch' && (!internal || options.debug)) {
            readbacks.push({
              name: b.name,
              src: buf,
              binding: b,
              n,
              dst: make(`${b.name}.read`, size, MAP_READ | COPY_DST),
            });
          }
        }
      }
      const bindGroup = device.createBindGroup({
        layout: bindGroupLayout,
        entries: art.bindings.map((b) => ({
          binding: b.index,
          resource: { buffer: buffers.get(b.name)! },
        })),
      });

      const encoder = device.createCommandEncoder({ label: artifact.name });
      const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
      const pass = encoder.beginComputePass(
        querySet
          ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }
          : {},
      );
      // Dispatches in one pass are ordered, and storage writes of one are visible to the next:
      // summaries are complete before attention reads them.
      art.entryPoints.forEach((_, i) => {
        const grid = grids[i]!;
        if (grid.some((g) => g === 0)) return;
        pass.setPipeline(pipelines[i]!);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(...grid);
      });
      pass.end();
      let stamps: GPUBuffer | undefined;
      if (querySet) {
        const resolved = make('timestamps', 16, QUERY_RESOLVE | COPY_SRC);
        stamps = make('timestamps.read', 16, MAP_READ | COPY_DST);
        encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
        encoder.copyBufferToBuffer(resolved, 0, stamps, 0, 16);
      }
      for (const rb of readbacks) encoder.copyBufferToBuffer(rb.src, 0, rb.dst, 0, rb.src.size);
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      scopes = 0;
      const oom = await device.popErrorScope();
      const invalid = await device.popErrorScope();
      if (oom || invalid) throw new Error(`kernel "${artifact.name}": ${(invalid ?? oom)!.message}`);
      await Promise.all([...readbacks.map((rb) => rb.dst.mapAsync(1)), stamps?.mapAsync(1)]);
      const wallMs = performance.now() - t0;
      querySet?.destroy();

      const result: RunResult = { out: new Float32Array(0), ...(decodeSplits ? { decodeSplits } : {}) };
      for (const rb of readbacks) {
        const bytes = rb.dst.getMappedRange().slice(0, rb.n * elementBytes(rb.binding));
        const data =
          rb.binding.dtype === 'f16'
            ? fromF16(new Uint16Array(bytes))
            : rb.binding.dtype === 'i32'
              ? new Int32Array(bytes)
              : new Float32Array(bytes);
        storeOutput(result, rb.binding, data);
      }
      result.gpuMs = wallMs;
      if (stamps) {
        const [begin, end] = new BigInt64Array(stamps.getMappedRange());
        const ns = Number(end! - begin!);
        if (ns > 0) result.gpuMs = ns / 1e6;
      }
      return result;
    } finally {
      // A throw while encoding leaves our error scopes open; close them so later calls are unaffected.
      for (; scopes > 0; scopes--) void device.popErrorScope();
      for (const b of owned) b.destroy();
    }
  }

  return {
    run,
    destroy() {
      destroyed = true;
    },
  };
}

/** Each entry point's workgroup grid; sizes past the device's per-dimension limit are bad inputs. */
function launchGrids(device: GPUDevice, artifact: Artifact, env: ShapeEnv): [number, number, number][] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const grids = artifact.entryPoints.map(
    (ep) => ep.grid.map((g) => evalShapeExpr(g, env)) as [number, number, number],
  );
  const issues = grids.flatMap((grid, i) =>
    grid.some((g) => g > max)
      ? [
          `${artifact.entryPoints[i]!.name}: grid [${grid.join(', ')}] exceeds ${max} workgroups per dimension`,
        ]
      : [],
  );
  if (issues.length) throw new InputError(issues);
  return grids;
}

interface CompiledModule {
  readonly bindGroupLayout: GPUBindGroupLayout;
  readonly pipelines: readonly GPUComputePipeline[];
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

function upload(device: GPUDevice, buf: GPUBuffer, data: ArrayBufferView, size: number): void {
  // writeBuffer needs a multiple of 4 bytes: odd-length f16 data goes through a padded copy.
  if (data.byteLength % 4 === 0) {
    if (data.byteLength > 0) device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return;
  }
  const padded = new Uint8Array(size);
  padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  device.queue.writeBuffer(buf, 0, padded);
}

/** Fills an output with NaN (floats) or a sentinel (ints) so unwritten elements show. */
function poison(device: GPUDevice, buf: GPUBuffer, b: Binding, size: number): void {
  const words = new Uint32Array(size / 4);
  words.fill(b.dtype === 'f16' ? 0x7e007e00 : b.dtype === 'i32' ? 0x5eadbeef : 0x7fc00000);
  device.queue.writeBuffer(buf, 0, words);
}
