// The importance pass builds with nvcc beside every engine: every mask/score stdlib kernel
// compiled with importance, for sm_90a (wgmma engines, bf16, D = 128, normalized), sm_80 (the
// mma engine, f16, D = 64, sum) and SIMT f32 (D = 64, normalized), -Wall -Werror.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { ImportanceMode, StorageDType } from '../../src/ir/kernel.js';
import { expectOk, run, scratchDir, writeArtifact, quickCheckFlags } from '../cuda/support.js';
import { readStdlib, staticStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const configs: readonly (readonly [string, StorageDType, number, ImportanceMode])[] = [
  ['sm_90a', 'bf16', 128, 'normalized'],
  ['sm_80', 'f16', 64, 'sum'],
  ['sm_90a', 'f32', 64, 'normalized'],
];

describe.concurrent('the CUDA importance pass compiles with nvcc', () => {
  for (const [arch, dtype, headDim, importance] of configs) {
    it(`stdlib kernels, ${arch} ${dtype} D=${headDim} ${importance}`, async () => {
      const dir = scratchDir(`importance-${arch}-${dtype}-${headDim}`);
      const parts = staticStdlib.map((file) => {
        const { artifact } = compile(readStdlib(file), {
          target: 'cuda',
          file: stdlibPath(file),
          arch,
          headDim,
          dtype,
          importance,
        });
        expect(artifact.entryPoints.at(-1)?.role).toBe('importance');
        writeArtifact(dir, artifact);
        return artifact.code;
      });
      const tu = join(dir, 'stdlib.cu');
      writeFileSync(tu, parts.join('\n'));
      const flags = quickCheckFlags(arch);
      expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'stdlib.o')]), `nvcc ${tu}`);
    }, 900_000);
  }
});
