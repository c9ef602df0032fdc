// legalize-<backend>: rewrite what a backend cannot express directly and reject what it cannot
// run at all, so renderers stay small tables of op → text.
import type { Diagnostic } from '../../diagnostics.js';
import { error, noSpan } from '../../diagnostics.js';
import { Op } from '../ops.js';
import { P, X, rule, type Rule } from '../pattern.js';
import type { AttentionIR } from '../program.js';
import { simplifyExpr } from './simplify.js';

export type Target = 'wgsl' | 'cuda';

const isF32 = (n: { dtype: string }): boolean => n.dtype === 'f32';

/** Rules every target shares: WGSL's and CUDA's float `%` truncate; ours is floor modulo. */
const floorModF32: Rule = rule('f32 floor mod', P(Op.MOD, X('x', isF32), X('y')), ({ x, y }, g) =>
  g.node(Op.SUB, 'f32', [
    x!,
    g.node(Op.MUL, 'f32', [g.node(Op.FLOOR, 'f32', [g.node(Op.DIV, 'f32', [x!, y!])]), y!]),
  ]),
);

const targetRules: Readonly<Record<Target, readonly Rule[]>> = {
  wgsl: [floorModF32],
  cuda: [floorModF32],
};

export function legalize(ir: AttentionIR, target: Target, diags: Diagnostic[]): AttentionIR {
  const s = ir.schedule;
  if (target === 'wgsl' && s?.dtype === 'bf16')
    diags.push(error('bf16 storage is not supported by WebGPU; use --dtype f16 or f32', noSpan));
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
