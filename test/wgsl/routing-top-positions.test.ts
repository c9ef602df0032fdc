// Block routing on WGSL (lavapipe) at the top of the int32 positions. A block's end
// (id + 1) · ROUTE_BLOCK, or q_offset + Nq, is 2^31 when the call's last position is 2^31 − 1
// or its block is the last one below 2^31: formed in i32 it wraps negative, and the routing
// pass took the block (or the whole query unit) for empty. The fuzz campaign (round 15, seed
// 1504 draw 104) found it: route_topk returned before writing any id, so `indices` stayed 0 and
// the attention (reading those ids) wrote zeros, without an error. Slot ranges are now a first
// position and a length (codegen/wgsl/routing.ts route_slot_range).
import { afterAll, describe, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import type { GpuKernel } from '../../src/runtime/webgpu.js';
import { expectRoutedRun, routingOracle } from '../support/oracle-cases.js';
import type { Tally } from '../support/oracle-cases.js';

const PROGRAMS = [
  'attention a() {\n  route blocks(16) topk(2) by first(q) . max(k) force first(1) local(1) emit indices\n}',
  // A block size that does not divide 2^31: the block holding 2^31 - 1 ends past it.
  'attention b(top: int = 2) {\n  route blocks(24) topk(top) by mean(q) . mean(k)\n  mask causal\n}',
];

// Last query position 2^31 - 1 or just below; key blocks up to the last one below 2^31.
const SHAPES = [
  { Nq: 2, Nk: 4, qOffset: 2147483642, kOffset: 2147483604 },
  { Nq: 30, Nk: 50, qOffset: 2147483618, kOffset: 2147483598 },
  { Nq: 7, Nk: 40, qOffset: 2147483641, kOffset: 2147483607 },
];

const kernels: GpuKernel[] = [];
afterAll(() => kernels.forEach((k) => k.destroy()));

describe.each(['row', 'coop'] as const)('block routing at positions near 2^31 (%s engine)', (engine) => {
  it.each(PROGRAMS.flatMap((p) => SHAPES.map((s) => [p.split('(')[0], p, s] as const)))(
    '%s %j',
    async (_name, source, s) => {
      const device = await getDevice();
      const D = 8;
      const c = compile(source, {
        target: 'wgsl',
        headDim: D,
        limits: deviceLimits(device),
        ...(engine === 'coop' ? { wgslEngine: 'coop' as const } : {}),
      });
      const gpu = await createKernel(device, c.artifact);
      kernels.push(gpu);
      const [B, H, Hkv] = [1, 2, 1];
      const rand = rng(s.Nq * 31 + s.Nk);
      const q = randomNormal(B * H * s.Nq * D, rand);
      const k = randomNormal(B * Hkv * s.Nk * D, rand);
      const v = randomNormal(B * Hkv * s.Nk * D, rand);
      const params = Object.fromEntries(c.decl.defaults) as Record<string, number>;
      const sizes = { B, H, Hkv, Nq: s.Nq, Nk: s.Nk };
      const offsets = { qOffset: s.qOffset, kOffset: s.kOffset };
      const res = await gpu.run({ q, k, v, ...sizes, params, tensors: {}, ...offsets });
      const env = { params, tensors: {}, sizes: { ...sizes, D } };
      const inp = { q, k, v, ...sizes, Hq: H, D, Dv: D, ...offsets };
      const tally: Tally = { executed: 0, nearTies: 0 };
      expectRoutedRun(routingOracle(c, env, inp), res, ` (${engine} ${JSON.stringify(s)})`, tally);
    },
    60_000,
  );
});
