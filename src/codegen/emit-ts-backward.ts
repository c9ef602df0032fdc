// An emitted module's `backward()` (issue #14): the kernel's WGSL backward module
// (codegen/wgsl/backward.ts: tile summaries, then bwd_dq over query rows and bwd_dkdv over key
// rows) run from host arrays, as src/runtime/backward-webgpu.ts runWgslBackward runs it: q, k, v,
// the forward's out and lse, dO and optionally dlse in; dq, dk, dv and the gradients of the f32 params and tensors
// the score reads out. Correctness first: buffers and pipelines are made per call. Bad arguments
// are a KernelInputError naming them. «TypeScript-only» notation as in emit-ts-runtime.ts.
import type { WgslBackwardArtifact } from './wgsl/backward.js';
import { lit, templateLiteral } from './emit-ts-exprs.js';
import { hostUpload } from './emit-ts-upload.js';

/** The backward tables, its WGSL, and `backward(device, args)`. */
export function backwardSource(b: WgslBackwardArtifact): string {
  const spec = {
    bindings: b.bindings.map((x) => ({
      name: x.name,
      index: x.index,
      role: x.role,
      dtype: x.dtype,
      shape: x.shape,
      access: x.access,
      ...(x.summaryOf ? { summaryOf: x.summaryOf } : {}),
    })),
    uniforms: b.uniforms,
    params: b.params.map((p) => ({ name: p.name, dtype: p.dtype, default: p.default ?? null })),
    gradParams: b.gradParams,
    gradTensors: b.gradTensors,
    entryPoints: b.entryPoints,
    workgroupSize: b.workgroupSize,
    summaryThreads: b.summaryThreads,
    headDim: b.headDim,
    valueDim: b.valueDim,
  };
  return [
    '/** The backward module: bindings, uniforms, entry points in launch order (backward()). */',
    `const backwardSpec = ${JSON.stringify(spec)};`,
    `/** The backward module's WGSL (${lit(b.name)}). */`,
    `export const backwardWgsl = ${templateLiteral(b.code)};`,
    backwardRuntime,
  ].join('\n');
}

const backwardRuntime = `
/** The params by name, checked by type as dispatch checks them (no i32 wrap, no f32 ±Inf, bools as booleans). */
function backwardParams(given«: Record<string, unknown>», issues«: string[]»)«: Map<string, number>» {
  const params = new Map«<string, number>»();
  for (const p of backwardSpec.params) {
    const v = given[p.name];
    const what = \`param "\${p.name}" (\${p.dtype})\`;
    if (v === undefined) {
      if (p.default === null) issues.push(\`param "\${p.name}": missing (\${p.dtype}, no default)\`);
      else params.set(p.name, Number(p.default));
    } else if (p.dtype === 'bool') {
      if (typeof v === 'boolean') params.set(p.name, v ? 1 : 0);
      else issues.push(\`\${what}: expected true or false, got \${describe(v)}\`);
    } else if (p.dtype === 'i32') {
      if (isI32(v)) params.set(p.name, v);
      else issues.push(\`\${what}: expected an integer in [-2147483648, 2147483647], got \${describe(v)}\`);
    } else if (typeof v === 'number' && Number.isFinite(Math.fround(v))) params.set(p.name, Math.fround(v));
    else issues.push(\`\${what}: expected a finite number within f32 range (|x| < 3.4028235e38), got \${describe(v)}\`);
  }
  return params;
}

/**
 * The gradients of the attention: dq, dk, dv ([B, H, Nq, D], [B, Hkv, Nk, D], [B, Hkv, Nk, Dv])
 * and dParams / dTensors for the f32 params and tensors the score reads, from q, k, v, the
 * forward's out and lse (dispatch()'s), dout = dL/dout and the forward's sizes, params, offsets.
 */
export async function backward(device«: GPUDevice», args«: BackwardArgs»)«: Promise<BackwardResult>» {
  const d = device «as { createBindGroupLayout?: unknown } | null»;
  if (typeof d !== 'object' || d === null || typeof d.createBindGroupLayout !== 'function') {
    throw new KernelInputError([\`backward(device, args): expected a GPUDevice, got \${describe(device)}\`], kernelName);
  }
  checkArgsObject(kernelName, 'backward(device, args)', args);
  const a = args «as unknown as Record<string, unknown>»;
  const s = checkSizes(kernelName, a.sizes);
  const issues«: string[]» = [];
  // A misspelt key (qoffset) would run with the default offsets: every key must be known.
  const arrays = backwardSpec.bindings.filter((b) => ['q', 'k', 'v', 'out', 'lse', 'dout', 'tensor'].includes(b.role));
  unknownKeys('argument', a, [...arrays.map((b) => b.name), 'dlse', ...launchKeys], issues);
  const given = (typeof a.params === 'object' && a.params !== null ? a.params : {}) «as Record<string, unknown>»;
  unknownKeys('param', a.params, backwardSpec.params.map((p) => p.name), issues);
  const params = backwardParams(given, issues);
  const { qOffset, kOffset, scale } = launchScalars(a, s, backwardSpec.headDim, issues);
  // The backward reads K/V packed (codegen/wgsl/backward-passes.ts).
  if (a.kvCache !== undefined) issues.push('kvCache: backward() reads q, k and v packed; it takes no strides or pages');
  const env«: Record<string, number>» = { ...s, D: backwardSpec.headDim, Dv: backwardSpec.valueDim };
  const dim = (e«: string») => (/^\\d+$/.test(e) ? Number(e) : (env[e] ?? params.get(e) ?? NaN));
  const lens = new Map«<string, number>»();
  for (const b of backwardSpec.bindings) if (!('summaryOf' in b)) lens.set(b.name, b.shape.reduce((n, e) => n * dim(e), 1));
  for (const b of backwardSpec.bindings) {
    const of = (b «as { summaryOf?: { tensor: string; block: number } }»).summaryOf;
    if (of) lens.set(b.name, 2 * Math.ceil(lens.get(of.tensor)«!» / of.block));
  }
  const inputs = ['q', 'k', 'v', 'out', 'lse', 'dout'];
  for (const b of backwardSpec.bindings) {
    if (!inputs.includes(b.role) && b.role !== 'tensor') continue;
    const data = a[b.name];
    const n = lens.get(b.name)«!»;
    const ctor = b.dtype === 'i32' ? Int32Array : Float32Array;
    if (!(data instanceof ctor) || data.length !== n) {
      issues.push(\`\${b.role === 'tensor' ? 'tensor' : 'input'} "\${b.name}": expected [\${b.shape.join(', ')}] (\${n} elements, \${ctor === Int32Array ? 'an' : 'a'} \${ctor.name}), got \${describe(data)}\`);
    }
  }
  // dlse: the gradient flowing into lse, the delta buffer's starting value (bwd_dq subtracts it).
  const lseRows = s.B * s.H * s.Nq;
  if (a.dlse !== undefined && (!(a.dlse instanceof Float32Array) || a.dlse.length !== lseRows)) {
    issues.push(\`input "dlse": expected [B, H, Nq] (\${lseRows} elements, a Float32Array), got \${describe(a.dlse)}\`);
  }
  // q k v out lse dout dq dk dv and more: past WebGPU's default 8, which Dawn reports only as an
  // invalid pipeline layout.
  const storage = backwardSpec.bindings.filter((b) => b.role !== 'uniforms').length;
  const most = device.limits.maxStorageBuffersPerShaderStage;
  if (storage > most) {
    issues.push(\`backward() binds \${storage} storage buffers, the device allows \${most} (request a device with a higher maxStorageBuffersPerShaderStage)\`);
  }
  if (issues.length > 0) throw new KernelInputError(issues, kernelName);

  const layout = device.createBindGroupLayout({
    label: \`\${kernelName}.backward\`,
    entries: backwardSpec.bindings.map((b) => ({
      binding: b.index,
      visibility: COMPUTE,
      buffer: { type: (b.role === 'uniforms' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage') «as GPUBufferBindingType» },
    })),
  });
  const module = device.createShaderModule({ code: backwardWgsl, label: \`\${kernelName}.backward\` });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const pipelines = await Promise.all(
    backwardSpec.entryPoints.map((ep) => device.createComputePipelineAsync({ label: ep.name, layout: pipelineLayout, compute: { module, entryPoint: ep.name } })),
  );
  const owned«: GPUBuffer[]» = [];
  const make = (label«: string», size«: number», usage«: number») => {
    const buf = device.createBuffer({ label: \`\${kernelName}.\${label}\`, size: Math.max(16, Math.ceil(size / 4) * 4), usage });
    owned.push(buf);
    return buf;
  };
  try {
    device.pushErrorScope('validation');
    const fixed«: Record<string, number>» = { q_offset: qOffset, k_offset: kOffset, scale, ...s };
    const buffers = new Map«<string, GPUBuffer>»();
    const reads«: { name: string; src: GPUBuffer; dst: GPUBuffer; n: number }[]» = [];
    for (const b of backwardSpec.bindings) {
      if (b.role === 'uniforms') {
        const u = new DataView(new ArrayBuffer(Math.max(16, Math.ceil((4 * backwardSpec.uniforms.length) / 16) * 16)));
        for (const f of backwardSpec.uniforms) {
          const v = fixed[f.name] ?? params.get(f.name) ?? 0;
          if (f.dtype === 'f32') u.setFloat32(f.offset, v, true);
          else if (f.dtype === 'u32') u.setUint32(f.offset, v >>> 0, true);
          else u.setInt32(f.offset, v | 0, true);
        }
        const buf = make('uniforms', u.byteLength, UNIFORM | COPY_DST);
        device.queue.writeBuffer(buf, 0, u.buffer);
        buffers.set(b.name, buf);
        continue;
      }
      const n = lens.get(b.name)«!»;
      if (4 * n > device.limits.maxStorageBufferBindingSize) {
        throw new KernelInputError([\`buffer "\${b.name}" needs \${4 * n} bytes; the device binds at most \${device.limits.maxStorageBufferBindingSize}\`], kernelName);
      }
      const buf = make(b.name, 4 * n, STORAGE | COPY_DST | COPY_SRC);
      buffers.set(b.name, buf);
      const data = (b.role === 'delta' ? a.dlse : a[b.name]) «as Float32Array | Int32Array | undefined»;
      if ((inputs.includes(b.role) || b.role === 'tensor' || b.role === 'delta') && data) {
${hostUpload('data', 'buf', '4 * n', '        ')}
      } else if (b.access === 'read_write' && b.role !== 'delta' && b.role !== 'summary') {
        reads.push({ name: b.name, src: buf, dst: make(\`\${b.name}.read\`, 4 * n, MAP_READ | COPY_DST), n });
      }
    }
    const group = device.createBindGroup({
      layout,
      entries: backwardSpec.bindings.map((b) => ({ binding: b.index, resource: { buffer: buffers.get(b.name)«!» } })),
    });
    const encoder = device.createCommandEncoder({ label: \`\${kernelName}.backward\` });
    const pass = encoder.beginComputePass();
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    backwardSpec.entryPoints.forEach((ep, i) => {
      const e = ep «as { rows: string; tensor?: string }»;
      const summary = e.rows === 'summary';
      const rows = summary ? lens.get(\`\${e.tensor}_summary\`)«!» / 2 : e.rows === 'query' ? s.B * s.H * s.Nq : s.B * s.Hkv * s.Nk;
      if (rows === 0) return;
      const groups = Math.ceil(rows / (summary ? backwardSpec.summaryThreads : backwardSpec.workgroupSize));
      const x = summary ? groups : Math.min(groups, max);
      pass.setPipeline(pipelines[i]«!»);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, summary ? 1 : Math.ceil(groups / x));
    });
    pass.end();
    for (const r of reads) encoder.copyBufferToBuffer(r.src, 0, r.dst, 0, r.src.size);
    device.queue.submit([encoder.finish()]);
    const invalid = await device.popErrorScope();
    if (invalid) throw new Error(\`kernel "\${kernelName}" backward: \${invalid.message}\`);
    await Promise.all(reads.map((r) => r.dst.mapAsync(MAP_READ)));
    const got = new Map(reads.map((r) => [r.name, new Float32Array(r.dst.getMappedRange().slice(0, 4 * r.n))]));
    return {
      dq: got.get('dq')«!»,
      dk: got.get('dk')«!»,
      dv: got.get('dv')«!»,
      dParams: Object.fromEntries(backwardSpec.gradParams.map((p, i) => [p, got.get('grad_params')«!»[i]«!»])),
      dTensors: Object.fromEntries(backwardSpec.gradTensors.map((t) => [t, got.get(\`grad_\${t}\`)«!»])),
    };
  } finally {
    for (const b of owned) b.destroy();
  }
}
`;

/** The types of backward()'s arguments and result (module and .d.ts). */
export function backwardTypes(b: WgslBackwardArtifact): string {
  const tensors = b.bindings.filter((x) => x.role === 'tensor');
  return [
    '/** backward(): the forward launch’s arrays and options, its out and lse, and dL/dout. */',
    'export interface BackwardArgs extends LaunchOptions {',
    '  q: Float32Array;',
    '  k: Float32Array;',
    '  v: Float32Array;',
    '  /** The forward’s outputs. */',
    '  out: Float32Array;',
    '  lse: Float32Array;',
    '  /** dL/dout, [B, H, Nq, Dv]. */',
    '  dout: Float32Array;',
    '  /** dL/dlse, [B, H, Nq], when a gradient flows into lse too (absent: none). */',
    '  dlse?: Float32Array;',
    ...tensors.map((t) => `  ${t.name}: ${t.dtype === 'i32' ? 'Int32Array' : 'Float32Array'};`),
    '}',
    '',
    'export interface BackwardResult {',
    '  dq: Float32Array;',
    '  dk: Float32Array;',
    '  dv: Float32Array;',
    `  /** dL/dp of the f32 params the score reads (${b.gradParams.join(', ') || 'none'}). */`,
    '  dParams: Record<string, number>;',
    `  /** dL/dt of the f32 tensors the score reads (${b.gradTensors.join(', ') || 'none'}). */`,
    '  dTensors: Record<string, Float32Array>;',
    '}',
  ].join('\n');
}
