// The routing/selection stage of the CUDA SIMT backward (issue 14 item 2). The forward's `indices`
// output [B, G, Nq, K] comes back as a constant: the backward is the ordinary attention backward
// under the mask `static && selected(i, id(k))`, and the selection itself (pooling, ranking,
// voting) gets no gradient (docs/BACKWARD.md, "Routing and selection"). bwd_dq walks only the keys
// of its row's selected ids (sel_range). For bwd_dkdv, bwd_invert first inverts the selection into
// per-(b, g, id) lists of the query rows that selected the id, ascending (a stable counting sort
// into the `inverted` scratch), so a key's thread walks only its id's rows: both passes cost
// O(selected pairs), and every sum keeps a fixed order (the deterministic engine). id(p) and the
// row layout are the forward's own text (select-slots.ts sel_id / sel_range, select.ts sel_cap /
// sel_group), rendered over the backward's Args.
// `emit` kernels attend everything the static mask allows: their backward is the static one.
import type { AttentionKernel } from '../../ir/kernel.js';
import { attendsSelected } from '../../ir/routing.js';
import { selIndexRows } from './select.js';
import { selSlots } from './select-slots.js';

/** The routing additions to the backward's passes; undefined where the backward has none. */
export interface RoutingStage {
  /** Device code (after Args): ids of positions, the index rows, the inversion's helpers and bwd_invert. */
  readonly helpers: readonly string[];
  /** bwd_dkdv: the walk of key row j's thread over the rows that selected its id, running `pair` (over i, row0). */
  readonly keyWalk: (pair: readonly string[]) => string[];
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
    helpers: [...selIndexRows(kernel, layout), ...selSlots(kernel, layout), ...INVERTED, ...INVERT_KERNEL],
    keyWalk: (pair) => [
      "// The rows that selected this key's id, listed at the id's first key row in the call.",
      'int id_row = 0, id_end = 0;',
      'sel_range(a, sel_id(a, k), id_row, id_end);',
      'for (int g = 0; g < group; ++g) {',
      '  const int h = kvh * group + g;',
      '  const long long row0 = ((long long)b * a.H + h) * a.Nq;',
      '  const long long bg = (long long)b * sel_groups(a) + sel_group(a, h);',
      '  const int* off = bwd_inv_offsets(a, bg);',
      '  const int* rows = bwd_inv_rows(a, bg);',
      '  for (int t = off[id_row]; t < off[id_row + 1]; ++t) { // ascending rows: a fixed sum order',
      '    const int i = rows[t];',
      ...pair.map((l) => `    ${l}`),
      '  }',
      '}',
    ],
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

/**
 * The Args fields a stage reads: the forward's `indices` and the `inverted` scratch (ints, as
 * many as `<ns>_inverted` says: offsets [B, G, Nk + 1], then the row lists [B, G, Nq, K]).
 */
export const routingFields = (stage: RoutingStage | undefined): { name: string; ctype: string }[] =>
  stage
    ? [
        { name: 'indices', ctype: 'const int*' },
        { name: 'inverted', ctype: 'int*' },
      ]
    : [];

/** The extern "C" size function of the `inverted` scratch (ints), for the caller to allocate it. */
export const invertedSizeFn = (ns: string): string[] => [
  `extern "C" long long ${ns}_inverted(const ${ns}::Args* args) { return ${ns}::bwd_inv_ints(*args); }`,
];

/** The launch of bwd_invert (a thread per (b, g)), before bwd_dkdv. */
export const invertLaunch = [
  '  const long long lists = (long long)a->B * sel_groups(*a);',
  '  if (keys > 0 && lists > 0) bwd_invert<<<(unsigned)((lists + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);',
];

const INVERTED = [
  '// The inverted selection (`inverted`, ints): per (b, g), offsets [Nk + 1] then row lists [Nq, K].',
  '// The list of an id is kept at its first key row in the call (sel_range lo): ids with no key here',
  '// have none, and no id count is needed beyond Nk.',
  '__host__ __device__ __forceinline__ long long bwd_inv_ints(const Args& a) {',
  '  return (long long)a.B * sel_groups(a) * ((long long)a.Nk + 1 + (long long)a.Nq * sel_cap(a));',
  '}',
  '__device__ __forceinline__ int* bwd_inv_offsets(const Args& a, const long long bg) {',
  '  return a.inverted + bg * (a.Nk + 1);',
  '}',
  '__device__ __forceinline__ int* bwd_inv_rows(const Args& a, const long long bg) {',
  '  return a.inverted + (long long)a.B * sel_groups(a) * (a.Nk + 1) + bg * a.Nq * sel_cap(a);',
  '}',
  "// Entry e of a group's indices: whether it names an id with keys in this call (not −1, not a",
  "// repeat of the previous entry of its row), and that id's first key row.",
  '__device__ __forceinline__ bool bwd_inv_entry(const Args& a, const int* sel, const long long e, const int cap, int& lo) {',
  '  const int id = sel[e];',
  '  if (id < 0 || (e % cap != 0 && sel[e - 1] == id)) return false;',
  '  int hi = 0;',
  '  sel_range(a, id, lo, hi);',
  '  return lo < hi;',
  '}',
];

const INVERT_KERNEL = [
  "// A thread per (b, g): a stable counting sort of the group's (row, id) entries by id — counts,",
  '// exclusive prefix sum, then a fill over the rows in order, so every list ascends.',
  '__global__ void __launch_bounds__(THREADS) bwd_invert(const Args a) {',
  '  const long long bg = (long long)blockIdx.x * THREADS + threadIdx.x;',
  '  if (bg >= (long long)a.B * sel_groups(a)) return;',
  '  const int cap = sel_cap(a);',
  '  const long long entries = (long long)a.Nq * cap;',
  '  const int* sel = a.indices + bg * entries;',
  '  int* off = bwd_inv_offsets(a, bg);',
  '  int* rows = bwd_inv_rows(a, bg);',
  '  int lo = 0;',
  '  for (int j = 0; j <= a.Nk; ++j) off[j] = 0;',
  '  for (long long e = 0; e < entries; ++e)',
  '    if (bwd_inv_entry(a, sel, e, cap, lo)) ++off[lo + 1];',
  '  for (int j = 0; j < a.Nk; ++j) off[j + 1] += off[j];',
  "  // The fill advances off[lo] to the next list's start; shifting by one restores the starts.",
  '  for (long long e = 0; e < entries; ++e)',
  '    if (bwd_inv_entry(a, sel, e, cap, lo)) rows[off[lo]++] = (int)(e / cap);',
  '  for (int j = a.Nk; j > 0; --j) off[j] = off[j - 1];',
  '  off[0] = 0;',
  '}',
];
