// The position and scale checks of validate.ts: qOffset / kOffset (defaults, range, the span they
// make), what routing asks of them (key positions >= 0, sortable index rows, chunk ids covering
// the call), and the score scale.
import type { Artifact } from '../codegen/artifact.js';
import { describeValue, isI32, offsetProblems } from './params.js';
import type { UserTensors } from './validate-bindings.js';
import type { RunInputs } from './validate.js';

/** codegen/wgsl/routing-sort.ts SORT_MAX (not imported: the runtime stays free of codegen code). */
const ROUTE_SORT_MAX = 4096;

/** The call's query and key offsets (defaults: queries end at the last key, keys start at 0), checked. */
export function checkPositions(
  artifact: Artifact,
  inputs: RunInputs,
  tensors: UserTensors,
  shapes: ReadonlyMap<string, readonly number[]>,
  issues: string[],
): { qOffset: number; kOffset: number } {
  // Only undefined means "the default": a null is a value, and refused like any other non-integer.
  const qOffset = inputs.qOffset === undefined ? inputs.Nk - inputs.Nq : inputs.qOffset;
  const kOffset = inputs.kOffset === undefined ? 0 : inputs.kOffset;
  issues.push(...offsetProblems(qOffset, inputs.Nq, kOffset, inputs.Nk));
  // Routed ids are absolute block ids and −1 pads an index row: key positions must be >= 0.
  if (artifact.bindings.some((b) => b.role === 'indices') && kOffset < 0)
    issues.push(`kOffset: routing needs key positions >= 0, got ${kOffset}`);
  // Token selection and `from` sort each index row in workgroup memory (codegen/wgsl/routing-sort.ts).
  const sortCap = artifact.entryPoints.some((e) => e.name === 'route_sort')
    ? shapes.get('indices')?.[3]
    : undefined;
  if (sortCap !== undefined && sortCap > ROUTE_SORT_MAX)
    issues.push(
      `buffer "indices": ${sortCap} ids per row (k + first + local); WGSL selection sorts at most ${ROUTE_SORT_MAX}`,
    );
  const chunkTensor = artifact.entryPoints.find((e) => e.role === 'routing' && e.tensor)?.tensor;
  if (chunkTensor !== undefined && isI32(qOffset) && isI32(kOffset))
    issues.push(...checkChunkIds(chunkTensor, tensors[chunkTensor], inputs, qOffset, kOffset));
  return { qOffset, kOffset };
}

/** The score scale (default 1/√D), f32-rounded; an issue unless finite. */
export function checkScale(given: unknown, D: number, issues: string[]): number {
  const rawScale: unknown = given === undefined ? 1 / Math.sqrt(D) : given;
  const scale = typeof rawScale === 'number' ? Math.fround(rawScale) : NaN;
  if (!Number.isFinite(scale))
    issues.push(`scale: expected a finite number within f32 range, got ${describeValue(given)}`);
  return scale;
}

/**
 * `route chunks(t)`: t holds the chunk id of each position, so it must be ≥ 0, non-decreasing,
 * and cover every query and key position of the call (docs/LANGUAGE.md, Ids).
 */
function checkChunkIds(
  name: string,
  t: Int32Array | Float32Array | undefined,
  inputs: RunInputs,
  qOffset: number,
  kOffset: number,
): string[] {
  if (!(t instanceof Int32Array)) return []; // validate-bindings.ts's checks (run first) report it
  const out: string[] = [];
  const hi = Math.max(qOffset + inputs.Nq, kOffset + inputs.Nk);
  const lo = Math.min(inputs.Nq > 0 ? qOffset : 0, inputs.Nk > 0 ? kOffset : 0);
  if (lo < 0 || hi > t.length)
    out.push(
      `tensor "${name}": chunk ids cover positions [0, ${t.length}), but the call has query positions ` +
        `[${qOffset}, ${qOffset + inputs.Nq}) and key positions [${kOffset}, ${kOffset + inputs.Nk})`,
    );
  for (let p = 0; p < t.length; p++) {
    const id = t[p]!;
    if (id < 0) {
      out.push(`tensor "${name}": chunk id ${id} at position ${p} is negative`);
      break;
    }
    if (p > 0 && id < t[p - 1]!) {
      out.push(
        `tensor "${name}": chunk ids must be non-decreasing, but ${t[p - 1]} at ${p - 1} > ${id} at ${p}`,
      );
      break;
    }
  }
  return out;
}
