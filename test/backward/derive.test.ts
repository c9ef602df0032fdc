// The score's symbolic derivatives (src/ir/derive.ts) on the stdlib score modifiers: each checked
// at sample points against the closed form, and shown by --dump-ir. (The random-program property
// test against the float64 reference and finite differences is derive-property.test.ts.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compile.js';
import { deriveScore } from '../../src/ir/derive.js';
import { dumpIR } from '../../src/ir/dump.js';
import { show } from '../../src/ir/graph.js';
import { evaluate } from '../../src/ir/interp.js';
import { lowerDecl } from '../../src/ir/lower.js';
import { simplifyExpr } from '../../src/ir/passes/simplify.js';

function lowered(source: string) {
  const { decl } = checkSource(source);
  const ir = lowerDecl(decl.decl, decl.defaults);
  return { ir, score: simplifyExpr(ir.graph, ir.score) };
}

const vars = { b: 0, h: 1, q: 9, k: 4, B: 1, H: 4, Hkv: 2, Nq: 16, Nk: 16, D: 8 };

describe('deriveScore', () => {
  it('softcap: ∂/∂score = 1 − tanh²(s/c), ∂/∂cap = tanh(s/c) − (s/c)(1 − tanh²(s/c))', () => {
    const { ir, score } = lowered('attention sc(cap: f32 = 5.0) { score cap * tanh(score / cap) }');
    const g = deriveScore(ir.graph, score, ir.params);
    for (const s of [-7.5, -0.25, 0, 1.5, 12]) {
      const env = { vars: { ...vars, score: s }, params: { cap: 5 } };
      const t = Math.tanh(s / 5);
      expect(evaluate(g.dScore, env)).toBeCloseTo(1 - t * t, 6);
      expect(evaluate(g.params[0]!.d, env)).toBeCloseTo(t - (s / 5) * (1 - t * t), 6);
    }
    expect(g.loads).toEqual([]);
  });

  it('a tensor lookup gets its own derivative; int tensors and masks get none', () => {
    const src = `attention t(sinks: int = 2, gain: f32[heads], doc: i32[kv]) {
      score k < sinks ? score * gain[h] : score + float(doc[k])
      mask doc[q] == doc[k]
    }`;
    const { ir, score } = lowered(src);
    const g = deriveScore(ir.graph, score, ir.params);
    expect(g.params).toEqual([]); // sinks is an int
    expect(g.loads.map((l) => [l.tensor, show(l.load)])).toEqual([['gain', '(load:gain h)']]);
    const gain = { data: [0.5, 2, 3, 4], shape: [4] };
    const doc = { data: new Array(16).fill(0), shape: [16] };
    const at = (k: number, s: number) => ({
      vars: { ...vars, k, score: s },
      params: { sinks: 2 },
      tensors: { gain, doc },
    });
    expect(evaluate(g.dScore, at(1, 3))).toBe(2); // gain[1]
    expect(evaluate(g.dScore, at(5, 3))).toBe(1);
    expect(evaluate(g.loads[0]!.d, at(1, 3))).toBe(3); // score
    expect(evaluate(g.loads[0]!.d, at(5, 3))).toBe(0);
  });

  it('every op the language has differentiates (min/max/abs/select pick a branch)', () => {
    const src = `attention all(c: f32 = 1.5) {
      score exp(min(score, 2.0)) + log(abs(score) + 1.0) + sqrt(max(score, c) + 4.0)
        + exp2(score / 4.0) + log2(c + score * score) + floor(score) + score % c + clamp(score, -1.0, 1.0)
    }`;
    const { ir, score } = lowered(src);
    const g = deriveScore(ir.graph, score, ir.params);
    const f = (s: number, c: number): number =>
      evaluate(score, { vars: { ...vars, score: s }, params: { c } }) as number;
    for (const s of [-3.3, -0.7, 0.6, 1.7, 2.9]) {
      const env = { vars: { ...vars, score: s }, params: { c: 1.5 } };
      const h = 1e-2; // f32 evaluation: a wide central difference away from the kinks
      expect(evaluate(g.dScore, env)).toBeCloseTo((f(s + h, 1.5) - f(s - h, 1.5)) / (2 * h), 2);
      expect(evaluate(g.params[0]!.d, env)).toBeCloseTo((f(s, 1.5 + h) - f(s, 1.5 - h)) / (2 * h), 2);
    }
  });

  it('--dump-ir shows the derivatives of a score expression, and nothing for a plain score', () => {
    let softcap = '';
    let plain = '';
    const dump = (src: string): string => {
      const { ir, score } = lowered(src);
      return dumpIR({ ...ir, score }, 'simplify');
    };
    softcap = dump(readFileSync('stdlib/softcap.attn', 'utf8'));
    plain = dump(readFileSync('stdlib/sink_window.attn', 'utf8'));
    expect(softcap).toContain('gradient (∂score′/∂x; masks have none):');
    expect(softcap).toMatch(/d_score = %\d+/);
    expect(softcap).toMatch(/d_\$cap = %\d+/);
    expect(plain).not.toContain('gradient');
  });
});
