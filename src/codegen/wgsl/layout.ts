// The binding and uniform layout of a WGSL attention artifact: which buffers exist, at which
// @binding index, with what dtype and shape expression, and the uniform struct's fields. Kept apart
// from the code text so the runtime and engines can rely on it without parsing WGSL.
import { hasQuantizedKv, type TensorFormat, type TensorFormats } from '../../ir/formats.js';
import type { AttentionKernel, ShapeDim, TensorSlot } from '../../ir/kernel.js';
import {
  capacityShapeExpr,
  isPoolRank,
  routingGroups,
  routingPasses,
  type RoutingPlan,
} from '../../ir/routing.js';
import type { Binding, ShapeExpr, UniformField } from '../artifact.js';
import { kvRowFunctions } from './kv-load.js';
import { feature, loaded, type QuantizedKv, type WgslFeatures } from './features.js';
import { paramField, summaryVar, tensorVar } from './rules.js';

/** Fields every kernel's uniform struct starts with, before the params. */
export const fixedUniforms = [
  ['q_offset', 'i32'],
  ['k_offset', 'i32'],
  ['scale', 'f32'],
  ['B', 'i32'],
  ['H', 'i32'],
  ['Hkv', 'i32'],
  ['Nq', 'i32'],
  ['Nk', 'i32'],
] as const;

/**
 * The uniforms that address K/V rows (kv-load.ts): each float K/V tensor's element strides per
 * batch (a paged cache: per page), kv head and row, and a paged cache's `max_pages` (block
 * table columns). A quantized cache is read at its packed layout and has none.
 */
export function kvUniformNames(f: TensorFormats): string[] {
  const out: string[] = [];
  for (const w of ['k', 'v'] as const)
    if (f[w].kind === 'float') out.push(`${w}_stride_b`, `${w}_stride_h`, `${w}_stride_n`);
  if (f.paged) out.push('max_pages');
  return out;
}

export interface WgslLayout {
  readonly bindings: readonly Binding[];
  readonly uniforms: readonly UniformField[];
  /** WGSL variable name of each binding (by binding name). */
  readonly vars: ReadonlyMap<string, string>;
}

export const summaryBinding = (tensor: string): string => `${tensor}_summary`;

export function shapeDimExpr(d: ShapeDim): ShapeExpr {
  return d.kind === 'literal' ? String(d.value) : d.name;
}

/** Number of summary blocks of a 1-D tensor, as a shape expression. */
export function summaryBlocksExpr(t: TensorSlot, block: number): ShapeExpr {
  return `cdiv(${shapeDimExpr(t.dims[0]!)}, ${block})`;
}

/** Appends a binding (the next index) and its WGSL variable. */
type AddBinding = (b: Omit<Binding, 'index'>, wgslVar: string) => void;

/** The layout of `kernel`; the routing feature (features.ts) sizes a routing kernel's scratch. */
export function wgslLayout(kernel: AttentionKernel, features: Partial<WgslFeatures>): WgslLayout {
  const f = kernel.formats;
  const storage = (t: TensorFormat): 'f16' | 'f32' => (t.dtype === 'f16' ? 'f16' : 'f32');
  // A quantized cache binds its codes as k/v and its side tensors after them.
  const kvBinding = (which: 'k' | 'v', t: TensorFormat, width: string): void => {
    if (t.kind === 'quant') {
      const quant = feature(features, 'quantize');
      add(quant.codesBinding(which, t.format, f.paged?.pageSize), `${which}_buf`);
      for (const p of quant.partBindings(which, t.format, f.paged?.pageSize)) add(p.binding, p.wgslVar);
      return;
    }
    add(
      { name: which, role: which, dtype: storage(t), shape: ['B', 'Hkv', 'Nk', width], access: 'read' },
      `${which}_buf`,
    );
  };
  const bindings: Binding[] = [];
  const vars = new Map<string, string>();
  const add: AddBinding = (b, wgslVar) => {
    if (vars.has(b.name)) {
      throw new Error(`WGSL: binding name "${b.name}" is used twice; rename the tensor "${b.name}"`);
    }
    bindings.push({ ...b, index: bindings.length });
    vars.set(b.name, wgslVar);
  };
  add({ name: 'q', role: 'q', dtype: storage(f.q), shape: ['B', 'H', 'Nq', 'D'], access: 'read' }, 'q_buf');
  kvBinding('k', f.k, 'D');
  kvBinding('v', f.v, 'Dv');
  // Salient index lists (of quantized caches): the flags their pre-pass scatters them into (salient-list.ts).
  const quant = hasQuantizedKv(f) ? feature(features, 'quantize') : undefined;
  if (quant)
    for (const t of quant.wgslSalientLists(kernel))
      add(quant.salientFlagsBinding(t), quant.salientFlagsVar(t));
  add(
    { name: 'out', role: 'out', dtype: storage(f.out), shape: ['B', 'H', 'Nq', 'Dv'], access: 'read_write' },
    'out_buf',
  );
  if (f.paged) {
    // `cache paged N`: K and V share one block table (kv-load.ts kvRowFunctions reads it).
    const shape = ['B', 'max_pages'];
    add({ name: 'block_table', role: 'block_table', dtype: 'i32', shape, access: 'read' }, 'block_table');
  }
  if (kernel.outputs.lse) {
    add({ name: 'lse', role: 'lse', dtype: 'f32', shape: ['B', 'H', 'Nq'], access: 'read_write' }, 'lse_buf');
  }
  if (kernel.outputs.importance) {
    const shape = ['B', 'H', 'Nk'];
    add(
      { name: 'importance', role: 'importance', dtype: 'f32', shape, access: 'read_write' },
      'importance_buf',
    );
  }
  for (const t of kernel.tensors) {
    const shape = t.dims.map(shapeDimExpr);
    add({ name: t.name, role: 'tensor', dtype: t.dtype, shape, access: 'read' }, tensorVar(t.name));
  }
  addSummaries(kernel, add);
  if (kernel.routing) addRouting(kernel.routing, feature(features, 'routing'), add);
  const uniforms = uniformFields(kernel);
  const words = String(uniforms.length);
  add({ name: 'uniforms', role: 'uniforms', dtype: 'u32', shape: [words], access: 'read' }, 'u');
  return { bindings, uniforms, vars };
}

/** Per-block (min, max) summaries of the tensors tile classification reads. */
function addSummaries(kernel: AttentionKernel, add: AddBinding): void {
  for (const { tensor } of kernel.summaries) {
    const t = kernel.tensors.find((x) => x.name === tensor);
    if (!t) throw new Error(`WGSL: summary of "${tensor}", which the kernel does not declare as a tensor`);
    if (t.dims.length !== 1) {
      throw new Error(`WGSL: tile summaries need a 1-D tensor; "${tensor}" has ${t.dims.length} dims`);
    }
    // Two values per block: min then max.
    const shape = [summaryBlocksExpr(t, kernel.schedule.summaryBlock), '2'];
    add(
      { name: summaryBinding(tensor), role: 'summary', dtype: t.dtype, shape, access: 'read_write' },
      summaryVar(tensor),
    );
  }
}

/** Block routing's scratch (pooled blocks or the radix select's state) and its indices output. */
function addRouting(r: RoutingPlan, routing: WgslFeatures['routing'], add: AddBinding): void {
  const cap = capacityShapeExpr(r);
  if (cap === undefined) throw new Error('WGSL: the routing counts are not shape expressions');
  // Pooled blocks (block top-k) or the radix select's atomic state (token select); `from` needs none.
  if (isPoolRank(r)) {
    const scratch = routing.routingScratchShape(r);
    add(
      { name: 'route_pool', role: 'scratch', dtype: 'f32', shape: [scratch], access: 'read_write' },
      'route_pool',
    );
  } else if (routingPasses(r) === 'token-select') {
    const shape = [routing.selectStateShape(r)];
    add({ name: 'route_state', role: 'scratch', dtype: 'u32', shape, access: 'read_write' }, 'route_state');
  }
  add(
    {
      name: 'indices',
      role: 'indices',
      dtype: 'i32',
      shape: ['B', routingGroups(r), 'Nq', cap],
      access: 'read_write',
    },
    'route_indices',
  );
}

/** The uniform words: the fixed ones, the K/V strides, then the kernel's params. */
function uniformFields(kernel: AttentionKernel): UniformField[] {
  const uniforms: UniformField[] = [];
  for (const [name, dtype] of fixedUniforms) uniforms.push({ name, dtype, offset: 4 * uniforms.length });
  for (const name of kvUniformNames(kernel.formats))
    uniforms.push({ name, dtype: 'u32', offset: 4 * uniforms.length });
  for (const p of kernel.params) {
    if (uniforms.some((f) => f.name === p.name)) {
      throw new Error(`WGSL: param "${p.name}" clashes with the built-in uniform of the same name`);
    }
    const dtype = p.dtype === 'bool' ? 'u32' : p.dtype;
    uniforms.push({ name: p.name, dtype, offset: 4 * uniforms.length });
  }
  return uniforms;
}

/** Scratch bindings that passes update with atomics (token selection's radix state). */
const atomicBindings: ReadonlySet<string> = new Set(['route_state']);

/** The WGSL element type of a storage binding. */
function elementType(b: Binding): string {
  if (atomicBindings.has(b.name)) return `atomic<${b.dtype}>`;
  // A quantized cache's 16-bit side tensors are bound as u32 words holding two halves (dequant.ts).
  return b.part !== undefined && b.dtype !== 'f32' ? 'u32' : b.dtype;
}

/** The WGSL declarations of the layout: the uniform struct and one variable per binding. */
export function layoutSource(
  kernel: AttentionKernel,
  layout: WgslLayout,
  quant: QuantizedKv | undefined,
): string {
  const params = new Set(kernel.params.map((p) => p.name));
  const fields = layout.uniforms.map(
    (f) => `  ${params.has(f.name) ? paramField(f.name) : f.name}: ${f.dtype},`,
  );
  const lines = ['struct Uniforms {', ...fields, '}', ''];
  for (const b of layout.bindings) {
    const v = layout.vars.get(b.name)!;
    const decl =
      b.role === 'uniforms'
        ? `var<uniform> ${v}: Uniforms;`
        : `var<storage, ${b.access}> ${v}: array<${elementType(b)}>;`;
    lines.push(`@group(0) @binding(${b.index}) ${decl} // ${b.name}: ${b.dtype}[${b.shape.join(', ')}]`);
  }
  lines.push(...dequantSource(kernel, quant), ...kvRowFunctions(kernel.formats));
  return lines.join('\n');
}

/** The dequantizing functions of a kernel's quantized caches (features.ts); none for float ones. */
function dequantSource(kernel: AttentionKernel, quant: QuantizedKv | undefined): string[] {
  if (!hasQuantizedKv(kernel.formats)) return [];
  const q = loaded(quant, 'quantize');
  // The coop engine reads K/V as vec4s: its modules also get the four-channel dequant functions.
  const vec4 = kernel.schedule.wgslEngine === 'coop' ? q.dequantVec4Functions(kernel.formats) : [];
  return [...q.dequantFunctions(kernel.formats), ...vec4];
}
