// The emitter's literals and shape expressions as code: what the module embeds reads back exactly.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { emitKernelModule, shapeExprToTs, templateLiteral } from '../../src/codegen/emit-ts.js';
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

  it('param defaults read back exactly, -0.0 with its sign', () => {
    // `${-0}` is '0': the module used +0.0 for a -0.0 default, so `mask 1.0 / c < 0.0` masked
    // every key where the reference (and the CUDA args_init) allowed them all.
    const src = 'attention t(c: f32 = -0.0, d: f32 = 1e-30, n: int = -5) { mask 1.0 / c < d && q - k > n }';
    const { artifact } = compile(src, { target: 'wgsl', headDim: 16 });
    const ts = Object.values(emitKernelModule(artifact).files).join('\n');
    const fallback = (name: string): number => {
      const m = new RegExp(`Param\\("${name}", p\\["${name}"\\], ([^,]+), issues\\)`).exec(ts);
      expect(m, name).not.toBeNull();
      return Number(new Function(`return ${m![1]};`)());
    };
    expect(Object.is(fallback('c'), -0)).toBe(true);
    expect(fallback('d')).toBe(Math.fround(1e-30));
    expect(fallback('n')).toBe(-5);
  });
});
