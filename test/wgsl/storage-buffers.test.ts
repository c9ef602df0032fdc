// compile() and the kernel's storage-buffer count against maxStorageBuffersPerShaderStage: past the
// device's limit pipeline creation fails, which only the runtime checked (createKernel). With the
// device's limit in `limits` (the runtime's deviceLimits passes it) compile() refuses; without it,
// a kernel past WebGPU's baseline of 8 compiles with a warning naming the count and the limit.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { compile as compileWgsl } from '../../src/wgsl.js';
import { CompileError } from '../../src/diagnostics.js';
import { BASELINE_STORAGE_BUFFERS, storageBufferCount } from '../../src/codegen/wgsl/storage-buffers.js';

const file = 'stdlib/kivi.attn';
const kivi = readFileSync(file, 'utf8');

describe('storage buffers against maxStorageBuffersPerShaderStage', () => {
  it('kivi binds more than the baseline (the premise of the cases below)', () => {
    const { artifact } = compile(kivi, { target: 'wgsl', limits: { maxStorageBuffers: 64 } });
    expect(storageBufferCount(artifact)).toBe(11);
    expect(BASELINE_STORAGE_BUFFERS).toBe(8);
  });

  it.each([compile, compileWgsl])('without a known limit: a warning at the declaration (%#)', (f) => {
    const r = f(kivi, { target: 'wgsl', file });
    expect(r.warnings).toEqual([
      {
        severity: 'warning',
        message:
          "kernel `kivi` binds 11 storage buffers, more than the 8 every WebGPU device allows (maxStorageBuffersPerShaderStage): it runs only on a device created with a limit of 11 or more (attnc's runtime requests the adapter's limit)",
        span: expect.objectContaining({ file, line: 7, column: 11 }) as unknown,
      },
    ]);
  });

  it("with the device's limit: refused below the count, clean at it", () => {
    const refused = () => compile(kivi, { target: 'wgsl', file, limits: { maxStorageBuffers: 10 } });
    expect(refused).toThrow(CompileError);
    expect(refused).toThrow(
      /kernel `kivi` binds 11 storage buffers; the device allows 10 \(maxStorageBuffersPerShaderStage\)\n --> stdlib\/kivi\.attn:7:11/,
    );
    expect(compile(kivi, { target: 'wgsl', limits: { maxStorageBuffers: 11 } }).warnings).toEqual([]);
  });

  it('no warning within the baseline, nor for CUDA', () => {
    expect(compile('attention w() { mask causal }', { target: 'wgsl' }).warnings).toEqual([]);
    expect(compile(kivi, { target: 'cuda' }).warnings).toEqual([]);
  });

  it('attnc compile prints the warning on stderr, exits 0 and writes the code to stdout', () => {
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'compile', file, '--target', 'wgsl'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('@compute');
    expect(r.stderr).toMatch(/^warning: kernel `kivi` binds 11 storage buffers, more than the 8 /);
    expect(r.stderr).toContain(' --> stdlib/kivi.attn:7:11\n');
    // --json: in the document, and stderr stays empty.
    const j = spawnSync(
      process.execPath,
      ['dist/src/cli/main.js', 'compile', file, '--target', 'wgsl', '--json'],
      {
        encoding: 'utf8',
      },
    );
    expect(j.stderr).toBe('');
    const doc = JSON.parse(j.stdout) as { ok: boolean; diagnostics: unknown[] };
    expect(doc.ok).toBe(true);
    expect(doc.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'warning',
        file,
        line: 7,
        column: 11,
        message: expect.stringMatching(/binds 11 storage buffers/) as unknown,
      }),
    ]);
  });
});
