// Tile classification on the GPU: per-block summaries are exact, RANGE_MIN/RANGE_MAX follow their
// documented (block-conservative) semantics, skipping tiles changes no output bit, and the
// empty/full classes really skip loads / the predicate.
import { describe, expect, it } from 'vitest';
import { Graph, type Node } from '../../src/ir/graph.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { Op } from '../../src/ir/ops.js';
import { documentKernel, fullKernel, rehoisted, testSchedule } from '../support/hand-kernels.js';
import { expectAgreement, randomDocs, runCase, type Case } from './harness.js';

const I32_MIN = -2147483648;
const I32_MAX = 2147483647;
const block = testSchedule.summaryBlock;

/** The documented RANGE semantics, in JS: whole blocks, OOB adds 0, > 64 blocks → full range. */
function rangeJs(t: Int32Array, lo: number, hi: number): [number, number] {
  if (hi < lo) return [I32_MAX, I32_MIN];
  let r: [number, number] = lo < 0 || hi >= t.length ? [0, 0] : [I32_MAX, I32_MIN];
  const [a, z] = [Math.max(lo, 0), Math.min(hi, t.length - 1)];
  if (a > z) return r;
  const [first, last] = [Math.floor(a / block), Math.floor(z / block)];
  if (last - first >= 64) return [I32_MIN, I32_MAX];
  for (let i = first * block; i < Math.min((last + 1) * block, t.length); i++)
    r = [Math.min(r[0], t[i]!), Math.max(r[1], t[i]!)];
  return r;
}

const docMask = (doc: Int32Array) => {
  const at = (i: number): number => (i >= 0 && i < doc.length ? doc[i]! : 0);
  return (_b: number, _h: number, q: number, k: number): boolean => at(q) === at(k) && q >= k;
};

function noSkip(k: AttentionKernel): AttentionKernel {
  return { ...k, tiles: { kind: 'static', value: 'partial' } };
}

describe('document kernel: summaries and dynamic tile classes', () => {
  const cases: [string, Case & { Nk: number }][] = [
    ['Nq = Nk = 200', { B: 1, H: 2, Hkv: 1, Nq: 200, Nk: 200 }],
    ['decode-like Nq = 37 < Nk = 150', { B: 1, H: 2, Hkv: 2, Nq: 37, Nk: 150 }],
    // Query positions past Nk read doc = 0 (out of range), like the first document's keys.
    ['queries beyond the tensor (qOffset = Nk - 10)', { B: 1, H: 1, Hkv: 1, Nq: 37, Nk: 120, qOffset: 110 }],
  ];
  for (const [name, c] of cases) {
    it(name, async () => {
      const doc = randomDocs(c.Nk, 6, c.Nk + c.Nq);
      const withDoc = { ...c, tensors: { doc } };
      const dyn = await runCase(documentKernel(), withDoc, { mask: docMask(doc) });
      expectAgreement(dyn, 1e-5);
      // Summaries: exact per-block min/max.
      const s = dyn.res.summaries!['doc']!;
      expect(s.length).toBe(2 * Math.ceil(c.Nk / block));
      for (let blk = 0; blk * block < c.Nk; blk++) {
        const part = [...doc.subarray(blk * block, (blk + 1) * block)];
        expect([s[2 * blk], s[2 * blk + 1]], `block ${blk}`).toEqual([Math.min(...part), Math.max(...part)]);
      }
      // Skipping empty tiles and dropping the predicate on full ones changes no bit.
      const all = await runCase(noSkip(documentKernel()), withDoc, { mask: docMask(doc) });
      expect(Buffer.from(dyn.res.out.buffer).equals(Buffer.from(all.res.out.buffer))).toBe(true);
      expect(Buffer.from(dyn.res.lse!.buffer).equals(Buffer.from(all.res.lse!.buffer))).toBe(true);
    });
  }
});

/** The document kernel's classifier (hand-kernels.ts) evaluated in JS over rangeJs. */
function docClass(
  doc: Int32Array,
  qlo: number,
  qhi: number,
  klo: number,
  khi: number,
): 'empty' | 'full' | 'partial' {
  const [qmin, qmax] = rangeJs(doc, qlo, qhi);
  const [kmin, kmax] = rangeJs(doc, klo, khi);
  const canBeTrue = qmin <= kmax && kmin <= qmax && qhi >= klo;
  const canBeFalse = !(qmin === qmax && kmin === kmax && qmin === kmin) || qlo < khi;
  return !canBeTrue ? 'empty' : !canBeFalse ? 'full' : 'partial';
}

describe('the GPU computes exactly the classes the classifier gives', () => {
  it('empty tiles (mask true) and full tiles (mask false) show in the output', async () => {
    const [Nq, Nk, bq, bk] = [90, 90, testSchedule.blockQ, testSchedule.blockK];
    const doc = randomDocs(Nk, 4, 11);
    const cls = (q: number, k: number): string => {
      const [qt, kt] = [Math.floor(q / bq), Math.floor(k / bk)];
      return docClass(
        doc,
        qt * bq,
        Math.min((qt + 1) * bq, Nq) - 1,
        kt * bk,
        Math.min((kt + 1) * bk, Nk) - 1,
      );
    };
    const seen = new Set<string>();
    for (let q = 0; q < Nq; q++) for (let k = 0; k < Nk; k++) seen.add(cls(q, k));
    expect([...seen].sort()).toEqual(['empty', 'full', 'partial']);
    const c = { B: 1, H: 1, Hkv: 1, Nq, Nk, tensors: { doc } };
    const base = documentKernel();
    const g = base.graph;
    // Mask true: only tiles classified empty are left out.
    const o1 = await runCase({ ...base, mask: g.const(true) }, c, {
      mask: (_b, _h, q, k) => cls(q, k) !== 'empty',
    });
    expectAgreement(o1, 1e-5, 'empty tiles');
    // Mask false: only tiles classified full (predicate not evaluated) contribute.
    const o2 = await runCase({ ...base, mask: g.const(false) }, c, {
      mask: (_b, _h, q, k) => cls(q, k) === 'full',
    });
    expectAgreement(o2, 1e-5, 'full tiles');
  });
});

describe('tile-class machinery', () => {
  it('an empty class skips the tile: a classifier that says "never true" gives zeros', async () => {
    const k = documentKernel();
    const g = k.graph;
    const lying: AttentionKernel = {
      ...k,
      tiles: { kind: 'dynamic', canBeTrue: g.const(false), canBeFalse: g.const(true) },
    };
    const doc = new Int32Array(40);
    const o = await runCase(
      lying,
      { B: 1, H: 1, Hkv: 1, Nq: 40, Nk: 40, tensors: { doc } },
      { mask: () => false },
    );
    expect([...o.res.out].every((x) => x === 0)).toBe(true);
    expect([...o.res.lse!].every((x) => x === -Infinity)).toBe(true);
  });

  it('a full class evaluates no predicate: "never false" with mask false gives unmasked attention', async () => {
    const g = new Graph();
    const k: AttentionKernel = rehoisted({
      ...fullKernel(),
      graph: g,
      mask: g.const(false),
      tiles: { kind: 'dynamic', canBeTrue: g.const(true), canBeFalse: g.const(false) },
    });
    expectAgreement(await runCase(k, { B: 1, H: 1, Hkv: 1, Nq: 21, Nk: 35 }, {}), 1e-5);
  });
});

describe('RANGE_MIN / RANGE_MAX semantics', () => {
  it('whole blocks, out-of-range positions add 0, spans over 64 blocks give the full i32 range', async () => {
    // score + 0.01·max(doc[k-40 .. k+3]) + 0.02·min(doc[k-5 .. k+20]) + (min(doc[k-1030 .. k]) == i32 min ? 0.5 : 0)
    const g = new Graph();
    const [k, s] = [g.var('k'), g.var('score')];
    const add = (a: Node, c: number) => g.node(Op.ADD, 'i32', [a, g.const(c)]);
    const range = (op: Op, lo: Node, hi: Node) => g.node(op, 'i32', [lo, hi], 'doc');
    const f = (op: Op, ...src: Node[]) => g.node(op, 'f32', src);
    const fl = (n: Node) => g.node(Op.CAST, 'f32', [n]);
    const wide = g.node(Op.EQ, 'bool', [range(Op.RANGE_MIN, add(k, -1030), k), g.const(I32_MIN)]);
    const score = [
      f(Op.MUL, fl(range(Op.RANGE_MAX, add(k, -40), add(k, 3))), g.const(0.01)),
      f(Op.MUL, fl(range(Op.RANGE_MIN, add(k, -5), add(k, 20))), g.const(0.02)),
      g.node(Op.SELECT, 'f32', [wide, g.const(0.5), g.const(0, 'f32')]),
    ].reduce((a, t) => f(Op.ADD, a, t), s);
    const kernel: AttentionKernel = rehoisted({
      ...documentKernel(),
      name: 'range_semantics',
      graph: g,
      score,
      mask: g.const(true),
      tiles: { kind: 'static', value: 'full' },
    });
    const Nk = 1100;
    // Ids from 1, so out-of-range 0s are visible in the minimum.
    const doc = randomDocs(Nk, 30, 5).map((x) => x + 1);
    const o = await runCase(
      kernel,
      { B: 1, H: 1, Hkv: 1, Nq: 9, Nk, tensors: { doc } },
      {
        score: (sc, _b, _h, _q, kk) =>
          sc +
          0.01 * rangeJs(doc, kk - 40, kk + 3)[1] +
          0.02 * rangeJs(doc, kk - 5, kk + 20)[0] +
          (rangeJs(doc, kk - 1030, kk)[0] === I32_MIN ? 0.5 : 0),
      },
    );
    expectAgreement(o, 1e-5);
  });
});
