// Tests of the oracle itself: the dense reference against hand-computed values, and the AST
// interpreter against the language's i32/f32 semantics. Everything else is checked against these.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { printDecl } from '../src/dsl/print.js';
import type { Expr } from '../src/dsl/ast.js';
import { declPredicates, evalExpr, type EvalEnv, type ValueType } from '../src/runtime/ast-eval.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';
import { arbProgram, arbShape, ast, makeInputs } from './support/arbitraries.js';

const E = Math.E;

function inputs(over: Partial<RefInputs> & Pick<RefInputs, 'q' | 'k' | 'v'>): RefInputs {
  return { B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: 1, D: 1, Dv: 1, ...over };
}

function expectClose(actual: ArrayLike<number>, expected: number[], digits = 12): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((x, i) => expect(actual[i]).toBeCloseTo(x, digits));
}

describe('referenceAttention: hand-computed cases', () => {
  it('1×1: the single key gets all the mass', () => {
    const r = referenceAttention(inputs({ q: [2], k: [3], v: [5, 7], Dv: 2 }), {});
    expectClose(r.out, [5, 7]);
    expectClose(r.lse, [6]); // scale = 1/sqrt(1)
    expect([...r.mask]).toEqual([1]);
  });

  // q = k = I₂, v = [[1,2],[3,4]], scale 1: row i has scores e_i.
  const twoByTwo = inputs({
    q: [1, 0, 0, 1],
    k: [1, 0, 0, 1],
    v: [1, 2, 3, 4],
    Nq: 2,
    Nk: 2,
    D: 2,
    Dv: 2,
    scale: 1,
  });

  it('2×2 unmasked', () => {
    const r = referenceAttention(twoByTwo, {});
    const a = E / (E + 1);
    const b = 1 / (E + 1);
    expectClose(r.out, [a * 1 + b * 3, a * 2 + b * 4, b * 1 + a * 3, b * 2 + a * 4]);
    expectClose(r.lse, [Math.log(E + 1), Math.log(E + 1)]);
    expectClose(r.importance, [1, 1]);
  });

  it('outScale is max Σ p·|v|: the size of the terms an output sums, not |out|', () => {
    // Row 0 weights (a, b) over v = (1, -3) in dim 0: out = a - 3b, terms a + 3b.
    const r = referenceAttention({ ...twoByTwo, v: [1, 2, -3, 4] }, {});
    const a = E / (E + 1);
    const b = 1 / (E + 1);
    expect(r.outScale).toBeCloseTo(Math.max(a + 3 * b, 2 * a + 4 * b, b + 3 * a, 2 * b + 4 * a), 12);
    // Uniform weights over keys with cancelling values: out is 0, the scale is the mean |v|.
    const flat = referenceAttention(inputs({ q: [0], k: [0, 0, 0, 0], v: [1, -1, 2, -2], Nk: 4 }), {});
    expectClose(flat.out, [0]);
    expect(flat.outScale).toBeCloseTo(1.5, 12);
  });

  it('2×2 causal', () => {
    const r = referenceAttention(twoByTwo, { mask: (_b, _h, q, k) => q >= k });
    const a = E / (E + 1);
    const b = 1 / (E + 1);
    expectClose(r.out, [1, 2, b * 1 + a * 3, b * 2 + a * 4]);
    expectClose(r.lse, [1, Math.log(E + 1)]);
    expect([...r.mask]).toEqual([1, 0, 1, 1]);
    expectClose(r.importance, [1 + b, a]);
  });

  it('applies the score modifier to the scaled score, before the mask', () => {
    const seen: number[] = [];
    const r = referenceAttention(twoByTwo, {
      score: (s) => (seen.push(s), 2 * s),
      mask: (_b, _h, q, k) => q >= k,
    });
    expect(seen).toEqual([1, 0, 1]);
    const a = E ** 2 / (E ** 2 + 1);
    expectClose(r.out, [1, 2, (1 - a) * 1 + a * 3, (1 - a) * 2 + a * 4]);
  });

  it('defaults scale to f32(1/sqrt(D))', () => {
    const r = referenceAttention(inputs({ q: [1, 1, 1], k: [1, 1, 1], v: [1], D: 3 }), {});
    expect(r.lse[0]).toBe(3 * Math.fround(1 / Math.sqrt(3)));
  });
});

describe('referenceAttention: edge cases', () => {
  it('empty rows give 0 and -Infinity, never NaN', () => {
    const inp = inputs({ q: [1, 2], k: [1, 2, 3], v: [4, 5, 6], Nq: 2, Nk: 3 });
    const r = referenceAttention(inp, { mask: () => false });
    expect([...r.out]).toEqual([0, 0]);
    expect([...r.lse]).toEqual([-Infinity, -Infinity]);
    expect([...r.importance]).toEqual([0, 0, 0]);
    // Only row 0 (position 1) empty.
    const p = referenceAttention(inp, { mask: (_b, _h, q, k) => q > 1 && k >= 0 });
    expect(p.out[0]).toBe(0);
    expect(p.lse[0]).toBe(-Infinity);
    expect(Number.isFinite(p.lse[1])).toBe(true);
  });

  it('a row whose every allowed score is -Infinity is empty', () => {
    const r = referenceAttention(inputs({ q: [1], k: [1, 1], v: [3, 4], Nk: 2 }), { score: () => -Infinity });
    expect([...r.out]).toEqual([0]);
    expect(r.lse[0]).toBe(-Infinity);
  });

  it('GQA: query head h reads kv head floor(h / (Hq/Hkv))', () => {
    const heads: number[] = [];
    const r = referenceAttention(inputs({ q: new Array(6).fill(1), k: [1, 1], v: [10, 20], Hq: 6, Hkv: 2 }), {
      mask: (_b, h) => (heads.push(h), true),
    });
    expect([...r.out]).toEqual([10, 10, 10, 20, 20, 20]);
    expect(heads).toEqual([0, 1, 2, 3, 4, 5]); // the mask sees the query head
  });

  it('batches index their own q/k/v', () => {
    const r = referenceAttention(inputs({ q: [1, 1], k: [1, 1], v: [7, 8], B: 2 }), {});
    expect([...r.out]).toEqual([7, 8]);
  });

  describe('positions and offsets', () => {
    const decode = inputs({ q: [1], k: [1, 2, 3, 4, 5], v: [1, 2, 3, 4, 5], Nk: 5 });
    const causal = { mask: (_b: number, _h: number, q: number, k: number) => q >= k };

    it('defaults to bottom-right alignment: a decode row sees every key under causal', () => {
      expect([...referenceAttention(decode, causal).mask]).toEqual([1, 1, 1, 1, 1]);
    });

    it('honours an explicit q offset', () => {
      const r = referenceAttention({ ...decode, qOffset: 0 }, causal);
      expect([...r.mask]).toEqual([1, 0, 0, 0, 0]);
      expect([...r.out]).toEqual([1]);
    });

    it('honours a k offset and passes positions, not indices', () => {
      const pairs: [number, number][] = [];
      const r = referenceAttention(
        { ...decode, kOffset: 3 },
        { mask: (_b, _h, q, k) => (pairs.push([q, k]), q >= k) },
      );
      expect(pairs).toEqual([
        [4, 3],
        [4, 4],
        [4, 5],
        [4, 6],
        [4, 7],
      ]);
      expect([...r.mask]).toEqual([1, 1, 0, 0, 0]);
    });
  });

  it('large scores (×1000) do not overflow', () => {
    const r = referenceAttention(inputs({ q: [1000], k: [1000, 999], v: [3, 4], Nk: 2 }), {});
    expect(r.out[0]).toBe(3); // e^-1000 underflows to 0 relative to 1
    expect(r.lse[0]).toBe(1e6);
    const n = 64;
    const big = referenceAttention(
      inputs({
        q: [1000],
        k: Array.from({ length: n }, (_, j) => 1000 - j / 1000),
        v: [...Array(n).keys()],
        Nk: n,
      }),
      {},
    );
    expect(Number.isFinite(big.out[0])).toBe(true);
    expect(Number.isFinite(big.lse[0])).toBe(true);
    // Scores differ by one unit per key: the result is a geometric (e^-1) weighting of 0, 1, 2, …
    expect(big.out[0]).toBeCloseTo(1 / (E - 1), 9);
  });

  it('validates shapes, naming the offending buffer', () => {
    expect(() => referenceAttention(inputs({ q: [1], k: [1], v: [1], Nk: 2 }), {})).toThrow(
      /'k' has length 1, expected 2 for shape \[B=1, Hkv=1, Nk=2, D=1\]/,
    );
    expect(() => referenceAttention(inputs({ q: [1], k: [1], v: [], Dv: 1 }), {})).toThrow(/'v'/);
    expect(() =>
      referenceAttention(inputs({ q: [1, 1, 1], k: [1, 1], v: [1, 1], Hq: 3, Hkv: 2 }), {}),
    ).toThrow(/Hq \(3\) must be a multiple of Hkv \(2\)/);
  });
});

const { int, f32, bin, call, name, neg, index } = ast;
const env: EvalEnv = {
  params: {},
  tensors: {
    doc: { data: [5, 6, 7], shape: [3] },
    slopes: { data: [0.5, 0.25], shape: [2] },
  },
  sizes: { B: 1, H: 2, Hkv: 1, Nq: 2, Nk: 3, D: 8 },
};
const tensorsDecl = ast.decl(
  't',
  [ast.tensorParam('doc', 'i32', 'kv'), ast.tensorParam('slopes', 'f32', 'heads')],
  [],
);
const at = { b: 0, h: 1, q: 3, k: 6, score: 0.5 };
function ev(e: Expr, decl = tensorsDecl): { type: ValueType; value: number | boolean } {
  return evalExpr(e, env, at, decl);
}
const val = (e: Expr): number | boolean => ev(e).value;
const I32_MIN = bin('-', neg(int(2147483647)), int(1));

describe('ast-eval: int semantics', () => {
  it('/ is floor division and % floor modulo (divisor sign)', () => {
    const cases: [number, number, number, number][] = [
      [7, 2, 3, 1],
      [-7, 2, -4, 1],
      [7, -2, -4, -1],
      [-7, -2, 3, -1],
      [-7, 3, -3, 2],
      [7, -3, -3, -2],
      [6, 3, 2, 0],
      [-6, 3, -2, 0],
    ];
    for (const [a, b, d, m] of cases) {
      expect([val(bin('/', int(a), int(b))), val(bin('%', int(a), int(b)))]).toEqual([d, m]);
    }
    expect(val(bin('%', bin('-', name('q'), name('k')), int(2)))).toBe(1); // (3 - 6) % 2
  });

  it('division and modulo by zero give 0; f32 division is IEEE', () => {
    expect(val(bin('/', int(5), int(0)))).toBe(0);
    expect(val(bin('%', int(-5), int(0)))).toBe(0);
    expect(val(bin('/', int(0), int(0)))).toBe(0);
    expect(val(bin('/', f32(1), f32(0)))).toBe(Infinity);
  });

  it('wraps to 32 bits', () => {
    expect(val(bin('+', int(2147483647), int(1)))).toBe(-2147483648);
    expect(val(bin('*', int(65536), int(65536)))).toBe(0);
    expect(val(bin('*', int(65537), int(65537)))).toBe(131073);
    expect(val(bin('/', I32_MIN, neg(int(1))))).toBe(-2147483648);
    expect(val(neg(I32_MIN))).toBe(-2147483648);
    expect(val(call('abs', I32_MIN))).toBe(-2147483648);
  });

  it('int() truncates toward zero and saturates; float() rounds to f32', () => {
    expect(val(call('int', f32(2.7)))).toBe(2);
    expect(val(call('int', f32(-2.7)))).toBe(-2);
    expect(val(call('int', f32(1e10)))).toBe(2147483647);
    expect(val(call('int', neg(f32(1e10))))).toBe(-2147483648);
    expect(val(call('int', bin('/', f32(0), f32(0))))).toBe(0);
    expect(ev(call('float', int(16777217)))).toEqual({ type: 'f32', value: 16777216 });
  });

  it('min / max / abs / clamp', () => {
    expect(val(call('min', int(3), neg(int(4))))).toBe(-4);
    expect(val(call('max', int(3), neg(int(4))))).toBe(3);
    expect(val(call('clamp', int(9), int(0), int(5)))).toBe(5);
    expect(val(call('clamp', neg(int(9)), int(0), int(5)))).toBe(0);
    expect(val(call('clamp', int(3), int(5), int(0)))).toBe(0); // lo > hi: hi wins
    expect(ev(call('abs', neg(f32(1.5))))).toEqual({ type: 'f32', value: 1.5 });
  });
});

describe('ast-eval: f32, promotion and names', () => {
  it('promotes mixed int/f32 to f32 and rounds f32 results', () => {
    expect(ev(bin('/', int(7), int(2)))).toEqual({ type: 'int', value: 3 });
    expect(ev(bin('/', int(7), f32(2)))).toEqual({ type: 'f32', value: 3.5 });
    expect(ev(bin('+', f32(0.1), f32(0.2))).value).toBe(Math.fround(Math.fround(0.1) + Math.fround(0.2)));
    expect(ev(ast.tern(ast.bool(true), int(1), f32(2.5)))).toEqual({ type: 'f32', value: 1 });
    expect(val(call('exp', int(1)))).toBe(Math.fround(Math.E));
    expect(val(call('exp2', f32(3)))).toBe(8);
    expect(val(call('floor', neg(f32(1.5))))).toBe(-2);
    expect(val(bin('<', int(16777217), f32(16777216)))).toBe(false); // the int rounds to f32 first
    // f32 `%` is floor modulo like int `%`: the result takes the divisor's sign.
    expect(val(bin('%', neg(f32(7)), f32(2)))).toBe(1);
    expect(val(bin('%', f32(7.5), neg(f32(2))))).toBe(-0.5);
    expect(val(bin('%', neg(int(7)), int(2)))).toBe(1);
  });

  it('index variables, causal, score and sizes', () => {
    expect([val(name('q')), val(name('k')), val(name('h')), val(name('b'))]).toEqual([3, 6, 1, 0]);
    expect(val(name('causal'))).toBe(false);
    expect(evalExpr(name('causal'), env, { ...at, q: 6 }, tensorsDecl).value).toBe(true);
    expect(ev(name('score'))).toEqual({ type: 'f32', value: 0.5 });
    expect(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D'].map((n) => val(name(n)))).toEqual([1, 2, 1, 2, 3, 8]);
  });

  it('tensor lookups out of range read 0', () => {
    expect([-1, 0, 1, 2, 3, 100].map((i) => val(index('doc', int(i))))).toEqual([0, 5, 6, 7, 0, 0]);
    expect(val(index('slopes', name('h')))).toBe(0.25);
    expect(val(index('slopes', int(2)))).toBe(0);
    expect(val(index('doc', I32_MIN))).toBe(0);
  });
});

describe('declPredicates', () => {
  const sizes = { B: 1, H: 1, Hkv: 1, Nq: 4, Nk: 4, D: 8 };
  const window = ast.scalarParam('w', 'int', bin('+', int(1), int(1)));

  it('ANDs masks, uses lets and param defaults, and env params override defaults', () => {
    const decl = ast.decl(
      'sw',
      [window],
      [
        ast.let('d', bin('-', name('q'), name('k'))),
        ast.mask(name('causal')),
        ast.mask(bin('<', name('d'), name('w'))),
      ],
    );
    const p = declPredicates(decl, { params: {}, tensors: {}, sizes });
    expect([0, 1, 2, 3, 4].map((k) => p.mask(0, 0, 3, k))).toEqual([false, false, true, true, false]);
    const p5 = declPredicates(decl, { params: { w: 5 }, tensors: {}, sizes });
    expect([0, 1, 2, 3, 4].map((k) => p5.mask(0, 0, 3, k))).toEqual([true, true, true, true, false]);
    expect(p.score(1.25, 0, 0, 3, 0)).toBe(1.25); // no score: identity
  });

  it('no mask allows everything; the score sees the scaled score', () => {
    const cap = ast.scalarParam('cap', 'f32', f32(30));
    const softcap = bin('*', name('cap'), call('tanh', bin('/', name('score'), name('cap'))));
    const p = declPredicates(ast.decl('sc', [cap], [ast.score(softcap)]), { params: {}, tensors: {}, sizes });
    expect(p.mask(0, 0, 0, 99)).toBe(true);
    const expected = Math.fround(30 * Math.fround(Math.tanh(Math.fround(100 / 30))));
    expect(p.score(100, 0, 0, 0, 0)).toBe(expected);
  });

  it('rejects bad programs and environments with a message', () => {
    const noDefault = ast.decl(
      'n',
      [ast.scalarParam('w', 'int')],
      [ast.mask(bin('<', name('q'), name('w')))],
    );
    expect(() => declPredicates(noDefault, { params: {}, tensors: {}, sizes })).toThrow(/'w' has no default/);
    expect(() => declPredicates(noDefault, { params: { w: 1, x: 2 }, tensors: {}, sizes })).toThrow(
      /no param 'x'/,
    );
    const usesScore = ast.decl('u', [], [ast.mask(bin('>', name('score'), f32(0)))]);
    expect(() => declPredicates(usesScore, { params: {}, tensors: {}, sizes })).toThrow(/may not use score/);
    const boolEq = ast.decl('e', [], [ast.mask(bin('==', name('causal'), ast.bool(true)))]);
    expect(() => declPredicates(boolEq, { params: {}, tensors: {}, sizes })).toThrow(/takes two numbers/);
    const docDecl = ast.decl('d', [ast.tensorParam('doc', 'i32', 'kv')], []);
    const badDoc = { doc: { data: [1, 2], shape: [2] } };
    expect(() => declPredicates(docDecl, { params: {}, tensors: badDoc, sizes })).toThrow(
      /'doc'.*expected i32\[4\]/,
    );
    const e = bin('<', name('q'), name('k'));
    const types = new Map<Expr, ValueType>([[e, 'int']]);
    expect(() =>
      declPredicates(ast.decl('t', [], [ast.mask(e)]), { params: {}, tensors: {}, sizes }, { types }),
    ).toThrow(/checker types this int/);
  });
});

describe('referenceAttention on random programs', () => {
  it('declPredicates never throws and yields booleans / finite numbers; outputs are never NaN', () => {
    fc.assert(
      fc.property(
        arbProgram(),
        arbShape({ maxN: 24 }),
        fc.integer(),
        fc.boolean(),
        (decl, shape, seed, large) => {
          const src = printDecl(decl);
          expect(src).not.toMatch(/undefined|NaN/);
          const data = makeInputs(shape, seed, { magnitude: large ? 32 : 1 });
          const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk, D: shape.D };
          const pred = declPredicates(decl, { params: {}, tensors: data.tensors, sizes });
          for (const [q, k] of [
            [0, 0],
            [-5, 7],
            [300, 2],
            [17, 17],
          ] as const) {
            expect(typeof pred.mask(0, 0, q, k)).toBe('boolean');
            expect(Number.isFinite(pred.score(0.75, 0, 0, q, k))).toBe(true);
          }
          const r = referenceAttention({ ...data, ...shape }, pred);
          for (let row = 0; row < r.lse.length; row++) {
            const lse = r.lse[row] as number;
            const empty = !r.mask.subarray(row * shape.Nk, (row + 1) * shape.Nk).some((m) => m === 1);
            if (empty) expect(lse).toBe(-Infinity);
            else expect(Number.isFinite(lse)).toBe(true);
          }
          expect(r.out.every((x) => Number.isFinite(x))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
