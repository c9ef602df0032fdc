// Every stdlib kernel, compiled from its .attn through the whole pipeline, builds with
// nvcc -arch=sm_90a in bf16 at D=64 and D=128 (one translation unit per configuration: artifacts
// are namespaced, so this also checks they coexist).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact } from './support.js';
import { readStdlib, staticStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
// Mask/score kernels; the routing/selection ones build in routing-nvcc and select-nvcc.test.ts.
const stdlib = staticStdlib;

describe('stdlib CUDA compiles with nvcc', () => {
  for (const headDim of [64, 128]) {
    it(`all ${stdlib.length} stdlib kernels, bf16, D=${headDim}`, async () => {
      const dir = scratchDir(`stdlib-${headDim}`);
      const parts = stdlib.map((file) => {
        const { artifact } = compile(readStdlib(file), {
          target: 'cuda',
          file: stdlibPath(file),
          headDim,
          dtype: 'bf16',
        });
        writeArtifact(dir, artifact);
        return artifact.code;
      });
      const tu = join(dir, 'stdlib.cu');
      writeFileSync(tu, parts.join('\n'));
      const flags = ['-arch=sm_90a', '-std=c++17', '-Xcompiler', '-Wall', '-Werror', 'all-warnings'];
      expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'stdlib.o')]), `nvcc ${tu}`);
    }, 600_000);
  }
});
