// The GPU half of an emitted module's runtime (emit-ts-runtime.ts has the argument checks,
// emit-ts-launch.ts the prepared launch): the device check, and \`instantiate\`, which compiles a
// kernel's pipelines once and gives dispatch / encode / prepare. Text in the same «TypeScript-only»
// notation, spliced into every module or written once as the shared runtime (emit-ts.ts).
import { hostUpload } from './emit-ts-upload.js';

export const createKernelSource = `
/** Refuses a device this schedule cannot run on (pipeline creation would fail less clearly). */
function checkDevice(spec«: KernelSpec», device«: GPUDevice»)«: void» {
  const { kernelName, schedule, bindings } = spec;
  const l = device.limits;
  const problems«: string[]» = [];
  if (spec.workgroupStorageBytes > l.maxComputeWorkgroupStorageSize) {
    problems.push(\`needs \${spec.workgroupStorageBytes} bytes of workgroup memory, the device allows \${l.maxComputeWorkgroupStorageSize}\`);
  }
  const invocations = Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  if (spec.maxWorkgroupSize > invocations) {
    problems.push(\`needs \${spec.maxWorkgroupSize} invocations per workgroup, the device allows \${invocations}\`);
  }
  const storage = bindings.filter((b) => b.type !== 'uniform').length;
  if (storage > l.maxStorageBuffersPerShaderStage) {
    problems.push(\`binds \${storage} storage buffers, the device allows \${l.maxStorageBuffersPerShaderStage}\`);
  }
  if (schedule.dtype === 'f16' && !device.features.has('shader-f16')) {
    problems.push('f16 storage needs the "shader-f16" feature, which the device lacks');
  }
  // A coop schedule compiled for a device with subgroups: without the feature its WGSL would fail to compile.
  if (schedule.subgroups === true && !device.features.has('subgroups')) {
    problems.push('subgroup reductions need the "subgroups" feature, which the device lacks');
  }
  if (problems.length > 0) {
    throw new Error(
      \`kernel "\${kernelName}" cannot run on this device: \${problems.join('; ')}. Compile it for this \` +
        'device (attnc compile options limits / --dtype f32) or request a device with higher limits.',
    );
  }
}

function f16ToF32(bits«: Uint16Array»)«: Float32Array» {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]«!»;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
    out[i] = h & 0x8000 ? -v : v;
  }
  return out;
}

«interface RuntimeKernel {
  dispatch(args: object): Promise<Record<string, Float32Array>>;
  encode(encoder: GPUCommandEncoder, args: object): void;
  prepare(args: object): RuntimeLaunch;
  destroy(): void;
}»

/** Launches kernel.encode() made, by arguments, so a loop re-encoding the same launch allocates nothing. */
const ENCODE_CACHE = 32;
const bufferIds = new WeakMap«<object, number>»();
let lastBufferId = 0;
function bufferId(b«: object»)«: number» {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = ++lastBufferId));
  return id;
}

/** Two launches with equal keys bind the same ranges with the same uniforms and grids. */
function launchKey(c«: CheckedLaunch»)«: string» {
  const ranges = Object.entries(c.bound).map(([name, b]) => \`\${name}:\${bufferId(b.buffer)}:\${b.offset}:\${b.size}\`);
  return [new Uint8Array(c.r.uniforms).join(','), JSON.stringify(c.r.grids), JSON.stringify(c.r.shapes), ...ranges].join('|');
}

/**
 * The KV splits when a launch takes decode mode, else 0: the attnc runtime's rule (few query rows,
 * two splits at least, the device binds the scratch and runs the grids).
 */
function decodeSplits(spec«: KernelSpec», device«: GPUDevice», r«: Resolved»)«: number» {
  const d = spec.decode;
  if (!d) return 0;
  const splits = Math.ceil(r.env.Nk«!» / d.splitKeys);
  if (r.env.Nq«!» > d.maxNq || splits < 2) return 0;
  const l = device.limits;
  if (d.bindings.filter((b) => b.type !== 'uniform').length > l.maxStorageBuffersPerShaderStage) return 0;
  const { shapes, grids } = d.layout(r.env);
  const scratch = d.bindings.filter((b) => b.role === 'scratch' || b.role === 'summary');
  if (scratch.some((b) => bufferBytes(b, shapes[b.name]«!») > l.maxStorageBufferBindingSize)) return 0;
  return grids.some((g) => g.some((x) => x > l.maxComputeWorkgroupsPerDimension)) ? 0 : splits;
}

/** The decode module and pipelines, made on a kernel's first decode launch (most never take one). */
function decodeKernel(k«: KernelGpu», d«: DecodeSpec»)«: KernelGpu» {
  const { device, spec } = k;
  const name = \`\${spec.kernelName}.decode\`;
  const module = device.createShaderModule({ label: name, code: d.wgsl });
  const layout = device.createBindGroupLayout({ label: name, entries: layoutEntries(d.bindings) });
  const pipelineLayout = device.createPipelineLayout({ label: name, bindGroupLayouts: [layout] });
  const pipelines = d.entryPoints.map((ep) =>
    device.createComputePipeline({ label: \`\${name}.\${ep.name}\`, layout: pipelineLayout, compute: { module, entryPoint: ep.name } }),
  );
  const decodeSpec = { ...spec, bindings: d.bindings, entryPoints: d.entryPoints, wgsl: d.wgsl };
  return { spec: decodeSpec, device, layout, pipelines, alive: k.alive };
}

/**
 * Compiles the WGSL and its pipelines for \`device\` (once); the kernel then runs any number of times.
 * Throws if the device lacks the limits or features the schedule needs.
 */
async function instantiate(spec«: KernelSpec», device«: GPUDevice»)«: Promise<RuntimeKernel>» {
  const { kernelName, wgsl } = spec;
  checkDevice(spec, device);
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: kernelName, code: wgsl });
  const info = await module.getCompilationInfo();
  const moduleError = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0 || moduleError) {
    const lines = errors.map((m) => \`\${m.lineNum}:\${m.linePos}: \${m.message}\`);
    throw new Error(\`kernel "\${kernelName}": the WGSL does not compile: \${[...lines, moduleError?.message ?? ''].join('\\n')}\`);
  }
  const layout = device.createBindGroupLayout({ label: kernelName, entries: layoutEntries(spec.bindings) });
  const pipelineLayout = device.createPipelineLayout({ label: kernelName, bindGroupLayouts: [layout] });
  const pipelines = await Promise.all(
    spec.entryPoints.map((ep) =>
      device.createComputePipelineAsync({ label: \`\${kernelName}.\${ep.name}\`, layout: pipelineLayout, compute: { module, entryPoint: ep.name } }),
    ),
  );
  let destroyed = false;
  let decodeGpu«: KernelGpu | undefined»;
  const k«: MainGpu» = {
    spec,
    device,
    layout,
    pipelines,
    alive() {
      if (destroyed) throw new Error(\`kernel "\${kernelName}" was destroyed\`);
    },
    choose(r«: Resolved»)«: Variant» {
      const splits = decodeSplits(spec, device, r);
      if (splits === 0) return { g: k, r, splits };
      decodeGpu ??= decodeKernel(k, spec.decode«!»);
      return { g: decodeGpu, r: { ...spec.decode«!».layout(r.env), uniforms: r.uniforms, env: r.env }, splits };
    },
  };
  const encoded = new Map«<string, RuntimeLaunch>»();

  async function dispatch(args«: object»)«: Promise<Record<string, Float32Array>>» {
    k.alive();
    checkArgsObject(kernelName, 'dispatch(args)', args);
    const host = args «as Record<string, unknown>»;
    const r = spec.resolve(host);
    checkHostInputs(spec, host, r);
    const owned«: GPUBuffer[]» = [];
    const make = (label«: string», size«: number», usage«: number»)«: GPUBuffer» => {
      const buf = device.createBuffer({ label: \`\${kernelName}.\${label}\`, size, usage });
      owned.push(buf);
      return buf;
    };
    let scopes = 0;
    let launch«: RuntimeLaunch | undefined»;
    try {
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      scopes = 2;
      const given«: Record<string, unknown>» = {};
      for (const key of launchKeys) if (key in host) given[key] = host[key];
      const reads«: { b: KernelBinding; src: GPUBuffer; dst: GPUBuffer; n: number }[]» = [];
      for (const b of spec.bindings) {
        if (!isInput(b.role) && !isOutput(b.role)) continue;
        const shape = r.shapes[b.name]«!»;
        // A strided K/V cache is uploaded whole (it may hold more than its strides address).
        const data = host[b.name] «as ArrayBufferView | undefined»;
        const size = Math.max(bufferBytes(b, shape), isInput(b.role) && data ? Math.ceil(data.byteLength / 4) * 4 : 0);
        if (size > device.limits.maxStorageBufferBindingSize) {
          throw new KernelInputError([\`buffer "\${b.name}" (\${shapeText(b, shape)}) needs \${size} bytes; the device binds at most \${device.limits.maxStorageBufferBindingSize}\`], kernelName);
        }
        if (isInput(b.role)) {
          const buf = make(b.name, size, STORAGE | COPY_DST);
${hostUpload('data«!»', 'buf', 'size', '          ')}
          given[b.name] = buf;
        } else {
          const buf = make(b.name, size, STORAGE | COPY_SRC);
          given[b.name] = buf;
          reads.push({ b, src: buf, dst: make(\`\${b.name}.read\`, size, MAP_READ | COPY_DST), n: count(shape) });
        }
      }
      launch = createLaunch(k, checkLaunch(k, given, 'dispatch(args)'));
      const encoder = device.createCommandEncoder({ label: kernelName });
      launch.encode(encoder);
      for (const rb of reads) encoder.copyBufferToBuffer(rb.src, 0, rb.dst, 0, rb.src.size);
      device.queue.submit([encoder.finish()]);
      scopes = 0;
      const oom = await device.popErrorScope();
      const invalid = await device.popErrorScope();
      const err = invalid ?? oom;
      if (err) throw new Error(\`kernel "\${kernelName}": \${err.message}\`);
      await Promise.all(reads.map((rb) => rb.dst.mapAsync(MAP_READ)));
      const result«: Record<string, Float32Array>» = {};
      for (const rb of reads) {
        const bytes = rb.dst.getMappedRange().slice(0, rb.n * elementBytes(rb.b));
        result[rb.b.name] = rb.b.dtype === 'f16' ? f16ToF32(new Uint16Array(bytes)) : new Float32Array(bytes);
      }
      return result;
    } finally {
      // A throw while encoding leaves the error scopes open: close them so later calls are unaffected.
      for (; scopes > 0; scopes--) void device.popErrorScope();
      launch?.destroy();
      for (const b of owned) b.destroy();
    }
  }

  return {
    dispatch,
    prepare: (args«: object») => createLaunch(k, checkLaunch(k, args, 'prepare(args)')),
    encode(encoder«: GPUCommandEncoder», args«: object») {
      checkEncoder(kernelName, 'encode(encoder, args)', encoder);
      const checked = checkLaunch(k, args, 'encode(encoder, args)');
      // The same launch again (a loop) reuses its uniforms and bind group. A launch leaving the
      // cache is not destroyed (a submit may still need it): garbage collection frees it.
      const key = launchKey(checked);
      let launch = encoded.get(key);
      if (launch) encoded.delete(key);
      else launch = createLaunch(k, checked);
      encoded.set(key, launch);
      if (encoded.size > ENCODE_CACHE) encoded.delete(encoded.keys().next().value«!»);
      launch.encode(encoder);
    },
    destroy() {
      destroyed = true;
      encoded.clear();
    },
  };
}
`;
