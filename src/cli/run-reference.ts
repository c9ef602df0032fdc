// `attnc run`'s reference side: the dense float64 attention of the run's inputs (through the
// routing oracle when the program routes), and the kernel's index and importance outputs judged
// against it.
import type { AttentionDecl } from '../dsl/ast.js';
import type { ImportanceMode } from '../ir/kernel.js';
import { declPredicates, declRouting, type EvalEnv } from '../runtime/ast-eval.js';
import { compareArrays, type Agreement } from '../runtime/compare.js';
import { referenceImportance } from '../runtime/importance-ref.js';
import { referenceAttention, type RefInputs, type RefResult } from '../runtime/reference.js';
import { checkSelection, referenceRouting, type RoutingResult } from '../runtime/reference-routing.js';
import type { RoutingReport } from './run-report.js';

/**
 * The reference of the run; for a routing program the oracle's selection too, and how the kernel's
 * `indices` compare with it.
 */
export function runReference(
  decl: AttentionDecl,
  env: EvalEnv,
  inp: RefInputs,
  indices: Int32Array | undefined,
): { readonly ref: RefResult; readonly routing: RoutingReport | undefined } {
  const pred = declPredicates(decl, env);
  const spec = declRouting(decl, env);
  if (spec === undefined) return { ref: referenceAttention(inp, pred), routing: undefined };
  const oracle = referenceRouting(inp, spec, pred.mask);
  const verdict = judgeIndices(oracle, indices);
  // At an f32 near-tie the kernel may keep another valid top-k: compare attention on its own.
  const mask =
    verdict === 'near-tie' && indices
      ? referenceRouting(inp, { ...spec, source: fromIndices(indices, oracle) }, pred.mask).mask
      : oracle.mask;
  const ref = referenceAttention(inp, { mask, score: pred.score });
  const unit = spec.unit.kind === 'blocks' ? 'block' : spec.unit.kind === 'chunks' ? 'chunk' : 'key';
  return {
    ref,
    routing: { unit, blockDensity: oracle.density, pairDensity: oracle.pairDensity, indices: verdict },
  };
}

const fromIndices = (indices: Int32Array, r: RoutingResult) =>
  ({ kind: 'from', indices, groups: r.G, capacity: r.K }) as const;

/** The kernel's index output against the oracle's (DESIGN §2: near-ties may differ validly). */
function judgeIndices(r: RoutingResult, got: Int32Array | undefined): RoutingReport['indices'] {
  if (!got) return 'the kernel wrote no indices';
  if (got.length !== r.indices.length) return `${got.length} indices, expected ${r.indices.length}`;
  if (got.every((x, i) => x === r.indices[i])) return 'exact';
  for (let b = 0; b < r.B; b++)
    for (let g = 0; g < r.G; g++)
      for (let i = 0; i < r.Nq; i++) {
        const at = ((b * r.G + g) * r.Nq + i) * r.K;
        const why = checkSelection(r, b, g, i, got.subarray(at, at + r.K), 1e-4);
        if (why) return `row (b ${b}, group ${g}, query ${i}): ${why}`;
      }
  return 'near-tie';
}

/** The kernel's importance output against the reference's (a missing output never agrees). */
export function importanceAgreement(
  got: Float32Array | undefined,
  ref: RefResult,
  o: { readonly B: number; readonly H: number; readonly Nq: number; readonly Nk: number },
  mode: ImportanceMode,
): Agreement {
  if (!got) return { maxAbsError: Infinity, relError: Infinity, nanCount: 0 };
  return compareArrays(got, referenceImportance(ref, { B: o.B, Hq: o.H, Nq: o.Nq, Nk: o.Nk }, mode));
}
