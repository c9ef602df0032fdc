// The gradient reference's score values (reference-grad-ast.ts, float64 dual numbers) against the
// dense forward reference's (ast-eval, f32 step by step) where float64 would take another piece of
// a discontinuous function: int → f32 conversions near 2^31 and f32 `%`. The fuzz campaign (round
// 15, seed 1503 draw 88) found `float(q - k) % 3.0` at q ≈ 2^31 off by up to 64 in the gradient
// reference: its softmax weights were not the kernels' (dv 0.24 relative error, WGSL and CUDA alike).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { declScoreDual } from '../../src/runtime/reference-grad-ast.js';
import { arbNearLimit, arbProgram, makeInputs } from '../support/arbitraries.js';
import { evalEnv } from './support.js';

const SCORES = [
  'float(q - k) % 3.0 * 0.25',
  'score + float(q) % 7.5',
  'float(k - q) * 0.5 + float(q) * 0.25',
  'exp(min(float((k - q) % 64) * -0.125, 2.0)) + float(q - k) % -2.5',
];

function values(score: string, q: number, k: number): { dual: number; dense: number } {
  const { decl } = checkSource(`attention t() {\n  score ${score}\n}`, 't.attn').decl;
  const env = { params: {}, tensors: {}, sizes: { B: 1, H: 1, Hkv: 1, Nq: 1, Nk: 1, D: 8 } };
  const raw = 0.375;
  return {
    dual: declScoreDual(decl, env)(raw, 0, 0, q, k).value,
    dense: declPredicates(decl, env).score(raw, 0, 0, q, k),
  };
}

describe('the gradient reference scores as the forward reference does', () => {
  it.each(SCORES)('%s, near 2^31 and at small positions', (score) => {
    for (const [q, k] of [
      [2147483640, 70],
      [2147483628, 64],
      [2147483647, 0],
      [-2147483600, 90],
      [37, 5],
      [3, 40],
    ] as const) {
      const { dual, dense } = values(score, q, k);
      expect(Number.isFinite(dense)).toBe(true);
      // f32 arithmetic the dual keeps in float64 (smooth parts) differs by rounding only.
      expect(Math.abs(dual - dense), `q ${q} k ${k}: dual ${dual} dense ${dense}`).toBeLessThanOrEqual(
        1e-6 * (1 + Math.abs(dense)),
      );
    }
  });

  // The CI draw for it: wrap-prone random programs (constants and positions near ±2^31) with an
  // f32 `%` of a converted position added to their score (arbProgram draws neither).
  it('on random wrap-prone programs at positions near the int limits', () => {
    const shape = { B: 1, Hq: 2, Hkv: 1, Nq: 4, Nk: 4, D: 8, Dv: 8 };
    const inputs = makeInputs(shape, 3);
    const term = fc.constantFrom('float(q - k) % 3.0', 'float(q) % -2.5 * 0.5', 'float(k + q) % 7.0');
    const arb = fc.tuple(
      arbProgram({ depth: 2, wrap: true, extended: true }),
      term,
      arbNearLimit(64),
      arbNearLimit(64),
    );
    fc.assert(
      fc.property(arb, ([decl, t, q, k]) => {
        const source = withScoreTerm(printDecl(decl), t);
        const { decl: checked, defaults } = checkSource(source, 'p.attn').decl;
        const env = evalEnv(checked, Object.fromEntries(defaults), shape, inputs);
        const dense = declPredicates(checked, env).score(0.375, 0, 1, q, k);
        const dual = declScoreDual(checked, env)(0.375, 0, 1, q, k).value;
        if (!Number.isFinite(dense)) return;
        expect(Math.abs(dual - dense), `${source} q ${q} k ${k}`).toBeLessThanOrEqual(
          1e-5 * (1 + Math.abs(dense)),
        );
      }),
      { numRuns: 300 },
    );
  });
});

/** `source` with `term` added to its score (a `score score + term` where it has none). */
function withScoreTerm(source: string, term: string): string {
  const lines = source.trimEnd().split('\n');
  const i = lines.findIndex((l) => l.startsWith('  score '));
  if (i >= 0) lines[i] = `  score (${lines[i]!.slice(8)}) + ${term}`;
  else lines.splice(lines.length - 1, 0, `  score score + ${term}`);
  return lines.join('\n');
}
