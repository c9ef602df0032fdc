// The "Non-finite values" contract of docs/LANGUAGE.md on the oracle itself (src/runtime/
// reference.ts) and on the comparison every backend test uses (src/runtime/compare.ts).
import { describe, expect, it } from 'vitest';
import { compareArrays } from '../src/runtime/compare.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';

// One query row over 3 keys, D = Dv = 1, scale 1: the scores are q·k_j.
function row(k: number[], v: number[], q = 1): RefInputs {
  return { q: [q], k, v, B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: k.length, D: 1, Dv: 1, scale: 1 };
}
const causalRows = (q: number[], k: number[], v: number[]): RefInputs => ({
  q,
  k,
  v,
  B: 1,
  Hq: 1,
  Hkv: 1,
  Nq: q.length,
  Nk: k.length,
  D: 1,
  Dv: 1,
  scale: 1,
  qOffset: 0,
});
const causal = { mask: (_b: number, _h: number, q: number, k: number) => q >= k };

describe('referenceAttention: non-finite values', () => {
  it('a NaN in the k of an allowed key makes the row NaN, even when it is the only allowed key', () => {
    const r = referenceAttention(causalRows([1, 1, 1], [NaN, 1, 2], [1, 2, 3]), causal);
    // Every row sees key 0.
    expect([...r.out].every(Number.isNaN)).toBe(true);
    expect([...r.lse].every(Number.isNaN)).toBe(true);
  });

  it('a NaN in the k of a masked key never affects the row', () => {
    const r = referenceAttention(causalRows([1, 1], [1, NaN], [5, 7]), causal);
    expect(r.out[0]).toBe(5);
    expect(r.lse[0]).toBe(1);
    expect(Number.isNaN(r.out[1])).toBe(true);
  });

  it('a NaN in q makes its row NaN; an empty row stays empty', () => {
    const r = referenceAttention({ ...causalRows([NaN, NaN], [1, 1], [5, 7]), qOffset: -1 }, causal);
    expect([r.out[0], r.lse[0]]).toEqual([0, -Infinity]);
    expect(Number.isNaN(r.out[1]) && Number.isNaN(r.lse[1])).toBe(true);
  });

  it('a +Infinity score makes out and lse NaN (not lse -inf, out NaN)', () => {
    const r = referenceAttention(row([1, 2, 3], [1, 2, 3]), {
      score: (s, _b, _h, _q, k) => (k === 1 ? Infinity : s),
    });
    expect(Number.isNaN(r.out[0])).toBe(true);
    expect(Number.isNaN(r.lse[0])).toBe(true);
  });

  it('a NaN score from the score expression makes the row NaN; on a masked pair it is never seen', () => {
    const nanAt1 = (s: number, _b: number, _h: number, _q: number, k: number) => (k === 1 ? NaN : s);
    expect(Number.isNaN(referenceAttention(row([1, 2, 3], [1, 2, 3]), { score: nanAt1 }).lse[0])).toBe(true);
    const masked = referenceAttention(row([1, 2, 3], [1, 2, 3]), {
      score: nanAt1,
      mask: (_b, _h, _q, k) => k !== 1,
    });
    expect(masked.lse[0]).toBeCloseTo(Math.log(Math.E + Math.E ** 3), 12);
  });

  it('a NaN q·k poisons the row even where the score expression makes it finite', () => {
    const clamp = (s: number) => (s < 100 ? s : 0); // NaN < 100 is false: 0
    const r = referenceAttention(row([1, NaN, 2], [1, 2, 3]), { score: clamp });
    expect(Number.isNaN(r.out[0]) && Number.isNaN(r.lse[0])).toBe(true);
    // +inf q·k is not poisonous by itself: the expression's finite 0 is the score.
    const inf = referenceAttention(row([1, Infinity, 2], [1, 2, 3]), { score: clamp });
    expect(inf.lse[0]).toBeCloseTo(Math.log(Math.E + 1 + Math.E ** 2), 12);
  });

  it('-Infinity scores weigh 0, and a row of only -Infinity scores is empty', () => {
    const minus = (s: number, _b: number, _h: number, _q: number, k: number) => (k === 2 ? -Infinity : s);
    const r = referenceAttention(row([0, 0, 5], [2, 4, NaN]), { score: minus });
    expect(r.out[0]).toBe(3);
    expect(r.lse[0]).toBeCloseTo(Math.log(2), 12);
    // Its v (NaN) never enters the sum, but a kernel may multiply it by 0: NaN is accepted there.
    expect(r.outNaNAllowed[0]).toBe(1);
    const e = referenceAttention(row([1, 1], [2, 4]), { score: () => -Infinity });
    expect([e.out[0], e.lse[0]]).toEqual([0, -Infinity]);
  });

  it('v: NaN of an allowed key poisons its column only; of a masked key, nothing (NaN accepted)', () => {
    const inp: RefInputs = { ...row([0, 0, 0], [NaN, 1, 2, 3, 4, Infinity]), Dv: 2 };
    const all = referenceAttention(inp, {});
    expect(all.out[0]).toBeNaN();
    expect(all.out[1]).toBe(Infinity);
    expect([...all.outNaNAllowed]).toEqual([0, 1]); // inf·0 in a kernel's rescale may give NaN
    expect(Number.isFinite(all.lse[0])).toBe(true);
    expect(Number.isFinite(all.outScale)).toBe(true);
    const masked = referenceAttention(inp, { mask: (_b, _h, _q, k) => k === 1 });
    expect([...masked.out]).toEqual([2, 3]);
    expect([...masked.outNaNAllowed]).toEqual([1, 1]);
  });
});

describe('compareArrays: NaN positions are part of the comparison', () => {
  it('NaN matches NaN without turning the error infinite', () => {
    const c = compareArrays([NaN, 1, -Infinity], [NaN, 1, -Infinity]);
    expect(c).toEqual({ maxAbsError: 0, relError: 0, nanCount: 0 });
  });

  it('NaN against a number, or a number against NaN, is counted and fails the error bound', () => {
    for (const [a, e] of [
      [NaN, 1],
      [1, NaN],
      [-Infinity, NaN],
      [NaN, -Infinity],
    ] as const) {
      const c = compareArrays([a, 2], [e, 2]);
      expect(c.nanCount, `${a} vs ${e}`).toBe(1);
      expect(c.relError, `${a} vs ${e}`).toBe(Infinity);
    }
  });

  it('infinities must match exactly; the finite positions still measure the error', () => {
    expect(compareArrays([Infinity, 1], [-Infinity, 1]).relError).toBe(Infinity);
    expect(compareArrays([5, 1], [Infinity, 1]).relError).toBe(Infinity);
    const c = compareArrays([Infinity, 1.5], [Infinity, 2]);
    expect(c.maxAbsError).toBe(0.5);
    expect(c.relError).toBe(0.25);
  });

  it('nanAllowed excuses a NaN from the kernel, never a finite wrong value', () => {
    expect(compareArrays([NaN, NaN], [3, Infinity], 1, [1, 1]).nanCount).toBe(0);
    expect(compareArrays([4, 1], [3, 1], 1, [1, 1]).relError).toBeCloseTo(1 / 3, 12);
    expect(compareArrays([NaN], [3], 1, [0]).nanCount).toBe(1);
  });
});
