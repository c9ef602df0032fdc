import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compile.js';
import { Graph, show } from '../../src/ir/graph.js';
import { lowerDecl } from '../../src/ir/lower.js';
import { evaluate } from '../../src/ir/interp.js';
import { Op } from '../../src/ir/ops.js';
import { simplifyExpr } from '../../src/ir/passes/simplify.js';
import { defaultLimits } from '../../src/ir/passes/schedule.js';
import { passNames, runPipeline } from '../../src/ir/pipeline.js';
import { wgslScheduleRules } from '../../src/codegen/wgsl/schedule-rules.js';
import { toKernel, type AttentionIR } from '../../src/ir/program.js';
import { tileCounts } from '../../src/ir/tile-stats.js';
import { verify } from '../../src/ir/verify.js';
import { dumpIR } from '../../src/ir/dump.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { readStdlib, staticStdlib } from '../support/stdlib.js';

const stdlib = staticStdlib;

function pipeline(source: string, observe?: (pass: string, ir: AttentionIR) => void): AttentionIR {
  const { decl } = checkSource(source, 'test.attn');
  return runPipeline(
    lowerDecl(decl.decl, decl.defaults),
    {
      target: 'wgsl',
      limits: defaultLimits.wgsl,
      request: { headDim: 16, overrides: { blockQ: 16, blockK: 16, threads: 16 } },
      schedule: wgslScheduleRules,
      diagnostics: [],
    },
    observe,
  );
}

describe('simplify', () => {
  it('folds constants and identities, and shares structure', () => {
    const g = new Graph();
    const q = g.var('q');
    const k = g.var('k');
    const e = g.node(Op.AND, 'bool', [
      g.const(true),
      g.node(Op.LT, 'bool', [
        g.node(Op.ADD, 'i32', [
          g.node(Op.SUB, 'i32', [q, k]),
          g.node(Op.MUL, 'i32', [g.const(2), g.const(3)]),
        ]),
        g.node(Op.ADD, 'i32', [g.node(Op.SUB, 'i32', [q, q]), g.const(10)]),
      ]),
    ]);
    expect(show(simplifyExpr(g, e))).toBe('(lt (add (sub q k) 6) 10)');
    expect(g.node(Op.SUB, 'i32', [q, k])).toBe(g.node(Op.SUB, 'i32', [q, k]));
  });
  it('keeps int semantics when folding (floor division, division by zero)', () => {
    const g = new Graph();
    const div = (a: number, b: number) => simplifyExpr(g, g.node(Op.DIV, 'i32', [g.const(a), g.const(b)]));
    expect(div(-7, 2).arg).toBe(-4);
    expect(div(7, 0).arg).toBe(0);
    expect(simplifyExpr(g, g.node(Op.MOD, 'i32', [g.const(-7), g.const(3)])).arg).toBe(2);
  });
  it('keeps f32 semantics: -0.0 is not 0.0, and f32 sums are not reassociated', () => {
    const g = new Graph();
    const zero = g.const(0, 'f32');
    const negZero = simplifyExpr(g, g.node(Op.NEG, 'f32', [zero]));
    // Hash-consing keyed by String(-0) === '0' used to hand back the +0.0 node: `1.0 / -0.0`
    // folded to +inf and `mask 1.0 / -0.0 < 0.0` emptied every row, against the reference.
    expect(Object.is(negZero.arg, -0)).toBe(true);
    expect(negZero).not.toBe(zero);
    const inv = simplifyExpr(g, g.node(Op.DIV, 'f32', [g.const(1, 'f32'), g.node(Op.NEG, 'f32', [zero])]));
    expect(inv.arg).toBe(-Infinity);
    // (score + 1e8) + -1e8 rounds score to a multiple of 8 in f32; score + (1e8 + -1e8) is score.
    const score = g.var('score');
    const big = Math.fround(1e8);
    const sum = g.node(Op.ADD, 'f32', [
      g.node(Op.ADD, 'f32', [score, g.const(big, 'f32')]),
      g.const(-big, 'f32'),
    ]);
    expect(show(simplifyExpr(g, sum))).toBe(show(sum));
    // x + 0.0 is x except for x = -0.0 (-0.0 + 0.0 = +0.0); x + -0.0 and x - 0.0 are always x.
    const plusZero = g.node(Op.ADD, 'f32', [score, zero]);
    expect(simplifyExpr(g, plusZero)).toBe(plusZero);
    expect(simplifyExpr(g, g.node(Op.ADD, 'f32', [score, negZero]))).toBe(score);
    expect(simplifyExpr(g, g.node(Op.SUB, 'f32', [score, zero]))).toBe(score);
    const minusNegZero = g.node(Op.SUB, 'f32', [score, negZero]);
    expect(simplifyExpr(g, minusNegZero)).toBe(minusNegZero);
    // Ints keep every identity and the reassociation (interval analysis wants `x + c`).
    const q = g.var('q');
    const ints = g.node(Op.ADD, 'i32', [g.node(Op.ADD, 'i32', [q, g.const(3)]), g.const(4)]);
    expect(show(simplifyExpr(g, ints))).toBe('(add q 7)');
    expect(simplifyExpr(g, g.node(Op.ADD, 'i32', [q, g.const(0)]))).toBe(q);
  });
  it('the compiled mask and score compute what the reference does, for f32 edge constants', () => {
    // Each program disagreed with the reference (attnc run, both backends) before the fix above.
    const sources = [
      'attention a() { mask 1.0 / -0.0 < 0.0 }',
      'attention b() { score score + 1.0 / (-(0.0)) }',
      'attention c() { score score * (-0.0 < 0.0 ? 1.0 : 2.0) + (1.0 / (0.0 * -1.0) < 0.0 ? 5.0 : 0.0) }',
      'attention d() { score (score + 100000000.0) + -100000000.0 }',
      'attention e() { score 1.0 / (score * 0.0 + 0.0) }',
    ];
    const sizes = { B: 1, H: 1, Hkv: 1, Nq: 4, Nk: 4, D: 16 };
    for (const source of sources) {
      const ir = pipeline(source);
      const { decl } = checkSource(source, 'test.attn');
      const ref = declPredicates(decl.decl, { params: {}, tensors: {}, sizes });
      for (const score of [-3.75, -0.0, 0.0, 1.5, 12.3456]) {
        const vars = { b: 0, h: 0, q: 3, k: 1, score };
        const label = `${source} at score ${Object.is(score, -0) ? '-0' : score}`;
        expect(evaluate(ir.mask, { vars }), label).toBe(ref.mask(0, 0, 3, 1));
        expect(Object.is(evaluate(ir.score, { vars }), ref.score(score, 0, 0, 3, 1)), label).toBe(true);
      }
    }
  });
});

describe('pipeline on the stdlib', () => {
  it.each(stdlib)('%s verifies after every pass', (file) => {
    const seen: string[] = [];
    pipeline(readStdlib(file), (pass, ir) => {
      seen.push(pass);
      expect(verify(ir), `${file} after ${pass}`).toEqual([]);
    });
    expect(seen).toEqual(passNames('wgsl'));
  });

  it('classifies static patterns exactly, without a dense mask', () => {
    const counts = (file: string, params: Record<string, number> = {}) => {
      const k = toKernel(pipeline(readStdlib(file)));
      const defaults = Object.fromEntries(k.params.map((p) => [p.name, p.default ?? 0]));
      return tileCounts(k, {
        b: 0,
        h: 0,
        Nq: 64,
        Nk: 64,
        qOffset: 0,
        kOffset: 0,
        env: { params: { ...defaults, ...params }, vars: { B: 1, H: 1, Hkv: 1, Nq: 64, Nk: 64, D: 16 } },
      });
    };
    expect(counts('full.attn')).toEqual({ empty: 0, full: 16, partial: 0 });
    expect(counts('causal.attn')).toEqual({ empty: 6, full: 6, partial: 4 });
    // Window 16 over 16×16 tiles: the diagonal and the tile below it are partial, the rest empty.
    expect(counts('sliding_window.attn', { window: 16 })).toEqual({ empty: 9, full: 0, partial: 7 });
    expect(counts('sliding_window.attn', { window: 33 })).toEqual({ empty: 7, full: 3, partial: 6 });
    expect(counts('prefix_lm.attn', { prefix: 32 })).toEqual({ empty: 5, full: 9, partial: 2 });
  });

  it('uses per-block summaries for tensor lookups', () => {
    const ir = pipeline(readFileSync('stdlib/document.attn', 'utf8'));
    expect(ir.tiles?.kind).toBe('dynamic');
    expect(ir.summaries).toEqual([{ tensor: 'doc' }]);
    expect(ir.hoists?.row.map(show)).toEqual(['(load:doc q)']);
    expect(ir.hoists?.key.map(show)).toEqual(['(load:doc k)']);
  });

  it('dumps readable IR', () => {
    let text = '';
    pipeline(readFileSync('stdlib/sink_window.attn', 'utf8'), (pass, ir) => {
      if (pass === 'analyze-tiles') text = dumpIR(ir, pass);
    });
    expect(text).toMatchInlineSnapshot(`
      "; sink_window after analyze-tiles
      params: window: i32 = 1024, sinks: i32 = 4
      outputs: out, lse
      formats: q f32, k f32, v f32, out f32
      exprs:
        %0: bool = ge(q, k)
        %1: i32 = sub(q, k)
        %2: bool = lt(%1, $window)
        %3: bool = lt(k, $sinks)
        %4: bool = or(%2, %3)
        %5: bool = and(%0, %4)
        %6: bool = ge(q_hi, k_lo)
        %7: i32 = sub(q_lo, k_hi)
        %8: bool = lt(%7, $window)
        %9: bool = lt(k_lo, $sinks)
        %10: bool = or(%8, %9)
        %11: bool = and(%6, %10)
        %12: bool = lt(q_lo, k_hi)
        %13: i32 = sub(q_hi, k_lo)
        %14: bool = ge(%13, $window)
        %15: bool = ge(k_hi, $sinks)
        %16: bool = and(%14, %15)
        %17: bool = or(%12, %16)
        mask = %5
        score = score
        can_be_true = %11
        can_be_false = %17
      tiles: dynamic (per tile)
      "
    `);
  });
});
