// The buffer checks of validate.ts: each binding's shape evaluated, and the caller's typed array
// checked against it (kind and length), naming the buffer, its expected dtype[shape] and what came.
import type { Artifact, Binding } from '../codegen/artifact.js';
import { describeValue } from './params.js';
import { evalShapeExpr, ShapeExprError } from './shape-expr.js';
import type { ResolvedKvRows } from './kv-rows.js';
import type { RunInputs } from './validate.js';

/** The caller's user tensors by name. */
export type UserTensors = Record<string, Int32Array | Float32Array>;

/**
 * The host data of an input binding: a tensor param, a cache part (quantized k/v: f16/bf16
 * parts as their Uint16Array bits), or q / k / v.
 */
export function bindingData(b: Binding, inputs: RunInputs): unknown {
  if (b.role === 'tensor') return inputs.tensors?.[b.name];
  if (b.role === 'block_table') return inputs.kvCache?.blockTable;
  if (b.part !== undefined) {
    const held: unknown = inputs.caches?.[b.role as 'k' | 'v']?.[b.part];
    // A StoredFloats { dtype, data } holds its array; anything else (null, a plain Array) is
    // described as given (reading .data of it threw, or said "undefined").
    const stored = typeof held === 'object' && held !== null && !ArrayBuffer.isView(held) && 'data' in held;
    return stored ? held.data : held;
  }
  return inputs[b.role as 'q' | 'k' | 'v'];
}

export const lengthOf = (x: unknown): number =>
  ArrayBuffer.isView(x) ? (x as unknown as ArrayLike<number>).length : 0;
const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function kindOf(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (ArrayBuffer.isView(x))
    return `${x.constructor.name} of ${(x as unknown as ArrayLike<number>).length} elements`;
  if (Array.isArray(x)) return `a plain Array of ${x.length} elements`;
  const buf = x as { size?: unknown; usage?: unknown };
  // A GPUBuffer (by shape: Dawn's have no global class in Node) read "got object".
  if (typeof x === 'object' && typeof buf.size === 'number' && typeof buf.usage === 'number')
    return `a GPUBuffer of ${buf.size} bytes (run() takes host arrays; an emitted module's encode or prepare takes GPUBuffers)`;
  return typeof x;
}

/** The typed array a binding's data must come in. */
export function arrayKindFor(dtype: Binding['dtype']): {
  name: string;
  ctor: new (n: number) => ArrayLike<number>;
} {
  switch (dtype) {
    case 'f32':
      return { name: 'Float32Array', ctor: Float32Array };
    case 'f16':
    case 'bf16':
      return { name: 'Uint16Array', ctor: Uint16Array };
    case 'u32':
      return { name: 'Uint32Array', ctor: Uint32Array };
    case 'i32':
      return { name: 'Int32Array', ctor: Int32Array };
    default:
      throw new Error(`no host array kind for ${dtype} bindings`);
  }
}

/** Why the q/k/v length is off, when it looks like a head-dim mismatch. */
function headDimHint(len: number, lead: number, D: number): string {
  if (lead <= 0 || len % lead !== 0 || len / lead === D) return '';
  return ` (that is a head dim of ${len / lead}; this kernel was compiled for ${D})`;
}

/** `inputs.tensors` as an object (an issue where it is none), each name one the kernel declares. */
export function userTensors(artifact: Artifact, rawTensors: unknown, issues: string[]): UserTensors {
  if (
    rawTensors !== undefined &&
    (typeof rawTensors !== 'object' || rawTensors === null || Array.isArray(rawTensors))
  )
    issues.push(`tensors: expected an object of typed arrays by name, got ${describeValue(rawTensors)}`);
  const tensors = (typeof rawTensors === 'object' && rawTensors !== null ? rawTensors : {}) as UserTensors;
  for (const name of Object.keys(tensors)) {
    if (!artifact.bindings.some((b) => b.role === 'tensor' && b.name === name)) {
      const known = artifact.bindings.filter((b) => b.role === 'tensor').map((b) => b.name);
      issues.push(`tensor "${name}": the kernel has no such tensor (tensors: ${known.join(', ') || 'none'})`);
    }
  }
  return tensors;
}

/** What the binding checks read besides the inputs: the shape environment and K/V addressing. */
export interface BindingContext {
  readonly env: Record<string, number>;
  readonly kv: ResolvedKvRows;
  readonly D: number;
  readonly Dv: number;
}

/** The names a shape expression may use that are not params (validate.ts builds `env`). */
const SHAPE_SIZES: ReadonlySet<string> = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D', 'Dv', 'max_pages']);

/**
 * A shape with a negative dimension, naming the params in it: `--param top=-1` was reported as
 * `buffer "indices": shape [B, H, Nq, top + 0 + 0] evaluates to [1, 4, 100, -1]`, an internal
 * buffer the caller never passes, with no word of `top`.
 */
function negativeShapeIssue(b: Binding, shape: readonly number[], env: Record<string, number>): string {
  const text = `buffer "${b.name}": shape [${b.shape.join(', ')}] evaluates to [${shape.join(', ')}]`;
  const negative = b.shape.filter((_, i) => shape[i]! < 0);
  const words = negative.flatMap((e) => String(e).match(/[A-Za-z_]\w*/g) ?? []);
  const params = [...new Set(words)].filter((w) => !SHAPE_SIZES.has(w) && Object.hasOwn(env, w));
  if (params.length === 0) return text;
  const values = params.map((p) => `${p} = ${env[p]}`).join(', ');
  return `${text}: param${params.length > 1 ? 's' : ''} ${values} make${params.length > 1 ? '' : 's'} a dimension negative`;
}

/** Every binding's evaluated shape but the uniforms (a float K/V cache addressed by strides: [its length]). */
export function bindingShapes(
  artifact: Artifact,
  inputs: RunInputs,
  tensors: UserTensors,
  cx: BindingContext,
  issues: string[],
): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const b of artifact.bindings) checkBinding(b, inputs, tensors, cx, shapes, issues);
  return shapes;
}

/** One binding: its shape into `shapes`, and the caller's data checked against it. */
function checkBinding(
  b: Binding,
  inputs: RunInputs,
  tensors: UserTensors,
  { env, kv, D, Dv }: BindingContext,
  shapes: Map<string, number[]>,
  issues: string[],
): void {
  // A float cache addressed by strides is as long as the caller's array (kv-rows.ts checked it).
  const strided = (b.role === 'k' || b.role === 'v') && b.part === undefined && kv.addressed.has(b.role);
  if (b.role === 'uniforms') return;
  if (b.role === 'block_table') {
    if (kv.maxPages !== undefined) shapes.set(b.name, [inputs.B, kv.maxPages]);
    return;
  }
  if (strided) {
    const data: unknown = bindingData(b, inputs);
    const kind = arrayKindFor(b.dtype);
    if (data instanceof kind.ctor) shapes.set(b.name, [lengthOf(data)]);
    else
      issues.push(
        `input "${b.name}": expected a ${kind.name}${b.dtype === 'f16' ? ' of f16 bits' : ''} (the cache its strides address), got ${kindOf(data)}`,
      );
    return;
  }
  let shape: number[];
  try {
    shape = b.shape.map((e) => evalShapeExpr(e, env));
  } catch (e) {
    if (!(e instanceof ShapeExprError)) throw e;
    issues.push(`${b.role === 'tensor' ? 'tensor' : 'buffer'} "${b.name}": ${e.message}`);
    return;
  }
  if (shape.some((d) => d < 0)) {
    issues.push(negativeShapeIssue(b, shape, env));
    return;
  }
  shapes.set(b.name, shape);
  if (b.role === 'out' || b.role === 'lse' || b.role === 'summary') return;
  if (b.role === 'scratch' || b.role === 'indices' || b.role === 'importance') return;
  const data: unknown = b.role === 'tensor' ? tensors[b.name] : bindingData(b, inputs);
  const problem = dataProblem(b, data, shape, inputs, b.role === 'v' ? Dv : D);
  if (problem) issues.push(problem);
}

/** Why `data` is not the typed array of `shape` binding `b` needs (undefined when it is). */
function dataProblem(
  b: Binding,
  data: unknown,
  shape: readonly number[],
  inputs: RunInputs,
  width: number,
): string | undefined {
  const kind = arrayKindFor(b.dtype);
  const n = product(shape);
  if (data instanceof kind.ctor && (data as ArrayLike<number>).length === n) return undefined;
  const what = b.role === 'tensor' ? 'tensor' : 'input';
  const label = b.part ? `cache tensor caches.${b.role}.${b.part}` : `${what} "${b.name}"`;
  const as = b.dtype === 'f16' || b.dtype === 'bf16' ? `, as a Uint16Array of ${b.dtype} bits` : '';
  const lead = b.role === 'q' ? inputs.B * inputs.H * inputs.Nq : inputs.B * inputs.Hkv * inputs.Nk;
  const hint =
    b.role !== 'tensor' && b.part === undefined && ArrayBuffer.isView(data)
      ? headDimHint((data as unknown as ArrayLike<number>).length, lead, width)
      : '';
  return `${label}: expected ${b.dtype}[${shape.join(', ')}] (${n} elements${as}), got ${kindOf(data)}${hint}`;
}
