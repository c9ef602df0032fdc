// The coop engine's tuning knobs (schedule.coopLanes, coopSplitKv, coopPrefetch, coopDoubleKv,
// coopQDescending, coopFma, coopUnroll, coopChunkSpan, coopPShuffle, coopHeadsInner; coopSgHoist
// in coop-sg-hoist.test.ts) and its chunked tile classification, on WebGPU against the float64
// reference: every knob must leave results alone.
// Small shapes (lavapipe compiles each pipeline in about a second).
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { agree, type KnobCase } from '../support/coop-agree.js';
import { readStdlib } from '../support/stdlib.js';

describe('coop engine knobs agree with the reference (document mask, GQA, offsets, tails)', () => {
  it.each<KnobCase>([
    // 8 lanes, 4 rows per invocation, subgroup shuffles checked at run time (else memory); the
    // next tile prefetched into registers (one K/V buffer: V's registers are stored mid-tile).
    {
      D: 32,
      schedule: { blockQ: 16, blockK: 16, threads: 32, coopLanes: 8, coopPrefetch: true, subgroups: true },
    },
    // 16 lanes with K and V in two buffers, Q read from storage; D = 16: lanes past Dv/4 read
    // padding. Query tiles last first: workgroup 0 takes the 13-row tail tile.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 16,
        threads: 64,
        coopLanes: 16,
        coopSplitKv: true,
        coopQGlobal: true,
        coopQDescending: true,
      },
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
    // S and P·V as fma chains, 8 lanes, prefetch, query tiles last first (round 29's candidates).
    {
      D: 32,
      schedule: {
        blockQ: 32,
        blockK: 16,
        threads: 32,
        coopLanes: 8,
        coopPrefetch: true,
        coopQGlobal: true,
        coopQDescending: true,
        coopFma: true,
        subgroups: true,
      },
    },
    // Constant trip counts (the tail tile's P·V runs over all 8 keys: zero past Nk), split K/V.
    {
      D: 16,
      schedule: { blockQ: 16, blockK: 8, threads: 32, coopSplitKv: true, coopUnroll: true, coopFma: true },
    },
    // Chunk spans: 4-key tiles, 76 over 3 chunks of 32 — the document mask leaves most of a row's
    // tiles empty, the loop runs from each chunk's first tile with work to its last; prefetch.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 4,
        threads: 32,
        coopPrefetch: true,
        coopChunkSpan: true,
        subgroups: true,
      },
    },
    // The same without prefetch, split K/V, last first.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 4,
        threads: 32,
        coopSplitKv: true,
        coopChunkSpan: true,
        coopQDescending: true,
      },
    },
    // The same with prefetch and one K/V buffer.
    {
      D: 16,
      schedule: { blockQ: 16, blockK: 8, threads: 32, coopPrefetch: true, coopUnroll: true, subgroups: true },
    },
    // P kept in registers, read by subgroupShuffle in P·V (four lanes: every WebGPU subgroup size
    // holds a row; lavapipe's is 4 to 16 by CPU), round 29's knobs, one K/V buffer with prefetch.
    {
      D: 32,
      schedule: {
        blockQ: 32,
        blockK: 16,
        threads: 32,
        coopPrefetch: true,
        coopQGlobal: true,
        coopQDescending: true,
        coopFma: true,
        coopUnroll: true,
        coopChunkSpan: true,
        coopPShuffle: true,
        subgroups: true,
      },
    },
    // The same over split K/V buffers (no barrier after P) and run-time loop bounds.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 8,
        threads: 32,
        coopSplitKv: true,
        coopPShuffle: true,
        subgroups: true,
      },
    },
    // Heads inner (workgroups renumbered: every head and batch of a query tile, then the next
    // tile), two batches, last first, chunk spans: 3 query tiles × 4 heads × 2 batches.
    {
      D: 16,
      batch: 2,
      schedule: {
        blockQ: 16,
        blockK: 8,
        threads: 32,
        coopPrefetch: true,
        coopQDescending: true,
        coopChunkSpan: true,
        coopHeadsInner: true,
        subgroups: true,
      },
    },
    // The same over static full tiles, first tile first.
    { D: 16, batch: 2, full: true, schedule: { blockQ: 16, blockK: 8, threads: 32, coopHeadsInner: true } },
    // 32 lanes, wider than lavapipe's subgroups: the run-time check sends P through co_p.
    {
      D: 32,
      schedule: { blockQ: 8, blockK: 32, threads: 256, coopLanes: 32, coopPShuffle: true, subgroups: true },
    },
    // 16 lanes (through co_p where subgroups are narrower), two score columns, prefetch, constant bounds.
    {
      D: 32,
      schedule: {
        blockQ: 16,
        blockK: 64,
        threads: 256,
        coopLanes: 16,
        coopPrefetch: true,
        coopUnroll: true,
        coopPShuffle: true,
        subgroups: true,
      },
    },
  ])(
    '$schedule',
    async (c) => {
      await agree(c);
    },
    120_000,
  );
});

describe('coopDoubleKv: K/V buffers taken in turn, classes 16 to a word, one barrier less per tile', () => {
  it.each<KnobCase>([
    // 3 chunks of 32 tiles (2 class words each), empty tiles skipped by prefetch, split K/V.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 4,
        threads: 32,
        coopSplitKv: true,
        coopPrefetch: true,
        coopDoubleKv: true,
        subgroups: true,
      },
    },
    // One buffer for K then V (each tile's V lands in its own half), 8 lanes, prefetch.
    {
      D: 32,
      schedule: {
        blockQ: 16,
        blockK: 16,
        threads: 32,
        coopLanes: 8,
        coopPrefetch: true,
        coopDoubleKv: true,
        subgroups: true,
      },
    },
    // 40 invocations: the last class word holds 8 classes; no prefetch, staged Q.
    { D: 16, schedule: { blockQ: 10, blockK: 4, threads: 40, coopDoubleKv: true } },
    // Static full tiles: the tile loop's own barrier goes.
    {
      D: 16,
      full: true,
      schedule: { blockQ: 16, blockK: 8, threads: 32, coopSplitKv: true, coopDoubleKv: true },
    },
  ])(
    '$schedule',
    async (c) => {
      await agree(c);
    },
    300_000,
  );

  // Routed kernels take the packed chunk loop too (their classes gated by the selection first):
  // the pipeline must build (WGSL validation, uniformity of the class word). Their results are
  // checked on the device only (the routing oracles pin the default schedule).
  it('a routed kernel (biformer) builds with it', async () => {
    const device = await getDevice();
    const { artifact } = compile(readStdlib('biformer.attn'), {
      target: 'wgsl',
      headDim: 16,
      limits: deviceLimits(device),
      wgslEngine: 'coop',
      schedule: {
        blockQ: 16,
        blockK: 8,
        threads: 32,
        coopSplitKv: true,
        coopPrefetch: true,
        coopDoubleKv: true,
      },
    });
    expect(artifact.code).toContain('co_clsw');
    expect(artifact.code).toContain('co_unit_keys');
    const gpu = await createKernel(device, artifact, { decode: 'never', debug: true });
    gpu.destroy();
  }, 300_000);
});
