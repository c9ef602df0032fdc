// naga validates the WGSL `quantize` modules. Their f32 constants were `bitcast<f32>(0x…u)` in a
// const declaration, which naga cannot evaluate ("Not implemented as constant expression:
// bitcast built-in function"), so no quantize module passed the validator the WGSL tests use.
// Found by scripts/fuzz-campaign.mjs (round 14); the modules also run on Dawn (wgsl-quantize*).
import { nagaValidate } from '../support/naga.js';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

const STORES = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 32 zero f16',
  'store v int2 scale f16 per token group 16 zero f16 recent 16 f16',
  'store k e4m3 scale f32 per tensor',
  'store v e5m2',
  'store kv int4 scale f16 per token zero f16 norm f16',
];

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
