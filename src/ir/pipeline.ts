// The pass pipeline: a plain ordered list. Each pass is a pure function AttentionIR → AttentionIR.
import { kernelStages } from './stages.js';
import type { Diagnostic } from '../diagnostics.js';
import { analyzeTiles } from './passes/analyze-tiles.js';
import { fuse } from './passes/fuse.js';
import { residueClasses } from './passes/residue-classes.js';
import { neighbourhoodPatches } from './passes/neighbourhood.js';
import { legalize, type Target } from './passes/legalize.js';
import {
  chooseSchedule,
  scheduleIR,
  type ScheduleRequest,
  type ScheduleRules,
  type TargetLimits,
} from './passes/schedule.js';
import { simplifyExpr } from './passes/simplify.js';
import type { AttentionIR } from './program.js';

export interface PassContext {
  readonly target: Target;
  readonly limits: TargetLimits;
  readonly request: ScheduleRequest;
  /** The backend's schedule candidates and fit rule. */
  readonly schedule: ScheduleRules;
  readonly diagnostics: Diagnostic[];
}

export interface Pass {
  readonly name: string;
  readonly run: (ir: AttentionIR, ctx: PassContext) => AttentionIR;
}

export const passes: readonly Pass[] = [
  // 1. Fold constants and identities first, so interval analysis sees the smallest expressions
  //    (`q - q` is 0, `x && true` is x) and classifies more tiles exactly.
  {
    name: 'simplify',
    run: (ir) => ({ ...ir, mask: simplifyExpr(ir.graph, ir.mask), score: simplifyExpr(ir.graph, ir.score) }),
  },
  // 2. Classify tiles on the simplified, still target-neutral mask.
  { name: 'analyze-tiles', run: analyzeTiles },
  // 2b. Dilated masks: the residue-class decomposition (needs the simplified mask's conjuncts).
  { name: 'residue-classes', run: residueClasses },
  // 2c. 2-D neighbourhood masks: the patch layout (passes/neighbourhood.ts).
  { name: 'neighbourhood-patches', run: neighbourhoodPatches },
  // 3. Plan hoisting of row-invariant work into the fused kernel (needs the final expressions).
  { name: 'fuse', run: fuse },
  // 4. Pick tile sizes within the target's limits (independent of the expressions above).
  {
    name: 'schedule',
    run: (ir, ctx) => scheduleIR(ir, chooseSchedule(ctx.target, ctx.request, ctx.limits, ctx.schedule, ir)),
  },
  // 5. The stage list every backend renders (summaries, routing passes, attention), once, from
  //    the final summaries and routing plan (legalize changes neither), so backends do not
  //    re-derive what to launch.
  { name: 'stages', run: (ir) => ({ ...ir, stages: kernelStages(ir) }) },
  // 6. Target rewrites last, so generic simplification cannot undo them; named per target.
  { name: 'legalize', run: (ir, ctx) => legalize(ir, ctx.target, ctx.diagnostics) },
];

export const passNames = (target: Target): string[] => [
  'lower',
  ...passes.map((p) => (p.name === 'legalize' ? `legalize-${target}` : p.name)),
];

/** Runs the pipeline; `observe` sees the IR after each pass (for --dump-ir and verify in tests). */
export function runPipeline(
  ir: AttentionIR,
  ctx: PassContext,
  observe?: (passName: string, ir: AttentionIR) => void,
): AttentionIR {
  observe?.('lower', ir);
  let cur = ir;
  for (const p of passes) {
    cur = p.run(cur, ctx);
    observe?.(p.name === 'legalize' ? `legalize-${ctx.target}` : p.name, cur);
  }
  return cur;
}
