// A coop kernel (document mask or none, GQA 4:2, query offsets, a tail tile) against the float64
// reference on WebGPU: the check behind the coop knob tests (test/wgsl/coop-knobs*.test.ts).
import { expect } from 'vitest';
import type { Schedule } from '../../src/ir/kernel.js';
import { compile } from '../../src/compile.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

const fullMask = 'attention full() {\n  mask true\n}\n';
const documentMask = 'attention document(doc: i32[kv]) {\n  mask doc[q] == doc[k] && causal\n}\n';

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37) * 1.5);
}

export interface KnobCase {
  readonly schedule: Partial<Schedule>;
  readonly D: number;
  /** No mask (static full tiles) instead of the document mask. */
  readonly full?: boolean;
  /** Batches (1 unless said). */
  readonly batch?: number;
}

/** Runs the case against the reference; resolves to the kernel's WGSL. */
export async function agree({ schedule, D, full, batch }: KnobCase): Promise<string> {
  const device = await getDevice();
  const limits = deviceLimits(device);
  const subgroups = schedule.subgroups === true && limits.subgroups === true;
  const { artifact } = compile(full ? fullMask : documentMask, {
    target: 'wgsl',
    headDim: D,
    limits,
    wgslEngine: 'coop',
    schedule: { ...schedule, subgroups },
  });
  // GQA 4:2, Nq < Nk (query offset Nk - Nq), documents of 1..40 keys, a tail tile.
  const [B, H, Hkv, Nq, Nk] = [batch ?? 1, 4, 2, 45, 301];
  const doc = Int32Array.from({ length: Nk }, (_, i) => Math.floor(Math.sqrt(i * 5.3)));
  const q = values(B * H * Nq * D, 1);
  const k = values(B * Hkv * Nk * D, 2);
  const v = values(B * Hkv * Nk * D, 3);
  const gpu = await createKernel(device, artifact, { decode: 'never', debug: true });
  try {
    const res = await gpu.run({ q, k, v, B, H, Hkv, Nq, Nk, ...(full ? {} : { tensors: { doc } }) });
    const ref = referenceAttention(
      { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D },
      { mask: (_b, _h, qi, ki) => full === true || (doc[qi] === doc[ki] && qi >= ki) },
    );
    const where = JSON.stringify(artifact.schedule);
    const out = compareArrays(res.out, ref.out, ref.outScale);
    expect(out.nanCount, where).toBe(0);
    expect(out.relError, where).toBeLessThan(1e-5);
    expect(compareArrays(res.lse!, ref.lse, 1).relError, where).toBeLessThan(1e-5);
  } finally {
    gpu.destroy();
  }
  return artifact.code;
}
