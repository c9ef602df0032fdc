/// <reference types="@webgpu/types" preserve="true" />
// The kernel-independent argument checks of an emitted TypeScript/JS module (emit-ts-kernel.ts has
// the GPU half; emit-ts.ts writes the kernel-specific parts: the WGSL, the tables, the types and
// `resolve`, which evaluates shapes and grids and packs the uniforms). It is text, not code this
// package runs: a generated module must import nothing.
// TypeScript-only syntax is wrapped in «…» so one text yields both languages (emit-ts.ts strips
// the markers for TS and the marked spans for JS).

export const runtimeSource = `
// ---- The runtime: the same in every attnc module; the kernel-specific parts are above. ----

// GPUBufferUsage / GPUShaderStage / GPUMapMode bits, spelled out so that a device made elsewhere
// (Dawn in Node) works without the globals a browser defines.
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;
const COMPUTE = 0x4;

«type Binding = KernelBinding;
type Role = KernelBinding['role'];
type Buffers = Record<string, GPUBuffer>;
/** A launch's evaluated shapes (by binding name), grids (by entry point) and packed uniforms. */
interface Resolved {
  shapes: Record<string, number[]>;
  grids: [number, number, number][];
  uniforms: ArrayBuffer;
}»

/** Bind group 0 of every entry point: one explicit layout, so a single bind group serves every pass. */
export const bindGroupLayoutEntries«: GPUBindGroupLayoutEntry[]» = bindings.map((b) => ({
  binding: b.binding,
  visibility: COMPUTE,
  buffer: { type: b.type },
}));

/** Invalid arguments: every problem at once, each naming the buffer, size or param. */
export class KernelInputError extends Error {
  «readonly issues: readonly string[];»
  constructor(issues«: readonly string[]») {
    super(
      \`kernel "\${kernelName}": \` +
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
  return typeof x === 'object' && x !== null ? 'an object' : \`\${typeof x} \${String(x)}\`;
}

function checkSizes(raw«: unknown»)«: Sizes» {
  const s = (typeof raw === 'object' && raw !== null ? raw : {}) «as Record<string, unknown>»;
  const issues«: string[]» = [];
  if (typeof raw !== 'object' || raw === null) issues.push(\`sizes: expected { B, H, Hkv, Nq, Nk }, got \${describe(raw)}\`);
  for (const name of ['B', 'H', 'Hkv', 'Nq', 'Nk']) {
    const v = s[name];
    const min = name === 'H' || name === 'Hkv' ? 1 : 0;
    if (!isI32(v) || v < min) issues.push(\`size \${name}: expected an integer >= \${min}, got \${describe(v)}\`);
  }
  const sizes = s «as unknown as Sizes»;
  if (issues.length === 0 && sizes.H % sizes.Hkv !== 0) {
    issues.push(\`sizes: H (\${sizes.H}) must be a multiple of Hkv (\${sizes.Hkv}) (query head h reads kv head h / (H / Hkv))\`);
  }
  if (issues.length > 0) throw new KernelInputError(issues);
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
function launchScalars(o«: LaunchOptions», s«: Sizes», issues«: string[]») {
  // Only undefined means "the default": a null is a value, and refused like any other non-number.
  const qOffset = o.qOffset === undefined ? s.Nk - s.Nq : o.qOffset;
  const kOffset = o.kOffset === undefined ? 0 : o.kOffset;
  const rawScale«: unknown» = o.scale === undefined ? 1 / Math.sqrt(schedule.headDim) : o.scale;
  const scale = typeof rawScale === 'number' ? Math.fround(rawScale) : NaN;
  position('qOffset', 'query', qOffset, s.Nq, 'Nq', issues);
  position('kOffset', 'key', kOffset, s.Nk, 'Nk', issues);
  if (issues.length === 0) span(qOffset« as number», s.Nq, kOffset« as number», s.Nk, issues);
  if (!Number.isFinite(scale)) issues.push(\`scale: expected a finite number within f32 range, got \${describe(o.scale)}\`);
  return { qOffset, kOffset, scale };
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

function checkShapes(shapes«: Record<string, number[]>»)«: void» {
  const bad = Object.entries(shapes).filter(([, shape]) => shape.some((d) => !(d >= 0)));
  if (bad.length > 0) {
    throw new KernelInputError(bad.map(([name, shape]) => \`buffer "\${name}": its shape evaluates to [\${shape.join(', ')}]\`));
  }
}

const count = (shape«: readonly number[]»)«: number» => shape.reduce((a, b) => a * b, 1);
const elementBytes = (b«: Binding»)«: number» => (b.dtype === 'f16' ? 2 : 4);
/** Buffer sizes are multiples of 4 (copies) and never 0 (bindings must not be empty). */
const bufferBytes = (b«: Binding», shape«: readonly number[]»)«: number» =>
  Math.max(16, Math.ceil((count(shape) * elementBytes(b)) / 4) * 4);
const isInput = (role«: Role»)«: boolean» => role === 'q' || role === 'k' || role === 'v' || role === 'tensor';
const isOutput = (role«: Role»)«: boolean» => role === 'out' || role === 'lse';

/** "f32[B=1, H=2, Nq=300, D=64]": the shape expressions with their values. */
function shapeText(b«: Binding», shape«: readonly number[]»)«: string» {
  const dims = b.shape.map((e, i) => (e === String(shape[i]) ? e : \`\${e}=\${shape[i]}\`));
  return \`\${b.dtype}[\${dims.join(', ')}]\`;
}

const hostArrays = { f32: Float32Array, f16: Uint16Array, i32: Int32Array, u32: Uint32Array };

function checkHostInputs(args«: Record<string, unknown>», r«: Resolved»)«: void» {
  const issues«: string[]» = [];
  unknownKeys('argument', args, [...bindings.filter((b) => isInput(b.role)).map((b) => b.name), ...launchKeys], issues);
  for (const b of bindings) {
    if (!isInput(b.role)) continue;
    const shape = r.shapes[b.name]«!»;
    const data = args[b.name];
    const ctor = hostArrays[b.dtype];
    if (!(data instanceof ctor) || data.length !== count(shape)) {
      const bits = b.dtype === 'f16' ? ' of f16 bits' : '';
      issues.push(
        \`\${b.role === 'tensor' ? 'tensor' : 'input'} "\${b.name}": expected \${shapeText(b, shape)} (\${count(shape)} elements, a \${ctor.name}\${bits}), got \${describe(data)}\`,
      );
    }
  }
  if (issues.length > 0) throw new KernelInputError(issues);
}

/** dispatch/encode/prepare take one arguments object; anything else is named, not a TypeError. */
function checkArgsObject(call«: string», args«: unknown»)«: void» {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new KernelInputError([\`\${call}: expected an object of buffers, sizes and params, got \${describe(args)}\`]);
  }
}

function checkEncoder(call«: string», encoder«: unknown»)«: void» {
  const e = encoder «as { beginComputePass?: unknown } | null»;
  if (typeof e !== 'object' || e === null || typeof e.beginComputePass !== 'function') {
    throw new KernelInputError([\`\${call}: expected a GPUCommandEncoder, got \${describe(encoder)}\`]);
  }
}

/**
 * The caller's GPUBuffers: each must be one (with STORAGE usage, unmapped, large enough, a multiple
 * of 4 bytes as storage bindings need), and an output may not also be bound as another argument
 * (a writable binding may not alias). Dawn would only log these at submit, after encode returned.
 */
function checkGpuBuffers(args«: Record<string, unknown>», r«: Resolved»)«: void» {
  const issues«: string[]» = [];
  const names = bindings.filter((b) => isInput(b.role) || isOutput(b.role)).map((b) => b.name);
  unknownKeys('argument', args, [...names, ...launchKeys], issues);
  for (const b of bindings) {
    if (!isInput(b.role) && !isOutput(b.role)) continue;
    const buf = args[b.name] «as { size?: unknown; usage?: unknown; mapState?: unknown } | undefined»;
    const shape = shapeText(b, r.shapes[b.name]«!»);
    const need = Math.max(4, Math.ceil((count(r.shapes[b.name]«!») * elementBytes(b)) / 4) * 4);
    if (typeof buf !== 'object' || buf === null || typeof buf.size !== 'number' || typeof buf.usage !== 'number') {
      issues.push(\`buffer "\${b.name}": expected a GPUBuffer holding \${shape}, got \${describe(buf)}\`);
      continue;
    }
    if ((buf.usage & STORAGE) === 0) {
      issues.push(\`buffer "\${b.name}": the GPUBuffer lacks STORAGE usage (usage 0x\${buf.usage.toString(16)}); create it with GPUBufferUsage.STORAGE\`);
    }
    if (buf.mapState !== undefined && buf.mapState !== 'unmapped') {
      issues.push(\`buffer "\${b.name}": the GPUBuffer is \${String(buf.mapState)}; unmap it before encoding\`);
    }
    if (buf.size < need) {
      issues.push(\`buffer "\${b.name}": \${shape} needs \${need} bytes, the GPUBuffer has \${buf.size}\`);
    } else if (buf.size % 4 !== 0) {
      issues.push(\`buffer "\${b.name}": storage bindings need a size that is a multiple of 4, the GPUBuffer has \${buf.size} bytes\`);
    }
  }
  for (const b of bindings) {
    if (!isOutput(b.role)) continue;
    const twin = names.find((n) => n !== b.name && args[n] === args[b.name] && args[n] !== undefined);
    if (twin !== undefined) issues.push(\`buffer "\${b.name}": the same GPUBuffer is passed as "\${twin}"; an output needs a buffer of its own\`);
  }
  if (issues.length > 0) throw new KernelInputError(issues);
}
`;

export const cdivSource = `
/** Ceiling division of the shape and grid expressions (sizes are non-negative integers). */
function cdiv(a«: number», b«: number»)«: number» {
  if (!(b > 0)) throw new KernelInputError([\`cdiv(\${a}, \${b}): the divisor must be positive\`]);
  return Math.ceil(a / b);
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
