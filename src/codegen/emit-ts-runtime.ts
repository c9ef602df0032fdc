// The kernel-independent argument checks of an emitted TypeScript/JS module (emit-ts-buffers.ts
// checks the caller's GPU buffers, emit-ts-kernel.ts and emit-ts-launch.ts are the GPU half;
// emit-ts.ts writes the kernel-specific parts: the WGSL, the tables, the types and `resolve`,
// which evaluates shapes and grids and packs the uniforms). It is text, not code this package
// runs: spliced into each module (self-contained) or written once as attnc-runtime.ts that every
// module imports (emit-ts-shared.ts). Nothing here may name a kernel-specific value: what the
// runtime needs of a kernel comes in a KernelSpec (its types: emit-ts-runtime-types.ts; the K/V
// addressing check only kernels with float K/V carry: emit-ts-kvcache.ts).
// TypeScript-only syntax is wrapped in «…» so one text yields both languages (emit-ts.ts strips
// the markers for TS and the marked spans for JS).

export const runtimeSource = `
// ---- The runtime: the same in every attnc module; the kernel-specific parts come in a KernelSpec. ----

// GPUBufferUsage / GPUShaderStage / GPUMapMode bits, spelled out so that a device made elsewhere
// (Dawn in Node) works without the globals a browser defines.
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;
const COMPUTE = 0x4;

/** Launch arguments besides the buffers; a tensor of one of these names cannot be emitted. */
const launchKeys = ['sizes', 'params', 'qOffset', 'kOffset', 'scale', 'kvCache'];

«type Role = KernelBinding['role'];»

/** Bind group 0 of every entry point: one explicit layout, so a single bind group serves every pass. */
function layoutEntries(bindings«: readonly KernelBinding[]»)«: GPUBindGroupLayoutEntry[]» {
  return bindings.map((b) => ({ binding: b.binding, visibility: COMPUTE, buffer: { type: b.type } }));
}

/** Invalid arguments: every problem at once, each naming the buffer, size or param. */
class KernelInputError extends Error {
  «readonly issues: readonly string[];»
  constructor(issues«: readonly string[]», kernel = '') {
    super(
      (kernel ? \`kernel "\${kernel}": \` : '') +
        (issues.length === 1 ? issues[0] : \`invalid arguments:\\n  \${issues.join('\\n  ')}\`),
    );
    this.name = 'KernelInputError';
    this.issues = issues;
  }
}

const isI32 = (x«: unknown»)«: x is number» =>
  typeof x === 'number' && Number.isInteger(x) && x >= -2147483648 && x <= 2147483647;

function describe(x«: unknown»)«: string» {
  if (x === undefined || x === null) return String(x);
  if (ArrayBuffer.isView(x)) {
    return \`\${x.constructor.name} of \${(x «as unknown as ArrayLike<number>»).length} elements\`;
  }
  if (Array.isArray(x)) return \`a plain Array of \${x.length} elements\`;
  if (isGpuBuffer(x)) return \`a GPUBuffer of \${(x «as { size: number }»).size} bytes\`;
  return typeof x === 'object' && x !== null ? 'an object' : \`\${typeof x} \${String(x)}\`;
}

/** A GPUBuffer by its shape (Dawn's have no global class in Node): a numeric size and usage. */
const isGpuBuffer = (x«: unknown»)«: boolean» =>
  typeof x === 'object' && x !== null && typeof (x «as { usage?: unknown }»).usage === 'number' && typeof (x «as { size?: unknown }»).size === 'number';

/** The sizes a launch gives; D and Dv are compiled in. */
const SIZE_KEYS = ['B', 'H', 'Hkv', 'Nq', 'Nk'];

function checkSizes(kernel«: string», raw«: unknown»)«: Sizes» {
  const s = (typeof raw === 'object' && raw !== null ? raw : {}) «as Record<string, unknown>»;
  const issues«: string[]» = [];
  if (typeof raw !== 'object' || raw === null) issues.push(\`sizes: expected { B, H, Hkv, Nq, Nk }, got \${describe(raw)}\`);
  // D and Dv are compiled in: a sizes.D (or any other key) was dropped, and buffers sized for it pass.
  else unknownKeys('size', raw, SIZE_KEYS, issues);
  for (const name of SIZE_KEYS) {
    const v = s[name];
    const min = name === 'H' || name === 'Hkv' ? 1 : 0;
    if (!isI32(v) || v < min) issues.push(\`size \${name}: expected an integer >= \${min}, got \${describe(v)}\`);
  }
  const sizes = s «as unknown as Sizes»;
  if (issues.length === 0 && sizes.H % sizes.Hkv !== 0) {
    issues.push(\`sizes: H (\${sizes.H}) must be a multiple of Hkv (\${sizes.Hkv}) (query head h reads kv head h / (H / Hkv))\`);
  }
  if (issues.length > 0) throw new KernelInputError(issues, kernel);
  return { B: sizes.B, H: sizes.H, Hkv: sizes.Hkv, Nq: sizes.Nq, Nk: sizes.Nk };
}

function unknownKeys(what«: string», obj«: unknown», known«: readonly string[]», issues«: string[]»)«: void» {
  if (obj === undefined) return;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    issues.push(\`\${what}s: expected an object, got \${describe(obj)}\`);
    return;
  }
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      issues.push(\`\${what} "\${key}": the kernel has no such \${what} (known: \${known.join(', ') || 'none'})\`);
    }
  }
}

/**
 * Position, offset and scale arguments, shared by every kernel. Positions are i32 in the shader
 * (query row r sits at qOffset + r): offsets whose last row leaves int32 would wrap, so are refused.
 */
function launchScalars(o«: { qOffset?: unknown; kOffset?: unknown; scale?: unknown }», s«: Sizes», headDim«: number», issues«: string[]») {
  // Only undefined means "the default": a null is a value, and refused like any other non-number.
  const qOffset = o.qOffset === undefined ? s.Nk - s.Nq : o.qOffset;
  const kOffset = o.kOffset === undefined ? 0 : o.kOffset;
  const rawScale«: unknown» = o.scale === undefined ? 1 / Math.sqrt(headDim) : o.scale;
  const scale = typeof rawScale === 'number' ? Math.fround(rawScale) : NaN;
  position('qOffset', 'query', qOffset, s.Nq, 'Nq', issues);
  position('kOffset', 'key', kOffset, s.Nk, 'Nk', issues);
  if (issues.length === 0) span(qOffset« as number», s.Nq, kOffset« as number», s.Nk, issues);
  if (!Number.isFinite(scale)) issues.push(\`scale: expected a finite number within f32 range, got \${describe(o.scale)}\`);
  return { qOffset: qOffset« as number», kOffset: kOffset« as number», scale };
}

function position(what«: string», side«: string», offset«: unknown», rows«: number», rowsName«: string», issues«: string[]»)«: void» {
  if (!isI32(offset)) issues.push(\`\${what}: expected an i32 (integer), got \${describe(offset)}\`);
  else if (rows > 0 && offset + rows - 1 > 2147483647) {
    issues.push(
      \`\${what}: \${side} positions [\${offset}, \${offset + rows - 1}] leave int32 (\${what} + \${rowsName} - 1 must be <= 2147483647; got \${what} = \${offset}, \${rowsName} = \${rows})\`,
    );
  }
}

// Every q − k must fit int32 too (docs/LANGUAGE.md): the runtime's spanProblem, in its words.
function span(qOffset«: number», Nq«: number», kOffset«: number», Nk«: number», issues«: string[]»)«: void» {
  if (Nq <= 0 || Nk <= 0) return;
  const hi = qOffset + Nq - 1 - kOffset;
  const lo = qOffset - (kOffset + Nk - 1);
  if (hi <= 2147483647 && lo >= -2147483647) return;
  issues.push(
    \`qOffset, kOffset: q - k ranges over [\${lo}, \${hi}], which leaves int32 (query positions [\${qOffset}, \${qOffset + Nq - 1}], key positions [\${kOffset}, \${kOffset + Nk - 1}])\`,
  );
}

function checkShapes(kernel«: string», shapes«: Record<string, number[]>»)«: void» {
  const bad = Object.entries(shapes).filter(([, shape]) => shape.some((d) => !(d >= 0)));
  if (bad.length > 0) {
    throw new KernelInputError(bad.map(([name, shape]) => \`buffer "\${name}": its shape evaluates to [\${shape.join(', ')}]\`), kernel);
  }
}

const count = (shape«: readonly number[]»)«: number» => shape.reduce((a, b) => a * b, 1);
const elementBytes = (b«: KernelBinding»)«: number» => (b.dtype === 'f16' ? 2 : 4);
/** Bytes a binding of this shape reads or writes, rounded up to the 4 that storage bindings need. */
const neededBytes = (b«: KernelBinding», shape«: readonly number[]»)«: number» =>
  Math.max(4, Math.ceil((count(shape) * elementBytes(b)) / 4) * 4);
/** Buffers the module makes itself: never 0 bytes (bindings must not be empty), 16 at least. */
const bufferBytes = (b«: KernelBinding», shape«: readonly number[]»)«: number» => Math.max(16, neededBytes(b, shape));
const isInput = (role«: Role»)«: boolean» =>
  role === 'q' || role === 'k' || role === 'v' || role === 'tensor' || role === 'block_table';
const isOutput = (role«: Role»)«: boolean» => role === 'out' || role === 'lse';

/** "f32[B=1, H=2, Nq=300, D=64]": the shape expressions with their values. */
function shapeText(b«: KernelBinding», shape«: readonly number[]»)«: string» {
  // A strided K/V cache: the elements its strides address.
  if (shape.length !== b.shape.length) return \`\${b.dtype}[\${shape.join(', ')}] (the elements kvCache's strides address)\`;
  const dims = b.shape.map((e, i) => (e === String(shape[i]) ? e : \`\${e}=\${shape[i]}\`));
  return \`\${b.dtype}[\${dims.join(', ')}]\`;
}

const hostArrays = { f32: Float32Array, f16: Uint16Array, i32: Int32Array, u32: Uint32Array };

function checkHostInputs(spec«: KernelSpec», args«: Record<string, unknown>», r«: Resolved»)«: void» {
  const issues«: string[]» = [];
  const inputs = spec.bindings.filter((b) => isInput(b.role));
  unknownKeys('argument', args, [...inputs.map((b) => b.name), ...launchKeys], issues);
  for (const b of inputs) {
    const shape = r.shapes[b.name]«!»;
    const data = args[b.name];
    const ctor = hostArrays[b.dtype];
    // A strided cache may be longer than what its strides address; a block table longer than
    // [B, max_pages] (made for a larger batch, as engines allocate them) has its rows past B unused.
    const longer = (r.kv !== undefined && r.kv.need[b.role] !== undefined) || b.role === 'block_table';
    if (!(data instanceof ctor) || (longer ? data.length < count(shape) : data.length !== count(shape))) {
      const bits = b.dtype === 'f16' ? ' of f16 bits' : '';
      // The other call's argument kind: say which call takes it.
      const hint = isGpuBuffer(data) ? ' (GPUBuffers go to encode or prepare; dispatch takes host arrays)' : '';
      issues.push(
        \`\${b.role === 'tensor' ? 'tensor' : 'input'} "\${b.name}": expected \${shapeText(b, shape)} (\${longer ? 'at least ' : ''}\${count(shape)} elements, \${ctor === Int32Array ? 'an' : 'a'} \${ctor.name}\${bits}), got \${describe(data)}\${hint}\`,
      );
    }
  }
  if (issues.length === 0 && r.kv && r.kv.pageSize) checkHostPages(args, r.kv, issues);
  if (issues.length > 0) throw new KernelInputError(issues, spec.kernelName);
}

/** dispatch() of a paged kernel: every page id used is a page of the host caches. */
function checkHostPages(args«: Record<string, unknown>», kv«: KvArgs», issues«: string[]»)«: void» {
  const table = args.block_table «as Int32Array»;
  const s = (args «as { sizes: Sizes }»).sizes;
  const P = kv.pageSize«!»;
  const used = Math.ceil(s.Nk / P);
  for (const [w, st] of Object.entries(kv.strides)) {
    const length = (args[w] «as ArrayLike<number>»).length;
    for (let b = 0; b < s.B; b++) {
      for (let p = 0; p < used; p++) {
        const id = table[b * kv.maxPages + p]«!»;
        const end = id * st.b + (s.Hkv - 1) * st.h + (P - 1) * st.n + st.W;
        if (id < 0 || end > length) {
          issues.push(\`block_table[\${b}][\${p}] = \${id} is not a page of "\${w}" (\${length} elements, pages of \${st.b})\`);
          return;
        }
      }
    }
  }
}

/**
 * createKernel's arguments: a GPUDevice (duck-typed: one made by Dawn has no global class), and
 * for a module with options, an object of known keys; a misspelt key would silently be the default.
 */
function checkCreateArgs(kernel«: string», device«: unknown», options«?: unknown», known«?: readonly string[]»)«: void» {
  const issues«: string[]» = [];
  const d = device «as { limits?: unknown; features?: { has?: unknown }; createShaderModule?: unknown } | null»;
  const isDevice =
    typeof d === 'object' && d !== null && typeof d.limits === 'object' && d.limits !== null &&
    typeof d.features?.has === 'function' && typeof d.createShaderModule === 'function';
  if (!isDevice) issues.push(\`createKernel(device): expected a GPUDevice, got \${describe(device)}\`);
  if (known && options !== undefined) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      issues.push(\`createKernel(device, options): options: expected an object { \${known.map((k) => k + '?').join(', ')} }, got \${describe(options)}\`);
    } else {
      for (const key of Object.keys(options)) {
        if (!known.includes(key)) issues.push(\`createKernel(device, options): option "\${key}": no such option (known: \${known.join(', ')})\`);
      }
    }
  }
  if (issues.length > 0) throw new KernelInputError(issues, kernel);
}

/** dispatch/encode/prepare take one arguments object; anything else is named, not a TypeError. */
function checkArgsObject(kernel«: string», call«: string», args«: unknown»)«: void» {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new KernelInputError([\`\${call}: expected an object of buffers, sizes and params, got \${describe(args)}\`], kernel);
  }
}

function checkEncoder(kernel«: string», call«: string», encoder«: unknown»)«: void» {
  const e = encoder «as { beginComputePass?: unknown } | null»;
  if (typeof e !== 'object' || e === null || typeof e.beginComputePass !== 'function') {
    throw new KernelInputError([\`\${call}: expected a GPUCommandEncoder, got \${describe(encoder)}\`], kernel);
  }
}
`;

// The param helpers follow src/runtime/params.ts's rule and words (test/emit-ts/values.test.ts
// checks they agree): no int32 wrap, no f32 rounding to ±Inf, booleans only for bools.
export const intParamSource = `
function intParam(name«: string», v«: unknown», fallback«: number | undefined», issues«: string[]»)«: number» {
  const x = v === undefined ? fallback : v;
  if (x === undefined) issues.push(\`param "\${name}": missing (i32, no default)\`);
  else if (!isI32(x)) issues.push(\`param "\${name}" (i32): expected an integer in [-2147483648, 2147483647], got \${describe(x)}\`);
  else return x;
  return 0;
}
`;

export const floatParamSource = `
function floatParam(name«: string», v«: unknown», fallback«: number | undefined», issues«: string[]»)«: number» {
  const x = v === undefined ? fallback : v;
  if (x === undefined) issues.push(\`param "\${name}": missing (f32, no default)\`);
  else if (typeof x !== 'number' || !Number.isFinite(Math.fround(x))) {
    issues.push(\`param "\${name}" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got \${describe(x)}\`);
  } else return Math.fround(x);
  return 0;
}
`;

export const boolParamSource = `
function boolParam(name«: string», v«: unknown», fallback«: number | undefined», issues«: string[]»)«: number» {
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) issues.push(\`param "\${name}": missing (bool, no default)\`);
  else if (typeof v !== 'boolean') issues.push(\`param "\${name}" (bool): expected true or false, got \${describe(v)}\`);
  else return v ? 1 : 0;
  return 0;
}
`;
