// Per-tensor storage formats (ir/formats.ts): set by lowering from --dtype (or the target's
// default), carried by the kernel apart from the schedule, shown by --dump-ir, and recorded with
// the schedule in the artifact exactly as before the split (the runtime and modules read it).
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { dumpIR } from '../../src/ir/dump.js';
import { sharedStorage, uniformFormats } from '../../src/ir/formats.js';
import type { AttentionIR } from '../../src/ir/program.js';

const src = 'attention c() { mask causal }';

describe('tensor formats', () => {
  it('come from the dtype asked for, or the target default, and leave the schedule', () => {
    const cuda = compile(src, { target: 'cuda', headDim: 64 }).kernel;
    expect(cuda.formats).toEqual(uniformFormats('bf16'));
    expect('dtype' in cuda.schedule).toBe(false);
    const f16 = compile(src, { target: 'wgsl', dtype: 'f16', limits: { shaderF16: true } }).kernel;
    expect(f16.formats.k).toEqual({ kind: 'float', dtype: 'f16' });
    expect(compile(src, { target: 'wgsl' }).kernel.formats.out.dtype).toBe('f32');
  });

  it('the artifact records the schedule with the storage dtype after the head dims', () => {
    const { artifact, kernel } = compile(src, { target: 'wgsl', dtype: 'f16', limits: { shaderF16: true } });
    expect(Object.keys(artifact.schedule).slice(0, 3)).toEqual(['headDim', 'valueDim', 'dtype']);
    expect(artifact.schedule).toEqual({ ...kernel.schedule, dtype: 'f16' });
  });

  it('--dump-ir prints the formats', () => {
    let ir: AttentionIR | undefined;
    compile(src, { target: 'cuda', headDim: 64, dtype: 'f16', observe: (_p, x) => (ir = x) });
    expect(dumpIR(ir!, 'legalize-cuda')).toContain('formats: q f16, k f16, v f16, out f16');
  });

  it('backends that stage q, k, v and out in one type refuse mixed formats', () => {
    const mixed = { ...uniformFormats('f16'), v: { kind: 'float', dtype: 'f32' } } as const;
    expect(() => sharedStorage(mixed)).toThrow(/different storage formats/);
  });
});
