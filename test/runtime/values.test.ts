// Values that would wrap or saturate are refused with a message naming the argument and the value:
// params (int32 range, finite f32 after rounding, booleans) and offsets whose positions leave
// int32 (issue #9 items 3, 4). No GPU: validateRun only.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { paramProblem } from '../../src/runtime/params.js';
import { InputError, validateRun, type RunInputs } from '../../src/runtime/validate.js';

const source = `attention vals(window: int = 4, cap: f32 = 50.0, flag: bool = false) {
  score cap * tanh(score / cap)
  mask (flag || causal) && q - k < window
}
`;
const artifact = compile(source, { target: 'wgsl', headDim: 16 }).artifact;

const inputs = (extra: Partial<RunInputs> = {}): RunInputs => ({
  q: new Float32Array(8 * 16),
  k: new Float32Array(8 * 16),
  v: new Float32Array(8 * 16),
  B: 1,
  H: 1,
  Hkv: 1,
  Nq: 8,
  Nk: 8,
  ...extra,
});

function issues(extra: Partial<RunInputs>): string[] {
  try {
    validateRun(artifact, inputs(extra));
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return [...(e as InputError).issues];
  }
  return [];
}

describe('positions stay inside int32', () => {
  it('refuses a query offset whose last row wraps (issue #9: every row came back empty)', () => {
    expect(issues({ qOffset: 2147483644, kOffset: 2147483640 })).toEqual([
      'qOffset: query positions [2147483644, 2147483651] leave int32 (qOffset + Nq - 1 must be <= 2147483647; got qOffset = 2147483644, Nq = 8)',
    ]);
  });

  it('refuses a key offset whose last row wraps, and accepts the last positions that fit', () => {
    expect(issues({ qOffset: 0, kOffset: 2147483641 })).toEqual([
      'kOffset: key positions [2147483641, 2147483648] leave int32 (kOffset + Nk - 1 must be <= 2147483647; got kOffset = 2147483641, Nk = 8)',
    ]);
    expect(issues({ qOffset: 2147483640, kOffset: 2147483640 })).toEqual([]);
    expect(issues({ qOffset: -2147483648, kOffset: -2147483648 })).toEqual([]);
  });

  it('refuses positions whose differences q - k leave int32 (masks compute them)', () => {
    expect(issues({ qOffset: 2000000000, kOffset: -2000000000 })).toEqual([
      'qOffset, kOffset: q - k ranges over [3999999993, 4000000007], which leaves int32 (query positions [2000000000, 2000000007], key positions [-2000000000, -1999999993])',
    ]);
    expect(issues({ qOffset: -2147483648, kOffset: 2147483640 })).toEqual([
      'qOffset, kOffset: q - k ranges over [-4294967295, -4294967281], which leaves int32 (query positions [-2147483648, -2147483641], key positions [2147483640, 2147483647])',
    ]);
    expect(issues({ qOffset: 2147483640, kOffset: 0 })).toEqual([]);
    // k - q = 2^31 would wrap: |q - k| must stay within 2^31 - 1 both ways.
    expect(issues({ qOffset: -2147483648, kOffset: -7 })).toEqual([
      'qOffset, kOffset: q - k ranges over [-2147483648, -2147483634], which leaves int32 (query positions [-2147483648, -2147483641], key positions [-7, 0])',
    ]);
    expect(issues({ qOffset: -2147483648, kOffset: -8 })).toEqual([]);
  });

  it('refuses offsets that are no int32 themselves', () => {
    expect(issues({ qOffset: -2147483649 })).toEqual(['qOffset: expected an i32 (integer), got -2147483649']);
    expect(issues({ kOffset: 2 ** 31 })).toEqual(['kOffset: expected an i32 (integer), got 2147483648']);
    // null is no "use the default" (only undefined is): it was silently the default offset.
    expect(issues({ qOffset: null as unknown as number, scale: null as unknown as number })).toEqual([
      'qOffset: expected an i32 (integer), got null',
      'scale: expected a finite number within f32 range, got null',
    ]);
  });
});

describe('params are refused rather than wrapped or saturated', () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      { window: 1e40 },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 1e+40',
    ],
    [
      { window: 1.5 },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 1.5',
    ],
    [
      { window: true },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got boolean true',
    ],
    [
      { window: 2147483648 },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 2147483648',
    ],
    [
      { window: 4294967298 },
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 4294967298',
    ],
    [
      { cap: 1e40 },
      'param "cap" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got number 1e+40',
    ],
    [
      { cap: -Infinity },
      'param "cap" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got number -Infinity',
    ],
    [
      { cap: NaN },
      'param "cap" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got number NaN',
    ],
    [
      { cap: '3' },
      'param "cap" (f32): expected a finite number within f32 range (|x| < 3.4028235e38), got string 3',
    ],
    [{ flag: 1 }, 'param "flag" (bool): expected true or false, got number 1'],
  ];
  it.each(cases)('%o', (params, message) => {
    expect(issues({ params: params as RunInputs['params'] })).toEqual([message]);
  });

  it('accepts the extremes that fit, rounding f32 values', () => {
    const r = validateRun(
      artifact,
      inputs({ params: { window: -2147483648, cap: 3.4028235e38, flag: true } }),
    );
    expect(r.params.get('window')).toBe(-2147483648);
    expect(r.params.get('cap')).toBe(Math.fround(3.4028235e38));
    expect(r.params.get('flag')).toBe(1);
    expect(validateRun(artifact, inputs()).params.get('flag')).toBe(0);
  });

  it('one rule: the largest double that rounds to a finite f32 passes, the next one does not', () => {
    // f32 max is (2 − 2^−23)·2^127; values below max + half an ulp (2^103) round down to it.
    const max = 3.4028234663852886e38;
    expect(paramProblem('c', 'f32', max + 2 ** 103 - 2 ** 75)).toBeUndefined();
    expect(paramProblem('c', 'f32', max + 2 ** 103)).toMatch(/^param "c" \(f32\)/);
  });
});

describe('argument containers', () => {
  it('params and tensors that are no objects are refused (params: true was silently the defaults)', () => {
    expect(issues({ params: true as unknown as RunInputs['params'] })).toEqual([
      'params: expected an object of param values, got boolean true',
    ]);
    expect(issues({ tensors: 5 as unknown as RunInputs['tensors'] })).toEqual([
      'tensors: expected an object of typed arrays by name, got number 5',
    ]);
  });
});

describe('scale', () => {
  it('must be a number that stays finite as an f32', () => {
    expect(issues({ scale: 1e39 })).toEqual([
      'scale: expected a finite number within f32 range, got number 1e+39',
    ]);
    expect(issues({ scale: '0.5' as unknown as number })).toEqual([
      'scale: expected a finite number within f32 range, got string 0.5',
    ]);
  });
});

describe('a negative buffer dimension', () => {
  it('names the param that makes it (was: an internal buffer and its shape only)', () => {
    const routed = compile('attention r(top: int = 2) { route blocks(8) topk(top) by mean(q) . mean(k) }', {
      target: 'wgsl',
      headDim: 16,
    }).artifact;
    const refused = (params: RunInputs['params']): string[] => {
      try {
        validateRun(routed, inputs({ params }));
      } catch (e) {
        return [...(e as InputError).issues];
      }
      return [];
    };
    expect(refused({ top: -3 })).toEqual([
      'buffer "indices": shape [B, H, Nq, top + 0 + 0] evaluates to [1, 1, 8, -3]: param top = -3 makes a dimension negative',
    ]);
    expect(refused({ top: 0 })).toEqual([]);
  });
});
