// KIVI caches on the tensor-core decode kernel (decode-mma-kivi.ts) build with nvcc for sm_90a
// and sm_80 without register spills (the key-major default: a few bytes under its cap): int4 and int2 as bench/cuda/quant-decode.py times them (bf16
// D = 128, recent 128 f16; the key-major kernel, decode-mma-km.ts, and the query-major one at
// -DATTNC_DEC_MMA_KM=0), int2 without a window and causal (query-major). On by default: the
// host takes it where ATTNC_DEC_MMA && ATTNC_DEC_MMA_KIVI (default 1).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_KNOB_NAMES } from '../../src/codegen/cuda/decode-knobs.js';
import type { DecodeLean } from '../../src/ir/kernel.js';
import { compile } from '../../src/compile.js';
import { expectOk, ptxasEntries, render, scratchDir, spillsByFunction } from './support.js';

const kivi = (bits: number, recent: string) =>
  `store k int${bits} scale f16 per channel group 32 zero f16${recent}\n` +
  `  store v int${bits} scale f16 per token group 32 zero f16${recent}`;
const sources: Record<string, string> = {
  int4: kivi(4, ' recent 128 f16'),
  int2: kivi(2, ' recent 128 f16'),
  int2c: `${kivi(2, '')}\n  mask causal`,
  int4p: `cache paged 64\n  ${kivi(4, ' recent 128 f16')}`, // paged (block table)
};
/** `lean`: the lean per-step code emitted as a knob (decode-mma-lean.ts). */
const code = (
  name: string,
  store: string,
  arch: string,
  decodeLean: DecodeLean = 'off',
  headDim = 128,
): string =>
  render(
    compile(`attention ${name}() {\n  ${store}\n}\n`, {
      target: 'cuda',
      headDim,
      dtype: 'bf16',
      arch,
      schedule: { decodeLean },
    }).kernel,
  ).code;

describe('KIVI on the tensor-core decode kernel: nvcc', () => {
  const dir = scratchDir('decode-mma-kivi-nvcc');

  it('is emitted for KIVI caches at D 128, on unless -DATTNC_DEC_MMA_KIVI=0', () => {
    const c = code('kv4', sources.int4!, 'sm_90a');
    expect(c).toContain('mma_split_kernel');
    expect(c).toContain('#define ATTNC_DEC_MMA_KIVI 1');
    expect(c).toContain('if (!(ATTNC_DEC_MMA && ATTNC_DEC_MMA_KIVI) || major < 8');
    expect(c).not.toContain('#define ATTNC_DEC_MMA ATTNC_DEC_MMA_KIVI'); // the float twin's switch stays its own
    expect(code('kv8', 'store kv int8 scale f16 per token', 'sm_90a')).not.toContain('ATTNC_DEC_MMA_KIVI');
  });

  for (const arch of ['sm_90a', 'sm_80'] as const) {
    it(`${arch}: int4, int2, causal int2, paged int4 and D 64 int4 build, the key-major default spilling at most 16 bytes under its register cap, the query-major kernel none (also with ATTNC_DEC_MMA_LEAN 3)`, async () => {
      const undefs = ALL_KNOB_NAMES.map((n) => `#undef ATTNC_DEC_${n}`);
      // Unmasked int4 / int2 build the key-major kernel (decode-mma-km.ts); KIVI_KM 0 the
      // query-major one in its place.
      const builds = Object.entries(sources).flatMap(([n, s]) => [
        ...[0, 3].map((lean) => ({ n, s, lean, km: 1, D: 128 })),
        ...(n === 'int2c' ? [] : [{ n, s, lean: 3, km: 0, D: 128 }]),
      ]);
      // Head dim 64, both kernels.
      builds.push(...[0, 1].map((km) => ({ n: 'd64', s: sources.int4!, lean: 3, km, D: 64 })));
      const parts = builds.map(({ n, s, lean, km, D }) =>
        [
          '#define ATTNC_DEC_MMA_KIVI 1',
          `#define ATTNC_DEC_MMA_KM ${km}`,
          ...(lean ? [`#define ATTNC_DEC_MMA_LEAN ${lean}`] : []),
          code(`km${lean}${km}_${n}`, s, arch, lean ? 'knob' : 'off', D),
          '#undef ATTNC_DEC_MMA_KIVI',
          ...undefs,
        ].join('\n'),
      );
      const tu = join(dir, `kivi-${arch}.cu`);
      writeFileSync(tu, parts.join('\n'));
      // ptxas assembles the checked split kernels only; the artifacts' prefill, quantize and merge
      // kernels build in their own tests (decode-mma-nvcc, decode-quant-nvcc, stdlib-nvcc).
      const isMma = (fn: string): boolean => fn.includes('3dec16mma_split_kernel');
      const r = await ptxasEntries(tu, arch, isMma, ['-std=c++17']);
      expectOk(r, `ptxas ${tu}`);
      expect(r.entries.length).toBe(parts.length);
      const mma = [...spillsByFunction(r.stderr)].filter(([fn]) => isMma(fn));
      expect(mma.length).toBe(parts.length);
      // The key-major default caps registers for three 4-warp blocks an SM (KM_KIVI_TILES: 168
      // registers and 4 bytes spilled at sm_90a, the fastest on the H100 in round 34); a few words
      // at most. The query-major kernel, uncapped, spills nothing.
      const cap = (fn: string): number => (/km[03]1_/.test(fn) ? 16 : 0);
      for (const [fn, s] of mma) {
        expect(s.stores, fn).toBeLessThanOrEqual(cap(fn));
        expect(s.loads, fn).toBeLessThanOrEqual(cap(fn));
      }
    }, 1_000_000);
  }
});
