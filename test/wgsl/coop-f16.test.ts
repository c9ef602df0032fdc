// f16 arithmetic on the coop engine (coop-tile.ts coopF16): with q, k and v stored as f16 the
// staged tiles hold vec4<f16>, the P·V products run in f16 summed in f32, S widens to f32. Every knob
// shape of the tile (prefetch, split K/V, Q from storage or staged) against the float64 reference
// over the f16 values, within the repo's f16 tolerance (2e-3); f32 kernels keep f32 tiles.
import { describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/ir/kernel.js';
import { compile } from '../../src/compile.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { fromF16, toF16 } from '../../src/runtime/f16.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

const documentMask = 'attention document(doc: i32[kv]) {\n  mask doc[q] == doc[k] && causal\n}\n';

function values(n: number, seed: number, amp = 1.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37) * amp);
}

function f16Coop(D: number, schedule: Partial<Schedule>, dtype: 'f16' | 'f32' = 'f16') {
  return (limits: ReturnType<typeof deviceLimits>) =>
    compile(documentMask, { target: 'wgsl', headDim: D, dtype, limits, wgslEngine: 'coop', schedule })
      .artifact;
}

describe('coop f16 arithmetic', () => {
  it('f16 storage stages vec4<f16> tiles, P·V products in f16 summed in f32; f32 storage keeps f32 tiles', async () => {
    const limits = deviceLimits(await getDevice());
    const half = f16Coop(64, {})(limits).code;
    expect(half).toMatch(/var<workgroup> co_kv: array<vec4<f16>/);
    expect(half).toContain('+= dot(vec4<f32>(qq), vec4<f32>(kk[c]));');
    expect(half).toContain('+= vec4<f32>(f16(pj) * vv[c]);');
    expect(half).toMatch(/var acc: array<array<vec4<f32>/);
    const full = f16Coop(64, {}, 'f32')(limits).code;
    expect(full).not.toMatch(/vec4<f16>/);
  });

  it.each<[number, Partial<Schedule>, number?]>([
    // The device's default coop schedule (lavapipe: 256x32/256, 8 lanes, Q from storage, prefetch,
    // P in registers — through co_p, lavapipe's subgroups being narrower than 8 — heads inner).
    [64, {}],
    // P in registers read by subgroupShuffle (4 lanes), its f16 P·V products.
    [32, { blockQ: 16, blockK: 16, threads: 32, coopPShuffle: true, subgroups: true }],
    [32, { blockQ: 16, blockK: 16, threads: 32, coopSplitKv: true }], // staged Q, K and V in two buffers
    [32, { blockQ: 16, blockK: 8, threads: 32, coopLanes: 8, coopPrefetch: true, coopSplitKv: true }],
    [16, { blockQ: 16, blockK: 16, threads: 64 }], // one K-then-V buffer, 4 lanes
    // |q|, |k| up to 300: q·k products past f16's 65504 (an f16 S would be +inf, the row NaN).
    [16, { blockQ: 16, blockK: 16, threads: 32 }, 300],
  ])(
    'D = %i, %j, amplitude %s: agrees with the reference',
    async (D, schedule, amp = 1.5) => {
      const device = await getDevice();
      const limits = deviceLimits(device);
      if (!limits.shaderF16) throw new Error('this adapter lacks shader-f16 (lavapipe has it)');
      const artifact = f16Coop(D, schedule)(limits);
      expect(artifact.code).toContain('vec4<f16>');
      const [B, H, Hkv, Nq, Nk] = [1, 4, 2, 45, 301];
      const doc = Int32Array.from({ length: Nk }, (_, i) => Math.floor(Math.sqrt(i * 5.3)));
      const [q, k, v] = [
        values(B * H * Nq * D, 1, amp),
        values(B * Hkv * Nk * D, 2, amp),
        values(B * Hkv * Nk * D, 3),
      ].map((x) => toF16(x)) as [Uint16Array, Uint16Array, Uint16Array];
      const gpu = await createKernel(device, artifact, { decode: 'never', debug: true });
      try {
        const res = await gpu.run({ q, k, v, B, H, Hkv, Nq, Nk, tensors: { doc } });
        const ref = referenceAttention(
          { q: fromF16(q), k: fromF16(k), v: fromF16(v), B, Hq: H, Hkv, Nq, Nk, D, Dv: D },
          { mask: (_b, _h, qi, ki) => doc[qi] === doc[ki] && qi >= ki }, // qi counts from Nk - Nq
        );
        const where = JSON.stringify(artifact.schedule);
        const out = compareArrays(res.out, ref.out, ref.outScale);
        expect(out.nanCount, where).toBe(0);
        expect(out.relError, where).toBeLessThan(2e-3);
        expect(compareArrays(res.lse!, ref.lse, 1).relError, where).toBeLessThan(2e-3);
      } finally {
        gpu.destroy();
      }
    },
    120_000,
  );
});
