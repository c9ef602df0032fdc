// How the importance output is asked for and what it adds: CompileOptions.importance (and its
// refusals), the IR outputs, the bindings and entry points of both targets, the CUDA header and
// launcher checks, the emitted TS module's refusal, and the CLI flag on compile and run.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { compile } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import type { ImportanceMode } from '../../src/ir/kernel.js';
import { readStdlib } from '../support/stdlib.js';
import { expectOk, run, scratchDir, writeArtifact, hostExecutableFlags } from '../cuda/support.js';

const causal = readStdlib('causal.attn');
const cli = 'dist/src/cli/main.js';
const attnc = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('CompileOptions.importance', () => {
  it('sets outputs.importance and turns lse on (its pass reads lse)', () => {
    for (const target of ['wgsl', 'cuda'] as const) {
      const { kernel, artifact } = compile(causal, { target, lse: false, importance: 'normalized' });
      expect(kernel.outputs).toEqual({ lse: true, importance: 'normalized' });
      const imp = artifact.bindings.find((b) => b.role === 'importance');
      expect(imp).toMatchObject({ name: 'importance', dtype: 'f32', access: 'read_write' });
      expect(imp!.shape).toEqual(['B', 'H', 'Nk']);
      expect(artifact.bindings.some((b) => b.role === 'lse')).toBe(true);
      // Launched last: after the attention has written lse.
      expect(artifact.entryPoints.at(-1)!.role).toBe('importance');
    }
  });

  it('WGSL decode modules run the pass after their merge', () => {
    const { artifact } = compile(causal, { target: 'wgsl', importance: 'sum' });
    expect(artifact.decode!.artifact.entryPoints.map((e) => e.name)).toEqual([
      'attention_split',
      'attention_merge',
      'importance',
    ]);
  });

  it('is absent by default: no binding, no entry point', () => {
    for (const target of ['wgsl', 'cuda'] as const) {
      const { kernel, artifact } = compile(causal, { target });
      expect(kernel.outputs.importance).toBeUndefined();
      expect(artifact.bindings.some((b) => b.role === 'importance')).toBe(false);
      expect(artifact.entryPoints.some((e) => e.role === 'importance')).toBe(false);
    }
  });

  it('refuses an unknown mode, naming the option', () => {
    const bad = 'mean' as unknown as ImportanceMode;
    expect(() => compile(causal, { target: 'wgsl', importance: bad })).toThrow(
      /option importance: expected sum or normalized, got `mean`/,
    );
  });

  it('refuses routing kernels at the routing statement', () => {
    try {
      compile(readStdlib('biformer.attn'), { target: 'wgsl', file: 'biformer.attn', importance: 'sum' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as Error).message).toContain(
        'the importance output is not available for routing kernels yet',
      );
      expect((e as Error).message).toMatch(/biformer\.attn:\d+:\d+/);
    }
  });

  it('the emitted TS module refuses it, naming the option', () => {
    const { artifact } = compile(causal, { target: 'wgsl', importance: 'sum' });
    expect(() => emitKernelModule(artifact)).toThrow(/compiled with the importance option \(--importance\)/);
  });

  it("names the source's `importance` statement when that, not --importance, asked for it", () => {
    const dir = scratchDir('emit-importance');
    const bare = attnc(
      'compile',
      'stdlib/heavy_hitter.attn',
      '--target',
      'wgsl',
      '--emit',
      'ts',
      '--out',
      dir,
    );
    expect(bare.code).not.toBe(0);
    expect(bare.err).toContain(
      'emit ts: "heavy_hitter" has the importance output (the `importance sum` statement at stdlib/heavy_hitter.attn:13:3)',
    );
    expect(bare.err).not.toContain('--importance');
    // The option overrides the statement's mode, but the statement would still ask for the output.
    const both = attnc(
      'compile',
      'stdlib/heavy_hitter.attn',
      '--target',
      'wgsl',
      '--emit',
      'ts',
      '--importance',
      'normalized',
      '--out',
      dir,
    );
    expect(both.err).toContain('(the `importance sum` statement at stdlib/heavy_hitter.attn:13:3)');
    const flag = attnc(
      'compile',
      'stdlib/causal.attn',
      '--target',
      'wgsl',
      '--emit',
      'ts',
      '--importance',
      'sum',
      '--out',
      dir,
    );
    expect(flag.err).toContain('"causal" was compiled with the importance option (--importance)');
  });
});

describe('CUDA header and launcher', () => {
  const compiled = compile(readStdlib('sliding_window.attn'), {
    target: 'cuda',
    dtype: 'f32',
    headDim: 16,
    importance: 'normalized',
  });

  it('the args struct has an importance pointer; the header documents it', () => {
    const header = compiled.artifact.files!['sliding_window.h']!;
    expect(header).toMatch(/float\* importance; \/\* \[B, H, Nk\] f32, written/);
    expect(header).toMatch(
      /float\* lse; \/\* \[B, H, Nq\] f32, natural log, written \(the importance pass reads it\)/,
    );
    const manifest = JSON.parse(compiled.artifact.files!['sliding_window.json']!);
    expect(manifest.args.fields.map((f: { role: string }) => f.role)).toContain('importance');
    expect(manifest.outputs).toEqual({ lse: true, importance: 'normalized' });
  });

  it('refuses a NULL importance or lse pointer before launching anything', async () => {
    const dir = scratchDir('importance-launcher');
    const cu = writeArtifact(dir, compiled.artifact);
    const main = join(dir, 'main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static char dev[1 << 12] __attribute__((aligned(64)));
static void show(int code) { printf("%d|%s\\n", code, attnc_sliding_window_last_error()); }
static void reset(AttncArgs_sliding_window* a) {
  attnc_sliding_window_args_init(a, 1, 2, 1, 8, 8);
  a->q = dev; a->k = dev; a->v = dev; a->out = dev; a->lse = (float*)dev; a->importance = (float*)dev;
}
int main(void) {
  AttncArgs_sliding_window a;
  reset(&a); a.importance = NULL; show(attnc_sliding_window_launch(&a, 0));
  reset(&a); a.lse = NULL; show(attnc_sliding_window_launch(&a, 0));
  reset(&a); a.importance = (float*)(dev + 2); show(attnc_sliding_window_launch(&a, 0));
  return 0;
}
`,
    );
    const exe = join(dir, 'main');
    expectOk(
      await run(process.env.NVCC ?? 'nvcc', [...hostExecutableFlags('sm_80'), main, '-o', exe]),
      'nvcc',
    );
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    const nullMsg =
      '1|attnc_sliding_window: importance and lse must be non-NULL and 4-byte aligned (the kernel was compiled with importance; its pass reads lse)';
    expect(lines).toEqual([nullMsg, nullMsg, nullMsg]);
  }, 600_000);
});

describe('attnc --importance', () => {
  it('compile takes it (the .cu launches the pass) and refuses a bad mode', () => {
    const ok = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--importance', 'sum');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain('attnc_causal_importance<<<');
    // Both the decode branch and the prefill path end in the pass, as does Nq = 0 (zeros).
    expect(ok.out).toContain('return rc != ATTNC_OK ? rc : attnc_causal::launch_importance(a, stream);');
    expect(ok.out).toContain('if (a.Nq == 0) return attnc_causal::launch_importance(a, stream);');
    expect(ok.out.match(/return attnc_causal::launch_importance\(a, stream\);/g)).toHaveLength(2);
    const bad = attnc('compile', 'stdlib/causal.attn', '--importance', 'avg');
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('attnc: --importance expects sum or normalized, got `avg`\n');
  });

  it('run compares the importance output with the reference', () => {
    const r = spawnSync(
      process.execPath,
      [
        'scripts/with-gpu.mjs',
        process.execPath,
        cli,
        'run',
        'stdlib/causal.attn',
        '--nq',
        '3',
        '--nk',
        '300',
        '--heads',
        '4',
        '--kv-heads',
        '2',
        '--importance',
        'normalized',
        '--repeat',
        '1',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('agrees with the reference');
    expect(r.stdout).toMatch(/importance max abs error \S+, relative \S+/);
  }, 120_000);
});
