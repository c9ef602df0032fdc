// --arch: the CUDA target builds for sm_80, sm_86, sm_89 and sm_90a. The schedule picks only the
// engines an arch runs (mma.sync from sm_80, warpgroup MMA on sm_90a alone), the header and the
// manifest name the arch, bad requests are positioned errors, and every stdlib declaration
// builds with nvcc -arch=sm_80 (warnings as errors).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { archOfCapability } from '../../src/codegen/cuda/arch.js';
import { CompileError } from '../../src/diagnostics.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';
import { compileOffered, readStdlib, stdlibFiles, stdlibPath, storedStdlib } from '../support/stdlib.js';
import { checkSource } from '../../src/compile.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const causal = readStdlib('causal.attn');
const cuda = (arch: string | undefined, extra: object = {}) =>
  compile(causal, { target: 'cuda', headDim: 128, dtype: 'bf16', ...(arch ? { arch } : {}), ...extra })
    .artifact;
const manifestOf = (a: ReturnType<typeof cuda>) =>
  JSON.parse(a.files![Object.keys(a.files!).find((f) => f.endsWith('.json'))!]!) as { arch: string };

describe('CUDA architectures', () => {
  it.each([
    ['sm_80', 'mma'],
    ['sm_86', 'mma'],
    ['sm_89', 'mma'],
    ['sm_90a', 'wgmma-ws'],
    [undefined, 'wgmma-ws'],
  ] as const)('%s runs the %s engine and names its arch', (arch, engine) => {
    const a = cuda(arch);
    expect(a.schedule.engine).toBe(engine);
    expect(a.code).toContain(`for CUDA (${arch ?? 'sm_90a'})`);
    expect(manifestOf(a).arch).toBe(arch ?? 'sm_90a');
  });

  it("fits the arch's shared memory (sm_86: 99 KiB)", () => {
    // The 128 × 64 mma tiles at D = 128 take 96 KiB: they fit; a 128-key tile would not.
    expect(cuda('sm_86').schedule).toMatchObject({ engine: 'mma', blockQ: 128, blockK: 64 });
    expect(() => cuda('sm_86', { schedule: { engine: 'mma', blockK: 128 } })).toThrow(CompileError);
  });

  it('refuses an engine the arch lacks, an unknown arch, and --arch for WGSL, at the declaration', () => {
    expect(() => cuda('sm_80', { schedule: { engine: 'wgmma' } })).toThrow(
      /engine wgmma does not run on sm_80/,
    );
    expect(() => cuda('sm_75')).toThrow(/unknown CUDA arch `sm_75` \(known: sm_80, sm_86, sm_89, sm_90a\)/);
    expect(() => compile(causal, { target: 'wgsl', arch: 'sm_80' })).toThrow(/CUDA option/);
    try {
      cuda('sm_70');
    } catch (e) {
      expect((e as CompileError).message).toMatch(/causal\.attn|<input>:\d+:\d+/);
    }
  });

  it('the CLI takes --arch for CUDA and refuses it for WGSL', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['dist/src/cli/main.js', 'compile', 'stdlib/causal.attn', ...args], {
        encoding: 'utf8',
      });
    const ok = cli('--target', 'cuda', '--arch', 'sm_86');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('nvcc -arch=sm_86');
    const wgsl = cli('--arch', 'sm_86');
    expect(wgsl.status).toBe(1);
    expect(wgsl.stderr).toMatch(/--arch sm_86 needs --target cuda/);
    const unknown = cli('--target', 'cuda', '--arch', 'sm_70');
    expect(unknown.status).toBe(1);
    // A usage error naming the flag and the known archs (it pointed into the .attn source).
    expect(unknown.stderr).toMatch(/--arch expects sm_80, sm_86, sm_89, sm_90a, got `sm_70`/);
  });

  it('maps compute capabilities to archs', () => {
    expect(archOfCapability(8, 0)).toBe('sm_80');
    expect(archOfCapability(8, 6)).toBe('sm_86');
    expect(archOfCapability(8, 7)).toBe('sm_86');
    expect(archOfCapability(8, 9)).toBe('sm_89');
    expect(archOfCapability(9, 0)).toBe('sm_90a');
    expect(archOfCapability(7, 5)).toBeUndefined();
    expect(archOfCapability(10, 0)).toBeUndefined();
  });

  it('every stdlib declaration builds with nvcc -arch=sm_80 (bf16, D = 64 and 128)', async () => {
    const dir = scratchDir('arch-sm80');
    const parts: string[] = [];
    for (const file of stdlibFiles())
      for (const d of checkSource(readStdlib(file), stdlibPath(file)).program.decls)
        for (const headDim of [64, 128]) {
          // A quantized-cache kernel the arch's schedule does not offer an engine for is skipped.
          const o = compileOffered(file, {
            target: 'cuda',
            entry: d.name,
            headDim,
            dtype: 'bf16',
            arch: 'sm_80',
          });
          if (o.kind === 'not offered') {
            expect(storedStdlib, o.why).toContain(file);
            continue;
          }
          const a = o.compiled.artifact;
          expect(a.schedule.engine === 'wgmma' || a.schedule.engine === 'wgmma-ws').toBe(false);
          parts.push(a.code.replaceAll(`attnc_${a.name}`, `attnc_${a.name}_d${headDim}`));
        }
    const tu = join(dir, 'sm80.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = quickCheckFlags('sm_80');
    expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'sm80.o')]), `nvcc ${tu}`);
  }, 900_000);
});
