// The coop engine's tuning knobs (schedule.coopLanes, coopSplitKv, coopPrefetch) and its chunked tile
// classification, on WebGPU against the float64 reference: every knob must leave results alone.
// Small shapes (lavapipe compiles each pipeline in about a second).
import { describe, expect, it } from 'vitest';
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

interface KnobCase {
  readonly schedule: Partial<Schedule>;
  readonly D: number;
  /** No mask (static full tiles) instead of the document mask. */
  readonly full?: boolean;
}

async function agree({ schedule, D, full }: KnobCase): Promise<void> {
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
  const [B, H, Hkv, Nq, Nk] = [1, 4, 2, 45, 301];
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
}

describe('coop engine knobs agree with the reference (document mask, GQA, offsets, tails)', () => {
  it.each<KnobCase>([
    // 8 lanes, 4 rows per invocation, subgroup shuffles checked at run time (else memory); the
    // next tile prefetched into registers (one K/V buffer: V's registers are stored mid-tile).
    {
      D: 32,
      schedule: { blockQ: 16, blockK: 16, threads: 32, coopLanes: 8, coopPrefetch: true, subgroups: true },
    },
    // 16 lanes with K and V in two buffers, Q read from storage; D = 16: lanes past Dv/4 read padding.
    {
      D: 16,
      schedule: { blockQ: 16, blockK: 16, threads: 64, coopLanes: 16, coopSplitKv: true, coopQGlobal: true },
    },
    // 4-key tiles: 76 tiles over 3 chunks of 32 classified at once; prefetch skips empty tiles
    // inside a chunk and stops at its end.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 4,
        threads: 32,
        coopSplitKv: true,
        coopPrefetch: true,
        subgroups: true,
      },
    },
    // Static full tiles: prefetch of the next tile, whatever it holds.
    { D: 16, full: true, schedule: { blockQ: 16, blockK: 8, threads: 32, coopPrefetch: true } },
  ])('$schedule', (c) => agree(c), 120_000);
});
