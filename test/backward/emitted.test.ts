// The backward modules' structure, without running them: tile classification as the forward's
// (a per-tile classifier where the forward has one, no mask where every tile is full), the
// derived derivatives inlined, and the refusals.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileBackward, compileCudaBackward } from '../../src/backward.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');

describe('emitted backward modules', () => {
  it('classify tiles where the forward does: empty tiles skipped in both passes', () => {
    for (const code of [
      compileBackward(stdlib('sliding_window'), {}).backward.code,
      compileCudaBackward(stdlib('sliding_window'), {}).backward.code,
    ]) {
      expect(code).toMatch(/fn tile_class|__device__ int tile_class/);
      // Once per pass: the dq pass over key tiles, the dk/dv pass over query tiles.
      expect(code.match(/if \(cls == TILE_EMPTY\)/g)).toHaveLength(2);
      expect(code.match(/if \(cls == TILE_PARTIAL\)/g)).toHaveLength(2);
    }
  });

  it('document masks: summary passes first, then tiles classified from them', () => {
    const b = compileBackward(stdlib('document'), {}).backward;
    expect(b.entryPoints.map((e) => e.name)).toEqual(['summarize_doc', 'bwd_dq', 'bwd_dkdv']);
    expect(b.code).toMatch(/fn range_doc/);
    expect(b.code.match(/if \(cls == TILE_EMPTY\)/g)).toHaveLength(2);
    const cuda = compileCudaBackward(stdlib('document'), {}).backward;
    expect(cuda.summaries).toEqual(['doc']);
    expect(cuda.code).toMatch(/bwd_summary_doc<<</);
    expect(cuda.code.match(/if \(cls == TILE_EMPTY\)/g)).toHaveLength(2);
  });

  it('evaluate no mask when every tile is full, and inline the derived ∂score′/∂score', () => {
    const src = 'attention sc(cap: f32 = 5.0) {\n  score cap * tanh(score / cap)\n}';
    const wgsl = compileBackward(src, {}).backward;
    expect(wgsl.code).not.toMatch(/tile_class|cls ==|let mk/);
    expect(wgsl.code).toMatch(/tanh_f32/);
    expect(wgsl.gradParams).toEqual(['cap']);
    const cuda = compileCudaBackward(src, {}).backward;
    expect(cuda.code).not.toMatch(/tile_class|cls ==|mk0/);
    expect(cuda.gradParams).toEqual(['cap']);
  });

  it('learnable tensors get gradient buffers; int tensors and params do not', () => {
    const b = compileBackward(stdlib('sink_calibration'), {}).backward;
    expect(b.gradTensors).toEqual(['gain']);
    expect(b.gradParams).toEqual([]); // sinks is an int
    expect(b.bindings.map((x) => x.name)).toContain('grad_gain');
    const doc = compileBackward(stdlib('document'), {}).backward;
    expect(doc.gradTensors).toEqual([]);
  });

  it('say where there is no backward, at the declaration', () => {
    expect(() => compileCudaBackward(stdlib('paged-decode'), {})).toThrow(
      /paged-decode\.attn|<input>:\d+:\d+/,
    );
    expect(() => compileCudaBackward(stdlib('paged-decode'), {})).toThrow(/does not read paged K\/V caches/);
  });
});
