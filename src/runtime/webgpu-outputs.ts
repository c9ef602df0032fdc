// Which bindings of a WGSL artifact the kernel writes, and where each read-back lands in a
// RunResult: kept apart from webgpu.ts's buffer and dispatch plumbing.
import type { Binding, BindingRole } from '../codegen/artifact.js';
import type { RunResult } from './webgpu.js';

/** Roles whose buffers the kernel writes (no upload; poisoned in debug runs). */
const writtenRoles: ReadonlySet<BindingRole> = new Set([
  'out',
  'lse',
  'summary',
  'scratch',
  'indices',
  'importance',
]);

export const isWritten = (b: Binding): boolean => writtenRoles.has(b.role);

/** Puts one read-back buffer's data into `result` by its binding's role. */
export function storeOutput(result: RunResult, binding: Binding, data: Float32Array | Int32Array): void {
  if (binding.role === 'out') result.out = data as Float32Array;
  else if (binding.role === 'lse') result.lse = data as Float32Array;
  else if (binding.role === 'importance') result.importance = data as Float32Array;
  else if (binding.role === 'indices') result.indices = data as Int32Array;
  else (result.summaries ??= {})[binding.name.replace(/_summary$/, '')] = data;
}
