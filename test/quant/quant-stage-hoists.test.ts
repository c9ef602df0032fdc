// A quantized-cache kernel whose mask reads two tensors at k hoists two per-key values beside the
// wgmma-ws tiles. The staged prefill's fused path chose its blockK without them, so at D = 128
// the default CUDA compile refused the program ("needs 232504 bytes of shared memory (1024 for
// per-key values), the limit is 232448"). Found by scripts/fuzz-campaign.mjs (round 14).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { writeArtifact, expectOk, run, scratchDir, quickCheckFlags } from '../cuda/support.js';

const source = (store: string): string =>
  `attention hoists2(keep: i32[kv], doc: i32[kv]) {\n  mask keep[k] != 0 && doc[k] == doc[q]\n  ${store}\n}`;

describe('staged quantized prefill with per-key hoists', () => {
  const stores = ['store kv int8 scale f32 per token', 'store kv int4 scale f16 per token zero f16'];

  it.each(stores)('compiles by default at D = 128 (%s)', (store) => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const { artifact, kernel } = compile(source(store), { target: 'cuda', headDim: 128, dtype });
      expect(kernel.schedule.engine).toBe('wgmma-ws');
      expect(artifact.code).toContain('hk1[');
    }
  });

  it('nvcc -arch=sm_90a -Werror accepts it', async () => {
    const dir = scratchDir('stage-hoists');
    const { artifact } = compile(source(stores[0]!), { target: 'cuda', headDim: 128, dtype: 'bf16' });
    const cu = writeArtifact(dir, artifact);
    const flags = quickCheckFlags('sm_90a');
    expectOk(
      await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', cu, '-o', join(dir, 'k.o')]),
      `nvcc ${cu}`,
    );
  }, 600_000);
});
