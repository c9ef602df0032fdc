// Staged prefill over quantized K/V (Schedule.quantPrefill 'staged', src/codegen/cuda/quant-stage.ts):
// what the artifact exposes (manifest functions, the twin's schedule, the fused fallback's tile),
// the kernels it refuses, nvcc builds for sm_90a (wgmma-ws) and sm_80 (mma), and the staged
// launcher's workspace checks, run on the host (every case fails before the first CUDA call).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact, sassOnly, hostExecutableFlags } from '../cuda/support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const staged = (body: string, name: string, extra: Record<string, unknown> = {}, arch?: string) =>
  compile(`attention ${name}() {\n  ${body}\n}`, {
    target: 'cuda',
    headDim: 128,
    dtype: 'bf16',
    schedule: { quantPrefill: 'staged', ...extra },
    ...(arch ? { arch } : {}),
  });

describe('staged prefill artifacts', () => {
  it('expose the staged launch, the workspace size and the pass; the twin gets the float tile', () => {
    const c = staged('store kv int8 scale f32 per token', 'sti8');
    const m = JSON.parse(c.artifact.files!['sti8.json']!);
    expect(m.functions).toMatchObject({
      launch: 'attnc_sti8_launch',
      launchStaged: 'attnc_sti8_launch_staged',
      workspaceBytes: 'attnc_sti8_workspace_bytes',
      dequantizeKv: 'attnc_sti8_dequantize_kv',
    });
    expect(m.schedule.quantPrefill).toBe('staged');
    // The twin gets the plain bf16 kernel's schedule (the dense default: FA3 consumers + tweaks).
    const plain = compile('attention p() {}', { target: 'cuda', headDim: 128, dtype: 'bf16' });
    const { quantPrefill: _q, ...twinSchedule } = c.kernel.schedule;
    expect(twinSchedule).toEqual(plain.kernel.schedule);
    expect(c.kernel.schedule.wsConsumers).toBe('fa3');
    expect(m.staged).toEqual({ twin: 'sti8__staged', fusedBlockK: 128, minNq: 129 });
    expect(c.artifact.files!['sti8.h']).toContain(
      'int attnc_sti8_launch_staged(const AttncArgs_sti8* args, void* workspace, size_t workspace_bytes, cudaStream_t stream);',
    );
    expect(c.artifact.code).toContain('attnc_sti8__staged_attention');
  });

  it("a fused kernel (quantPrefill 'fused') has none of it", () => {
    const c = compile('attention fu() {\n  store kv int8 scale f32 per token\n}', {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { quantPrefill: 'fused' },
    });
    expect(c.artifact.code).not.toContain('launch_staged');
    expect(JSON.parse(c.artifact.files!['fu.json']!).staged).toBeUndefined();
  });

  it('refuses kernels it cannot stage, naming why', () => {
    expect(() => staged('mask causal', 'nq')).toThrow(
      /quantPrefill \(--quant-prefill\) 'staged' needs a quantized K or V cache/,
    );
    // A compile error at the declaration, not a stack trace.
    expect(() => staged('mask causal', 'nq2')).toThrow(/--> <input>:1:11/);
  });
});

describe('staged prefill with nvcc', () => {
  const dir = scratchDir('qstage-nvcc');

  it('builds for sm_90a (wgmma-ws, int4 causal) and sm_80 (mma, int2 with zero points)', async () => {
    const builds = [
      { c: staged('store kv int4 scale f32 per token\n  mask causal', 'sb90'), arch: 'sm_90a' },
      {
        c: staged(
          'store k int2 scale f16 per token group 16 zero f16\n  store v e4m3 scale f32 per token',
          'sb80',
          { engine: 'mma' },
          'sm_80',
        ),
        arch: 'sm_80',
      },
    ];
    await Promise.all(
      builds.map(async ({ c, arch }) => {
        const cu = writeArtifact(dir, c.artifact);
        const out = join(dir, `${c.kernel.name}.cubin`);
        expectOk(await run(NVCC, [...sassOnly(arch), '-std=c++17', '-cubin', cu, '-o', out]), `nvcc ${arch}`);
      }),
    );
  }, 600_000);

  it('checks the workspace before any launch; short launches go fused without one', async () => {
    const c = staged('store kv int8 scale f32 per token', 'stw', { engine: 'mma' }, 'sm_80');
    const cu = writeArtifact(dir, c.artifact);
    const main = join(dir, 'stw_main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static char dev[1 << 12] __attribute__((aligned(64)));
static void show(int code) { printf("%d|%s\\n", code, attnc_stw_last_error()); }
static void reset(AttncArgs_stw* a, int Nq) {
  attnc_stw_args_init(a, 2, 4, 2, Nq, 100);
  a->q = dev; a->k = dev; a->v = dev; a->out = dev; a->lse = (float*)dev;
  a->k_scale = (const float*)dev; a->v_scale = (const float*)dev;
}
int main(void) {
  AttncArgs_stw a;
  reset(&a, 300);
  printf("%zu\\n", attnc_stw_workspace_bytes(&a));
  show(attnc_stw_launch_staged(&a, NULL, 0, 0));
  show(attnc_stw_launch_staged(&a, dev + 8, 1 << 20, 0));
  show(attnc_stw_launch_staged(&a, dev, 1000, 0));
  reset(&a, 300); a.k_scale = NULL;
  show(attnc_stw_launch_staged(&a, dev, 1 << 30, 0));
  /* One query tile: the fused launcher (its own checks; no workspace needed). */
  reset(&a, 64); a.q = NULL;
  show(attnc_stw_launch_staged(&a, NULL, 0, 0));
  return 0;
}
`,
    );
    const exe = join(dir, 'stw_main');
    expectOk(await run(NVCC, [...hostExecutableFlags('sm_80'), main, '-o', exe]), 'nvcc (staged launcher)');
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(String(2 * 2 * 100 * (128 + 128) * 2));
    expect(lines[1]).toBe(
      '1|attnc_stw: workspace is NULL (this launch needs attnc_stw_workspace_bytes(args) = 204800 bytes)',
    );
    expect(lines[2]).toMatch(/^1\|attnc_stw: workspace must be 16-byte aligned \(got 0x/);
    expect(lines[3]).toBe(
      '1|attnc_stw: workspace_bytes (1000) is less than the 204800 bytes this launch needs',
    );
    expect(lines[4]).toBe('1|attnc_stw: k_scale (a tensor of the quantized cache) must not be NULL');
    expect(lines[5]).toMatch(/^1\|attnc_stw: q, k, v and out must be non-NULL/);
  }, 600_000);
});
