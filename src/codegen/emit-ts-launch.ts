// A prepared launch of an emitted module (runtime text, «TypeScript-only» notation as in
// emit-ts-runtime.ts): the caller's checked buffers, the launch's own uniform buffer and summary
// scratch, made once, and one bind group. encode() records a compute pass and allocates nothing;
// update() rewrites the uniforms in place and remakes the bind group only when summary scratch
// must grow. emit-ts-kernel.ts builds launches for prepare, encode and dispatch.

export const launchSource = `
«/** What a launch needs of its kernel: the spec, the device, and the pipelines made once. */
interface KernelGpu {
  readonly spec: KernelSpec;
  readonly device: GPUDevice;
  readonly layout: GPUBindGroupLayout;
  readonly pipelines: readonly GPUComputePipeline[];
  alive(): void;
}

/** The main kernel, which picks the variant (main or decode) each launch runs. */
interface MainGpu extends KernelGpu {
  choose(r: Resolved): Variant;
}

/** What a launch runs: pipelines, its shapes and grids, and its KV splits (0: the main path). */
interface Variant {
  readonly g: KernelGpu;
  readonly r: Resolved;
  readonly splits: number;
}

/** A launch's arguments, checked: its options (all but the buffers), resolved, and its bound buffers. */
interface CheckedLaunch {
  readonly options: Record<string, unknown>;
  readonly r: Resolved;
  readonly bound: Record<string, BoundBuffer>;
}

interface RuntimeLaunch {
  readonly decodeSplits: number;
  encode(encoder: GPUCommandEncoder): void;
  update(changes: object): void;
  destroy(): void;
}»

/** Grids past the device's per-dimension limit: a KernelInputError rather than a Dawn one at submit. */
function checkGrids(spec«: KernelSpec», device«: GPUDevice», r«: Resolved»)«: void» {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const issues = r.grids.flatMap((g, i) =>
    g.some((x) => x > max) ? [\`entry point \${spec.entryPoints[i]«!».name}: grid [\${g.join(', ')}] exceeds \${max} workgroups per dimension\`] : [],
  );
  if (issues.length > 0) throw new KernelInputError(issues, spec.kernelName);
}

/** The arguments of encode/prepare, checked in full; nothing is allocated yet. */
function checkLaunch(k«: KernelGpu», args«: unknown», call«: string»)«: CheckedLaunch» {
  k.alive();
  checkArgsObject(k.spec.kernelName, call, args);
  const given = args «as Record<string, unknown>»;
  const r = k.spec.resolve(given);
  checkGrids(k.spec, k.device, r);
  const bound = bindBuffers(k.spec, k.device, given, r);
  const options = Object.fromEntries(launchKeys.filter((key) => key in given).map((key) => [key, given[key]]));
  return { options, r, bound };
}

/** Summary and decode scratch for \`r\`, grown where too small; true when a buffer was replaced. */
function fitScratch(k«: KernelGpu», r«: Resolved», scratch«: Record<string, GPUBuffer>»)«: boolean» {
  let grown = false;
  for (const b of k.spec.bindings) {
    if (b.role !== 'summary' && b.role !== 'scratch') continue;
    const size = bufferBytes(b, r.shapes[b.name]«!»);
    const old = scratch[b.name];
    if (old && old.size >= size) continue;
    // Growing (an update): double, so a decode loop whose Nk creeps up reallocates rarely. The old
    // buffer is destroyed at once: WebGPU keeps it alive for submits already made.
    const grow = old ? Math.max(size, 2 * old.size) : size;
    old?.destroy();
    scratch[b.name] = k.device.createBuffer({ label: \`\${k.spec.kernelName}.\${b.name}\`, size: grow, usage: STORAGE });
    grown = true;
  }
  return grown;
}

function bindGroupOf(k«: KernelGpu», bound«: Record<string, BoundBuffer>», uniforms«: GPUBuffer», scratch«: Record<string, GPUBuffer>»)«: GPUBindGroup» {
  const resource = (b«: KernelBinding»)«: GPUBufferBinding» =>
    b.role === 'uniforms' ? { buffer: uniforms } : scratch[b.name] ? { buffer: scratch[b.name]«!» } : bound[b.name]«!»;
  return k.device.createBindGroup({
    label: k.spec.kernelName,
    layout: k.layout,
    entries: k.spec.bindings.map((b) => ({ binding: b.binding, resource: resource(b) })),
  });
}

/** One compute pass: summaries first (dispatches in a pass run in order, each seeing the last's writes). */
function record(k«: KernelGpu», encoder«: GPUCommandEncoder», r«: Resolved», bindGroup«: GPUBindGroup»)«: void» {
  const pass = encoder.beginComputePass({ label: k.spec.kernelName });
  pass.setBindGroup(0, bindGroup);
  r.grids.forEach((g, i) => {
    if (g.some((x) => x === 0)) return;
    pass.setPipeline(k.pipelines[i]«!»);
    pass.dispatchWorkgroups(g[0], g[1], g[2]);
  });
  pass.end();
}

/**
 * update()'s changes over the launch's options: given keys replace theirs, sizes and params merge
 * key by key, and a key given as undefined returns to its default (qOffset: Nk - Nq).
 */
function mergeOptions(kernel«: string», options«: Record<string, unknown>», changes«: unknown»)«: Record<string, unknown>» {
  checkArgsObject(kernel, 'prepared.update(changes)', changes);
  const c = changes «as Record<string, unknown>»;
  const issues«: string[]» = [];
  for (const key of Object.keys(c)) {
    if (!launchKeys.includes(key)) {
      issues.push(\`update "\${key}": a launch's buffers are fixed when it is prepared; update takes \${launchKeys.join(', ')}\`);
    }
  }
  if (issues.length > 0) throw new KernelInputError(issues, kernel);
  const merged = { ...options, ...c };
  for (const key of ['sizes', 'params', 'kvCache']) {
    const [was, now] = [options[key], c[key]];
    if (isPlain(was) && isPlain(now)) merged[key] = { ...was, ...now };
  }
  return merged;
}

const isPlain = (x«: unknown»)«: x is Record<string, unknown>» => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A checked launch made real: its uniform buffer, summary scratch and bind group, made once. */
function createLaunch(k«: MainGpu», checked«: CheckedLaunch»)«: RuntimeLaunch» {
  const { spec, device } = k;
  let { options, r } = checked;
  const { bound } = checked;
  let v = k.choose(r);
  const uniforms = device.createBuffer({ label: \`\${spec.kernelName}.uniforms\`, size: spec.uniformLayout.bytes, usage: UNIFORM | COPY_DST });
  device.queue.writeBuffer(uniforms, 0, r.uniforms);
  const scratch«: Record<string, GPUBuffer>» = {};
  fitScratch(v.g, v.r, scratch);
  let bindGroup = bindGroupOf(v.g, bound, uniforms, scratch);
  let live = true;
  const usable = (call«: string»)«: void» => {
    k.alive();
    if (!live) throw new Error(\`kernel "\${spec.kernelName}": \${call} on a destroyed launch\`);
  };
  return {
    get decodeSplits() {
      return v.splits;
    },
    encode(encoder«: GPUCommandEncoder») {
      usable('encode');
      checkEncoder(spec.kernelName, 'prepared.encode(encoder)', encoder);
      record(v.g, encoder, v.r, bindGroup);
    },
    update(changes«: object») {
      usable('update');
      const next = mergeOptions(spec.kernelName, options, changes);
      const r2 = spec.resolve(next);
      checkGrids(spec, device, r2);
      checkBound(spec, bound, r2);
      // Every check passed: only now does the launch change (its variant too, as Nq and Nk say).
      const v2 = k.choose(r2);
      if (fitScratch(v2.g, v2.r, scratch) || v2.g !== v.g) bindGroup = bindGroupOf(v2.g, bound, uniforms, scratch);
      device.queue.writeBuffer(uniforms, 0, r2.uniforms);
      [options, r, v] = [next, r2, v2];
    },
    destroy() {
      live = false;
      uniforms.destroy();
      for (const b of Object.values(scratch)) b.destroy();
    },
  };
}
`;
