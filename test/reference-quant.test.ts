// The oracle over quantized caches (src/runtime/reference-quant.ts) and the `importance` output's
// normalized variant (src/runtime/reference.ts), against hand-computed values; random quantized
// inputs (src/runtime/inputs.ts) for `attnc run`.
import { describe, expect, it } from 'vitest';
import type { QuantFormat } from '../src/quant/format.js';
import { quantize } from '../src/quant/quantize.js';
import {
  randomNormal,
  randomQuantizedCache,
  randomSalientMarks,
  randomStoredInputs,
  rng,
} from '../src/runtime/inputs.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';
import {
  dequantizedInputs,
  referenceDequantize,
  referenceStoredDecl,
} from '../src/runtime/reference-quant.js';
import { readFileSync } from 'node:fs';
import { frontend } from '../src/dsl/index.js';
import { checkedFormats } from '../src/quant/format.js';
import { salientFlags } from '../src/quant/marks.js';
import { dequantize } from '../src/quant/dequantize.js';

describe('importance, normalized', () => {
  it('divides each key’s attention mass by the number of queries that may see it', () => {
    // q = 0: every allowed key has weight 1/(number allowed). Causal, Nq = Nk = 3: row i sees
    // keys 0…i, so key j gets Σ_{i≥j} 1/(i+1) from 3 − j rows.
    const inp: RefInputs = {
      q: [0, 0, 0],
      k: [1, 2, 3],
      v: [1, 1, 1],
      B: 1,
      Hq: 1,
      Hkv: 1,
      Nq: 3,
      Nk: 3,
      D: 1,
      Dv: 1,
    };
    const r = referenceAttention(inp, { mask: (_b, _h, q, k) => q >= k });
    const sum = [1 + 1 / 2 + 1 / 3, 1 / 2 + 1 / 3, 1 / 3];
    sum.forEach((x, j) => expect(r.importance[j]).toBeCloseTo(x, 14));
    sum.forEach((x, j) => expect(r.importanceNormalized[j]).toBeCloseTo(x / (3 - j), 14));
  });

  it('is 0 for a key no query may see', () => {
    const inp: RefInputs = {
      q: [1, 1],
      k: [1, 1],
      v: [1, 1],
      B: 1,
      Hq: 1,
      Hkv: 1,
      Nq: 2,
      Nk: 2,
      D: 1,
      Dv: 1,
    };
    const r = referenceAttention(inp, { mask: (_b, _h, _q, k) => k === 0 });
    expect([...r.importanceNormalized]).toEqual([1, 0]);
  });
});

describe('attention over a quantized cache', () => {
  const sizes = { B: 1, Hkv: 2, Nk: 19, D: 16 };
  const base: Omit<RefInputs, 'k' | 'v'> = { q: [], B: 1, Hq: 4, Hkv: 2, Nq: 3, Nk: 19, D: 16, Dv: 16 };

  it('is attention over the dequantized values, close to the unquantized one for int8', () => {
    const rand = rng(7);
    const q = randomNormal(4 * 3 * 16, rand);
    const k = randomNormal(2 * 19 * 16, rand);
    const v = randomNormal(2 * 19 * 16, rand);
    const f: QuantFormat = { kind: 'int', elem: 'int8', scale: { dtype: 'f16', per: { kind: 'token' } } };
    const stored = {
      k: { format: f, cache: quantize(f, k, sizes) },
      v: { format: f, cache: quantize(f, v, sizes) },
    };
    const inp = dequantizedInputs({ ...base, q, k, v }, stored);
    expect(inp.k).toEqual(referenceDequantize(f, stored.k.cache, sizes));
    const exact = referenceAttention({ ...base, q, k, v }, {});
    const quant = referenceAttention(inp, {});
    quant.out.forEach((x, i) => expect(Math.abs(x - exact.out[i]!)).toBeLessThan(0.05));
    expect(quant.out).not.toEqual(exact.out);
  });

  it('KIVI-style: the recent window is read exactly as stored in 16 bits', () => {
    const f: QuantFormat = {
      kind: 'int',
      elem: 'int2',
      scale: { dtype: 'f16', per: { kind: 'channel', group: 8 } },
      zero: 'f16',
      recent: { tokens: 4, dtype: 'f16' },
    };
    const { raw, cache } = randomQuantizedCache(f, sizes, rng(3));
    const dq = referenceDequantize(f, cache, sizes);
    for (let h = 0; h < 2; h++)
      for (let t = 15; t < 19; t++)
        for (let c = 0; c < 16; c++) {
          const i = (h * 19 + t) * 16 + c;
          expect(Math.abs(dq[i]! - raw[i]!)).toBeLessThanOrEqual(Math.abs(raw[i]!) * 2 ** -11);
        }
  });
});

describe('random quantized inputs', () => {
  it('are reproducible from the seed', () => {
    const f: QuantFormat = { kind: 'fp8', elem: 'e4m3', scale: { dtype: 'f32', per: { kind: 'tensor' } } };
    const s = { B: 1, Hkv: 1, Nk: 5, D: 8 };
    expect(randomQuantizedCache(f, s, rng(1)).cache).toEqual(randomQuantizedCache(f, s, rng(1)).cache);
  });

  it('salient index lists hold distinct in-range tokens, padded with −1', () => {
    const s = { B: 2, Hkv: 2, Nk: 5, D: 8 };
    const m = randomSalientMarks('index', s, rng(2), 7);
    expect(m.n).toBe(7);
    for (let row = 0; row < 4; row++) {
      const ids = [...m.data.slice(row * 7, row * 7 + 7)];
      expect(ids.slice(5)).toEqual([-1, -1]);
      expect(new Set(ids.slice(0, 5))).toEqual(new Set([0, 1, 2, 3, 4]));
    }
  });
});

describe('referenceStoredDecl', () => {
  it('runs examples/quant/zipcache.attn: salient tokens from its tensor param, causal mask, importance', () => {
    const src = readFileSync('examples/quant/zipcache.attn', 'utf8');
    const checked = frontend(src, 'zipcache.attn').decls[0]!;
    const formats = checkedFormats(checked);
    const f = formats.k!;
    const s = { B: 1, Hkv: 2, Nk: 21, D: 16 };
    const rand = rng(5);
    const marks = randomSalientMarks('flags', s, rand, s.Nk, 0.25);
    const k = randomQuantizedCache(f, s, rand, marks).cache;
    const v = randomQuantizedCache(f, s, rand, marks).cache;
    const q = randomNormal(4 * 5 * 16, rand);
    const inp: RefInputs = { q, k: [], v: [], B: 1, Hq: 4, Hkv: 2, Nq: 5, Nk: 21, D: 16, Dv: 16 };
    const env = {
      params: {},
      tensors: { salient: { data: marks.data, shape: [1, 2, 21] } },
      sizes: { B: 1, H: 4, Hkv: 2, Nq: 5, Nk: 21, D: 16 },
    };
    const r = referenceStoredDecl(checked, inp, env, { k, v });
    // The same attention, by hand: the kernel-facing dequantizer's values under a causal mask.
    const flags = salientFlags(marks, s);
    const byHand = referenceAttention(
      { ...inp, k: dequantize(f, k, s, flags), v: dequantize(f, v, s, flags) },
      { mask: (_b, _h, qp, kp) => qp >= kp },
    );
    expect(r.out).toEqual(byHand.out);
    expect(r.importanceNormalized).toEqual(byHand.importanceNormalized);
    expect(() => referenceStoredDecl(checked, inp, env, { k })).toThrow(/pass caches.v/);
    expect(() => referenceStoredDecl(checked, inp, { ...env, tensors: {} }, { k, v })).toThrow(/'salient'/);
  });
});

describe('randomStoredInputs', () => {
  it('quantizes both caches of examples/quant/zipcache.attn with one set of salient marks', () => {
    const src = readFileSync('examples/quant/zipcache.attn', 'utf8');
    const formats = checkedFormats(frontend(src, 'zipcache.attn').decls[0]!);
    const s = { B: 2, Hkv: 1, Nk: 13, D: 16, Dv: 32 };
    const inp = randomStoredInputs(formats, s, rng(9));
    expect(Object.keys(inp.salient)).toEqual(['salient']);
    expect(inp.salient['salient']!.data.length).toBe(2 * 13);
    expect(inp.raw.k!.length).toBe(2 * 13 * 16);
    expect(inp.raw.v!.length).toBe(2 * 13 * 32);
    expect(inp.caches.v!.codes.length).toBe(2 * 13 * 2);
    expect(inp.caches.v!.codesHi!.length).toBe(2 * 13 * 4);
  });
});
