// The host side of runWgslBackward (backward-webgpu.ts): its argument checks, the buffers' lengths,
// the params and uniforms packed, and the host array each read binding uploads.
import type { WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { BackwardBinding } from '../codegen/wgsl/backward-layout.js';
import type { BackwardRunInputs } from './backward-webgpu.js';
import { describeValue } from './params.js';

export function fail(art: WgslBackwardArtifact, msg: string): never {
  throw new Error(`backward of "${art.name.replace(/_backward$/, '')}": ${msg}`);
}

/** Each binding's element count under the call's sizes and params. */
export function lengths(
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  params: Map<string, number>,
): Map<string, number> {
  const env: Record<string, number> = {
    B: inp.B,
    H: inp.H,
    Hkv: inp.Hkv,
    Nq: inp.Nq,
    Nk: inp.Nk,
    D: art.headDim,
    Dv: art.valueDim,
  };
  const dim = (e: string): number => {
    if (/^\d+$/.test(e)) return Number(e);
    const v = env[e] ?? params.get(e);
    if (v === undefined) fail(art, `no value for the dimension ${e}`);
    return v;
  };
  const count = (b: BackwardBinding): number => b.shape.reduce((n: number, e) => n * dim(String(e)), 1);
  const out = new Map<string, number>();
  for (const b of art.bindings) if (!b.summaryOf) out.set(b.name, count(b));
  // A summary: [min, max] per block of the (1-D) tensor's positions.
  for (const b of art.bindings)
    if (b.summaryOf) out.set(b.name, 2 * Math.ceil(out.get(b.summaryOf.tensor)! / b.summaryOf.block));
  return out;
}

export function resolveParams(
  art: WgslBackwardArtifact,
  given: BackwardRunInputs['params'] = {},
): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of art.params) {
    const v = given[p.name] ?? p.default;
    if (v === undefined) fail(art, `param "${p.name}" has no default and was not given`);
    out.set(p.name, Number(v));
  }
  return out;
}

/** A device that is none, or inputs that are no object: named, not a TypeError from inside. */
export function checkCallArguments(device: unknown, inp: unknown): void {
  const where = 'runWgslBackward(device, art, inputs)';
  const d = device as { createBindGroupLayout?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.createBindGroupLayout !== 'function')
    throw new TypeError(`${where}: device must be a GPUDevice (getDevice()), got ${describeValue(device)}`);
  if (typeof inp !== 'object' || inp === null || Array.isArray(inp))
    throw new TypeError(
      `${where}: inputs must be an object { q, k, v, out, lse, dout, B, H, Hkv, Nq, Nk, ... }, got ${describeValue(inp)}`,
    );
}

/** Every backward binds 9 storage buffers at least; past the device's limit Dawn names only an invalid layout. */
export function checkStorageLimit(device: GPUDevice, art: WgslBackwardArtifact): void {
  const storage = art.bindings.filter((b) => b.role !== 'uniforms').length;
  const most = device.limits.maxStorageBuffersPerShaderStage;
  if (storage > most)
    fail(
      art,
      `binds ${storage} storage buffers, the device allows ${most} (request a device with a higher maxStorageBuffersPerShaderStage)`,
    );
}

export function checkSizes(art: WgslBackwardArtifact, inp: BackwardRunInputs): void {
  for (const n of ['B', 'H', 'Hkv', 'Nq', 'Nk'] as const)
    if (!Number.isInteger(inp[n]) || inp[n] < (n === 'H' || n === 'Hkv' ? 1 : 0))
      fail(art, `${n} must be a non-negative integer (heads ≥ 1), got ${inp[n]}`);
  if (inp.H % inp.Hkv !== 0) fail(art, `H (${inp.H}) must be a multiple of Hkv (${inp.Hkv})`);
}

export function packUniforms(
  art: WgslBackwardArtifact,
  inp: BackwardRunInputs,
  params: Map<string, number>,
): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((4 * art.uniforms.length) / 16) * 16));
  const view = new DataView(buf);
  const fixed: Record<string, number> = {
    q_offset: inp.qOffset ?? inp.Nk - inp.Nq,
    k_offset: inp.kOffset ?? 0,
    scale: inp.scale ?? 1 / Math.sqrt(art.headDim),
    B: inp.B,
    H: inp.H,
    Hkv: inp.Hkv,
    Nq: inp.Nq,
    Nk: inp.Nk,
  };
  for (const f of art.uniforms) {
    const v = fixed[f.name] ?? params.get(f.name)!;
    if (f.dtype === 'f32') view.setFloat32(f.offset, v, true);
    else if (f.dtype === 'u32') view.setUint32(f.offset, v >>> 0, true);
    else view.setInt32(f.offset, v | 0, true);
  }
  return buf;
}

/** The host array a read binding uploads. */
export function hostData(
  art: WgslBackwardArtifact,
  b: BackwardBinding,
  inp: BackwardRunInputs,
): ArrayBufferView | undefined {
  if (b.role === 'tensor') {
    const t = inp.tensors?.[b.name];
    if (!t) fail(art, `tensor "${b.name}" was not given`);
    return t;
  }
  // delta starts as ∂L/∂lse (bwd_dq subtracts it from Σ dO·O); a fresh buffer is zeros.
  const named = { q: inp.q, k: inp.k, v: inp.v, out: inp.out, lse: inp.lse, dout: inp.dout, delta: inp.dlse };
  return b.role in named ? named[b.role as keyof typeof named] : undefined;
}
