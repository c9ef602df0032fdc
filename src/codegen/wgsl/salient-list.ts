// Salient tokens given as an index list (`salient E from t`, t: i32[batch, kv_heads, N]) on WGSL, as
// on CUDA (codegen/cuda/salient-list.ts): a pre-pass entry point per list, launched with the tile
// summaries before anything dequantizes (in the attention module and the decode modules alike),
// scatters the list into a scratch flag buffer `<t>_flags` (i32 [B, Hkv, Nk]; the runtime and the
// emitted module own it, as they own routing's scratch): one workgroup per (batch, kv head) zeroes
// its Nk flags, then flags every entry in [0, Nk). The dequantizing function reads the flag there
// (dequant.ts). A scatter rather than a search per key: the list is in any order.
import type { AttentionKernel, TensorSlot } from '../../ir/kernel.js';
import { salientIndexLists } from '../../ir/formats.js';
import type { Binding, EntryPoint } from '../artifact.js';
import { dimText, tensorVar } from './rules.js';

const THREADS = 64;

/** The index-list tensors of a kernel's quantized caches (each once), in k, v order. */
export const wgslSalientLists = (k: AttentionKernel): string[] => salientIndexLists(k.formats);

/** WGSL variable of list `t`'s flags (the binding is `<t>_flags`). */
export const salientFlagsVar = (t: string): string => `sf_${t}`;

/** The scratch binding of list `t`'s flags. */
export const salientFlagsBinding = (t: string): Omit<Binding, 'index'> => ({
  name: `${t}_flags`,
  role: 'scratch',
  dtype: 'i32',
  shape: ['B', 'Hkv', 'Nk'],
  access: 'read_write',
});

const entryName = (t: string): string => `salient_flags_${t}`;

/** The pre-pass entry points' WGSL. */
export function salientSources(k: AttentionKernel, tensors: ReadonlyMap<string, TensorSlot>): string[] {
  return wgslSalientLists(k).map((t) => {
    const slot = tensors.get(t);
    if (!slot?.dims[2]) throw new Error(`WGSL: salient list "${t}" is not i32[batch, kv_heads, N]`);
    const flags = salientFlagsVar(t);
    return [
      `// Salient tokens of ${t} (an index list) as flags per token (salient-list.ts): a workgroup per (b, kv head).`,
      `@compute @workgroup_size(${THREADS})`,
      `fn ${entryName(t)}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {`,
      '  let bh = wid.y * u32(u.Hkv) + wid.x;',
      '  let nk = u32(u.Nk);',
      `  let n = u32(max(${dimText(slot.dims[2])}, 0i));`,
      `  for (var j = lid.x; j < nk; j += ${THREADS}u) { ${flags}[bh * nk + j] = 0; }`,
      '  storageBarrier();',
      `  for (var i = lid.x; i < n; i += ${THREADS}u) {`,
      `    let j = ${tensorVar(t)}[bh * n + i];`,
      `    if (j >= 0 && u32(j) < nk) { ${flags}[bh * nk + u32(j)] = 1; }`,
      '  }',
      '}',
    ].join('\n');
  });
}

/** Their launch records (role 'summary': pre-passes launched first, in every module). */
export function salientEntryPoints(k: AttentionKernel): EntryPoint[] {
  return wgslSalientLists(k).map((t) => ({
    name: entryName(t),
    role: 'summary',
    tensor: t,
    workgroupSize: [THREADS, 1, 1],
    grid: ['Hkv', 'B', '1'],
    bindings: [t, `${t}_flags`, 'uniforms'],
  }));
}

/** Whether binding `name` of an artifact is a salient list's flag scratch (its pre-pass writes it). */
export const isSalientFlags = (a: { entryPoints: readonly EntryPoint[] }, name: string): boolean =>
  a.entryPoints.some((e) => e.name.startsWith('salient_flags_') && e.bindings.includes(name));
