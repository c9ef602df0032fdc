// The caller's GPU buffers of an emitted module's encode/prepare (runtime text, «TypeScript-only»
// notation as in emit-ts-runtime.ts): each argument is a GPUBuffer or a GPUBufferBinding
// { buffer, offset?, size? }, checked here against the device's limits and the launch's shapes so
// that a bad one is a KernelInputError naming it, thrown by encode itself; Dawn would only log it
// at submit, after encode returned.

export const buffersSource = `
«/** A caller's buffer argument, checked: the range the bind group exposes to the shader. */
interface BoundBuffer {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}»

const isByteCount = (x«: unknown»)«: x is number» => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * The caller's buffers as bindings, all problems at once. Each must be a GPUBuffer with STORAGE
 * usage, unmapped; its range starts at a multiple of minStorageBufferOffsetAlignment and holds what
 * the shapes need. Without a size the range runs to the end of the buffer (WebGPU's rule), capped
 * at maxStorageBufferBindingSize and rounded down to 4 bytes, so a KV cache larger than one launch
 * needs binds as is. An output may share its GPUBuffer with no input (WebGPU refuses a buffer both
 * read-only and writable in one pass) and overlap no other output.
 */
function bindBuffers(spec«: KernelSpec», device«: GPUDevice», args«: Record<string, unknown>», r«: Resolved»)«: Record<string, BoundBuffer>» {
  const issues«: string[]» = [];
  const used = spec.bindings.filter((b) => isInput(b.role) || isOutput(b.role));
  unknownKeys('argument', args, [...used.map((b) => b.name), ...launchKeys], issues);
  const bound«: Record<string, BoundBuffer>» = {};
  for (const b of used) {
    const got = bufferArg(b, args[b.name], r.shapes[b.name]«!», device.limits, issues);
    if (got) bound[b.name] = got;
  }
  aliasing(spec, bound, issues);
  if (issues.length > 0) throw new KernelInputError(issues, spec.kernelName);
  return bound;
}

function bufferArg(b«: KernelBinding», arg«: unknown», shape«: readonly number[]», limits«: GPUSupportedLimits», issues«: string[]»)«: BoundBuffer | undefined» {
  const what = \`buffer "\${b.name}"\`;
  const text = shapeText(b, shape);
  // A GPUBuffer has a numeric usage; a TypedArray has a .buffer too, but is no binding.
  const isBinding =
    typeof arg === 'object' && arg !== null && !ArrayBuffer.isView(arg) && 'buffer' in arg && typeof (arg «as { usage?: unknown }»).usage !== 'number';
  const a = (isBinding ? arg : { buffer: arg }) «as { buffer: unknown; offset?: unknown; size?: unknown }»;
  const buf = a.buffer «as { size?: unknown; usage?: unknown; mapState?: unknown } | null»;
  if (typeof buf !== 'object' || buf === null || typeof buf.size !== 'number' || typeof buf.usage !== 'number') {
    const got = isBinding ? \`{ buffer: \${describe(buf)} }\` : describe(arg);
    const hint = ArrayBuffer.isView(arg) ? ' (host arrays go to dispatch)' : '';
    issues.push(\`\${what}: expected a GPUBuffer or { buffer, offset?, size? } holding \${text}, got \${got}\${hint}\`);
    return undefined;
  }
  const before = issues.length;
  if ((buf.usage & STORAGE) === 0) {
    issues.push(\`\${what}: the GPUBuffer lacks STORAGE usage (usage 0x\${buf.usage.toString(16)}); create it with GPUBufferUsage.STORAGE\`);
  }
  if (buf.mapState !== undefined && buf.mapState !== 'unmapped') {
    issues.push(\`\${what}: the GPUBuffer is \${String(buf.mapState)}; unmap it before encoding\`);
  }
  const need = neededBytes(b, shape);
  const offset = a.offset === undefined ? 0 : a.offset;
  const align = limits.minStorageBufferOffsetAlignment;
  if (!isByteCount(offset)) issues.push(\`\${what}: offset: expected a byte count (an integer >= 0), got \${describe(a.offset)}\`);
  else if (offset % align !== 0) {
    issues.push(\`\${what}: offset \${offset} is not a multiple of the device's minStorageBufferOffsetAlignment (\${align})\`);
  } else if (offset > buf.size) issues.push(\`\${what}: offset \${offset} is past the end of the GPUBuffer (\${buf.size} bytes)\`);
  if (issues.length > before) return undefined;
  const off = offset «as number»;
  const max = limits.maxStorageBufferBindingSize;
  const rest = buf.size - off;
  const size = a.size === undefined ? Math.floor(Math.min(rest, max) / 4) * 4 : a.size;
  const range = isBinding ? \`the binding has \${String(size)} (offset \${off} into a GPUBuffer of \${buf.size})\` : \`the GPUBuffer has \${buf.size}\`;
  if (!isByteCount(size)) issues.push(\`\${what}: size: expected a byte count (an integer >= 0), got \${describe(a.size)}\`);
  else if (size > rest) issues.push(\`\${what}: offset \${off} + size \${size} runs past the end of the GPUBuffer (\${buf.size} bytes)\`);
  else if (need > max) {
    // Checked before the range: a buffer of exactly max bytes would read "needs N, has N".
    issues.push(\`\${what}: \${text} needs \${need} bytes; the device binds at most \${max} per buffer (maxStorageBufferBindingSize): launch fewer heads or batches at a time\`);
  } else if (size < need) issues.push(\`\${what}: \${text} needs \${need} bytes, \${range}\`);
  else if (size % 4 !== 0) issues.push(\`\${what}: storage bindings need a size that is a multiple of 4, \${range}\`);
  else if (size > max) issues.push(\`\${what}: the binding is \${size} bytes, the device binds at most \${max}\`);
  if (issues.length > before) return undefined;
  return { buffer: buf «as GPUBuffer», offset: off, size: size «as number» };
}

/** An output shares its GPUBuffer with no input, and overlaps no other output's range. */
function aliasing(spec«: KernelSpec», bound«: Record<string, BoundBuffer>», issues«: string[]»)«: void» {
  const outputs = spec.bindings.filter((b) => isOutput(b.role));
  for (const o of outputs) {
    const mine = bound[o.name];
    if (!mine) continue;
    for (const x of spec.bindings) {
      const theirs = bound[x.name];
      if (x === o || !theirs || theirs.buffer !== mine.buffer) continue;
      if (isInput(x.role)) {
        issues.push(\`buffer "\${o.name}": the same GPUBuffer is passed as "\${x.name}"; an output needs a buffer no input reads\`);
      } else if (outputs.indexOf(x) < outputs.indexOf(o) && mine.offset < theirs.offset + theirs.size && theirs.offset < mine.offset + mine.size) {
        issues.push(
          \`buffer "\${o.name}": bytes [\${mine.offset}, \${mine.offset + mine.size}) overlap "\${x.name}"'s [\${theirs.offset}, \${theirs.offset + theirs.size}) of the same GPUBuffer; \` +
            'outputs sharing a GPUBuffer need { buffer, offset, size } ranges that do not overlap',
        );
      }
    }
  }
}

/** update(): the bound buffers must still hold the new shapes. */
function checkBound(spec«: KernelSpec», bound«: Record<string, BoundBuffer>», r«: Resolved»)«: void» {
  const issues«: string[]» = [];
  for (const b of spec.bindings) {
    const have = bound[b.name];
    if (!have) continue;
    const shape = r.shapes[b.name]«!»;
    const need = neededBytes(b, shape);
    if (need > have.size) {
      issues.push(\`buffer "\${b.name}": \${shapeText(b, shape)} needs \${need} bytes, the bound range has \${have.size}; prepare a launch with a larger buffer\`);
    }
  }
  if (issues.length > 0) throw new KernelInputError(issues, spec.kernelName);
}
`;
