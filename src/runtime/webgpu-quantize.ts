// Runs a WGSL quantize module (codegen/wgsl/quantize.ts) on a WebGPU device: uploads the source
// rows, the salient marks and the cache's tensors as they are, dispatches the passes in order on
// one compute pass, and reads every cache tensor back. The cache is updated in place on the
// device, so a caller passes the tensors the cache held before the call (docs/LANGUAGE.md,
// "Quantizing a range of rows").
import {
  QUANTIZE_WORKGROUP,
  quantizeBindings,
  quantizeEntries,
  quantizeUniforms,
  wgslQuantizeModule,
  type WgslQuantizeSpec,
} from '../codegen/wgsl/quantize.js';
import { cacheTensors, type CacheSizes, type QuantCache, type StoredFloats } from '../quant/layout.js';
import { rewrittenRows } from '../quant/range.js';
import { pagedCacheTensors, type QuantPages } from './kv-quant-pages.js';
import { blockTableProblem } from './kv-rows.js';

export interface QuantizeCall {
  /** [B, Hkv, Nk, D] source rows: f32 values, or f16 bits when the spec's input is f16. */
  readonly x: Float32Array | Uint16Array;
  /** The cache before the call (every tensor of the format's layout). */
  readonly cache: QuantCache;
  readonly sizes: CacheSizes;
  readonly start: number;
  readonly n: number;
  /** Salient marks (flags [B, Hkv, Nk] or indices [B, Hkv, salientN]) when the format has them. */
  readonly salient?: Int32Array;
  readonly salientN?: number;
  /**
   * A paged module (spec.paged): the block table over the pools `cache` holds (each row-indexed
   * tensor [pages, Hkv, P, ·], docs/LANGUAGE.md "Paged quantized caches").
   */
  readonly pages?: QuantPages;
}

/** The cache's tensors as the module binds them: contiguous, or pools checked against the table. */
function boundTensors(spec: WgslQuantizeSpec, call: QuantizeCall) {
  const P = spec.paged?.pageSize;
  if (P === undefined) {
    if (call.pages) throw new Error('quantize: pages given, but the module is for a contiguous cache');
    return cacheTensors(spec.format, call.cache, call.sizes);
  }
  if (!call.pages)
    throw new Error(`quantize: the module is for a paged cache (pages of ${P} rows); pass pages`);
  if (call.pages.pageSize !== P)
    throw new Error(
      `quantize: pages.pageSize = ${call.pages.pageSize}, but the module is for pages of ${P} rows`,
    );
  const { blockTable, maxPages } = call.pages;
  const tableProblem = blockTableProblem(blockTable, P, call.sizes.B, maxPages);
  if (tableProblem !== undefined) throw new Error(`quantize: pages.blockTable: ${tableProblem}`);
  return pagedCacheTensors(spec.format, call.cache, call.sizes, call.pages);
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Quantizes rows [start, start + n) of `call.cache` on `device`; returns the cache after the call. */
export async function runWgslQuantize(
  device: GPUDevice,
  spec: WgslQuantizeSpec,
  call: QuantizeCall,
): Promise<QuantCache> {
  const tensors = checkedTensors(device, spec, call);
  const buffers = uploadBuffers(device, spec, call, tensors);
  const encoder = encodePasses(device, spec, buffers, call.sizes);
  const out = await readBack(device, encoder, tensors, buffers);
  for (const b of buffers.values()) b.destroy();
  return out;
}

/** The module's passes, in order, on one compute pass over the bound buffers (not submitted). */
function encodePasses(
  device: GPUDevice,
  spec: WgslQuantizeSpec,
  buffers: ReadonlyMap<string, GPUBuffer>,
  s: CacheSizes,
): GPUCommandEncoder {
  const module = device.createShaderModule({ code: wgslQuantizeModule(spec) });
  const layout = device.createBindGroupLayout({
    entries: quantizeBindings(spec).map((b) => ({
      binding: b.index,
      visibility: 0x4, // COMPUTE
      buffer: {
        type: b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage',
      },
    })),
  });
  const group = device.createBindGroup({
    layout,
    entries: quantizeBindings(spec).map((b) => ({
      binding: b.index,
      resource: { buffer: buffers.get(b.name)! },
    })),
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const workgroups = Math.min(
    65535,
    Math.max(1, Math.ceil((s.B * s.Hkv * Math.max(s.Nk, 1) * 4) / QUANTIZE_WORKGROUP)),
  );
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setBindGroup(0, group);
  for (const entryPoint of quantizeEntries(spec)) {
    pass.setPipeline(
      device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint } }),
    );
    pass.dispatchWorkgroups(workgroups);
  }
  pass.end();
  return encoder;
}

type BoundTensor = ReturnType<typeof boundTensors>[number];

/** The call checked against the module and the device; the cache tensors it binds, by name. */
function checkedTensors(
  device: GPUDevice,
  spec: WgslQuantizeSpec,
  call: QuantizeCall,
): Map<string, BoundTensor> {
  const s = call.sizes;
  if (s.D !== spec.dim) throw new Error(`quantize: sizes.D = ${s.D}, but the module is for D = ${spec.dim}`);
  rewrittenRows(spec.format, s.Nk, call.start, call.n); // throws on a range outside the cache
  const want = s.B * s.Hkv * s.Nk * s.D;
  if (call.x.length !== want) throw new Error(`quantize: x has ${call.x.length} elements, expected ${want}`);
  const salient = spec.format.kind === 'int' && spec.format.salient;
  if (salient && call.salient === undefined)
    throw new Error('quantize: this format has salient tokens; pass salient');
  const tensors = new Map(boundTensors(spec, call).map((t) => [t.name, t]));
  const storage = quantizeBindings(spec).filter((b) => b.access !== 'uniform').length;
  if (storage > device.limits.maxStorageBuffersPerShaderStage)
    throw new Error(
      `quantize: this format's module binds ${storage} storage buffers; the device allows ${device.limits.maxStorageBuffersPerShaderStage} (request a higher maxStorageBuffersPerShaderStage)`,
    );
  return tensors;
}

/** A buffer per binding (sizes padded to 4 bytes, at least 16), filled: uniforms, x, marks, cache. */
function uploadBuffers(
  device: GPUDevice,
  spec: WgslQuantizeSpec,
  call: QuantizeCall,
  tensors: ReadonlyMap<string, BoundTensor>,
): Map<string, GPUBuffer> {
  const buffers = new Map<string, GPUBuffer>();
  const sizeOf = (bytes: number) => Math.max(16, Math.ceil(bytes / 4) * 4);
  const make = (name: string, data: Uint8Array, usage: number): GPUBuffer => {
    const buf = device.createBuffer({ label: `quantize ${name}`, size: sizeOf(data.byteLength), usage });
    const padded = new Uint8Array(buf.size);
    padded.set(data);
    device.queue.writeBuffer(buf, 0, padded);
    buffers.set(name, buf);
    return buf;
  };
  const names = quantizeUniforms(spec);
  const uniforms = new Uint32Array(names.length);
  const values = {
    ...call.sizes,
    start: call.start,
    n: call.n,
    salient_n: call.salientN ?? 0,
    max_pages: call.pages?.maxPages ?? 0,
    pages: call.pages?.pages ?? 0,
  };
  names.forEach((k, i) => (uniforms[i] = values[k]));
  const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST
  for (const b of quantizeBindings(spec)) {
    if (b.name === 'uniforms') make(b.name, bytesOf(uniforms), 0x40 | 0x8);
    else if (b.name === 'x') make(b.name, bytesOf(call.x), STORAGE);
    else if (b.name === 'salient') make(b.name, bytesOf(call.salient!), STORAGE);
    else if (b.name === 'blockTable') make(b.name, bytesOf(call.pages!.blockTable), STORAGE);
    else make(b.name, bytesOf(tensors.get(b.name)!.data), STORAGE);
  }
  return buffers;
}

/** Copies every cache tensor out after the passes, submits, and returns them as the cache. */
async function readBack(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  tensors: ReadonlyMap<string, BoundTensor>,
  buffers: ReadonlyMap<string, GPUBuffer>,
): Promise<QuantCache> {
  const reads = [...tensors.keys()].map((name) => {
    const src = buffers.get(name)!;
    const dst = device.createBuffer({ size: src.size, usage: 0x1 | 0x8 }); // MAP_READ | COPY_DST
    encoder.copyBufferToBuffer(src, 0, dst, 0, src.size);
    return { name, dst };
  });
  device.queue.submit([encoder.finish()]);
  await Promise.all(reads.map((r) => r.dst.mapAsync(1)));
  const out: Record<string, Uint32Array | StoredFloats> = {};
  for (const { name, dst } of reads) {
    const t = tensors.get(name)!;
    const bytes = new Uint8Array(dst.getMappedRange()).slice(0, t.data.byteLength);
    dst.unmap();
    dst.destroy();
    if (t.dtype === 'u32') out[name] = new Uint32Array(bytes.buffer);
    else if (t.dtype === 'f32') out[name] = { dtype: 'f32', data: new Float32Array(bytes.buffer) };
    else out[name] = { dtype: t.dtype, data: new Uint16Array(bytes.buffer) };
  }
  return out as unknown as QuantCache;
}
