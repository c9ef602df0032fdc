// The schedule pass's tensor-core defaults for masks whose live key tiles come in runs far apart
// (sinks + window): the tile-gap probe finds them, they take ballot tile scans and the measured
// winners (at D = 128 wgmma-ws with FlashAttention-3 consumers and the dense tweaks, round 17 on an
// H100; 64 × 64 wgmma tiles else); summary-classified masks (document) take the producer's walk
// with FlashAttention-3 consumers and the tweaks the walk combines with, at D = 128 over 96-key
// tiles in three stages.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { hasGappedTileRuns } from '../../src/ir/passes/tile-gaps.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';

const build = (file: string, schedule?: Partial<Schedule>, source?: string) =>
  compile(source ?? readStdlib(file), {
    target: 'cuda',
    file: stdlibPath(file),
    headDim: 128,
    dtype: 'bf16',
    ...(schedule ? { schedule } : {}),
  });

const ballotScan = /ne_bits = __ballot_sync\(0xffffffffu, ne\);/;
const boundsScan = /int first = nkt, last = -1;/;

describe('tile-gap probe', () => {
  it('finds the gap between the sink tile and the window, and none in one-range masks', () => {
    expect(hasGappedTileRuns(build('sink_window.attn').kernel)).toBe(true);
    for (const file of ['sliding_window.attn', 'causal.attn', 'prefix_lm.attn', 'full.attn', 'alibi.attn'])
      expect(hasGappedTileRuns(build(file).kernel), file).toBe(false);
  });

  it('makes no claim where it cannot evaluate: tensor summaries, a required parameter', () => {
    expect(hasGappedTileRuns(build('document.attn').kernel)).toBe(false);
    const required = 'attention sw(window: int) { mask causal && (q - k < window || k < 4) }';
    expect(hasGappedTileRuns(build('sw.attn', undefined, required).kernel)).toBe(false);
    // With a default it is the sinks + window mask again.
    const given = 'attention sw(window: int = 512) { mask causal && (q - k < window || k < 4) }';
    expect(hasGappedTileRuns(build('sw.attn', undefined, given).kernel)).toBe(true);
  });
});

describe('gapped-mask defaults', () => {
  it('sinks + window at D = 128: wgmma-ws, FlashAttention-3 consumers with the tweaks, ballot scans, unasked', () => {
    const { artifact } = build('sink_window.attn');
    expect(artifact.schedule).toMatchObject({
      engine: 'wgmma-ws',
      blockQ: 128,
      blockK: 128,
      wsConsumers: 'fa3',
      tileScan: 'ballot',
    });
    expect(artifact.schedule.wsTweaks).toEqual(expect.arrayContaining(['splitKv', 'foldScale']));
    expect(artifact.schedule.wsProducerWalk).toBeUndefined();
    expect(artifact.code).toMatch(ballotScan);
    expect(artifact.code).not.toMatch(boundsScan);
  });

  it('sinks + window at D = 64 (the walk was not measured there): 64 × 64 wgmma tiles, ballot scans', () => {
    const { artifact } = compile(readStdlib('sink_window.attn'), {
      target: 'cuda',
      file: stdlibPath('sink_window.attn'),
      headDim: 64,
      dtype: 'bf16',
    });
    expect(artifact.schedule).toMatchObject({ engine: 'wgmma', blockQ: 64, blockK: 64, tileScan: 'ballot' });
    expect(artifact.code).toMatch(ballotScan);
  });

  it('an asked wgmma engine takes its 64 × 64 tiles with the ballot scan', () => {
    expect(build('sink_window.attn', { engine: 'wgmma' }).artifact.schedule).toMatchObject({
      engine: 'wgmma',
      blockQ: 64,
      blockK: 64,
      tileScan: 'ballot',
    });
  });

  it('summary-classified masks (document) at D = 128: the walk, FlashAttention-3 consumers, tweaks but splitKv', () => {
    const s = build('document.attn').artifact.schedule;
    expect(s).toMatchObject({
      engine: 'wgmma-ws',
      blockQ: 128,
      blockK: 96,
      stages: 3,
      wsProducerWalk: true,
      wsConsumers: 'fa3',
    });
    // Where the limits refuse the third stage, 128-key tiles in two stages (round 17's pick).
    const small = compile(readStdlib('document.attn'), {
      target: 'cuda',
      file: stdlibPath('document.attn'),
      headDim: 128,
      dtype: 'bf16',
      limits: { maxWorkgroupStorageBytes: 180_000 },
    }).artifact.schedule;
    expect(small).toMatchObject({ engine: 'wgmma-ws', blockK: 128, stages: 2, wsProducerWalk: true });
    expect(small.wsTweaks).toEqual(s.wsTweaks);
    // splitKv does not combine with the walk; the rest of the dense default's tweaks do.
    expect(s.wsTweaks).toEqual([
      'fastExp',
      'lazyRescale',
      'zeroInit',
      'pvN128',
      'rescaleInTurn',
      'foldScale',
    ]);
  });

  it('an asked engine keeps its tiles but takes the ballot scan; asked tiles or scans win', () => {
    expect(build('sink_window.attn', { engine: 'wgmma-ws' }).artifact.schedule).toMatchObject({
      engine: 'wgmma-ws',
      blockQ: 128,
      blockK: 128,
      tileScan: 'ballot',
    });
    const bounds = build('sink_window.attn', { engine: 'wgmma-ws', tileScan: 'bounds' }).artifact;
    expect(bounds.schedule.tileScan).toBe('bounds');
    expect(bounds.code).toMatch(boundsScan);
    const tiles = build('sink_window.attn', { blockQ: 128, blockK: 128 }).artifact.schedule;
    expect(tiles).toMatchObject({ engine: 'wgmma-ws', blockQ: 128 });
    expect(tiles.tileScan).toBeUndefined();
  });

  it('one-range masks keep the wgmma-ws default and no tileScan field (hashes unchanged)', () => {
    for (const file of ['sliding_window.attn', 'causal.attn', 'prefix_lm.attn', 'document.attn']) {
      const s = build(file).artifact.schedule;
      expect(s.engine, file).toBe('wgmma-ws');
      expect(s.tileScan, file).toBeUndefined();
      if (file !== 'document.attn') expect(s.wsProducerWalk, file).toBeUndefined();
    }
  });
});

describe('wgmma-ws honours Schedule.tileScan', () => {
  const ws = { engine: 'wgmma-ws', blockQ: 128, blockK: 128, threads: 384, stages: 2 } as const;
  it('ballot on an arithmetic classifier, bounds on a summary-reading one', () => {
    expect(build('causal.attn', ws).artifact.code).toMatch(boundsScan);
    expect(build('causal.attn', { ...ws, tileScan: 'ballot' }).artifact.code).toMatch(ballotScan);
    expect(build('document.attn', ws).artifact.code).toMatch(ballotScan);
    expect(build('document.attn', { ...ws, tileScan: 'bounds' }).artifact.code).toMatch(boundsScan);
  });
});

describe('wgmma-ws tuning fields', () => {
  it('ask for the wgmma-ws engine, and are refused with another engine', () => {
    // Unasked, dilated kernels run on wgmma; the ws fields pick wgmma-ws.
    expect(build('dilated.attn').artifact.schedule.engine).toBe('wgmma');
    expect(build('dilated.attn', { wsConsumers: 'fa3' }).artifact.schedule).toMatchObject({
      engine: 'wgmma-ws',
      wsConsumers: 'fa3',
    });
    expect(build('causal.attn', { wsProducerWalk: true }).artifact.schedule.engine).toBe('wgmma-ws');
    expect(() => build('causal.attn', { engine: 'wgmma', wsConsumers: 'overlap' })).toThrow(
      /wsConsumers, wsProducerWalk and wsDequant tune the wgmma-ws engine; the schedule asks for wgmma/,
    );
    expect(build('dilated.attn', { wsDequant: 'serial' }).artifact.schedule.engine).toBe('wgmma-ws');
    expect(() => build('causal.attn', { wsDequant: 'fast' as 'serial' })).toThrow(
      /wsDequant must be serial or pipelined, got fast/,
    );
  });
});
