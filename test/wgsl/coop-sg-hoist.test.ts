// schedule.coopSgHoist: the coop engine's run-time subgroup check (use_sg) branches once, around
// the whole tile loop, rendered once with shuffles only and once with workgroup memory only. On
// lavapipe (subgroups of 4 invocations here) four-lane rows take the shuffle side and wider rows
// the memory side; each case runs against the float64 reference (test/support/coop-agree.ts).
import { describe, expect, it } from 'vitest';
import { agree, type KnobCase } from '../support/coop-agree.js';

/** The hoisted shape: one check before the loops, no check inside either of them. */
function expectHoisted(code: string): void {
  expect(code).toContain('schedule.coopSgHoist');
  expect(code.match(/if \(use_sg\)/g)).toHaveLength(1);
  expect(code).toContain('subgroupShuffle');
}

describe('coopSgHoist: the subgroup check outside the tile loop', () => {
  it.each<KnobCase>([
    // The D ≤ 64 lead set's knobs at a small tile: 8 lanes, P in registers, Q from storage,
    // prefetch, constant bounds, fma, last first, chunk spans, heads inner, two batches.
    {
      D: 32,
      batch: 2,
      schedule: {
        blockQ: 32,
        blockK: 16,
        threads: 64,
        coopLanes: 8,
        coopQGlobal: true,
        coopPrefetch: true,
        coopPShuffle: true,
        coopUnroll: true,
        coopFma: true,
        coopQDescending: true,
        coopChunkSpan: true,
        coopHeadsInner: true,
        coopSgHoist: true,
        subgroups: true,
      },
    },
    // Four lanes with P in registers: the check passes on lavapipe and the shuffle side runs.
    {
      D: 16,
      schedule: {
        blockQ: 16,
        blockK: 8,
        threads: 32,
        coopPrefetch: true,
        coopPShuffle: true,
        coopChunkSpan: true,
        coopSgHoist: true,
        subgroups: true,
      },
    },
    // 8 lanes, P through memory (only the row max is checked), split K/V, static full tiles.
    {
      D: 32,
      full: true,
      schedule: {
        blockQ: 16,
        blockK: 16,
        threads: 32,
        coopLanes: 8,
        coopSplitKv: true,
        coopSgHoist: true,
        subgroups: true,
      },
    },
  ])('$schedule', async (c) => expectHoisted(await agree(c)), 120_000);

  it('changes nothing where no check is needed (four lanes, P through memory)', async () => {
    const code = await agree({
      D: 16,
      schedule: { blockQ: 16, blockK: 8, threads: 32, coopSgHoist: true, subgroups: true },
    });
    expect(code).not.toContain('use_sg');
    expect(code).not.toContain('schedule.coopSgHoist');
  }, 120_000);
});
