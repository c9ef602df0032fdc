// The dqDouble knob of the Hopper backward (backward-wgmma-pingpong.ts, backward-wgmma-dq-bulk.ts):
// pingPong's dQ block double-buffered. Tile `it` stores its partial sum in block it & 1, hands it
// from warpgroup 0 to warpgroup 1 on named barrier 4 or 7 and to the dQ warp on dq_full[it & 1];
// warpgroup 0 waits on dq_empty[it & 1] for the dQ warp to have read tile it - 2's sum (the
// (it >> 1) - 1-th completion of that block's barrier), the dQ warp for the (it >> 1)-th of
// dq_full; shared memory grows by a second D-wide block. Nothing here runs a kernel: the GPU check
// (gradients bit-equal to the single block's, bench/cuda/backward.py ENGINES=ws_dsm,ws_dq2) is call
// 36 in bench/device-calls; nvcc builds the default kernels in backward-wgmma-tune.test.ts.
import { describe, expect, it } from 'vitest';
import { WGMMA_BWD_TUNE } from '../../src/codegen/cuda/backward-wgmma.js';
import { dqDoubleExtraBytes } from '../../src/codegen/cuda/backward-wgmma-dq-bulk.js';
import { TUNE_ENGINES } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import { producerBackwardCode } from './backward-engines.js';

const smemOf = (code: string): number => Number(/constexpr int SMEM = (\d+);/.exec(code)?.[1]);
const single = TUNE_ENGINES.ws_dsm!;

describe('dqDouble: the pingPong dQ block double-buffered', () => {
  it("is the default, and its only difference from round 22's kernel is the dQ hand-over", () => {
    expect(WGMMA_BWD_TUNE).toEqual({ ...single, dqDouble: true });
    const two = producerBackwardCode('causal', WGMMA_BWD_TUNE);
    const one = producerBackwardCode('causal', single);
    const changed = (a: string, b: string): string[] => {
      const bl = new Set(b.split('\n'));
      return a.split('\n').filter((l) => !bl.has(l));
    };
    // Every line only the double-buffered kernel has is about the dQ blocks, their barriers or SMEM.
    for (const line of changed(two, one))
      expect(line, line).toMatch(
        /SMEM|dq_|dQs|blk|pair_(arrive|sync)\(4 \+ 3|dqDouble|part|it > 1|barrier 7|block it & 1/,
      );
  });

  it('consumers: block it & 1, named barrier 4 or 7, the wait for tile it - 2', () => {
    const c = producerBackwardCode('full', WGMMA_BWD_TUNE);
    expect(c).toContain('float* part = dQs + (it & 1) * (BM * DQ_LD) + ');
    expect(c).toContain('if (it > 1) mbar_wait(&dq_empty[(it & 1)], ((it >> 1) - 1) & 1);');
    expect(c).toContain('pair_arrive(4 + 3 * (it & 1));');
    expect(c).toContain('pair_sync(4 + 3 * (it & 1));');
    expect(c).toContain('dq_meta[2 * (it & 1) + 1] = min(BM, ');
    expect(c).toContain('mbar_arrive(&dq_full[(it & 1)]);');
    // The stop goes through the next block in turn, after its tile it - 2 was read.
    expect(c).toContain('if (it > 1) mbar_wait(&dq_empty[it & 1], ((it >> 1) - 1) & 1);');
    expect(c).toContain('dq_meta[2 * (it & 1) + 1] = -1;');
    // The single block's handshake is gone.
    expect(c).not.toContain('pair_arrive(4);');
    expect(c).not.toContain('mbar_wait(&dq_empty[0], (it - 1) & 1)');
  });

  it('dQ warp: block it & 1 at its (it >> 1)-th phase', () => {
    const c = producerBackwardCode('full', WGMMA_BWD_TUNE);
    expect(c).toContain('const int blk = it & 1;');
    expect(c).toContain('mbar_wait(&dq_full[blk], (it >> 1) & 1);');
    expect(c).toContain('const float* src = dQs + blk * (BM * DQ_LD) + lane * DQ_LD;');
    expect(c).toContain('if (lane == 0) mbar_arrive(&dq_empty[blk]);');
  });

  it('takes a second D-wide block of shared memory (none more at D 64, where two already fit)', () => {
    const extra =
      smemOf(producerBackwardCode('full', WGMMA_BWD_TUNE)) - smemOf(producerBackwardCode('full', single));
    expect(extra).toBe(dqDoubleExtraBytes(128));
    expect(dqDoubleExtraBytes(128)).toBe(64 * 136 * 4 - (2 * 64 * 72 * 4 - 64 * 136 * 4)); // 32 KiB
    expect(dqDoubleExtraBytes(64)).toBe(0);
    expect(smemOf(producerBackwardCode('full', WGMMA_BWD_TUNE, 64))).toBe(
      smemOf(producerBackwardCode('full', single, 64)),
    );
    expect(smemOf(producerBackwardCode('full', WGMMA_BWD_TUNE))).toBeLessThanOrEqual(227 * 1024);
  });

  it('is dropped with pingPong: the deterministic mode and costly masks keep their kernels', () => {
    expect(producerBackwardCode('full', WGMMA_BWD_TUNE, 128, true)).toBe(
      producerBackwardCode('full', single, 128, true),
    );
    // heavy_hitter's per-element tensor read makes its mask costly: no pingPong, so no dqDouble.
    expect(producerBackwardCode('heavy_hitter', WGMMA_BWD_TUNE)).toBe(
      producerBackwardCode('heavy_hitter', single),
    );
  });
});
