// Checks run inputs against an artifact before anything reaches the GPU: sizes, every buffer's
// typed-array kind and length, params and offsets. All problems are reported at once, each naming
// the buffer (or param) and the expected vs actual shape/dtype.
import type { Artifact, Binding } from '../codegen/artifact.js';
import { describeValue, isI32, paramProblem, paramWord, positionProblem, spanProblem } from './params.js';
import { evalShapeExpr, ShapeExprError, type ShapeEnv } from './shape-expr.js';
import type { QuantCache } from '../quant/layout.js';
import { quantPoolPages, resolveKvRows, type KvCacheInput, type ResolvedKvRows } from './kv-rows.js';

/**
 * The host data of an input binding: a tensor param, a cache part (quantized k/v: f16/bf16
 * parts as their Uint16Array bits), or q / k / v.
 */
export function bindingData(b: Binding, inputs: RunInputs): unknown {
  if (b.role === 'tensor') return inputs.tensors?.[b.name];
  if (b.role === 'block_table') return inputs.kvCache?.blockTable;
  if (b.part !== undefined) {
    const held = inputs.caches?.[b.role as 'k' | 'v']?.[b.part];
    return held === undefined || ArrayBuffer.isView(held) ? held : held.data;
  }
  return inputs[b.role as 'q' | 'k' | 'v'];
}

export interface RunInputs {
  /** [B, H, Nq, D]: Float32Array for f32 kernels, Uint16Array of f16 bits for f16 kernels. */
  q: Float32Array | Uint16Array;
  /** [B, Hkv, Nk, D]. */
  k: Float32Array | Uint16Array;
  /** [B, Hkv, Nk, Dv]. */
  v: Float32Array | Uint16Array;
  B: number;
  /** Query heads. */
  H: number;
  Hkv: number;
  Nq: number;
  Nk: number;
  /**
   * Kernels whose k and/or v are quantized caches (`store`): the cache's tensors (src/quant
   * QuantCache, e.g. from `quantize`); that cache's `k` / `v` array above is then not read (pass
   * an empty Float32Array).
   */
  caches?: { k?: QuantCache; v?: QuantCache };
  /** Tensor params by name: Int32Array for i32 tensors, Float32Array for f32 ones. */
  tensors?: Record<string, Int32Array | Float32Array>;
  /** Scalar params by name; params with a default may be left out. */
  params?: Record<string, number | boolean>;
  /**
   * Where the float K/V rows live (docs/LANGUAGE.md "Paged and strided caches"): element strides
   * of k and v, and a paged kernel's block table. Absent: packed [B, Hkv, Nk, W] (paged: HND
   * pages). With strides, `k` / `v` are the whole caches, of any length the strides stay inside.
   */
  kvCache?: KvCacheInput;
  /** Position of query row 0 (default Nk − Nq). */
  qOffset?: number;
  /** Position of key row 0 (default 0). */
  kOffset?: number;
  /** Score scale (default 1/sqrt(D), rounded to f32). */
  scale?: number;
}

export interface ResolvedRun {
  readonly sizes: Readonly<{
    B: number;
    H: number;
    Hkv: number;
    Nq: number;
    Nk: number;
    D: number;
    Dv: number;
  }>;
  /** Sizes and int params: the environment of the artifact's shape expressions. */
  readonly env: ShapeEnv;
  readonly qOffset: number;
  readonly kOffset: number;
  /** f32-rounded. */
  readonly scale: number;
  /** Every param's value (bools as 0/1). */
  readonly params: ReadonlyMap<string, number>;
  /** Evaluated shape of every binding but the uniforms (a float K/V cache: [its length]). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** K/V row addressing: the stride and max_pages uniforms, each float cache's layout. */
  readonly kv: ResolvedKvRows;
}

export class InputError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(issues.length === 1 ? issues[0] : `invalid inputs:\n  ${issues.join('\n  ')}`);
    this.name = 'InputError';
  }
}

/** codegen/wgsl/routing-sort.ts SORT_MAX (not imported: the runtime stays free of codegen code). */
const ROUTE_SORT_MAX = 4096;
const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function kindOf(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (ArrayBuffer.isView(x))
    return `${x.constructor.name} of ${(x as unknown as ArrayLike<number>).length} elements`;
  if (Array.isArray(x)) return `a plain Array of ${x.length} elements`;
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

function checkSizes(inputs: RunInputs): string[] {
  const issues: string[] = [];
  for (const name of ['B', 'H', 'Hkv', 'Nq', 'Nk'] as const) {
    const v: unknown = inputs[name];
    const min = name === 'H' || name === 'Hkv' ? 1 : 0;
    if (!isI32(v) || v < min) issues.push(`size ${name}: expected an integer ≥ ${min}, got ${String(v)}`);
  }
  if (issues.length === 0 && inputs.H % inputs.Hkv !== 0) {
    issues.push(
      `sizes: H (${inputs.H}) must be a multiple of Hkv (${inputs.Hkv}) (query head h reads kv head h / (H / Hkv))`,
    );
  }
  return issues;
}

function resolveParams(artifact: Artifact, inputs: RunInputs, issues: string[]): Map<string, number> {
  const out = new Map<string, number>();
  const raw: unknown = inputs.params;
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw)))
    issues.push(`params: expected an object of param values, got ${describeValue(raw)}`);
  const given = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!artifact.params.some((p) => p.name === name)) {
      const known = artifact.params.map((p) => p.name).join(', ') || 'none';
      issues.push(`param "${name}": the kernel has no such param (params: ${known})`);
    }
  }
  for (const p of artifact.params) {
    const fromCaller = given[p.name] !== undefined;
    const v: unknown = fromCaller ? given[p.name] : p.default;
    if (v === undefined) {
      issues.push(`param "${p.name}": missing (${p.dtype}, no default)`);
      continue;
    }
    // Declared bool defaults are stored as 0/1.
    const value = !fromCaller && p.dtype === 'bool' ? v === 1 : v;
    const problem = paramProblem(p.name, p.dtype, value);
    if (problem) issues.push(problem);
    else out.set(p.name, paramWord(p.dtype, value as number | boolean));
  }
  return out;
}

/** Why the q/k/v length is off, when it looks like a head-dim mismatch. */
function headDimHint(len: number, lead: number, D: number): string {
  if (lead <= 0 || len % lead !== 0 || len / lead === D) return '';
  return ` (that is a head dim of ${len / lead}; this kernel was compiled for ${D})`;
}

/** Validates `inputs` for `artifact`; throws one InputError listing every problem. */
export function validateRun(artifact: Artifact, inputs: RunInputs): ResolvedRun {
  if (artifact.target !== 'wgsl')
    throw new InputError([`artifact "${artifact.name}" targets ${artifact.target}, not wgsl`]);
  const sizeIssues = checkSizes(inputs);
  if (sizeIssues.length) throw new InputError(sizeIssues);
  const issues: string[] = [];
  const params = resolveParams(artifact, inputs, issues);
  const D = artifact.schedule.headDim;
  const Dv = artifact.schedule.valueDim;
  const sizes = { B: inputs.B, H: inputs.H, Hkv: inputs.Hkv, Nq: inputs.Nq, Nk: inputs.Nk, D, Dv };
  const env: Record<string, number> = { ...sizes };
  for (const p of artifact.params)
    if (p.dtype === 'i32' && params.has(p.name)) env[p.name] = params.get(p.name)!;
  const lengthOf = (x: unknown): number =>
    ArrayBuffer.isView(x) ? (x as unknown as ArrayLike<number>).length : 0;
  const kv = resolveKvRows(
    artifact,
    inputs.kvCache,
    sizes,
    { k: lengthOf(inputs.k), v: lengthOf(inputs.v) },
    issues,
  );
  if (kv.maxPages !== undefined) env.max_pages = kv.maxPages;
  // A paged quantized cache's pool (`pages` in its shapes): its size from its codes (kv-rows.ts).
  const pages = quantPoolPages(
    artifact,
    (b) => bindingData(b, inputs),
    (b) => {
      try {
        return b.shape.slice(1).reduce<number>((n, e) => n * evalShapeExpr(e, env), 1);
      } catch {
        return undefined;
      }
    },
    inputs,
    inputs.kvCache ?? {},
    issues,
  );
  if (pages !== undefined) env.pages = pages;
  // A float cache addressed by strides is as long as the caller's array (kv-rows.ts checked it).
  const strided = (b: Binding): boolean =>
    (b.role === 'k' || b.role === 'v') && b.part === undefined && kv.addressed.has(b.role);

  const shapes = new Map<string, number[]>();
  const rawTensors: unknown = inputs.tensors;
  if (
    rawTensors !== undefined &&
    (typeof rawTensors !== 'object' || rawTensors === null || Array.isArray(rawTensors))
  )
    issues.push(`tensors: expected an object of typed arrays by name, got ${describeValue(rawTensors)}`);
  const tensors = (typeof rawTensors === 'object' && rawTensors !== null ? rawTensors : {}) as Record<
    string,
    Int32Array | Float32Array
  >;
  for (const name of Object.keys(tensors)) {
    if (!artifact.bindings.some((b) => b.role === 'tensor' && b.name === name)) {
      const known = artifact.bindings.filter((b) => b.role === 'tensor').map((b) => b.name);
      issues.push(`tensor "${name}": the kernel has no such tensor (tensors: ${known.join(', ') || 'none'})`);
    }
  }
  for (const b of artifact.bindings) {
    if (b.role === 'uniforms') continue;
    if (b.role === 'block_table') {
      if (kv.maxPages !== undefined) shapes.set(b.name, [inputs.B, kv.maxPages]);
      continue;
    }
    if (strided(b)) {
      const data: unknown = bindingData(b, inputs);
      const kind = arrayKindFor(b.dtype);
      if (data instanceof kind.ctor) shapes.set(b.name, [lengthOf(data)]);
      else
        issues.push(
          `input "${b.name}": expected a ${kind.name}${b.dtype === 'f16' ? ' of f16 bits' : ''} (the cache its strides address), got ${kindOf(data)}`,
        );
      continue;
    }
    let shape: number[];
    try {
      shape = b.shape.map((e) => evalShapeExpr(e, env));
    } catch (e) {
      if (!(e instanceof ShapeExprError)) throw e;
      issues.push(`${b.role === 'tensor' ? 'tensor' : 'buffer'} "${b.name}": ${e.message}`);
      continue;
    }
    if (shape.some((d) => d < 0)) {
      issues.push(`buffer "${b.name}": shape [${b.shape.join(', ')}] evaluates to [${shape.join(', ')}]`);
      continue;
    }
    shapes.set(b.name, shape);
    if (b.role === 'out' || b.role === 'lse' || b.role === 'summary') continue;
    if (b.role === 'scratch' || b.role === 'indices' || b.role === 'importance') continue;
    const data: unknown = b.role === 'tensor' ? tensors[b.name] : bindingData(b, inputs);
    const kind = arrayKindFor(b.dtype);
    const n = product(shape);
    const ok = data instanceof kind.ctor && (data as ArrayLike<number>).length === n;
    if (!ok) {
      const what = b.role === 'tensor' ? 'tensor' : 'input';
      const label = b.part ? `cache tensor caches.${b.role}.${b.part}` : `${what} "${b.name}"`;
      const as = b.dtype === 'f16' || b.dtype === 'bf16' ? `, as a Uint16Array of ${b.dtype} bits` : '';
      const lead = b.role === 'q' ? inputs.B * inputs.H * inputs.Nq : inputs.B * inputs.Hkv * inputs.Nk;
      const hint =
        b.role !== 'tensor' && b.part === undefined && ArrayBuffer.isView(data)
          ? headDimHint((data as unknown as ArrayLike<number>).length, lead, b.role === 'v' ? Dv : D)
          : '';
      issues.push(
        `${label}: expected ${b.dtype}[${shape.join(', ')}] (${n} elements${as}), got ${kindOf(data)}${hint}`,
      );
    }
  }

  // Only undefined means "the default": a null is a value, and refused like any other non-integer.
  const qOffset = inputs.qOffset === undefined ? inputs.Nk - inputs.Nq : inputs.qOffset;
  const kOffset = inputs.kOffset === undefined ? 0 : inputs.kOffset;
  const positionProblems = (
    [
      ['qOffset', qOffset, inputs.Nq, 'Nq'],
      ['kOffset', kOffset, inputs.Nk, 'Nk'],
    ] as const
  ).flatMap(([what, offset, rows, rowsName]) => {
    const problem = isI32(offset)
      ? positionProblem(what, offset, rows, rowsName)
      : `${what}: expected an i32 (integer), got ${String(offset)}`;
    return problem ? [problem] : [];
  });
  issues.push(...positionProblems);
  // The span is only meaningful once both offsets are valid positions.
  const span = positionProblems.length ? undefined : spanProblem(qOffset, inputs.Nq, kOffset, inputs.Nk);
  if (span) issues.push(span);
  // Routed ids are absolute block ids and −1 pads an index row: key positions must be >= 0.
  if (artifact.bindings.some((b) => b.role === 'indices') && kOffset < 0)
    issues.push(`kOffset: routing needs key positions >= 0, got ${kOffset}`);
  // Token selection and `from` sort each index row in workgroup memory (codegen/wgsl/routing-sort.ts).
  const sortCap = artifact.entryPoints.some((e) => e.name === 'route_sort')
    ? shapes.get('indices')?.[3]
    : undefined;
  if (sortCap !== undefined && sortCap > ROUTE_SORT_MAX)
    issues.push(
      `buffer "indices": ${sortCap} ids per row (k + first + local); WGSL selection sorts at most ${ROUTE_SORT_MAX}`,
    );
  const chunkTensor = artifact.entryPoints.find((e) => e.role === 'routing' && e.tensor)?.tensor;
  if (chunkTensor !== undefined && isI32(qOffset) && isI32(kOffset))
    issues.push(...checkChunkIds(chunkTensor, tensors[chunkTensor], inputs, qOffset, kOffset));
  const rawScale: unknown = inputs.scale === undefined ? 1 / Math.sqrt(D) : inputs.scale;
  const scale = typeof rawScale === 'number' ? Math.fround(rawScale) : NaN;
  if (!Number.isFinite(scale))
    issues.push(`scale: expected a finite number within f32 range, got ${describeValue(inputs.scale)}`);
  if (issues.length) throw new InputError(issues);
  return { sizes, env, qOffset, kOffset, scale, params, shapes, kv };
}

/**
 * `route chunks(t)`: t holds the chunk id of each position, so it must be ≥ 0, non-decreasing,
 * and cover every query and key position of the call (docs/LANGUAGE.md, Ids).
 */
function checkChunkIds(
  name: string,
  t: Int32Array | Float32Array | undefined,
  inputs: RunInputs,
  qOffset: number,
  kOffset: number,
): string[] {
  if (!(t instanceof Int32Array)) return []; // the binding check above reports it
  const out: string[] = [];
  const hi = Math.max(qOffset + inputs.Nq, kOffset + inputs.Nk);
  const lo = Math.min(inputs.Nq > 0 ? qOffset : 0, inputs.Nk > 0 ? kOffset : 0);
  if (lo < 0 || hi > t.length)
    out.push(
      `tensor "${name}": chunk ids cover positions [0, ${t.length}), but the call has query positions ` +
        `[${qOffset}, ${qOffset + inputs.Nq}) and key positions [${kOffset}, ${kOffset + inputs.Nk})`,
    );
  for (let p = 0; p < t.length; p++) {
    const id = t[p]!;
    if (id < 0) {
      out.push(`tensor "${name}": chunk id ${id} at position ${p} is negative`);
      break;
    }
    if (p > 0 && id < t[p - 1]!) {
      out.push(
        `tensor "${name}": chunk ids must be non-decreasing, but ${t[p - 1]} at ${p - 1} > ${id} at ${p}`,
      );
      break;
    }
  }
  return out;
}
