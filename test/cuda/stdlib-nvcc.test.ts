// Every stdlib kernel, compiled from its .attn through the whole pipeline, builds with
// nvcc -arch=sm_90a in bf16 at D=64 and D=128 (one translation unit per configuration: artifacts
// are namespaced, so this also checks they coexist).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact } from './support.js';
import { compileOffered, readStdlib, staticStdlib, storedStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
// Mask/score kernels; the routing/selection ones build in routing-nvcc and select-nvcc.test.ts.
const stdlib = staticStdlib;

describe('stdlib CUDA compiles with nvcc', () => {
  for (const headDim of [64, 128]) {
    it(`all ${stdlib.length} stdlib kernels, bf16, D=${headDim}`, async () => {
      const dir = scratchDir(`stdlib-${headDim}`);
      // Quantized-cache kernels join where the schedule offers an engine for their format (with
      // their quantize kernels); the others are listed by the test below.
      const stored = storedStdlib.flatMap((file) => {
        const o = compileOffered(file, { target: 'cuda', headDim, dtype: 'bf16' });
        if (o.kind === 'not offered') return [];
        writeArtifact(dir, o.compiled.artifact);
        return [o.compiled.artifact.code];
      });
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
      writeFileSync(tu, [...parts, ...stored].join('\n'));
      const flags = ['-arch=sm_90a', '-std=c++17', '-Xcompiler', '-Wall', '-Werror', 'all-warnings'];
      expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'stdlib.o')]), `nvcc ${tu}`);
    }, 600_000);
  }
});

describe('stdlib quantized-cache kernels on CUDA', () => {
  it.each(storedStdlib)('%s: compiled with its quantize kernels, or not offered with the reason', (file) => {
    const o = compileOffered(file, { target: 'cuda', headDim: 64, dtype: 'bf16' });
    if (o.kind === 'not offered') expect(o.why).toMatch(/K\/V storage formats|quantized K\/V caches/);
    else expect(o.compiled.artifact.code).toMatch(/extern "C" int attnc_\w+_quantize_[kv]\(/);
  });
});
