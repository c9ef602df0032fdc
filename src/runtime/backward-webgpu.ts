// Runs a WGSL backward module (codegen/wgsl/backward.ts) on a WebGPU device: uploads q k v, the
// forward's out and lse, dO and the kernel's tensors, launches bwd_dq then bwd_dkdv in one compute
// pass, and reads dq dk dv and the param/tensor gradients back. Correctness first: buffers are
// made per call. Bad arguments get an error naming the argument (values: backward-checks.ts).
import type { WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { BackwardBinding } from '../codegen/wgsl/backward-layout.js';
import { backwardInputIssues } from './backward-checks.js';
import {
  fail,
  lengths,
  resolveParams,
  checkCallArguments,
  checkStorageLimit,
  checkSizes,
  packUniforms,
  hostData,
} from './backward-webgpu-host.js';
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
  /** ∂L/∂lse, [B, H, Nq], when a gradient flows into lse too (absent: none). */
  readonly dlse?: Float32Array;
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

/** One bind group layout over every binding: the uniforms, read-only and read-write storage. */
function backwardLayout(device: GPUDevice, art: WgslBackwardArtifact): GPUBindGroupLayout {
  return device.createBindGroupLayout({
    label: art.name,
    entries: art.bindings.map((b) => ({
      binding: b.index,
      visibility: COMPUTE_STAGE,
      buffer: {
        type: b.role === 'uniforms' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage',
      },
    })),
  });
}

/** A gradient buffer to read back after the passes: `src` copied into the mappable `dst`. */
interface Readback {
  readonly b: BackwardBinding;
  readonly src: GPUBuffer;
  readonly dst: GPUBuffer;
  readonly n: number;
}

type MakeBuffer = (label: string, size: number, usage: number) => GPUBuffer;

/**
 * Every binding's buffer: the uniforms packed, the host inputs uploaded (their lengths checked), and
 * for each gradient the pass writes (not the scratch delta or summaries) a readback.
 */
function backwardBuffers(
  device: GPUDevice,
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  params: ReturnType<typeof resolveParams>,
  lens: Map<string, number>,
  make: MakeBuffer,
): { buffers: Map<string, GPUBuffer>; reads: Readback[] } {
  const buffers = new Map<string, GPUBuffer>();
  const reads: Readback[] = [];
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
        fail(
          art,
          `${b.role === 'delta' ? 'dlse' : b.name} has ${data.byteLength / 4} elements, expected ${n} ([${b.shape.join(', ')}])`,
        );
      upload(device, buf, data, 4 * n);
    } else if (b.access === 'read_write' && b.role !== 'delta' && b.role !== 'summary') {
      reads.push({ b, src: buf, dst: make(`${b.name}.read`, 4 * n, MAP_READ | COPY_DST), n });
    }
  }
  return { buffers, reads };
}

/** The entry points in order on one compute pass; a pass over no rows (or no blocks) is skipped. */
function encodeBackwardPasses(
  device: GPUDevice,
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  lens: Map<string, number>,
  pipes: readonly GPUComputePipeline[],
  group: GPUBindGroup,
  pass: GPUComputePassEncoder,
): void {
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
}

/** The gradients off the mapped readbacks: dq, dk, dv, one value per f32 param, per f32 tensor. */
async function readGradients(
  art: WgslBackwardArtifact,
  reads: readonly Readback[],
): Promise<BackwardRunResult> {
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
  const layout = backwardLayout(device, art);
  const pipes = await pipelines(device, art, layout);
  const owned: GPUBuffer[] = [];
  const make: MakeBuffer = (label, size, usage) => {
    const buf = device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 4) * 4), usage });
    owned.push(buf);
    return buf;
  };
  try {
    device.pushErrorScope('validation');
    const { buffers, reads } = backwardBuffers(device, art, inp, params, lens, make);
    const group = device.createBindGroup({
      layout,
      entries: art.bindings.map((b) => ({ binding: b.index, resource: { buffer: buffers.get(b.name)! } })),
    });
    const enc = device.createCommandEncoder({ label: art.name });
    const pass = enc.beginComputePass();
    encodeBackwardPasses(device, art, inp, lens, pipes, group, pass);
    pass.end();
    for (const r of reads) enc.copyBufferToBuffer(r.src, 0, r.dst, 0, r.src.size);
    device.queue.submit([enc.finish()]);
    const invalid = await device.popErrorScope();
    if (invalid) fail(art, invalid.message);
    return await readGradients(art, reads);
  } finally {
    for (const b of owned) b.destroy();
  }
}
