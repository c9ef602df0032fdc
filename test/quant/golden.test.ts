// Golden files of the WGSL code of examples/quant (test/golden/quant/): the row engine's attention
// and the decode module, whose K/V tile loads dequantize, so changes to the emitted dequantization
// show up as reviewable diffs.
// Regenerate with `UPDATE_GOLDEN=1 npx vitest run test/quant/golden.test.ts`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

const update = process.env.UPDATE_GOLDEN === '1';

function golden(path: string, code: string): void {
  if (update || (!existsSync(path) && !process.env.CI)) writeFileSync(path, code);
  expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
  expect(code).toBe(readFileSync(path, 'utf8'));
}

describe('golden WGSL of examples/quant', () => {
  it.each(['kivi', 'zipcache'])('%s', (name) => {
    const file = `examples/quant/${name}.attn`;
    const { artifact } = compile(readFileSync(file, 'utf8'), { target: 'wgsl', file, headDim: 64 });
    golden(`test/golden/quant/${name}.wgsl`, artifact.code);
    expect(artifact.decode, `${name}: no decode module`).toBeDefined();
    golden(`test/golden/quant/${name}.decode.wgsl`, artifact.decode!.artifact.code);
  });
});
