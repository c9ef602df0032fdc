// Shared by the backward tests: a random program lowered and differentiated by the compiler, and
// the same program's float64 gradient reference (reference-grad-ast.ts + reference-grad.ts).
import { checkSource } from '../../src/compile.js';
import type { AttentionDecl } from '../../src/dsl/ast.js';
import { printDecl } from '../../src/dsl/print.js';
import { deriveScore, type ScoreGradient } from '../../src/ir/derive.js';
import type { Node } from '../../src/ir/graph.js';
import type { ParamSlot } from '../../src/ir/kernel.js';
import { lowerDecl } from '../../src/ir/lower.js';
import { simplifyExpr } from '../../src/ir/passes/simplify.js';
import { declPredicates, type EvalEnv } from '../../src/runtime/ast-eval.js';
import { declScoreDual } from '../../src/runtime/reference-grad-ast.js';
import type { GradPredicates } from '../../src/runtime/reference-grad.js';
import type { Inputs, Shape } from '../support/arbitraries.js';

export interface Derived {
  readonly source: string;
  readonly decl: AttentionDecl;
  readonly defaults: Record<string, number | boolean>;
  readonly score: Node;
  readonly params: readonly ParamSlot[];
  readonly grad: ScoreGradient;
}

/** The program printed, parsed, lowered, simplified and differentiated. */
export function derived(decl: AttentionDecl): Derived {
  const source = printDecl(decl);
  const checked = checkSource(source, 'prop.attn').decl;
  const ir = lowerDecl(checked.decl, checked.defaults);
  const score = simplifyExpr(ir.graph, ir.score);
  return {
    source,
    decl: checked.decl,
    defaults: Object.fromEntries(checked.defaults),
    score,
    params: ir.params,
    grad: deriveScore(ir.graph, score, ir.params),
  };
}

/** The env the reference evaluators read: params (defaults overridden), tensors and sizes. */
export function evalEnv(
  decl: AttentionDecl,
  params: Record<string, number | boolean>,
  shape: Shape,
  inputs: Inputs,
): EvalEnv {
  const tensors: EvalEnv['tensors'] = {};
  for (const p of decl.params)
    if (p.type.kind === 'tensor') {
      const t = inputs.tensors[p.name as keyof Inputs['tensors']];
      tensors[p.name] = { data: t.data, shape: t.shape };
    }
  const { B, Hq: H, Hkv, Nq, Nk, D } = shape;
  return { params, tensors, sizes: { B, H, Hkv, Nq, Nk, D } };
}

/** The gradient reference's predicates for `decl`: the AST evaluator's mask, the dual score. */
export function gradPredicates(decl: AttentionDecl, env: EvalEnv): GradPredicates {
  const hasScore = decl.body.some((s) => s.kind === 'score');
  return {
    mask: declPredicates(decl, env).mask,
    ...(hasScore ? { score: declScoreDual(decl, env) } : {}),
  };
}

/** Flat lengths of the f32 tensors a decl declares (their gradients' sizes). */
export function f32TensorLengths(decl: AttentionDecl, env: EvalEnv): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of decl.params)
    if (p.type.kind === 'tensor' && p.type.elem === 'f32') out[p.name] = env.tensors[p.name]!.data.length;
  return out;
}

/**
 * A random ∂L/∂lse [B, Hq, Nq] in [-1, 1) drawn from `r` when `asked` (a gradient flowing into
 * lse too), else undefined: the backward's dlse stays null.
 */
export function drawDlse(
  asked: boolean | undefined,
  sh: Pick<Shape, 'B' | 'Hq' | 'Nq'>,
  r: () => number,
): Float32Array | undefined {
  return asked ? Float32Array.from({ length: sh.B * sh.Hq * sh.Nq }, () => r() * 2 - 1) : undefined;
}
