// One run's GPU work (webgpu.ts's run()): a buffer per binding, made and filled (uploads, poisoned
// outputs in debug runs, readback copies); one compute pass over the entry points with timestamps
// where the device has them; the mapped readbacks turned into the run's result.
import type { Artifact, Binding } from '../codegen/artifact.js';
import { fromF16 } from './f16.js';
import { packUniforms, uniformBytes } from './uniforms.js';
import { bindingData, InputError, type ResolvedRun, type RunInputs } from './validate.js';
import { isWritten, storeOutput } from './webgpu-outputs.js';
import type { RunResult } from './webgpu.js';

// GPUBufferUsage bits, spelled out so a device made elsewhere works without the globals that the
// `webgpu` package installs.
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;
const QUERY_RESOLVE = 0x200;

const elementBytes = (b: Binding): number => (b.dtype === 'f16' || b.dtype === 'bf16' ? 2 : 4);
/** Buffer sizes are multiples of 4 (copy alignment) and never 0 (bindings must be non-empty). */
const paddedBytes = (bytes: number): number => Math.max(16, Math.ceil(bytes / 4) * 4);

/** Makes a buffer the run owns (run() destroys them all after it, whatever happens). */
export type MakeBuffer = (label: string, size: number, usage: number) => GPUBuffer;

/** An output copied back: the GPU buffer, its mappable copy, its binding and element count. */
export interface Readback {
  readonly name: string;
  readonly src: GPUBuffer;
  readonly dst: GPUBuffer;
  readonly binding: Binding;
  readonly n: number;
}

export interface RunBuffers {
  readonly buffers: ReadonlyMap<string, GPUBuffer>;
  readonly readbacks: readonly Readback[];
}

/** A buffer per binding: the uniforms packed, inputs uploaded, outputs (debug: poisoned) read back. */
export function runBuffers(
  device: GPUDevice,
  art: Artifact,
  r: ResolvedRun,
  inputs: RunInputs,
  debug: boolean,
  make: MakeBuffer,
): RunBuffers {
  const buffers = new Map<string, GPUBuffer>();
  const readbacks: Readback[] = [];
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
      const data = bindingData(b, inputs) as ArrayBufferView;
      // A block table longer than [B, max_pages] (made for a larger batch): rows past B go unread.
      upload(device, buf, b.role === 'block_table' ? (data as Int32Array).subarray(0, n) : data, size);
      continue;
    }
    if (debug) poison(device, buf, b, size);
    const internal = b.role === 'summary' || b.role === 'scratch';
    if (b.role !== 'scratch' && (!internal || debug))
      readbacks.push({
        name: b.name,
        src: buf,
        binding: b,
        n,
        dst: make(`${b.name}.read`, size, MAP_READ | COPY_DST),
      });
  }
  return { buffers, readbacks };
}

/**
 * The run's commands: one compute pass over the entry points (dispatches in one pass are ordered
 * and each sees the storage writes of the ones before: summaries are complete before attention
 * reads them), then the readback copies. `stampsWith`: time the pass (timestamp queries).
 */
export function encodeRun(
  device: GPUDevice,
  art: Artifact,
  label: string,
  module: { readonly bindGroupLayout: GPUBindGroupLayout; readonly pipelines: readonly GPUComputePipeline[] },
  grids: readonly (readonly [number, number, number])[],
  rb: RunBuffers,
  stampsWith: MakeBuffer | undefined,
): { commands: GPUCommandBuffer; querySet?: GPUQuerySet; stamps?: GPUBuffer } {
  const bindGroup = device.createBindGroup({
    layout: module.bindGroupLayout,
    entries: art.bindings.map((b) => ({ binding: b.index, resource: { buffer: rb.buffers.get(b.name)! } })),
  });
  const encoder = device.createCommandEncoder({ label });
  const querySet = stampsWith ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const pass = encoder.beginComputePass(
    querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
  );
  art.entryPoints.forEach((_, i) => {
    const grid = grids[i]!;
    if (grid.some((g) => g === 0)) return;
    pass.setPipeline(module.pipelines[i]!);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...grid);
  });
  pass.end();
  let stamps: GPUBuffer | undefined;
  if (querySet && stampsWith) {
    const resolved = stampsWith('timestamps', 16, QUERY_RESOLVE | COPY_SRC);
    stamps = stampsWith('timestamps.read', 16, MAP_READ | COPY_DST);
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, stamps, 0, 16);
  }
  for (const x of rb.readbacks) encoder.copyBufferToBuffer(x.src, 0, x.dst, 0, x.src.size);
  return { commands: encoder.finish(), ...(querySet ? { querySet } : {}), ...(stamps ? { stamps } : {}) };
}

/** The run's result from its mapped readbacks; GPU time from the timestamps where taken, else wall time. */
export function readResults(
  readbacks: readonly Readback[],
  stamps: GPUBuffer | undefined,
  wallMs: number,
  decodeSplits: number | undefined,
): RunResult {
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
}

/**
 * Host data into `buf` (`size` bytes). writeBuffer needs a multiple of 4 bytes, and Dawn takes no
 * SharedArrayBuffer: odd-length f16 data and shared memory go through a padded copy.
 */
export function upload(device: GPUDevice, buf: GPUBuffer, data: ArrayBufferView, size: number): void {
  if (data.byteLength % 4 === 0 && data.buffer instanceof ArrayBuffer) {
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
