// The WGSL quantize module (src/codegen/wgsl/quantize.ts) on lavapipe against src/quant's
// `quantize` bit for bit: random formats × granularities (ragged groups) × shapes, f32 and f16
// source rows, a full fill over a poisoned cache and a partial range [start, start + n) over a
// cache filled from other data. Inputs stay clear of values whose quotients are f32 subnormals
// (the WGSL module flushes those; docs/LANGUAGE.md, "Quantizing a range of rows").
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { WgslQuantizeSpec } from '../../src/codegen/wgsl/quantize.js';
import type { QuantFormat } from '../../src/quant/format.js';
import { cacheLayout, type CacheSizes, type QuantCache } from '../../src/quant/layout.js';
import type { SalientMarks } from '../../src/quant/marks.js';
import { fp8Decode } from '../../src/quant/floats.js';
import { quantize } from '../../src/quant/quantize.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/runtime/f16.js';
import { randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { runWgslQuantize } from '../../src/runtime/webgpu-quantize.js';
import { formatArb, valueArb } from './arbitrary.js';

const seed = process.env.CI ? { seed: 20261203 } : {};

/** Every tensor of a cache as bytes, by name. */
function bytes(q: QuantCache): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, t] of Object.entries(q)) {
    const a = t instanceof Uint32Array ? t : (t as { data: ArrayBufferView }).data;
    out[name] = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  }
  return out;
}

/** A cache of format `f` whose every byte is 0xa5 (so a tensor the module forgets shows). */
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

/** Source rows from `values`; f16 bits and their exact f32 values when the module reads f16. */
function source(values: readonly number[], n: number, input: 'f32' | 'f16', salt: number) {
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++)
    f32[i] = values[(i * 7 + salt) % values.length]! * (1 + ((i * 13 + salt) % 5) / 4);
  if (input === 'f32') return { raw: f32, exact: f32 };
  const bits = new Uint16Array(f32.map(f32ToF16Bits));
  return { raw: bits, exact: new Float32Array([...bits].map(f16BitsToF32)) };
}

function expectSame(got: QuantCache, want: QuantCache, what: string): void {
  const g = bytes(got);
  for (const [name, w] of Object.entries(bytes(want))) {
    const bad = w.findIndex((b, i) => g[name]![i] !== b);
    expect({ what, tensor: name, firstDifferentByte: bad }).toEqual({
      what,
      tensor: name,
      firstDifferentByte: -1,
    });
  }
}

/** Values away from the f32 subnormal range (0 and ±0 kept). */
const clear = valueArb.map((v) => (v !== 0 && Math.abs(v) < 2 ** -60 ? Math.sign(v) * 2 ** -60 : v));

const cases = fc.record({
  format: formatArb,
  D: fc.integer({ min: 1, max: 40 }),
  input: fc.constantFrom('f32' as const, 'f16' as const),
  values: fc.array(clear, { minLength: 1, maxLength: 32 }),
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

describe('WGSL quantize module (lavapipe) equals src/quant quantize bit for bit', () => {
  it('random formats, shapes, full fills and partial ranges', async () => {
    const device = await getDevice();
    await fc.assert(
      fc.asyncProperty(cases, async ({ format, D, input, values, shapes }) => {
        const spec: WgslQuantizeSpec = { cache: 'k', format, dim: D, input };
        for (const sh of shapes) {
          const s: CacheSizes = { B: sh.B, Hkv: sh.Hkv, Nk: sh.Nk, D };
          const len = s.B * s.Hkv * s.Nk * D;
          const salient = format.kind === 'int' && format.salient;
          const marks: SalientMarks | undefined = salient
            ? randomSalientMarks(salient.by, s, rng(sh.a + 1), Math.max(1, s.Nk >> 2), 0.3)
            : undefined;
          const common = { sizes: s, ...(marks ? { salient: marks.data, salientN: marks.n } : {}) };
          const now = source(values, len, input, 1);
          const full = await runWgslQuantize(device, spec, {
            ...common,
            x: now.raw,
            cache: poisoned(format, s),
            start: 0,
            n: s.Nk,
          });
          // An empty range rewrites nothing (docs/LANGUAGE.md "Quantizing a range of rows"; the CUDA
          // launcher returns at n == 0): with Nk = 0 the poisoned scales of a group without members
          // stay, where quantize() writes 1 (the contract needs the cache to equal quantize before a
          // call; the partial-range check below covers Nk = 0 that way).
          if (s.Nk > 0)
            expectSame(full, quantize(format, now.exact, s, marks), `full fill ${JSON.stringify(s)}`);
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
          const partial = await runWgslQuantize(device, spec, {
            ...common,
            x: mixedRaw,
            cache: quantize(format, before.exact, s, marks),
            start,
            n,
          });
          expectSame(
            partial,
            quantize(format, mixed, s, marks),
            `range [${start}, +${n}) ${JSON.stringify(s)}`,
          );
        }
      }),
      { numRuns: 25, endOnFailure: true, ...seed },
    );
  }, 600_000);

  it('e3m4: every finite code, the midpoints between codes (ties to even) and saturation', async () => {
    const f: QuantFormat = { kind: 'fp8', elem: 'e3m4' };
    const values: number[] = [30.5, 31, 1e6, 2 ** -7, 3 * 2 ** -7];
    for (let c = 0; c < 0x7e; c++) {
      const a = fp8Decode('e3m4', c);
      values.push(a, Math.fround((a + fp8Decode('e3m4', c + 1)) / 2));
    }
    const x = Float32Array.from([...values, ...values.map((v) => -v)]);
    const s: CacheSizes = { B: 1, Hkv: 1, Nk: 2, D: x.length / 2 };
    const spec: WgslQuantizeSpec = { cache: 'k', format: f, dim: s.D, input: 'f32' };
    const got = await runWgslQuantize(await getDevice(), spec, {
      sizes: s,
      x,
      cache: poisoned(f, s),
      start: 0,
      n: s.Nk,
    });
    expectSame(got, quantize(f, x, s), 'e3m4 sweep');
    // The sweep reaches both saturated codes and both signs of every code (the model is checked
    // against a brute-force nearest value in e3m4.test.ts).
    const codes = new Set(new Uint8Array(got.codes.buffer, got.codes.byteOffset, got.codes.byteLength));
    expect([0x7e, 0xfe, 0x01, 0x81].every((c) => codes.has(c))).toBe(true);
  }, 60_000);
});
