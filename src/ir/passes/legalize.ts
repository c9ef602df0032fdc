// legalize-<backend>: rewrite what a backend cannot express directly and reject what it cannot
// run at all, so renderers stay small tables of op → text.
import type { Diagnostic } from '../../diagnostics.js';
import { error, noSpan } from '../../diagnostics.js';
import { Op } from '../ops.js';
import { P, X, rule, type Rule } from '../pattern.js';
import type { AttentionIR } from '../program.js';
import { simplifyExpr } from './simplify.js';

export type Target = 'wgsl' | 'cuda';

/**
 * WGSL: some drivers compute tanh as sinh/cosh and return NaN once they overflow (|x| > ~89);
 * tanh is ±1 in f32 well before |x| = 15, so clamping the argument is exact and portable.
 */
const clampTanhArgument: Rule = rule(
  'wgsl tanh clamp',
  P(
    Op.TANH,
    X('x', (n) => !(n.op === Op.MIN && n.src[1]?.op === Op.CONST)),
  ),
  ({ x }, g) => {
    const clamped = g.node(Op.MIN, 'f32', [
      g.node(Op.MAX, 'f32', [x!, g.const(-15, 'f32')]),
      g.const(15, 'f32'),
    ]);
    return g.node(Op.TANH, 'f32', [clamped]);
  },
);

const targetRules: Readonly<Record<Target, readonly Rule[]>> = {
  wgsl: [clampTanhArgument],
  cuda: [], // CUDA's tanhf is defined on all of f32; nothing to rewrite yet
};

export function legalize(ir: AttentionIR, target: Target, diags: Diagnostic[]): AttentionIR {
  const { q, k, v, out } = ir.formats;
  if (target === 'wgsl' && [q, k, v, out].some((f) => f.dtype === 'bf16'))
    diags.push(
      error(
        "dtype 'bf16': WebGPU has no bf16 storage; use f16 or f32 (compile()'s dtype option, the CLI's --dtype)",
        noSpan,
      ),
    );
  const rules = targetRules[target];
  const g = ir.graph;
  const tiles =
    ir.tiles?.kind === 'dynamic'
      ? {
          kind: 'dynamic' as const,
          canBeTrue: simplifyExpr(g, ir.tiles.canBeTrue, rules),
          canBeFalse: simplifyExpr(g, ir.tiles.canBeFalse, rules),
        }
      : ir.tiles;
  return {
    ...ir,
    score: simplifyExpr(g, ir.score, rules),
    mask: simplifyExpr(g, ir.mask, rules),
    ...(tiles ? { tiles } : {}),
  };
}
