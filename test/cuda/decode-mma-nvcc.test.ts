// The tensor-core decode kernel (decode-mma.ts) builds with nvcc for sm_90a and sm_80 without
// register spills, at its defaults and under every knob variant of the sweep that sets its knobs
// (DECODE_KNOB_VARIANTS, bench/cuda/quant-decode.py), bf16 D = 128 and f16 D = 64, and with the
// masks and score modifiers of causal, sliding window, softcap and alibi; and only kernels over
// 16-bit float caches and int8 / fp8 caches with per-token f16 scales (decode-mma-quant.ts) carry it
// (and KIVI caches at D 128, switched off: decode-mma-kivi-nvcc.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_KNOB_NAMES, DECODE_KNOB_VARIANTS, knobDefines } from '../../src/codegen/cuda/decode-knobs.js';
import { decodeLeanFor } from '../../src/codegen/cuda/decode-mma-lean.js';
import type { DecodeLean } from '../../src/ir/kernel.js';
import { compile } from '../../src/compile.js';
import { expectOk, ptxasEntries, render, scratchDir, spillsByFunction } from './support.js';

/** `lean`: Schedule.decodeLean, the lean per-step code (decode-mma-lean.ts; absent: the default). */
const code = (
  name: string,
  source: string,
  dtype: 'bf16' | 'f16' | 'f32',
  D: number,
  arch = 'sm_90a',
  lean?: DecodeLean,
): string => {
  const c = compile(source.replace(/attention \w+/, `attention ${name}`), {
    target: 'cuda',
    headDim: D,
    dtype,
    arch,
    schedule: lean ? { decodeLean: lean } : {},
  });
  return render(c.kernel).code;
};
const stdlib = (file: string): string => readFileSync(join('stdlib', file), 'utf8');
const quant = {
  int8: 'attention q8() {\n  store kv int8 scale f16 per token\n}\n',
  e4m3: 'attention qe4() {\n  store kv e4m3 scale f16 per token\n}\n',
  mixed: 'attention qmx() {\n  store k e5m2\n  store v int8 scale f16 per token\n  mask causal\n}\n',
};

describe('CUDA tensor-core decode: nvcc', () => {
  const dir = scratchDir('decode-mma-nvcc');

  it('is emitted for 16-bit float caches only', () => {
    expect(code('f1', stdlib('full.attn'), 'bf16', 128)).toContain('mma_split_kernel');
    expect(code('f2', stdlib('full.attn'), 'f16', 64)).toContain('mma_split_kernel');
    expect(code('f3', stdlib('full.attn'), 'f32', 64)).not.toContain('mma_split_kernel');
    expect(code('c1', stdlib('causal.attn'), 'bf16', 128)).toContain('mma_split_kernel');
    expect(code('s1', stdlib('softcap.attn'), 'bf16', 128)).toContain('mma_split_kernel');
    // Quantized: int8 / fp8 with per-token f16 scales (decode-mma-quant.ts); others keep the SIMT kernel.
    expect(code('q8', quant.int8, 'bf16', 128)).toContain('mma_split_kernel');
    expect(code('q8f', quant.int8, 'f32', 128)).toContain('mma_split_kernel');
    // KIVI int4 / int2 at D 64 to 256 carry it (on; -DATTNC_DEC_MMA_KIVI=0 for the SIMT kernel)
    // (decode-mma-kivi-nvcc.test.ts); D 32 does not.
    const kivi =
      'attention q4() {\n  store k int4 scale f16 per channel group 32 zero f16\n  store v int4 scale f16 per token group 32 zero f16\n}\n';
    expect(code('q4', kivi, 'bf16', 128)).toContain('#define ATTNC_DEC_MMA_KIVI 1');
    expect(code('q4d', kivi, 'bf16', 64)).toContain('#define ATTNC_DEC_MMA_KIVI 1');
    expect(code('q4s', kivi, 'bf16', 32)).not.toContain('mma_split_kernel');
    const grouped = 'attention q8g() {\n  store kv int8 scale f16 per token group 32\n}\n';
    expect(code('q8g', grouped, 'bf16', 128)).not.toContain('mma_split_kernel');
  });

  // KIVI's variant (formats int4, int2) builds in decode-mma-kivi-nvcc.test.ts.
  const variants = DECODE_KNOB_VARIANTS.filter(
    (v) =>
      Object.keys(v.knobs).some((n) => n.startsWith('MMA_')) &&
      (!v.formats || v.formats.some((f) => f === 'bf16' || f === 'int8')),
  );
  for (const arch of ['sm_90a', 'sm_80'] as const) {
    it(`${arch}: the default and ${variants.length} swept variants build without spills`, async () => {
      const undefs = ALL_KNOB_NAMES.map((n) => `#undef ATTNC_DEC_${n}`);
      const parts = [
        [code('mf16', stdlib('full.attn'), 'f16', 64, arch), ...undefs].join('\n'),
        ...['full', 'causal', 'sliding_window', 'softcap', 'alibi'].map((f) =>
          [code(`m_${f}`, stdlib(`${f}.attn`), 'bf16', 128, arch), ...undefs].join('\n'),
        ),
        ...Object.entries(quant).map(([n, src]) =>
          [code(`mq_${n}`, src, 'bf16', 128, arch), ...undefs].join('\n'),
        ),
        // Variants for quantized formats only (the QSTAGES / QKEYS sweep) build the int8 kernel.
        ...variants.map((v) =>
          [
            ...knobDefines(v),
            code(
              `m_${v.name}`,
              v.formats?.includes('bf16') === false ? quant.int8 : stdlib('full.attn'),
              'bf16',
              128,
              arch,
              decodeLeanFor(v.knobs),
            ),
            ...undefs,
          ].join('\n'),
        ),
        // The lean code on the quantized and masked kernels too (the variants above: full.attn).
        ...(['int8', 'e4m3'] as const).map((n) =>
          [
            '#define ATTNC_DEC_MMA_LEAN 3',
            code(`ml_${n}`, quant[n], 'bf16', 128, arch, 'knob'),
            ...undefs,
          ].join('\n'),
        ),
        [
          '#define ATTNC_DEC_MMA_LEAN 3',
          code('ml_causal', stdlib('causal.attn'), 'bf16', 128, arch, 'knob'),
          ...undefs,
        ].join('\n'),
        // fp8 caches take the key-major kernel by default (decode-mma-km.ts): the query-major one too.
        [
          '#define ATTNC_DEC_MMA_LEAN 3',
          '#define ATTNC_DEC_MMA_KM 0',
          code('mqm_e4m3', quant.e4m3, 'bf16', 128, arch, 'knob'),
          ...undefs,
        ].join('\n'),
      ];
      const tu = join(dir, `mma-${arch}.cu`);
      writeFileSync(tu, parts.join('\n'));
      // ptxas assembles the tensor-core split kernels and the merges (a variant's knobs may reach
      // the merge); the prefill and SIMT split kernels, knob-free here, build in their own tests.
      const isMma = (fn: string) => fn.includes('3dec16mma_split_kernel');
      const r = await ptxasEntries(tu, arch, (fn) => isMma(fn) || fn.includes('3dec12merge_kernel'), [
        '-std=c++17',
      ]);
      expectOk(r, `ptxas ${tu}`);
      expect(r.entries.filter(isMma).length).toBe(parts.length);
      const mma = [...spillsByFunction(r.stderr)].filter(([fn]) => isMma(fn));
      expect(mma.length).toBe(parts.length);
      for (const [fn, s] of mma) expect(s, fn).toEqual({ stores: 0, loads: 0 });
    }, 1_000_000);
  }
});
