// scripts/fuzz-campaign.mjs (the random-program campaign): a draw is a pure function of its seed
// (so a reported failure replays), its verdicts tell a positioned refusal from an internal error,
// and a small compile-only run over every target passes with the counts it reports.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs scripts (they run against dist/), no declarations
import { draw, drawSeed } from '../../scripts/fuzz/draw.mjs';
// @ts-expect-error: as above
import { nagaError, runJob } from '../../scripts/fuzz/compile-all.mjs';
import { compile } from '../../src/compile.js';

describe('fuzz campaign', () => {
  it('draws the same case from the same seed, and different cases from different ones', () => {
    expect(draw(drawSeed(7, 3))).toEqual(draw(drawSeed(7, 3)));
    expect(draw(drawSeed(7, 3)).source).not.toBe(draw(drawSeed(7, 4)).source);
  });

  it('draws distinct cases across seeds and indices (round 14 repeated them)', () => {
    const distinct = (round: number): number => {
      const seen = new Set<number>();
      for (let seed = 1; seed <= 20; seed++)
        for (let i = 0; i < 100; i++) seen.add(drawSeed(seed, i, { round }));
      return seen.size;
    };
    expect(distinct(15)).toBe(2000);
    expect(distinct(14)).toBeLessThan(300);
  });

  it('draws round 14 cases for --round 14, and round 15 adds its axes to them', () => {
    for (let i = 0; i < 20; i++) {
      const old = draw(drawSeed(7, i), { round: 14 });
      const now = draw(drawSeed(7, i));
      expect(now.features.slice(0, old.features.length)).toEqual(old.features);
      // Round 15 appends params and statements: every line but the header and `}` is kept.
      for (const line of old.source.trimEnd().split('\n').slice(1, -1)) expect(now.source).toContain(line);
      expect([now.dtype, now.D, now.tile]).toEqual([old.dtype, old.D, old.tile]);
    }
  });

  it('round 17 adds a dilation conjunct to some draws; --round 15 draws them as rounds 15 and 16 did', () => {
    let dilated = 0;
    for (let i = 0; i < 300; i++) {
      const before = draw(drawSeed(7, i, { round: 15 }), { round: 15 });
      const now = draw(drawSeed(7, i, { round: 17 }), { round: 17 });
      expect(before.features).not.toContain('dilation');
      if (!now.features.includes('dilation')) {
        expect(now).toEqual(before);
        continue;
      }
      expect(now.source).toMatch(/mask \(q - k\) % (-?\d+|dil) == 0|mask k % dil == q % dil/);
      // The conjunct reaches the residue-class pass (a CUDA kernel records its modulus) unless the
      // draw is refused for another reason or the rest of its mask is constant (`mask !true`).
      const built = runJob(() => compile(now.source, { target: 'cuda', headDim: 16, dtype: 'bf16' }));
      if (built.status === 'refused') continue;
      const { kernel } = compile(now.source, { target: 'cuda', headDim: 16, dtype: 'bf16' });
      if (kernel.residue) dilated++;
    }
    expect(dilated).toBeGreaterThan(12); // about one draw in ten has the axis (routed draws take none)
  });

  it('round 18 adds a neighbourhood to some draws; --round 17 draws them as round 17 did', () => {
    let patched = 0;
    for (let i = 0; i < 300; i++) {
      const before = draw(drawSeed(7, i, { round: 17 }), { round: 17 });
      const now = draw(drawSeed(7, i, { round: 18 }));
      expect(before.features).not.toContain('neighbourhood');
      if (!now.features.includes('neighbourhood')) {
        expect(now).toEqual(before);
        continue;
      }
      expect(now.features).not.toContain('dilation');
      // The two conjuncts reach the neighbourhood pass (a CUDA kernel records them) unless the draw
      // is refused for another reason.
      const built = runJob(() => compile(now.source, { target: 'cuda', headDim: 16, dtype: 'bf16' }));
      if (built.status === 'refused') continue;
      const { kernel } = compile(now.source, { target: 'cuda', headDim: 16, dtype: 'bf16' });
      if (kernel.neighbourhood) patched++;
    }
    expect(patched).toBeGreaterThan(12); // about one draw in eight has the axis
  });

  it('calls a positioned CompileError a refusal and anything else a bug', () => {
    const refused = runJob(() => compile('attention t() {\n  mask q +\n}', { target: 'wgsl' }));
    expect(refused.status).toBe('refused');
    const bug = runJob(() => {
      throw new TypeError('x is undefined');
    });
    expect(bug.status).toBe('bug');
    expect(bug.message).toContain('x is undefined');
  });

  it('naga accepts a compiled kernel and names what it rejects', () => {
    const { artifact } = compile('attention t() {\n  mask causal\n}', { target: 'wgsl', headDim: 8 });
    expect(nagaError(artifact.code)).toBeUndefined();
    expect(nagaError('fn f() -> f32 { return 1u; }')).toMatch(/./);
  });

  it('a compile-only run over every target passes and reports its counts', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'fuzz-campaign-')), 'report.json');
    const args = [
      'scripts/fuzz-campaign.mjs',
      '--seed',
      '7',
      '--runs',
      '6',
      '--targets',
      'wgsl,cuda,backward',
    ];
    const r = spawnSync(process.execPath, [...args, '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.draws).toBe(6);
    expect(report.failures).toEqual([]);
    // Every draw compiles or is refused at a position (round 15's qk int8 draws have no WGSL).
    const both = (label: string): number =>
      (report.tally[`${label} ok`] ?? 0) + (report.tally[`${label} refused`] ?? 0);
    expect(both('wgsl-row')).toBe(6);
    expect(both('cuda-default')).toBe(6);
    expect(report.tally['wgsl-row ok']).toBeGreaterThanOrEqual(4);
    expect(report.tally['naga ok']).toBeGreaterThanOrEqual(12);
  }, 300_000);
});
