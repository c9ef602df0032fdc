// Per-key hoists (a tile's `doc[k]` lookups staged in shared memory) are only needed where the
// mask is evaluated: the wgmma core skips their loads and barrier on full tiles unless the score
// modifier reads them too (then every tile needs them). The mma core keeps them on every tile (a
// conditional barrier makes modality spill there at D = 64). Numerics: bench/cuda/check.py
// (document, all schedules, on an H100).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { compile } from '../../src/compile.js';
import { meta } from './support.js';

const code = (src: string, engine: 'wgmma' | 'mma') =>
  renderCuda(compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16', schedule: { engine } }).kernel, meta)
    .code;
const guard = /if \(\(kt \+ 1\) \* BK > a\.Nk \|\| !kt_full\) \{ \/\/ a masked tile/;
const document = readFileSync('stdlib/document.attn', 'utf8');

describe('per-key hoists on full tiles', () => {
  it('wgmma: a mask-only hoist is loaded for masked tiles only', () => {
    const c = code(document, 'wgmma');
    expect(c).toMatch(guard);
    // The guarded block holds the hoist loop and its barrier.
    const block = c.slice(c.search(guard), c.indexOf('const bool tail ='));
    expect(block).toContain('hk0[kk] =');
    expect(block).toContain('__syncthreads();');
  });

  it('a hoist the score reads stays on every tile; the mma core never guards', () => {
    const scored = `attention t(d: i32[kv]) { score score + log(float(d[k]) + 2.0)  mask causal }`;
    const c = code(scored, 'wgmma');
    expect(c).toContain('hk0[kk] =');
    expect(c).not.toMatch(guard);
    expect(code(document, 'mma')).not.toMatch(guard);
  });
});

describe('Schedule.tileScan', () => {
  const sink = readFileSync('stdlib/sink_window.attn', 'utf8');
  const scan = (tileScan?: 'ballot' | 'bounds') =>
    renderCuda(
      compile(sink, {
        target: 'cuda',
        headDim: 64,
        dtype: 'bf16',
        schedule: { engine: 'wgmma', ...(tileScan ? { tileScan } : {}) },
      }).kernel,
      meta,
    ).code;
  it('picks the ballot scan or the per-tile walk; the default walks arithmetic classifiers', () => {
    const ballot = /ne_bits = __ballot_sync/;
    const walk = /for \(kt = max\(kt, first\); kt <= last; \+\+kt\)/;
    expect(scan('ballot')).toMatch(ballot);
    expect(scan('ballot')).not.toMatch(walk);
    expect(scan('bounds')).toMatch(walk);
    // Unasked, sinks + window's gap (tile-gaps.ts) takes ballots; one-range masks walk.
    expect(scan()).toMatch(ballot);
    const window = readFileSync('stdlib/sliding_window.attn', 'utf8');
    expect(code(window, 'wgmma')).toMatch(walk);
    // Summary-reading classifiers default to ballots.
    expect(code(document, 'wgmma')).toMatch(ballot);
  });
});
