// Host-side runtime pieces, no GPU: shape expressions, input validation messages, f16 bits and
// uniform packing.
import { describe, expect, it } from 'vitest';
import { renderWgsl } from '../../src/codegen/wgsl/index.js';
import { f16BitsToF32, f32ToF16Bits, fromF16, toF16 } from '../../src/runtime/f16.js';
import { evalShapeExpr, shapeExprNames } from '../../src/runtime/shape-expr.js';
import { packUniforms } from '../../src/runtime/uniforms.js';
import { InputError, validateRun, type RunInputs } from '../../src/runtime/validate.js';
import { documentKernel, slidingWindowKernel, testSchedule } from '../support/hand-kernels.js';
import { meta, withSchedule } from './harness.js';

describe('shape expressions', () => {
  const env = { B: 2, H: 4, Nq: 100, Nk: 37, D: 64, window: 8 };
  it('evaluates the grammar', () => {
    expect(evalShapeExpr('cdiv(Nq, 64)', env)).toBe(2);
    expect(evalShapeExpr('cdiv(cdiv(Nk, 16), 64)', env)).toBe(1);
    expect(evalShapeExpr('B * H + 2 * (Nk - window)', env)).toBe(66);
    expect(evalShapeExpr(' -3 + 5 ', env)).toBe(2);
    expect(evalShapeExpr('cdiv(0, 16)', env)).toBe(0);
    expect(shapeExprNames('cdiv(Nk, window) * B')).toEqual(['Nk', 'window', 'B']);
  });
  it('errors name the expression and the problem', () => {
    expect(() => evalShapeExpr('Nz * 2', env)).toThrow(
      'shape expression "Nz * 2": unknown name "Nz" at column 1',
    );
    expect(() => evalShapeExpr('cdiv(Nq, 0)', env)).toThrow(/cdiv at column 1 divides by 0/);
    expect(() => evalShapeExpr('B +', env)).toThrow(/expected a number, a name, cdiv\( or \( at the end/);
    expect(() => evalShapeExpr('B / 2', env)).toThrow(/unexpected token at column 3, found "\/"/);
    expect(() => evalShapeExpr('cdiv(B, 2', env)).toThrow(/expected "\)" at the end/);
  });
});

describe('input validation', () => {
  const art = renderWgsl(documentKernel(withSchedule(testSchedule, { headDim: 64, valueDim: 64 })), meta);
  const ok = (): RunInputs => ({
    q: new Float32Array(2 * 4 * 100 * 64),
    k: new Float32Array(2 * 2 * 100 * 64),
    v: new Float32Array(2 * 2 * 100 * 64),
    B: 2,
    H: 4,
    Hkv: 2,
    Nq: 100,
    Nk: 100,
    tensors: { doc: new Int32Array(100) },
  });
  const message = (inputs: RunInputs): string => {
    try {
      validateRun(art, inputs);
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      return (e as Error).message;
    }
    throw new Error('expected an InputError');
  };

  it('accepts valid inputs and resolves defaults', () => {
    const r = validateRun(art, ok());
    expect(r.qOffset).toBe(0);
    expect(r.kOffset).toBe(0);
    expect(r.scale).toBe(Math.fround(1 / 8));
    expect(r.shapes.get('doc_summary')).toEqual([7, 2]);
  });

  it('names the buffer, expected dtype/shape and what it got', () => {
    expect(message({ ...ok(), k: new Float32Array(51100) })).toBe(
      'input "k": expected f32[2, 2, 100, 64] (25600 elements), got Float32Array of 51100 elements',
    );
    expect(message({ ...ok(), q: new Float32Array(2 * 4 * 100 * 32) })).toContain(
      '(that is a head dim of 32; this kernel was compiled for 64)',
    );
    expect(message({ ...ok(), v: new Float64Array(25600) as unknown as Float32Array })).toContain(
      'got Float64Array of 25600 elements',
    );
    expect(message({ ...ok(), tensors: { doc: new Float32Array(100) as unknown as Int32Array } })).toBe(
      'tensor "doc": expected i32[100] (100 elements), got Float32Array of 100 elements',
    );
    expect(message({ ...ok(), tensors: {} })).toBe(
      'tensor "doc": expected i32[100] (100 elements), got undefined',
    );
  });

  it('checks sizes, GQA and several problems at once', () => {
    expect(message({ ...ok(), H: 3 })).toMatch(/H \(3\) must be a multiple of Hkv \(2\)/);
    expect(message({ ...ok(), Nq: -1 })).toMatch(/size Nq: expected an integer ≥ 0, got -1/);
    const m = message({
      ...ok(),
      k: new Float32Array(1),
      tensors: { doc: new Int32Array(1), extra: new Int32Array(1) },
    });
    expect(m.split('\n')).toHaveLength(4);
    expect(m).toContain('tensor "extra": the kernel has no such tensor (tensors: doc)');
  });

  it('checks params: unknown, missing, wrong type', () => {
    const sw = renderWgsl(slidingWindowKernel(), meta);
    const base: RunInputs = {
      q: new Float32Array(16),
      k: new Float32Array(16),
      v: new Float32Array(16),
      B: 1,
      H: 1,
      Hkv: 1,
      Nq: 1,
      Nk: 1,
    };
    expect(validateRun(sw, base).params.get('window')).toBe(8);
    expect(() => validateRun(sw, { ...base, params: { window: 2.5 } })).toThrow(
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 2.5',
    );
    expect(() => validateRun(sw, { ...base, params: { widow: 2 } })).toThrow(
      'param "widow": the kernel has no such param (params: window)',
    );
    const req = { ...sw, params: [{ name: 'window', dtype: 'i32' as const, default: undefined }] };
    expect(() => validateRun(req, base)).toThrow('param "window": missing (i32, no default)');
  });

  it('f16 kernels take Uint16Array bits', () => {
    const a = renderWgsl(slidingWindowKernel(withSchedule(testSchedule, { dtype: 'f16' })), meta);
    const inputs: RunInputs = {
      q: new Float32Array(16),
      k: new Uint16Array(16),
      v: new Uint16Array(16),
      B: 1,
      H: 1,
      Hkv: 1,
      Nq: 1,
      Nk: 1,
    };
    expect(() => validateRun(a, inputs)).toThrow(
      'input "q": expected f16[1, 1, 1, 16] (16 elements, as a Uint16Array of f16 bits), got Float32Array of 16 elements',
    );
  });

  it('packs uniforms in the artifact layout', () => {
    const sw = renderWgsl(slidingWindowKernel(), meta);
    const base: RunInputs = {
      q: new Float32Array(48),
      k: new Float32Array(80),
      v: new Float32Array(80),
      B: 1,
      H: 1,
      Hkv: 1,
      Nq: 3,
      Nk: 5,
    };
    const view = new DataView(
      packUniforms(sw, validateRun(sw, { ...base, params: { window: 3 }, kOffset: -2 })),
    );
    expect(view.byteLength).toBe(64);
    expect([view.getInt32(0, true), view.getInt32(4, true), view.getFloat32(8, true)]).toEqual([2, -2, 0.25]);
    expect([12, 16, 20, 24, 28].map((o) => view.getInt32(o, true))).toEqual([1, 1, 1, 3, 5]);
    // The K/V strides (packed [1, 1, 5, 16] by default: kv-rows.ts), then the param.
    expect([32, 36, 40, 44, 48, 52].map((o) => view.getUint32(o, true))).toEqual([80, 80, 16, 80, 80, 16]);
    expect(view.getInt32(56, true)).toBe(3);
  });
});

describe('f16 bits', () => {
  it('round-trips representable values and rounds to nearest even', () => {
    for (const x of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125]) {
      expect(f16BitsToF32(f32ToF16Bits(x))).toBe(x);
    }
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16Bits(70000)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(f16BitsToF32(f32ToF16Bits(2 ** -26))).toBe(0);
    expect([...fromF16(toF16([0.5, -3]))]).toEqual([0.5, -3]);
  });
});
