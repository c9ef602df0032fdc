// Score math on the tensor-core engines (rules.ts 'fast'): tanh is the SFU's tanh.approx.f32 and
// f32 division by a uniform divisor is a multiplication by its reciprocal, as FlashAttention-3
// does for softcap. The SIMT engine (which the CPU emulator runs) stays precise, and so does any
// kernel whose mask reads tanh or f32 division (its tile classifier must match the mask exactly).
// The approximate kernels build with nvcc for sm_80 (mma) and sm_90a (wgmma, wgmma-ws).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { Engine, StorageDType } from '../../src/ir/kernel.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';
import { expectOk, run, scratchDir, writeArtifact, quickCheckFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const softcap = (engine: Engine, dtype: StorageDType = 'bf16', arch?: 'sm_80') =>
  compile(readStdlib('softcap.attn'), {
    target: 'cuda',
    file: stdlibPath('softcap.attn'),
    headDim: 64,
    dtype,
    schedule: { engine },
    ...(arch ? { arch } : {}),
  }).artifact;

const custom = (source: string, engine: Engine) =>
  compile(source, { target: 'cuda', file: 'custom.attn', headDim: 64, dtype: 'f16', schedule: { engine } })
    .artifact.code;

/** The attention kernel's own text (the decode-mode kernels after it keep libdevice math). */
const attentionPart = (code: string): string => code.slice(0, code.indexOf('---- decode mode'));

describe('score math per engine', () => {
  it('tensor-core engines: softcap is tanh.approx.f32 of a multiplication by 1 / cap', () => {
    for (const engine of ['mma', 'wgmma', 'wgmma-ws'] as const) {
      const code = attentionPart(softcap(engine, engine === 'mma' ? 'f16' : 'bf16').code);
      expect(code, engine).toContain('asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));');
      expect(code, engine).toContain('a.cap * (tanh_approx(x * (1.0f / a.cap)))');
      expect(code, engine).not.toMatch(/tanhf\(|x \/ a\.cap/);
    }
  });

  it('SIMT stays precise: libdevice tanhf and IEEE division', () => {
    const code = softcap('simt', 'f32').code;
    expect(code).toContain('a.cap * (tanhf(x / a.cap))');
    expect(code).not.toContain('tanh_approx');
  });

  it('only divisors that are the same for all keys of a row become reciprocals', () => {
    const src = 'attention t(c: f32 = 3.0) {\n  score score / (c * 2.0) + score / q + score / (k + 1)\n}\n';
    const code = attentionPart(custom(src, 'mma'));
    expect(code).toContain('x * (1.0f / hq0[r])'); // c * 2.0, hoisted per row
    expect(code).toContain('x * (1.0f / hq1[r])'); // (float)q
    expect(code).toContain('x / ((float)(add_i(kpos, 1)))'); // per key: an IEEE division
  });

  it('a mask that reads tanh keeps precise math (its classifier bounds it exactly)', () => {
    const code = custom('attention t() {\n  score tanh(score)\n  mask tanh(q - k) >= 0.0\n}\n', 'wgmma');
    expect(attentionPart(code)).toContain('tanhf(');
    expect(code).not.toContain('tanh_approx');
  });

  it('builds with nvcc: mma for sm_80, wgmma and wgmma-ws for sm_90a', async () => {
    const dir = scratchDir('score-math');
    const builds: [string, ReturnType<typeof softcap>][] = [
      ['sm_80', softcap('mma', 'f16', 'sm_80')],
      ['sm_90a', softcap('wgmma')],
      ['sm_90a', softcap('wgmma-ws')],
    ];
    for (const [i, [arch, artifact]] of builds.entries()) {
      const sub = scratchDir(`score-math-${i}`);
      const cu = writeArtifact(sub, artifact);
      const flags = quickCheckFlags(arch);
      expectOk(await run(NVCC, [...flags, '-c', cu, '-o', join(dir, `${i}.o`)]), `nvcc ${arch} ${cu}`);
    }
  }, 600_000);
});
