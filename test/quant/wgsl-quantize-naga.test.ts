// naga validates the WGSL `quantize` modules. Their f32 constants were `bitcast<f32>(0x…u)` in a
// const declaration, which naga cannot evaluate ("Not implemented as constant expression:
// bitcast built-in function"), so no quantize module passed the validator the WGSL tests use.
// Found by scripts/fuzz-campaign.mjs (round 14); the modules also run on Dawn (wgsl-quantize*).
import { nagaValidate } from '../support/naga.js';
import { STORE_STATEMENTS as STORES } from '../support/arbitraries.js';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

describe('WGSL quantize modules pass naga', () => {
  it.each(STORES)('%s', (store) => {
    const { artifact } = compile(`attention t() {\n  ${store}\n  mask causal\n}`, {
      target: 'wgsl',
      headDim: 64,
    });
    const modules = Object.values(artifact.quantize ?? {});
    expect(modules.length).toBeGreaterThan(0);
    for (const m of modules) expect(() => nagaValidate(m.code)).not.toThrow();
  });
});
