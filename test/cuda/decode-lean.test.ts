// Schedule.decodeLean (decode-mma-lean.ts): the tensor-core decode's lean per-step code is a choice
// each kernel carries, not compiler-wide state. Absent, it resolves to 'on' for quantized K/V caches
// and 'off' for float ones; asked for, it reaches the emitted `#define ATTNC_DEC_MMA_LEAN`, the
// schedule hash and the manifest (which records the resolved mode); a bad value is refused by name.
// No compiler runs here: the nvcc and emulator tests build what these kernels emit.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { DecodeLean } from '../../src/ir/kernel.js';
import { render } from './support.js';

const sources = {
  int8: 'attention lq8() {\n  store kv int8 scale f16 per token\n}\n',
  full: 'attention lfull() {}\n',
};

const build = (source: string, decodeLean?: DecodeLean, dtype: 'bf16' | 'f32' = 'bf16') => {
  const c = compile(source, {
    target: 'cuda',
    headDim: 128,
    dtype,
    ...(decodeLean ? { schedule: { decodeLean } } : {}),
  });
  const manifest = JSON.parse(c.artifact.files![`${c.artifact.name}.json`]!) as Record<string, unknown>;
  return { ...c, manifest, code: c.artifact.code };
};

/** The `#define` default of the lean knob, or undefined where the kernel has no lean code. */
const leanDefine = (code: string): string | undefined => /#define ATTNC_DEC_MMA_LEAN (\d)/.exec(code)?.[1];

describe('Schedule.decodeLean', () => {
  it('defaults to on for quantized caches, off for float caches, and the manifest says which', () => {
    const q = build(sources.int8);
    expect(leanDefine(q.code)).toBe('3');
    expect(q.manifest.decodeLean).toBe('on');
    expect((q.manifest.schedule as Record<string, unknown>).decodeLean).toBeUndefined();
    const f = build(sources.full);
    expect(q.code).toContain('mma_split_kernel');
    expect(f.code).toContain('mma_split_kernel');
    expect(leanDefine(f.code)).toBeUndefined();
    expect(f.manifest.decodeLean).toBe('off');
    // f32 caches have no tensor-core decode kernel: nothing to record.
    const f32 = build(sources.full, undefined, 'f32');
    expect(f32.code).not.toContain('mma_split_kernel');
    expect(f32.manifest.decodeLean).toBeUndefined();
  });

  it('reaches the emitted knob, the schedule record and its hash when asked for', () => {
    const cases: [string, DecodeLean, string | undefined][] = [
      [sources.int8, 'off', undefined],
      [sources.int8, 'knob', '0'],
      [sources.int8, 'on', '3'],
      [sources.full, 'knob', '0'],
      [sources.full, 'on', '3'],
    ];
    for (const [source, mode, define] of cases) {
      const c = build(source, mode);
      expect(leanDefine(c.code), `${mode}`).toBe(define);
      expect(c.manifest.decodeLean).toBe(mode);
      expect((c.manifest.schedule as Record<string, unknown>).decodeLean).toBe(mode);
      expect(c.artifact.scheduleHash).not.toBe(build(source).artifact.scheduleHash);
    }
  });

  it('is the kernel’s own: kernels with different modes render as asked in any order', () => {
    const knob = build(sources.int8, 'knob').kernel;
    const off = build(sources.int8, 'off').kernel;
    const auto = build(sources.int8).kernel;
    expect(leanDefine(render(knob).code)).toBe('0');
    expect(leanDefine(render(auto).code)).toBe('3');
    expect(leanDefine(render(off).code)).toBeUndefined();
    expect(leanDefine(render(knob).code)).toBe('0');
  });

  it('refuses a value that is no mode, naming the option', () => {
    const bad = { decodeLean: 'fast' } as unknown as { decodeLean: DecodeLean };
    expect(() => compile(sources.int8, { target: 'cuda', headDim: 128, schedule: bad })).toThrow(
      'schedule.decodeLean expects off, knob, on (or none: on for quantized K/V caches), got `fast`',
    );
    // Rendering a kernel built by hand with such a schedule is refused the same way.
    const kernel = build(sources.int8).kernel;
    expect(() => render({ ...kernel, schedule: { ...kernel.schedule, ...bad } })).toThrow(
      'schedule.decodeLean expects off, knob, on',
    );
  });
});
