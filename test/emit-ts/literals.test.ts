// The emitter's literals and shape expressions as code: what the module embeds reads back exactly.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { shapeExprToTs, templateLiteral } from '../../src/codegen/emit-ts.js';
import { evalShapeExpr } from '../../src/runtime/shape-expr.js';

describe('emit-ts literals', () => {
  it('templateLiteral round-trips backticks, ${, backslashes, CRLF, «markers» and non-ASCII', () => {
    const text = 'a `b` ${c} \\n \\` \r\n\t// «x» ≤ 𝛼 \u2028 \x00 end';
    const lit = templateLiteral(text);
    expect(lit).toMatch(/^[\x09\x0a\x20-\x7e]*$/);
    expect(new Function(`return ${lit};`)()).toBe(text);
  });

  it('shape expressions compile to code that agrees with the runtime evaluator', () => {
    const { artifact } = compile('attention t(n: int = 3, w: f32[n, kv]) { mask causal }', {
      target: 'wgsl',
      headDim: 16,
      valueDim: 8,
    });
    const env = { B: 2, H: 4, Hkv: 2, Nq: 37, Nk: 70, n: 5, D: 16, Dv: 8 };
    const exprs = ['cdiv(cdiv(Nk, 16), 64)', 'B * H - -Nq', '(Nk + 1) * D - Dv', 'cdiv(Nq, 64)', 'n * 2'];
    for (const e of exprs) {
      const code = shapeExprToTs(e, artifact);
      const f = new Function('e', 'cdiv', `return ${code};`) as (e: object, c: unknown) => number;
      expect(
        f(env, (a: number, b: number) => Math.ceil(a / b)),
        `${e} → ${code}`,
      ).toBe(evalShapeExpr(e, env));
    }
    expect(() => shapeExprToTs('window + 1', artifact)).toThrow(/"window", which is no size or int param/);
    expect(() => shapeExprToTs('Nq +', artifact)).toThrow(/shape expression "Nq \+"/);
  });
});
