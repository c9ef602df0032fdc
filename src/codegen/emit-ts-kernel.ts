/// <reference types="@webgpu/types" preserve="true" />
// The GPU half of an emitted module's runtime (emit-ts-runtime.ts has the argument checks): the
// device check, createKernel with its pipelines, and dispatch / encode / prepare. Text in the same
// «TypeScript-only» notation, spliced into every module by emit-ts.ts.

export const createKernelSource = `
/** Refuses a device this schedule cannot run on (pipeline creation would fail less clearly). */
function checkDevice(device«: GPUDevice»)«: void» {
  const l = device.limits;
  const problems«: string[]» = [];
  if (workgroupStorageBytes > l.maxComputeWorkgroupStorageSize) {
    problems.push(\`needs \${workgroupStorageBytes} bytes of workgroup memory, the device allows \${l.maxComputeWorkgroupStorageSize}\`);
  }
  const invocations = Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  if (maxWorkgroupSize > invocations) {
    problems.push(\`needs \${maxWorkgroupSize} invocations per workgroup, the device allows \${invocations}\`);
  }
  const storage = bindings.filter((b) => b.type !== 'uniform').length;
  if (storage > l.maxStorageBuffersPerShaderStage) {
    problems.push(\`binds \${storage} storage buffers, the device allows \${l.maxStorageBuffersPerShaderStage}\`);
  }
  if (schedule.dtype === 'f16' && !device.features.has('shader-f16')) {
    problems.push('f16 storage needs the "shader-f16" feature, which the device lacks');
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

/**
 * Compiles the WGSL and its pipelines for \`device\` (once); the kernel then runs any number of times.
 * Throws if the device lacks the limits or features the schedule needs.
 */
export async function createKernel(device«: GPUDevice»)«: Promise<Kernel>» {
  checkDevice(device);
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: kernelName, code: wgsl });
  const info = await module.getCompilationInfo();
  const moduleError = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0 || moduleError) {
    const lines = errors.map((m) => \`\${m.lineNum}:\${m.linePos}: \${m.message}\`);
    throw new Error(\`kernel "\${kernelName}": the WGSL does not compile: \${[...lines, moduleError?.message ?? ''].join('\\n')}\`);
  }
  const bindGroupLayout = device.createBindGroupLayout({ label: kernelName, entries: bindGroupLayoutEntries });
  const layout = device.createPipelineLayout({ label: kernelName, bindGroupLayouts: [bindGroupLayout] });
  const pipelines = await Promise.all(
    entryPoints.map((ep) =>
      device.createComputePipelineAsync({ label: \`\${kernelName}.\${ep.name}\`, layout, compute: { module, entryPoint: ep.name } }),
    ),
  );
  let destroyed = false;
  const alive = ()«: void» => {
    if (destroyed) throw new Error(\`kernel "\${kernelName}" was destroyed\`);
  };

  /** The uniform buffer and summary scratch of one launch, joined with the caller's buffers. */
  function bindAll(r«: Resolved», given«: Buffers», owned«: GPUBuffer[]»)«: GPUBindGroup» {
    const all«: Buffers» = { ...given };
    for (const b of bindings) {
      if (b.role === 'uniforms') {
        const u = device.createBuffer({ label: \`\${kernelName}.uniforms\`, size: uniformLayout.bytes, usage: UNIFORM | COPY_DST });
        device.queue.writeBuffer(u, 0, r.uniforms);
        owned.push(u);
        all[b.name] = u;
      } else if (b.role === 'summary') {
        const size = bufferBytes(b, r.shapes[b.name]«!»);
        const s = device.createBuffer({ label: \`\${kernelName}.\${b.name}\`, size, usage: STORAGE });
        owned.push(s);
        all[b.name] = s;
      }
    }
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    r.grids.forEach((g, i) => {
      if (g.some((x) => x > max)) {
        throw new KernelInputError([\`entry point \${entryPoints[i]«!».name}: grid [\${g.join(', ')}] exceeds \${max} workgroups per dimension\`]);
      }
    });
    return device.createBindGroup({
      label: kernelName,
      layout: bindGroupLayout,
      entries: bindings.map((b) => ({ binding: b.binding, resource: { buffer: all[b.name]«!» } })),
    });
  }

  /** One compute pass: summaries first (dispatches in a pass run in order, each seeing the last's writes). */
  function record(encoder«: GPUCommandEncoder», r«: Resolved», bindGroup«: GPUBindGroup»)«: void» {
    const pass = encoder.beginComputePass({ label: kernelName });
    pass.setBindGroup(0, bindGroup);
    r.grids.forEach((g, i) => {
      if (g.some((x) => x === 0)) return;
      pass.setPipeline(pipelines[i]«!»);
      pass.dispatchWorkgroups(g[0], g[1], g[2]);
    });
    pass.end();
  }

  function prepare(args«: EncodeArgs», call = 'prepare(args)')«: PreparedLaunch» {
    alive();
    checkArgsObject(call, args);
    const r = resolve(args);
    const given = args «as unknown as Record<string, unknown>»;
    checkGpuBuffers(given, r);
    const owned«: GPUBuffer[]» = [];
    const bindGroup = bindAll(r, given «as Buffers», owned);
    return {
      encode(encoder«: GPUCommandEncoder») {
        alive();
        checkEncoder('prepared.encode(encoder)', encoder);
        record(encoder, r, bindGroup);
      },
      destroy() {
        for (const b of owned.splice(0)) b.destroy();
      },
    };
  }

  async function dispatch(args«: DispatchArgs»)«: Promise<DispatchResult>» {
    alive();
    checkArgsObject('dispatch(args)', args);
    const r = resolve(args);
    const host = args «as unknown as Record<string, unknown>»;
    checkHostInputs(host, r);
    const owned«: GPUBuffer[]» = [];
    const make = (label«: string», size«: number», usage«: number»)«: GPUBuffer» => {
      const buf = device.createBuffer({ label: \`\${kernelName}.\${label}\`, size, usage });
      owned.push(buf);
      return buf;
    };
    let scopes = 0;
    try {
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      scopes = 2;
      const given«: Buffers» = {};
      const reads«: { b: Binding; src: GPUBuffer; dst: GPUBuffer; n: number }[]» = [];
      for (const b of bindings) {
        if (!isInput(b.role) && !isOutput(b.role)) continue;
        const shape = r.shapes[b.name]«!»;
        const size = bufferBytes(b, shape);
        if (size > device.limits.maxStorageBufferBindingSize) {
          throw new KernelInputError([\`buffer "\${b.name}" (\${shapeText(b, shape)}) needs \${size} bytes; the device binds at most \${device.limits.maxStorageBufferBindingSize}\`]);
        }
        if (isInput(b.role)) {
          const buf = make(b.name, size, STORAGE | COPY_DST);
          const data = host[b.name] «as ArrayBufferView»;
          // writeBuffer wants a multiple of 4 bytes: odd-length f16 data goes through a padded copy.
          if (data.byteLength % 4 === 0) {
            if (data.byteLength > 0) device.queue.writeBuffer(buf, 0, data.buffer «as ArrayBuffer», data.byteOffset, data.byteLength);
          } else {
            const padded = new Uint8Array(size);
            padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
            device.queue.writeBuffer(buf, 0, padded);
          }
          given[b.name] = buf;
        } else {
          const buf = make(b.name, size, STORAGE | COPY_SRC);
          given[b.name] = buf;
          reads.push({ b, src: buf, dst: make(\`\${b.name}.read\`, size, MAP_READ | COPY_DST), n: count(shape) });
        }
      }
      const bindGroup = bindAll(r, given, owned);
      const encoder = device.createCommandEncoder({ label: kernelName });
      record(encoder, r, bindGroup);
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
      return result «as unknown as DispatchResult»;
    } finally {
      // A throw while encoding leaves the error scopes open: close them so later calls are unaffected.
      for (; scopes > 0; scopes--) void device.popErrorScope();
      for (const b of owned) b.destroy();
    }
  }

  return {
    dispatch,
    prepare,
    encode(encoder«: GPUCommandEncoder», args«: EncodeArgs») {
      // The launch's small buffers (uniforms, summaries) must outlive the submit, which comes later:
      // they are left to garbage collection. prepare() + destroy() frees them deterministically.
      checkEncoder('encode(encoder, args)', encoder);
      prepare(args, 'encode(encoder, args)').encode(encoder);
    },
    destroy() {
      destroyed = true;
    },
  };
}
`;
