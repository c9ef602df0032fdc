// Runs a WGSL backward module (codegen/wgsl/backward.ts) on a WebGPU device: uploads q k v, the
// forward's out and lse, dO and the kernel's tensors, launches bwd_dq then bwd_dkdv in one compute
// pass, and reads dq dk dv and the param/tensor gradients back. Correctness first: buffers are
// made per call. Bad arguments get an error naming the argument (values: backward-checks.ts).
import type { WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { BackwardBinding } from '../codegen/wgsl/backward-layout.js';
import { backwardInputIssues } from './backward-checks.js';
import { describeValue } from './params.js';
import { upload } from './webgpu-launch.js';

export interface BackwardRunInputs {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The forward's outputs. */
  readonly out: Float32Array;
  readonly lse: Float32Array;
  /** ∂L/∂out, [B, H, Nq, Dv]. */
  readonly dout: Float32Array;
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset?: number;
  readonly kOffset?: number;
  readonly scale?: number;
  readonly params?: Readonly<Record<string, number | boolean>>;
  readonly tensors?: Readonly<Record<string, Int32Array | Float32Array>>;
}

export interface BackwardRunResult {
  readonly dq: Float32Array;
  readonly dk: Float32Array;
  readonly dv: Float32Array;
  /** ∂L/∂p for each f32 param the score reads. */
  readonly dParams: Readonly<Record<string, number>>;
  /** ∂L/∂t for each f32 tensor the score reads. */
  readonly dTensors: Readonly<Record<string, Float32Array>>;
}

const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const MAP_READ = 0x1;
const UNIFORM = 0x40;
const COMPUTE_STAGE = 0x4;

function fail(art: WgslBackwardArtifact, msg: string): never {
  throw new Error(`backward of "${art.name.replace(/_backward$/, '')}": ${msg}`);
}

/** Each binding's element count under the call's sizes and params. */
function lengths(
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  params: Map<string, number>,
): Map<string, number> {
  const env: Record<string, number> = {
    B: inp.B,
    H: inp.H,
    Hkv: inp.Hkv,
    Nq: inp.Nq,
    Nk: inp.Nk,
    D: art.headDim,
    Dv: art.valueDim,
  };
  const dim = (e: string): number => {
    if (/^\d+$/.test(e)) return Number(e);
    const v = env[e] ?? params.get(e);
    if (v === undefined) fail(art, `no value for the dimension ${e}`);
    return v;
  };
  const count = (b: BackwardBinding): number => b.shape.reduce((n: number, e) => n * dim(String(e)), 1);
  const out = new Map<string, number>();
  for (const b of art.bindings) if (!b.summaryOf) out.set(b.name, count(b));
  // A summary: [min, max] per block of the (1-D) tensor's positions.
  for (const b of art.bindings)
    if (b.summaryOf) out.set(b.name, 2 * Math.ceil(out.get(b.summaryOf.tensor)! / b.summaryOf.block));
  return out;
}

function resolveParams(
  art: WgslBackwardArtifact,
  given: BackwardRunInputs['params'] = {},
): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of art.params) {
    const v = given[p.name] ?? p.default;
    if (v === undefined) fail(art, `param "${p.name}" has no default and was not given`);
    out.set(p.name, Number(v));
  }
  return out;
}

/** A device that is none, or inputs that are no object: named, not a TypeError from inside. */
function checkCallArguments(device: unknown, inp: unknown): void {
  const where = 'runWgslBackward(device, art, inputs)';
  const d = device as { createBindGroupLayout?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.createBindGroupLayout !== 'function')
    throw new TypeError(`${where}: device must be a GPUDevice (getDevice()), got ${describeValue(device)}`);
  if (typeof inp !== 'object' || inp === null || Array.isArray(inp))
    throw new TypeError(
      `${where}: inputs must be an object { q, k, v, out, lse, dout, B, H, Hkv, Nq, Nk, ... }, got ${describeValue(inp)}`,
    );
}

/** Every backward binds 9 storage buffers at least; past the device's limit Dawn names only an invalid layout. */
function checkStorageLimit(device: GPUDevice, art: WgslBackwardArtifact): void {
  const storage = art.bindings.filter((b) => b.role !== 'uniforms').length;
  const most = device.limits.maxStorageBuffersPerShaderStage;
  if (storage > most)
    fail(
      art,
      `binds ${storage} storage buffers, the device allows ${most} (request a device with a higher maxStorageBuffersPerShaderStage)`,
    );
}

function checkSizes(art: WgslBackwardArtifact, inp: BackwardRunInputs): void {
  for (const n of ['B', 'H', 'Hkv', 'Nq', 'Nk'] as const)
    if (!Number.isInteger(inp[n]) || inp[n] < (n === 'H' || n === 'Hkv' ? 1 : 0))
      fail(art, `${n} must be a non-negative integer (heads ≥ 1), got ${inp[n]}`);
  if (inp.H % inp.Hkv !== 0) fail(art, `H (${inp.H}) must be a multiple of Hkv (${inp.Hkv})`);
}

function packUniforms(
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  params: Map<string, number>,
): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((4 * art.uniforms.length) / 16) * 16));
  const view = new DataView(buf);
  const fixed: Record<string, number> = {
    q_offset: inp.qOffset ?? inp.Nk - inp.Nq,
    k_offset: inp.kOffset ?? 0,
    scale: inp.scale ?? 1 / Math.sqrt(art.headDim),
    B: inp.B,
    H: inp.H,
    Hkv: inp.Hkv,
    Nq: inp.Nq,
    Nk: inp.Nk,
  };
  for (const f of art.uniforms) {
    const v = fixed[f.name] ?? params.get(f.name)!;
    if (f.dtype === 'f32') view.setFloat32(f.offset, v, true);
    else if (f.dtype === 'u32') view.setUint32(f.offset, v >>> 0, true);
    else view.setInt32(f.offset, v | 0, true);
  }
  return buf;
}

/** The host array a read binding uploads. */
function hostData(
  art: WgslBackwardArtifact,
  b: BackwardBinding,
  inp: BackwardRunInputs,
): ArrayBufferView | undefined {
  if (b.role === 'tensor') {
    const t = inp.tensors?.[b.name];
    if (!t) fail(art, `tensor "${b.name}" was not given`);
    return t;
  }
  const named = { q: inp.q, k: inp.k, v: inp.v, out: inp.out, lse: inp.lse, dout: inp.dout } as const;
  return b.role in named ? named[b.role as keyof typeof named] : undefined;
}

async function pipelines(device: GPUDevice, art: WgslBackwardArtifact, layout: GPUBindGroupLayout) {
  const module = device.createShaderModule({ code: art.code, label: art.name });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length)
    fail(
      art,
      `WGSL does not compile:\n${errors.map((m) => `${m.lineNum}:${m.linePos}: ${m.message}`).join('\n')}`,
    );
  const pl = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  return Promise.all(
    art.entryPoints.map((ep) =>
      device.createComputePipelineAsync({
        label: ep.name,
        layout: pl,
        compute: { module, entryPoint: ep.name },
      }),
    ),
  );
}

/** A 1-D launch of `rows` invocations as a 2-D grid within the per-dimension limit. */
function grid(device: GPUDevice, rows: number, wg: number): [number, number] {
  const groups = Math.ceil(rows / wg);
  const x = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  return [x, Math.ceil(groups / x)];
}

export async function runWgslBackward(
  device: GPUDevice,
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
): Promise<BackwardRunResult> {
  checkCallArguments(device, inp);
  checkSizes(art, inp);
  checkStorageLimit(device, art);
  const issues = backwardInputIssues(art, inp);
  if (issues.length) fail(art, `invalid arguments:\n  ${issues.join('\n  ')}`);
  const params = resolveParams(art, inp.params);
  const lens = lengths(art, inp, params);
  const layout = device.createBindGroupLayout({
    label: art.name,
    entries: art.bindings.map((b) => ({
      binding: b.index,
      visibility: COMPUTE_STAGE,
      buffer: {
        type: b.role === 'uniforms' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage',
      },
    })),
  });
  const pipes = await pipelines(device, art, layout);
  const owned: GPUBuffer[] = [];
  const make = (label: string, size: number, usage: number): GPUBuffer => {
    const buf = device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 4) * 4), usage });
    owned.push(buf);
    return buf;
  };
  try {
    device.pushErrorScope('validation');
    const buffers = new Map<string, GPUBuffer>();
    const reads: { b: BackwardBinding; src: GPUBuffer; dst: GPUBuffer; n: number }[] = [];
    for (const b of art.bindings) {
      if (b.role === 'uniforms') {
        const data = packUniforms(art, inp, params);
        const u = make('uniforms', data.byteLength, UNIFORM | COPY_DST);
        device.queue.writeBuffer(u, 0, data);
        buffers.set(b.name, u);
        continue;
      }
      const n = lens.get(b.name)!;
      const buf = make(b.name, 4 * n, STORAGE | COPY_DST | COPY_SRC);
      buffers.set(b.name, buf);
      const data = hostData(art, b, inp);
      if (data) {
        if (data.byteLength !== 4 * n)
          fail(art, `${b.name} has ${data.byteLength / 4} elements, expected ${n} ([${b.shape.join(', ')}])`);
        upload(device, buf, data, 4 * n);
      } else if (b.access === 'read_write' && b.role !== 'delta' && b.role !== 'summary') {
        reads.push({ b, src: buf, dst: make(`${b.name}.read`, 4 * n, MAP_READ | COPY_DST), n });
      }
    }
    const group = device.createBindGroup({
      layout,
      entries: art.bindings.map((b) => ({ binding: b.index, resource: { buffer: buffers.get(b.name)! } })),
    });
    const enc = device.createCommandEncoder({ label: art.name });
    const pass = enc.beginComputePass();
    art.entryPoints.forEach((ep, i) => {
      if (ep.rows === 'summary') {
        const blocks = lens.get(`${ep.tensor}_summary`)! / 2;
        if (blocks === 0) return;
        pass.setPipeline(pipes[i]!);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(Math.ceil(blocks / art.summaryThreads));
        return;
      }
      const rows = ep.rows === 'query' ? inp.B * inp.H * inp.Nq : inp.B * inp.Hkv * inp.Nk;
      if (rows === 0) return;
      pass.setPipeline(pipes[i]!);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...grid(device, rows, art.workgroupSize));
    });
    pass.end();
    for (const r of reads) enc.copyBufferToBuffer(r.src, 0, r.dst, 0, r.src.size);
    device.queue.submit([enc.finish()]);
    const invalid = await device.popErrorScope();
    if (invalid) fail(art, invalid.message);
    await Promise.all(reads.map((r) => r.dst.mapAsync(MAP_READ)));
    const got = new Map(
      reads.map((r) => [r.b.name, new Float32Array(r.dst.getMappedRange().slice(0, 4 * r.n))] as const),
    );
    return {
      dq: got.get('dq')!,
      dk: got.get('dk')!,
      dv: got.get('dv')!,
      dParams: Object.fromEntries(art.gradParams.map((p, i) => [p, got.get('grad_params')![i]!])),
      dTensors: Object.fromEntries(art.gradTensors.map((t) => [t, got.get(`grad_${t}`)!])),
    };
  } finally {
    for (const b of owned) b.destroy();
  }
}
