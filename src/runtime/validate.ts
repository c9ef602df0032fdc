// Checks run inputs against an artifact before anything reaches the GPU: sizes, every buffer's
// typed-array kind and length, params and offsets. All problems are reported at once, each naming
// the buffer (or param) and the expected vs actual shape/dtype.
import type { Artifact } from '../codegen/artifact.js';
import { declaredDefault, describeValue, isI32, paramProblem, paramWord } from './params.js';
import { evalShapeExpr, type ShapeEnv } from './shape-expr.js';
import { bindingData, bindingShapes, lengthOf, userTensors } from './validate-bindings.js';
import { checkPositions, checkScale } from './validate-positions.js';

export { arrayKindFor, bindingData } from './validate-bindings.js';
import type { QuantCache } from '../quant/layout.js';
import { quantPoolPages, resolveKvRows, type KvCacheInput, type ResolvedKvRows } from './kv-rows.js';

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
    const value: unknown = fromCaller ? given[p.name] : declaredDefault(p);
    if (value === undefined) {
      issues.push(`param "${p.name}": missing (${p.dtype}, no default)`);
      continue;
    }
    const problem = paramProblem(p.name, p.dtype, value);
    if (problem) issues.push(problem);
    else out.set(p.name, paramWord(p.dtype, value as number | boolean));
  }
  return out;
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
  const kv = kvRowsOf(artifact, inputs, sizes, env, issues);
  const tensors = userTensors(artifact, inputs.tensors, issues);
  const shapes = bindingShapes(artifact, inputs, tensors, { env, kv, D, Dv }, issues);
  const { qOffset, kOffset } = checkPositions(artifact, inputs, tensors, shapes, issues);
  const scale = checkScale(inputs.scale, D, issues);
  if (issues.length) throw new InputError(issues);
  return { sizes, env, qOffset, kOffset, scale, params, shapes, kv };
}

/** K/V row addressing (strides, max_pages) and a paged quantized pool's pages, into `env`. */
function kvRowsOf(
  artifact: Artifact,
  inputs: RunInputs,
  sizes: ResolvedRun['sizes'],
  env: Record<string, number>,
  issues: string[],
): ResolvedKvRows {
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
  return kv;
}
