// compile() options from JS callers (not type-checked): malformed ones are CompileErrors naming
// the option and the value, pointing at the declaration. An unknown dtype was silently accepted
// (and broke later), an unknown target read "Cannot read properties of undefined".
import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../src/compile.js';
import { compile as compileWgsl } from '../src/wgsl.js';
import { CompileError } from '../src/diagnostics.js';

const src = 'attention w() { mask causal }';
const fails =
  (o: object, f = compile) =>
  () =>
    f(src, o as CompileOptions);

describe('compile() options', () => {
  it.each([
    [{ target: 'metal' }, /unknown target `metal` \(targets: wgsl, cuda\)/],
    // It read "unknown target undefined", as if `undefined` were a target someone wrote.
    [{ headDim: 64 }, /option target is missing \(targets: wgsl, cuda\)/],
    [{ target: 'wgsl', dtype: 'xx' }, /unknown dtype `xx` \(dtypes: f32, f16, bf16\)/],
    [{ target: 'wgsl', lse: 'no' }, /option lse: expected a boolean, got `no`/],
    [{ target: 'wgsl', wgslEngine: 'gpu' }, /option wgslEngine: expected row or coop, got `gpu`/],
    // These compiled a D = 64 kernel: the misspelt or NaN option was dropped for its default.
    [{ target: 'wgsl', headdim: 128 }, /unknown option `headdim`: did you mean `headDim`\?/],
    [{ target: 'cuda', head_dim: 128 }, /unknown option `head_dim`: did you mean `headDim`\?/],
    [{ target: 'wgsl', dim: 32 }, /unknown option `dim`: did you mean `headDim`\?/],
    [{ target: 'wgsl', wgsl_engine: 'coop' }, /unknown option `wgsl_engine`: did you mean `wgslEngine`\?/],
    [{ target: 'wgsl', headDim: NaN }, /option headDim: expected a positive integer, got NaN/],
    [{ target: 'wgsl', headDim: '64' }, /option headDim: expected a positive integer, got `64`/],
    [{ target: 'cuda', valueDim: 0 }, /option valueDim: expected a positive integer, got 0/],
    [
      { target: 'wgsl', limits: { maxStorageBuffers: 0 } },
      /option limits\.maxStorageBuffers: expected a positive integer, got 0/,
    ],
    // It said `use --dtype f16`, a CLI flag, to an API caller.
    [
      { target: 'wgsl', dtype: 'bf16' },
      /dtype 'bf16': WebGPU has no bf16 storage; use f16 or f32 \(compile\(\)'s dtype option/,
    ],
  ])('%o', (o, message) => {
    expect(fails(o)).toThrow(CompileError);
    expect(fails(o)).toThrow(message);
    expect(fails(o)).toThrow(/<input>:1:11/);
  });

  it('a missing options object or a non-string source is a TypeError naming the argument', () => {
    // These read "Cannot read properties of undefined (reading 'file')" / "(reading 'length')".
    expect(() => compile(src, undefined as unknown as CompileOptions)).toThrow(
      /^compile\(source, options\): options must be an object such as \{ target: 'wgsl' \}, got undefined$/,
    );
    expect(() => compile(null as unknown as string, { target: 'wgsl' })).toThrow(
      /^compile\(source, options\): source must be a string of \.attn text, got null$/,
    );
    expect(() => compileWgsl(src, 'wgsl' as unknown as CompileOptions)).toThrow(/options must be an object/);
  });

  it('a file name for the source says to read the file (it read "expected `attention`, found `stdlib`")', () => {
    expect(() => compile('stdlib/document.attn', { target: 'wgsl' })).toThrow(
      /^compile\(source, options\): source must be \.attn text, got the file name `stdlib\/document\.attn`: read the file first/,
    );
    expect(() => compileWgsl(' ./my kernels/w.attn\n', { target: 'wgsl' })).toThrow(TypeError);
    expect(compile('// w.attn\nattention w() { mask causal }', { target: 'wgsl' }).artifact.code).toContain(
      '@compute',
    );
    expect(() => compile('// w.attn', { target: 'wgsl' })).toThrow(/expected at least one `attention`/);
  });

  it('keys it does not know that misspell none of its options pass (callers spread wider objects)', () => {
    const o = { target: 'wgsl', headDim: 32, decode: false } as CompileOptions;
    expect(compile(src, o).artifact.schedule.headDim).toBe(32);
  });

  it('attnc/wgsl names the entry that has CUDA', () => {
    expect(fails({ target: 'cuda' }, compileWgsl)).toThrow(/target `cuda` is not in this build.*'attnc'/);
  });
});

describe('CUDA schedule refusals name the rule that refused', () => {
  const full = 'attention full() { }';
  const cuda = (o: Partial<CompileOptions>) => () =>
    compile(full, { target: 'cuda', ...o } as CompileOptions);

  it("an asked engine's head-dim rule, not a memory figure (it used to say 768 bytes at D = 6)", () => {
    for (const engine of ['mma', 'wgmma'] as const) {
      const refused = cuda({ headDim: 6, schedule: { engine } });
      expect(refused).toThrow(CompileError);
      expect(refused).toThrow(new RegExp(`no cuda schedule fits: .*the ${engine} engine needs headDim in`));
      expect(refused).not.toThrow(/bytes of workgroup memory/);
    }
  });

  it('memory when the device is too small for every tile the engine could run', () => {
    const small = cuda({ headDim: 128, arch: 'sm_86', schedule: { engine: 'mma', blockK: 128 } });
    expect(small).toThrow(
      /needs 147456 bytes of workgroup memory even with 128-key tiles; the device allows 101376/,
    );
  });

  it("the user's limits bound the schedule and the renderer alike", () => {
    const limits = { maxWorkgroupStorageBytes: 60000 };
    const { artifact } = compile(full, { target: 'cuda', headDim: 128, limits });
    expect(artifact.schedule).toMatchObject({ engine: 'simt', blockQ: 64, blockK: 32 }); // 32 KiB of f32 K/V
    expect(cuda({ headDim: 128, limits, schedule: { blockK: 128, engine: 'mma' } })).toThrow(
      /the device allows 60000/,
    );
  });
});

describe('the CUDA schedule pass and renderer share one fit rule', () => {
  it('never picks a schedule the renderer then refuses', () => {
    const engines = [undefined, 'simt', 'mma', 'wgmma', 'wgmma-ws'] as const;
    for (const engine of engines)
      for (const headDim of [5, 64, 96, 128])
        for (const threads of [undefined, 48, 64, 384]) {
          const schedule = { ...(engine ? { engine } : {}), ...(threads ? { threads } : {}) };
          try {
            compile('attention full() { }', { target: 'cuda', headDim, schedule });
          } catch (e) {
            // Refusals come from the schedule pass, saying why; never from the renderer afterwards.
            expect((e as Error).message, JSON.stringify({ headDim, schedule })).toMatch(
              /no cuda schedule fits: /,
            );
          }
        }
  });
});
