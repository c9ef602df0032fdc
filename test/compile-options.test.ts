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
    [{ target: 'wgsl', dtype: 'xx' }, /unknown dtype `xx` \(dtypes: f32, f16, bf16\)/],
    [{ target: 'wgsl', lse: 'no' }, /option lse: expected a boolean, got `no`/],
    [{ target: 'wgsl', wgslEngine: 'gpu' }, /option wgslEngine: expected row or coop, got `gpu`/],
  ])('%o', (o, message) => {
    expect(fails(o)).toThrow(CompileError);
    expect(fails(o)).toThrow(message);
    expect(fails(o)).toThrow(/<input>:1:11/);
  });

  it('attnc/wgsl names the entry that has CUDA', () => {
    expect(fails({ target: 'cuda' }, compileWgsl)).toThrow(/target `cuda` is not in this build.*'attnc'/);
  });
});
