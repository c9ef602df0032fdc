// The coop engine's default schedule follows the device: the knob sets the H200 measured fastest
// where workgroup memory and subgroups allow them, in steps down to the portable list
// (schedule-rules.ts); and the 32 KiB step (lavapipe's limits here) agrees with the reference.
import { describe, expect, it } from 'vitest';
import type { WgslLimits } from '../../src/codegen/wgsl/limits.js';
import { compile } from '../../src/compile.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';

const causal = 'attention causal() {\n  mask causal\n}\n';
const full = 'attention full() {\n  mask true\n}\n';

const h200: WgslLimits = {
  maxWorkgroupStorageBytes: 49152,
  maxInvocations: 1024,
  shaderF16: false,
  subgroups: true,
};
const browser32: WgslLimits = { ...h200, maxWorkgroupStorageBytes: 32768 };
const portable: WgslLimits = { maxWorkgroupStorageBytes: 16384, maxInvocations: 256, shaderF16: false };

/** The schedule compile() picks for the coop engine, as "BQxBK/T knobs". */
function picked(limits: WgslLimits, headDim: number, schedule = {}, source = causal): string {
  const { artifact: a } = compile(source, { target: 'wgsl', headDim, limits, wgslEngine: 'coop', schedule });
  const s = a.schedule;
  const knobs = [
    s.subgroups ? 'sg' : '',
    s.coopLanes ? `l${s.coopLanes}` : '',
    s.coopSplitKv ? 'kv2' : '',
    s.coopQGlobal ? 'qg' : '',
    s.coopPrefetch ? 'pf' : '',
    s.coopQDescending ? 'qd' : '',
    s.coopFma ? 'fma' : '',
    s.coopUnroll ? 'ur' : '',
    s.coopChunkSpan ? 'sp' : '',
    s.coopPShuffle ? 'ps' : '',
    s.coopHeadsInner ? 'hi' : '',
    s.coopSgHoist ? 'sh' : '',
  ].filter(Boolean);
  return [`${s.blockQ}x${s.blockK}/${s.threads}`, ...knobs].join(' ');
}

describe('the coop default schedule follows the device limits', () => {
  it('takes the measured best sets with 48 KiB and subgroups', () => {
    // Causal tiles are classified per tile: every head of a query tile is launched first (hi).
    // At D ≤ 64 the subgroup check sits outside the tile loop (sh); at D 128 only under full masks.
    expect(picked(h200, 128)).toBe('128x32/256 sg l8 qg pf qd fma ur sp hi');
    expect(picked(h200, 64)).toBe('256x32/256 sg l8 qg pf qd fma ur sp ps hi sh');
    expect(picked(h200, 32)).toBe('256x32/256 sg l8 qg pf qd fma ur sp ps hi sh');
    // Full tiles all have the same work: launch order stays one head after another.
    expect(picked(h200, 128, {}, full)).toBe('128x32/256 sg l8 qg pf qd fma ur sp sh');
    expect(picked(h200, 64, {}, full)).toBe('256x32/256 sg l8 qg pf qd fma ur sp ps sh');
    // 128 invocations at most: the 64×64 tile of 128 (all tuned sets take query tiles last first).
    expect(picked({ ...h200, maxInvocations: 128 }, 64)).toBe('64x64/128 sg l8 qg pf qd fma ur sp hi sh');
  });
  it('steps down to the sets that fit 32 KiB', () => {
    expect(picked(browser32, 128)).toBe('64x32/128 sg l8 qg pf qd fma ur sp hi');
    // At D 64 the lead set fits: with P in registers its K/V tile and co_p take 17 KiB.
    expect(picked(browser32, 64)).toBe('256x32/256 sg l8 qg pf qd fma ur sp ps hi sh');
    // 128 invocations at most: the 256-invocation set does not fit either.
    expect(picked({ ...h200, maxInvocations: 128 }, 128)).toBe('64x32/128 sg l8 qg pf qd fma ur sp hi');
  });
  it('keeps the portable list without subgroups, at 16 KiB, past D = 128 and when a tile is pinned', () => {
    expect(picked({ ...h200, subgroups: false }, 128)).toBe('64x16/128');
    expect(picked(portable, 64)).toBe(picked({ ...portable, subgroups: false }, 64));
    expect(picked(portable, 64)).not.toMatch(/qg|pf/);
    expect(picked(h200, 256)).not.toMatch(/qg|pf/);
    expect(picked(h200, 128, { blockK: 16 })).toBe('64x16/128 sg');
    expect(picked(h200, 128, { subgroups: false })).toBe('64x16/128');
  });
});

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37) * 1.5);
}

describe('the 32 KiB step runs on lavapipe against the reference', () => {
  it.each([64, 128])(
    'causal, D = %i, GQA, a tail tile',
    async (D) => {
      const device = await getDevice();
      const limits = deviceLimits(device);
      const { artifact } = compile(causal, { target: 'wgsl', headDim: D, limits, wgslEngine: 'coop' });
      expect(artifact.schedule.coopQGlobal && artifact.schedule.coopPrefetch).toBe(limits.subgroups === true);
      const [B, H, Hkv, Nq, Nk] = [1, 4, 2, 70, 133];
      const q = values(B * H * Nq * D, 1);
      const k = values(B * Hkv * Nk * D, 2);
      const v = values(B * Hkv * Nk * D, 3);
      const gpu = await createKernel(device, artifact, { decode: 'never', debug: true });
      try {
        const res = await gpu.run({ q, k, v, B, H, Hkv, Nq, Nk });
        const ref = referenceAttention(
          { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D },
          { mask: (_b, _h, qi, ki) => qi >= ki }, // qi counts from Nk - Nq
        );
        const out = compareArrays(res.out, ref.out, ref.outScale);
        expect(out.nanCount).toBe(0);
        expect(out.relError).toBeLessThan(1e-5);
      } finally {
        gpu.destroy();
      }
    },
    120_000,
  );
});
