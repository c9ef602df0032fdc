// Params, tensors and lets named like the C macros the CUDA code includes (`INFINITY` from
// math.h, `NULL`, `EOF`, gcc's `linux`) or its own (`ATTNC_OK`): the argument struct declared
// `int INFINITY;`, which the preprocessor made `int (__builtin_inff ());`, so nvcc refused a
// kernel attnc had compiled. Executed on the CPU (emu.ts) against the reference, like
// random-programs-emu.test.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { buildEmulation } from './emu.js';
import { runCase } from './emu-case.js';
import { render, scratchDir } from './support.js';

const source = `attention macros(INFINITY: int = 5, NULL: int = 1, linux: f32 = 0.5, M_PI: int = 3,
    EOF: i32[kv], ATTNC_OK: int = 0, stdout: int = 2) {
  let INT_MAX = q - k
  mask INT_MAX < INFINITY * NULL + M_PI + ATTNC_OK && EOF[k] >= 0
  score score * linux + float(stdout)
}`;

describe('cuda: user names that are C macros', () => {
  it('are renamed in the argument struct, and the kernel runs as the reference', async () => {
    const { kernel } = compile(source, {
      target: 'cuda',
      headDim: 16,
      valueDim: 16,
      dtype: 'f32',
      schedule: { engine: 'simt', blockQ: 16, blockK: 16, threads: 16 },
    });
    const artifact = render(kernel);
    const header = Object.entries(artifact.files ?? {}).find(([path]) => path.endsWith('.h'))![1];
    for (const field of ['int INFINITY_;', 'int NULL_;', 'float linux_;', 'int M_PI_;', 'const int* EOF_;'])
      expect(header).toContain(field);
    const dir = scratchDir('c-names');
    const exe = await buildEmulation(dir, artifact, kernel);
    await runCase(
      exe,
      join(dir, kernel.name),
      artifact,
      kernel,
      { label: '24 x 40', B: 1, H: 2, Hkv: 1, Nq: 24, Nk: 40 },
      7,
    );
  }, 240_000);
});
