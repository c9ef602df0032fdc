// The routing/selection stage of the CUDA SIMT backward (issue 14 item 2). The forward's `indices`
// output [B, G, Nq, K] comes back as a constant: the backward is the ordinary attention backward
// under the mask `static && selected(i, id(k))`, and the selection itself (pooling, ranking,
// voting) gets no gradient (docs/BACKWARD.md, "Routing and selection"). bwd_dq walks only the keys
// of its row's selected ids (sel_range); bwd_dkdv, a thread per key, tests every query row of its
// group: id(k) is found in row i's ascending, −1 padded list by a binary search, so its cost is
// O(Nq·Nk·log K) — correctness first. id(p) and the row layout are the forward's own text
// (select-slots.ts sel_id, select.ts sel_cap / sel_group), rendered over the backward's Args.
// `emit` kernels attend everything the static mask allows: their backward is the static one.
import type { AttentionKernel } from '../../ir/kernel.js';
import { attendsSelected } from '../../ir/routing.js';
import { selIndexRows } from './select.js';
import { selSlots } from './select-slots.js';

/** The membership test a backward pass adds to each pair; undefined where the pass needs none. */
export interface RoutingStage {
  /** Device helpers (after Args): ids of positions, the index rows, `bwd_selected`. */
  readonly helpers: readonly string[];
  /** bwd_dkdv: `continue`s a pair whose key id `keyId` (C text) row i of head h did not select. */
  readonly test: (keyId: string) => string;
  /** bwd_dq: row i's walk over the keys of its selected ids only, ascending, running `pair` (over j). */
  readonly rowWalk: (pair: readonly string[]) => string[];
}

/** The routing stage of `kernel`'s backward, or undefined (no routing, or `emit`). */
export function routingStage(
  kernel: AttentionKernel,
  field: (key: string) => string,
): RoutingStage | undefined {
  const r = kernel.routing;
  if (!r || !attendsSelected(r)) return undefined;
  const layout = { field };
  return {
    helpers: [...selIndexRows(kernel, layout), ...selSlots(kernel, layout), ...SELECTED_FN],
    test: (keyId) => `if (!bwd_selected(a, b, h, i, ${keyId})) continue; // not in the row's selection`,
    rowWalk: (pair) => [
      'if (lse != -INFINITY) {',
      "  // The keys of the row's selected ids, ascending (ids ascend, and so do their key ranges).",
      '  const int cap = sel_cap(a);',
      '  const int* sel = a.indices + ((long long)(b * sel_groups(a) + sel_group(a, h)) * a.Nq + i) * cap;',
      '  for (int s = 0; s < cap; ++s) {',
      '    const int id = sel[s];',
      '    if (id < 0) continue; // -1 padding',
      '    int lo = 0, hi = 0;',
      '    sel_range(a, id, lo, hi);',
      '    for (int j = lo; j < hi; ++j) {',
      ...pair.map((l) => `      ${l}`),
      '    }',
      '  }',
      '}',
    ],
  };
}

/** The `indices` field of the backward's Args (the forward's output), where a stage reads it. */
export const routingFields = (stage: RoutingStage | undefined): { name: string; ctype: string }[] =>
  stage ? [{ name: 'indices', ctype: 'const int*' }] : [];

const SELECTED_FN = [
  "// Whether id is in query row i's selection for head h: its row of indices is ascending with -1",
  '// padding at the end (read as +infinity), so a lower-bound binary search finds it.',
  '__device__ __forceinline__ bool bwd_selected(const Args& a, const int b, const int h, const int i, const int id) {',
  '  const int cap = sel_cap(a);',
  '  if (id < 0 || cap <= 0) return false;',
  '  const int* row = a.indices + ((long long)(b * sel_groups(a) + sel_group(a, h)) * a.Nq + i) * cap;',
  '  int lo = 0, hi = cap;',
  '  while (lo < hi) {',
  '    const int m = (lo + hi) >> 1, v = row[m];',
  '    if (v >= 0 && v < id) lo = m + 1;',
  '    else hi = m;',
  '  }',
  '  return lo < cap && row[lo] == id;',
  '}',
];
