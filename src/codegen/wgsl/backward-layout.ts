// The binding and uniform layout of a WGSL backward module (backward.ts): inputs q k v out lse
// dout and the kernel's tensors, outputs dq dk dv, the per-row delta (∂L/∂lse on entry, zeros
// when none flows into lse; Σ dO·O − ∂L/∂lse after bwd_dq), and one
// atomic f32-as-u32 gradient buffer for the f32 params (one slot each) and per f32 tensor the
// score reads. Kept apart from the code text, as the forward's layout.ts is.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { ScoreGradient } from '../../ir/derive.js';
import type { ShapeExpr } from '../artifact.js';
import { fixedUniforms, shapeDimExpr, summaryBinding, summaryBlocksExpr } from './layout.js';
import { paramField, summaryVar } from './rules.js';

export type BackwardRole =
  | 'q'
  | 'k'
  | 'v'
  | 'out'
  | 'lse'
  | 'dout'
  | 'dq'
  | 'dk'
  | 'dv'
  | 'delta'
  | 'tensor'
  | 'grad_params'
  | 'grad_tensor'
  | 'summary'
  | 'uniforms';

export interface BackwardBinding {
  readonly name: string;
  readonly index: number;
  readonly role: BackwardRole;
  /** Element type in memory; gradient buffers hold f32 bits in atomic u32 words. */
  readonly dtype: 'f32' | 'i32' | 'u32';
  readonly shape: readonly ShapeExpr[];
  readonly access: 'read' | 'read_write';
  /** The WGSL variable. */
  readonly wgslVar: string;
  /** A tile summary: [min, max] per block of `block` positions of 1-D `tensor`. */
  readonly summaryOf?: { readonly tensor: string; readonly block: number };
}

export interface BackwardUniform {
  readonly name: string;
  readonly dtype: 'i32' | 'f32' | 'u32';
  readonly offset: number;
}

const fixed = fixedUniforms;

export const gradTensorVar = (name: string): string => `grad_t_${name}`;

type AddBinding = (b: Omit<BackwardBinding, 'index'>) => void;

/** The kernel's tensors and the summaries the forward's tile classes read (as the forward binds them). */
function addTensors(kernel: AttentionKernel, add: AddBinding): void {
  for (const t of kernel.tensors)
    add({
      name: t.name,
      role: 'tensor',
      dtype: t.dtype,
      shape: t.dims.map(shapeDimExpr),
      access: 'read',
      wgslVar: `t_${t.name}`,
    });
  for (const { tensor } of kernel.summaries) {
    const t = kernel.tensors.find((x) => x.name === tensor)!;
    const block = kernel.schedule.summaryBlock;
    add({
      name: summaryBinding(tensor),
      role: 'summary',
      dtype: t.dtype,
      shape: [summaryBlocksExpr(t, block), '2'],
      access: 'read_write',
      wgslVar: summaryVar(tensor),
      summaryOf: { tensor, block },
    });
  }
}

/** The gradient outputs: f32 params' (atomic words) and each looked-up tensor's; returns those tensors. */
function addGradients(kernel: AttentionKernel, grad: ScoreGradient, add: AddBinding): string[] {
  add({
    name: 'grad_params',
    role: 'grad_params',
    dtype: 'u32',
    shape: [String(Math.max(1, grad.params.length))],
    access: 'read_write',
    wgslVar: 'grad_params',
  });
  const gradTensors = [...new Set(grad.loads.map((l) => l.tensor))].sort();
  for (const name of gradTensors) {
    const t = kernel.tensors.find((x) => x.name === name)!;
    add({
      name: `grad_${name}`,
      role: 'grad_tensor',
      dtype: 'u32',
      shape: t.dims.map(shapeDimExpr),
      access: 'read_write',
      wgslVar: gradTensorVar(name),
    });
  }
  return gradTensors;
}

export function backwardLayout(
  kernel: AttentionKernel,
  grad: ScoreGradient,
): { bindings: BackwardBinding[]; uniforms: BackwardUniform[]; gradTensors: string[] } {
  const bindings: BackwardBinding[] = [];
  const add: AddBinding = (b) => {
    if (bindings.some((x) => x.name === b.name))
      throw new Error(`WGSL backward: binding name "${b.name}" is used twice; rename the tensor "${b.name}"`);
    bindings.push({ ...b, index: bindings.length });
  };
  const rows = ['B', 'H', 'Nq'];
  const keys = ['B', 'Hkv', 'Nk'];
  const f32 = (name: string, role: BackwardRole, shape: ShapeExpr[], rw = false): void =>
    add({ name, role, dtype: 'f32', shape, access: rw ? 'read_write' : 'read', wgslVar: `${name}_buf` });
  f32('q', 'q', [...rows, 'D']);
  f32('k', 'k', [...keys, 'D']);
  f32('v', 'v', [...keys, 'Dv']);
  f32('out', 'out', [...rows, 'Dv']);
  f32('lse', 'lse', rows);
  f32('dout', 'dout', [...rows, 'Dv']);
  f32('dq', 'dq', [...rows, 'D'], true);
  f32('dk', 'dk', [...keys, 'D'], true);
  f32('dv', 'dv', [...keys, 'Dv'], true);
  f32('delta', 'delta', rows, true);
  addTensors(kernel, add);
  const gradTensors = addGradients(kernel, grad, add);
  const uniforms: BackwardUniform[] = fixed.map(([name, dtype], i) => ({ name, dtype, offset: 4 * i }));
  for (const p of kernel.params)
    uniforms.push({ name: p.name, dtype: p.dtype === 'bool' ? 'u32' : p.dtype, offset: 4 * uniforms.length });
  add({
    name: 'uniforms',
    role: 'uniforms',
    dtype: 'u32',
    shape: [String(uniforms.length)],
    access: 'read',
    wgslVar: 'u',
  });
  return { bindings, uniforms, gradTensors };
}

/** The WGSL declarations of the layout. */
export function backwardLayoutSource(
  kernel: AttentionKernel,
  bindings: readonly BackwardBinding[],
  uniforms: readonly BackwardUniform[],
): string {
  const params = new Set(kernel.params.map((p) => p.name));
  const fields = uniforms.map((f) => `  ${params.has(f.name) ? paramField(f.name) : f.name}: ${f.dtype},`);
  const lines = ['struct Uniforms {', ...fields, '}', ''];
  for (const b of bindings) {
    const elem = b.role === 'grad_params' || b.role === 'grad_tensor' ? 'atomic<u32>' : b.dtype;
    const decl =
      b.role === 'uniforms'
        ? `var<uniform> ${b.wgslVar}: Uniforms;`
        : `var<storage, ${b.access}> ${b.wgslVar}: array<${elem}>;`;
    lines.push(`@group(0) @binding(${b.index}) ${decl} // ${b.name}: ${b.dtype}[${b.shape.join(', ')}]`);
  }
  return lines.join('\n');
}
