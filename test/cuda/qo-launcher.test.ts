// The launcher's q/out stride checks (src/codegen/cuda/qo-rows.ts): bad strides are refused on
// the host with a message naming the argument, before any CUDA call; a BNHD q and out pass.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact, hostExecutableFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

describe('q and out strides in the launcher', () => {
  it('refuses negative, misaligned and overlapping strides, naming them', async () => {
    const dir = scratchDir('qo-launcher');
    const a = compile('attention qo() {\n  mask causal\n}', {
      target: 'cuda',
      headDim: 64,
      dtype: 'bf16',
    }).artifact;
    const cu = writeArtifact(dir, a);
    const main = join(dir, 'main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static void show(int code) { printf("%d|%s\\n", code, attnc_qo_last_error()); }
int main(void) {
  AttncArgs_qo a;
  static char dev[1 << 12] __attribute__((aligned(64)));
  attnc_qo_args_init(&a, 2, 4, 2, 10, 10);
  a.q = dev; a.k = dev; a.v = dev; a.out = dev;
  printf("%lld %lld %lld %lld\\n", a.q_stride_b, a.q_stride_h, a.q_stride_n, a.out_stride_h);
  a.q_stride_n = -64; show(attnc_qo_launch(&a, 0));
  a.q_stride_n = 68; show(attnc_qo_launch(&a, 0));
  a.q_stride_n = 64; a.out_stride_h = 0; show(attnc_qo_launch(&a, 0));
  a.out_stride_h = 8; show(attnc_qo_launch(&a, 0));
  /* BNHD q and out: h 64 apart, rows H * 64, batches Nq * H * 64 */
  a.q_stride_b = a.out_stride_b = 10 * 4 * 64; a.q_stride_h = a.out_stride_h = 64; a.q_stride_n = a.out_stride_n = 4 * 64;
  show(attnc_qo_launch(&a, 0)); /* valid: fails only for want of a GPU */
  return 0;
}
`,
    );
    const exe = join(dir, 'main');
    expectOk(
      await run(NVCC, [...hostExecutableFlags('sm_90a'), main, '-o', exe]),
      'nvcc (q/out launcher test)',
    );
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('2560 640 64 640');
    expect(lines[1]).toBe(
      '1|attnc_qo: q strides must be >= 0 (got q_stride_b = 2560, q_stride_h = 640, q_stride_n = -64)',
    );
    expect(lines[2]).toMatch(
      /^1\|attnc_qo: q strides must be multiples of 8 elements, the kernel's vector loads \(got q_stride_b = 2560, q_stride_h = 640, q_stride_n = 68\)$/,
    );
    expect(lines[3]).toBe(
      '1|attnc_qo: out strides make rows of out overlap (out_stride_b = 2560, out_stride_h = 0, out_stride_n = 64 for [B, H, Nq, 64] = [2, 4, 10, 64])',
    );
    expect(lines[4]).toMatch(
      /^1\|attnc_qo: out strides make rows of out overlap \(out_stride_b = 2560, out_stride_h = 8,/,
    );
    // No GPU in CI: past the checks the first CUDA call fails and says why; a GPU launches for real.
    expect(lines[5]).not.toMatch(/stride|overlap/);
  }, 600_000);
});
