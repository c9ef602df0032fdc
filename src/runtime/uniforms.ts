// Packs the uniform struct of an artifact (codegen/artifact.ts UniformField list) from resolved
// run inputs. The field list, not this file, decides the layout.
import type { Artifact } from '../codegen/artifact.js';
import type { ResolvedRun } from './validate.js';

/** Bytes of the uniform buffer: 4 per field, rounded up to 16 (uniform buffer alignment). */
export function uniformBytes(artifact: Artifact): number {
  const end = artifact.uniforms.reduce((m, f) => Math.max(m, f.offset + 4), 0);
  return Math.max(16, Math.ceil(end / 16) * 16);
}

export function packUniforms(artifact: Artifact, run: ResolvedRun): ArrayBuffer {
  const buf = new ArrayBuffer(uniformBytes(artifact));
  const view = new DataView(buf);
  const fixed: Record<string, number> = {
    q_offset: run.qOffset,
    k_offset: run.kOffset,
    scale: run.scale,
    B: run.sizes.B,
    H: run.sizes.H,
    Hkv: run.sizes.Hkv,
    Nq: run.sizes.Nq,
    Nk: run.sizes.Nk,
  };
  const params = new Set(artifact.params.map((p) => p.name));
  for (const f of artifact.uniforms) {
    // Params come after the fixed fields; a name is looked up where its field belongs.
    const v = params.has(f.name) ? run.params.get(f.name) : (fixed[f.name] ?? run.kv.uniforms.get(f.name));
    if (v === undefined) throw new Error(`uniform "${f.name}" has no value (artifact "${artifact.name}")`);
    if (f.dtype === 'f32') view.setFloat32(f.offset, v, true);
    else if (f.dtype === 'u32') view.setUint32(f.offset, v >>> 0, true);
    else view.setInt32(f.offset, v | 0, true);
  }
  return buf;
}
