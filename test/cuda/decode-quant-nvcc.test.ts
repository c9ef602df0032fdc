// CUDA decode mode over quantized caches (decode-quant.ts through the cp.async stream of
// decode-pipe.ts) builds with nvcc for sm_90a and sm_80 without register spills in its split
// kernel, for the formats bench/cuda/quant-decode.py times (bf16 D = 128); and every knob
// variant of the sweep (DECODE_KNOB_VARIANTS, decode-knobs.ts) builds, several renamed artifacts
// in one translation unit, each under its own #define block.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_KNOB_NAMES, DECODE_KNOB_VARIANTS, knobDefines } from '../../src/codegen/cuda/decode-knobs.js';
import { compile } from '../../src/compile.js';
import { expectOk, ptxasEntries, render, scratchDir, spillsByFunction } from './support.js';

const kivi = (bits: number) =>
  `store k int${bits} scale f16 per channel group 32 zero f16 recent 128 f16\n` +
  `  store v int${bits} scale f16 per token group 32 zero f16 recent 128 f16`;
/** The benchmarked formats (bench/cuda/quant-decode-emit.mjs). */
const formats: Record<string, string> = {
  int8: 'store kv int8 scale f16 per token',
  e4m3: 'store kv e4m3 scale f16 per token',
  int4: kivi(4),
  int2: kivi(2),
};

const artifactCode = (name: string, store: string, arch: 'sm_90a' | 'sm_80'): string => {
  const c = compile(`attention ${name}() {\n  ${store}\n}\n`, {
    target: 'cuda',
    headDim: 128,
    dtype: 'bf16',
    arch,
  });
  return render(c.kernel).code;
};

/**
 * `parts` as one translation unit, its SIMT split and merge kernels (what the knobs reach)
 * assembled by ptxas -v, the artifacts' other kernels building in their own tests; the split
 * kernels' spill reports.
 */
async function build(dir: string, tag: string, arch: string, parts: readonly string[]) {
  const tu = join(dir, `${tag}.cu`);
  writeFileSync(tu, parts.join('\n'));
  const isSplit = (fn: string) => fn.includes('3dec12split_kernel');
  const r = await ptxasEntries(tu, arch, (fn) => isSplit(fn) || fn.includes('3dec12merge_kernel'), [
    '-std=c++17',
  ]);
  expectOk(r, `ptxas ${tu}`);
  return [...spillsByFunction(r.stderr)].filter(([fn]) => isSplit(fn));
}

describe('CUDA decode over quantized caches: nvcc', () => {
  const dir = scratchDir('decode-quant-nvcc');

  // The default MIN_BLOCKS 3 (170 registers) was the fastest on the H200 for every format, small
  // spills included (decode-knobs.ts); uncapped (MIN_BLOCKS 1) the split kernels must not spill,
  // capped they may spill at most SPILL_CAP bytes (sm_90a int4 138..186, sm_80 int2 332; a register
  // regression shows as more).
  const SPILL_CAP = 512;
  for (const arch of ['sm_90a', 'sm_80'] as const) {
    it(`${arch}: the split kernels of int8, e4m3, int4 and int2 caches do not spill uncapped, little at MIN_BLOCKS 3`, async () => {
      const parts = Object.entries(formats).map(([n, s]) => artifactCode(`qn_${n}`, s, arch));
      const uncapped = await build(dir, `quant-${arch}-mb1`, arch, [
        '#define ATTNC_DEC_MIN_BLOCKS 1',
        ...parts,
      ]);
      expect(uncapped.length).toBe(Object.keys(formats).length);
      for (const [fn, s] of uncapped) expect(s, fn).toEqual({ stores: 0, loads: 0 });
      const capped = await build(dir, `quant-${arch}`, arch, parts);
      expect(capped.length).toBe(Object.keys(formats).length);
      for (const [fn, s] of capped) expect(s.stores, fn).toBeLessThanOrEqual(SPILL_CAP);
    }, 1_000_000);
  }

  // The variants for int4 (those that name no formats, or int4); the tensor-core ones build in
  // decode-mma-nvcc.test.ts, the lean ones (MMA_LEAN: emitted as a knob) in decode-mma-kivi-nvcc.test.ts.
  const int4Variants = DECODE_KNOB_VARIANTS.filter(
    (v) => (!v.formats || v.formats.includes('int4')) && !('MMA_LEAN' in v.knobs),
  );
  it('every knob variant of the sweep for int4 builds (int4 KIVI, sm_80)', async () => {
    const parts = int4Variants.map((v) => {
      // The artifact #defines the knobs it is not given: all are #undef'd for the next one.
      const undefs = ALL_KNOB_NAMES.map((n) => `#undef ATTNC_DEC_${n}`);
      return [...knobDefines(v), artifactCode(`qk_${v.name}`, kivi(4), 'sm_80'), ...undefs].join('\n');
    });
    const splits = await build(dir, 'knobs', 'sm_80', parts);
    expect(splits.length).toBe(int4Variants.length);
  }, 1_000_000);
});
