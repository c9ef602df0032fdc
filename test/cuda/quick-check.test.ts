// quickCheckFlags (support.ts) build with NVVM at -O1 and ptxas at -O0 to save compile time in the
// tests that ask only whether emitted code is valid CUDA. Here: what those tests rely on still fails
// under them — bad inline PTX (ptxas still assembles the code), a front-end warning under -Werror,
// an instruction the arch lacks — and the flags differ from the strict build in the optimization
// levels alone.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quickCheckFlags, run, scratchDir, strictFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

async function quickBuild(name: string, body: string, arch = 'sm_90a') {
  const dir = scratchDir(`quick-${name}`);
  const cu = join(dir, `${name}.cu`);
  writeFileSync(cu, body);
  return run(NVCC, [...quickCheckFlags(arch), '-c', cu, '-o', `${cu}.o`]);
}

describe('quickCheckFlags', () => {
  it('are the strict flags with NVVM at -O1 and ptxas at -O0, nothing else', () => {
    for (const arch of ['sm_80', 'sm_90a']) {
      expect(quickCheckFlags(arch)).toEqual([...strictFlags(arch), '-Xcicc', '-O1', '-Xptxas', '-O0']);
      expect(strictFlags(arch)).toContain('-Werror');
    }
  });

  it('build a valid kernel, and still refuse bad inline PTX, a warning and an sm_90a instruction on sm_80', async () => {
    const ok = await quickBuild('ok', 'extern "C" __global__ void k(float* p) { p[threadIdx.x] *= 2.0f; }\n');
    expect(ok.code, ok.stderr).toBe(0);
    const ptx = await quickBuild(
      'bad_ptx',
      'extern "C" __global__ void k(unsigned* p) {\n  unsigned r;\n  asm volatile("mov.b99 %0, 1;" : "=r"(r));\n  p[0] = r;\n}\n',
    );
    expect(ptx.code).not.toBe(0);
    expect(ptx.stderr).toMatch(/ptxas/);
    const unused = await quickBuild(
      'unused',
      'extern "C" __global__ void k(float* p) { int unused = 3; p[0] = 1.0f; }\n',
    );
    expect(unused.code).not.toBe(0);
    expect(unused.stderr).toMatch(/declared but never referenced|never referenced/);
    // The sm_90a-only instructions the wgmma engines emit are still checked against the arch.
    const wgmma = await quickBuild(
      'fence_sm80',
      'extern "C" __global__ void k() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }\n',
      'sm_80',
    );
    expect(wgmma.code).not.toBe(0);
    expect(wgmma.stderr).toMatch(/ptxas|wgmma/);
  }, 120_000);
});
