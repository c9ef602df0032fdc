// The CUDA `quantize` kernels, executed on the CPU (quantize-emu.ts), against src/quant's
// `quantize` bit for bit: random formats × granularities (ragged groups) × shapes, f32 and f16
// source rows, a full fill over a poisoned cache, and a partial range [start, start + n) over a
// cache filled from other data (the call must rewrite exactly what depends on those rows).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { quantizeSpecs } from '../../src/codegen/cuda/quantize-host.js';
import { quantizeDevice, type QuantizeSpec } from '../../src/codegen/cuda/quantize.js';
import type { QuantFormat } from '../../src/quant/format.js';
import { cacheLayout, type CacheSizes, type QuantCache } from '../../src/quant/layout.js';
import type { SalientMarks } from '../../src/quant/marks.js';
import { quantize } from '../../src/quant/quantize.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/runtime/f16.js';
import { randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import { scratchDir } from '../cuda/support.js';
import { formatArb, valueArb } from './arbitrary.js';
import { buildQuantizeEmulation, callBuffers, runQuantize, type QuantizeBuffers } from './quantize-emu.js';

const seed = process.env.CI ? { seed: 20261203 } : {};

/** The tensors of `q` as the kernel's struct fields name them. */
function expected(q: QuantCache): QuantizeBuffers {
  return callBuffers(new Float32Array(0), q);
}

/** A cache of format `f` whose every byte is 0xa5 (so a tensor the kernel forgets shows). */
function poisoned(f: QuantFormat, s: CacheSizes): QuantCache {
  const out: Record<string, unknown> = {};
  for (const t of cacheLayout(f, s)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data =
      t.dtype === 'u32' ? new Uint32Array(n) : t.dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
    new Uint8Array(data.buffer).fill(0xa5);
    out[t.name] = t.dtype === 'u32' ? data : { dtype: t.dtype, data };
  }
  return out as unknown as QuantCache;
}

/** Source rows: random values, rounded through f16 when the kernel reads f16. */
function source(values: readonly number[], n: number, input: 'f32' | 'f16', salt: number) {
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++)
    f32[i] = values[(i * 7 + salt) % values.length]! * (1 + ((i * 13 + salt) % 5) / 4);
  if (input === 'f32') return { raw: f32, exact: f32 };
  const bits = new Uint16Array(f32.map(f32ToF16Bits));
  return { raw: bits, exact: new Float32Array([...bits].map(f16BitsToF32)) };
}

function expectSame(got: QuantizeBuffers, want: QuantizeBuffers, what: string): void {
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    const bad = w.findIndex((b, i) => g[i] !== b);
    expect({ what, tensor: name, firstDifferentByte: bad }).toEqual({
      what,
      tensor: name,
      firstDifferentByte: -1,
    });
  }
}

const cases = fc.record({
  format: formatArb,
  D: fc.integer({ min: 1, max: 40 }),
  input: fc.constantFrom('f32' as const, 'f16' as const),
  values: fc.array(valueArb, { minLength: 1, maxLength: 32 }),
  shapes: fc.array(
    fc.record({
      B: fc.integer({ min: 1, max: 2 }),
      Hkv: fc.integer({ min: 1, max: 2 }),
      Nk: fc.integer({ min: 0, max: 23 }),
      a: fc.nat(),
      b: fc.nat(),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

describe('CUDA quantize kernels (CPU emulation) equal src/quant quantize bit for bit', () => {
  const dir = scratchDir('quantize');
  let run = 0;
  it('random formats, shapes, full fills and partial ranges', async () => {
    await fc.assert(
      fc.asyncProperty(cases, async ({ format, D, input, values, shapes }) => {
        const id = run++;
        const spec: QuantizeSpec = { kernel: 'q', cache: 'k', format, dim: D, input };
        const exe = await buildQuantizeEmulation(`${dir}/r${id}`, spec);
        for (const [j, sh] of shapes.entries()) {
          const s: CacheSizes = { B: sh.B, Hkv: sh.Hkv, Nk: sh.Nk, D };
          const len = s.B * s.Hkv * s.Nk * D;
          const salient = format.kind === 'int' && format.salient;
          const marks: SalientMarks | undefined = salient
            ? randomSalientMarks(salient.by, s, rng(sh.a + 1), Math.max(1, s.Nk >> 2), 0.3)
            : undefined;
          const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, salientN: marks?.n ?? 0 };
          const now = source(values, len, input, 1);
          const want = expected(quantize(format, now.exact, s, marks));
          // A full fill over a poisoned cache writes every tensor.
          const full = await runQuantize(
            exe,
            `${dir}/r${id}/s${j}f`,
            callBuffers(now.raw, poisoned(format, s), marks?.data),
            {
              ...sizes,
              start: 0,
              n: s.Nk,
            },
          );
          // An empty range rewrites nothing (the launcher returns at n == 0): with Nk = 0 a group
          // without members keeps its poisoned scale where quantize() writes 1.
          if (s.Nk > 0) expectSame(full, want, `full fill, ${JSON.stringify(s)}`);
          // A range: the cache holds `before`'s quantization; rows [start, start + n) change.
          const start = s.Nk === 0 ? 0 : sh.a % s.Nk;
          const n = s.Nk === 0 ? 0 : sh.b % (s.Nk - start + 1);
          const before = source(values, len, input, 3);
          const mixed = new Float32Array(before.exact);
          const mixedRaw = before.raw.slice();
          for (let bh = 0; bh < s.B * s.Hkv; bh++)
            for (let i = (bh * s.Nk + start) * D; i < (bh * s.Nk + start + n) * D; i++) {
              mixed[i] = now.exact[i]!;
              mixedRaw[i] = now.raw[i]!;
            }
          const partial = await runQuantize(
            exe,
            `${dir}/r${id}/s${j}p`,
            callBuffers(mixedRaw, quantize(format, before.exact, s, marks), marks?.data),
            { ...sizes, start, n },
          );
          expectSame(
            partial,
            expected(quantize(format, mixed, s, marks)),
            `range [${start}, +${n}) ${JSON.stringify(s)}`,
          );
        }
      }),
      { numRuns: 10, endOnFailure: true, ...seed },
    );
  }, 600_000);

  it('a compiled kernel with `store` carries each cache quantize kernel and declares its launcher', () => {
    const c = compile(
      'attention kv8() {\n  store k int2 scale f16 per channel group 32 zero f16 recent 128 f16\n  store v e4m3\n}',
      { target: 'cuda', headDim: 64, valueDim: 64, dtype: 'f16' },
    );
    const specs = quantizeSpecs(c.kernel);
    expect(specs.map((s) => [s.cache, s.format.elem, s.input])).toEqual([
      ['k', 'int2', 'f16'],
      ['v', 'e4m3', 'f16'],
    ]);
    for (const s of specs) expect(c.artifact.code).toContain(quantizeDevice(s));
    const header = c.artifact.files!['kv8.h']!;
    expect(header).toContain(
      'int attnc_kv8_quantize_k(const AttncQuantizeArgs_kv8_k* args, cudaStream_t stream);',
    );
    expect(header).toContain(
      'int attnc_kv8_quantize_v(const AttncQuantizeArgs_kv8_v* args, cudaStream_t stream);',
    );
    expect(JSON.parse(c.artifact.files!['kv8.json']!).functions.quantize).toEqual({
      k: 'attnc_kv8_quantize_k',
      v: 'attnc_kv8_quantize_v',
    });
  });
});
