// CUDA decode mode's shared memory (decode-pipe.ts, decode-host.ts). On the H200 a 48 KiB stream
// (bf16 at 3 stages, int8/e4m3 at 6) failed to launch with a bare "invalid argument": the launcher
// asked for the dynamic share only above 48 KiB, but the split kernel's static arrays count toward
// the same default limit. Now the launcher always asks for the dynamic share and refuses, naming
// the knobs, a stream beyond the device's opt-in limit; one beyond 227 KiB (any device) stops nvcc.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { render, run, scratchDir, sassOnly } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const bf16Decode = (): string =>
  render(
    compile('attention smem() {\n}\n', { target: 'cuda', headDim: 128, dtype: 'bf16', arch: 'sm_90a' })
      .kernel,
  ).code;

describe('CUDA decode: shared memory of the stream', () => {
  it('the launcher always requests the dynamic share and checks the opt-in limit first', () => {
    const code = bf16Decode();
    expect(code).not.toMatch(/if \(SPLIT_SMEM > 48 \* 1024\)/);
    const optin = code.indexOf('cudaDevAttrMaxSharedMemoryPerBlockOptin');
    const request = code.indexOf(
      'cudaFuncSetAttribute(split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SPLIT_SMEM)',
    );
    expect(optin).toBeGreaterThan(0);
    expect(request).toBeGreaterThan(optin);
    expect(code).toContain('cudaFuncGetAttributes(&fa, split_kernel)'); // the static share, exactly
    expect(code).toContain('decode: ATTNC_DEC_STAGES (%d) x ATTNC_DEC_GROUPS (%d) x ATTNC_DEC_KPG (%d) keys');
  });

  it('nvcc refuses a stream beyond 227 KiB per block, naming the knobs', async () => {
    const dir = scratchDir('decode-smem');
    const cu = join(dir, 'smem.cu');
    writeFileSync(cu, bf16Decode());
    // 16 stages x 32 keys x 512 bytes = 256 KiB.
    const r = await run(
      NVCC,
      [...sassOnly('sm_90a'), '-std=c++17', '-DATTNC_DEC_STAGES=16', '-cubin', cu, '-o', `${cu}.cubin`],
      undefined,
      600_000,
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(
      'ATTNC_DEC_STAGES x ATTNC_DEC_GROUPS x ATTNC_DEC_KPG keys need more than 227 KiB',
    );
  }, 600_000);
});
