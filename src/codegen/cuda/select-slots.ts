// The slot helpers of CUDA selection (select.ts): the id of a position, where slots (and query
// units) start and end, and the key rows of an id in this call.
import type { AttentionKernel } from '../../ir/kernel.js';
import { pooledSides, type RoutingUnit } from '../../ir/routing.js';
import type { CudaLayout } from './layout.js';
import { dimText } from './rules.js';

/** The body of `sel_id(a, p)`: the id of position p for the plan's unit. */
function selIdOf(k: AttentionKernel, unit: RoutingUnit, layout: Pick<CudaLayout, 'field'>): string[] {
  switch (unit.kind) {
    case 'tokens':
      return ['  return p;'];
    case 'blocks':
      return [`  const int t = p / ${unit.size};`, `  return (t * ${unit.size} != p && p < 0) ? t - 1 : t;`];
    case 'chunks': {
      const chunkLen = dimText(k.tensors.find((t) => t.name === unit.tensor)!.dims[0]!, layout.field);
      return [
        `  // Chunk id of position p (the launcher checks the call's positions lie in [0, ${chunkLen})).`,
        `  const int n = ${chunkLen};`,
        `  return n > 0 ? __ldg(a.${layout.field(`tensor:${unit.tensor}`)} + min(max(p, 0), n - 1)) : 0;`,
      ];
    }
  }
}

/** `sel_id`, `sel_starts` / `sel_end`, the query units' `sel_unit_starts` / `sel_unit_end`, `sel_range`. */
export function selSlots(k: AttentionKernel, layout: Pick<CudaLayout, 'field'>): string[] {
  const unit = k.routing!.unit;
  const pooled = pooledSides(k.routing!);
  const idOf = selIdOf(k, unit, layout);
  return [
    '',
    '// The id of position p.',
    '__device__ __forceinline__ int sel_id(const Args& a, const int p) {',
    ...(unit.kind === 'chunks' ? [] : ['  (void)a;']),
    ...idOf,
    '}',
    '// Whether row i of a side (positions off + i) starts a slot, and the end of the slot it starts.',
    '__device__ __forceinline__ bool sel_starts(const Args& a, const int off, const int i) {',
    `  return ${unit.kind === 'tokens' ? '(void)a, (void)off, (void)i, true' : 'i == 0 || sel_id(a, off + i) != sel_id(a, off + i - 1)'};`,
    '}',
    '__device__ __forceinline__ int sel_end(const Args& a, const int off, const int N, const int i) {',
    unit.kind === 'tokens' ? '  (void)a; (void)off; (void)N;' : '',
    unit.kind === 'tokens'
      ? '  return i + 1;'
      : '  const int id = sel_id(a, off + i);\n  int e = i + 1;\n  while (e < N && sel_id(a, off + e) == id) ++e;\n  return e;',
    '}',
    '// Query units: the rows of a slot for a pooled query side, else each row alone.',
    '__device__ __forceinline__ bool sel_unit_starts(const Args& a, const int i) {',
    `  return ${pooled.q ? 'sel_starts(a, a.q_offset, i)' : '(void)a, (void)i, true'};`,
    '}',
    '__device__ __forceinline__ int sel_unit_end(const Args& a, const int i) {',
    `  return ${pooled.q ? 'sel_end(a, a.q_offset, a.Nq, i)' : '(void)a, i + 1'};`,
    '}',
    '// Key rows [lo, hi) of id in this call (empty when no key of the call has it).',
    '__device__ __forceinline__ void sel_range(const Args& a, const int id, int& lo, int& hi) {',
    ...(unit.kind === 'tokens'
      ? ['  lo = id - a.k_offset;', '  hi = (lo >= 0 && lo < a.Nk) ? lo + 1 : lo;']
      : unit.kind === 'blocks'
        ? [
            `  const long long p0 = (long long)id * ${unit.size}, p1 = p0 + ${unit.size};`,
            '  lo = (int)max(0LL, min((long long)a.Nk, p0 - a.k_offset));',
            '  hi = (int)max((long long)lo, min((long long)a.Nk, p1 - a.k_offset));',
          ]
        : [
            '  // Binary searches: the chunk ids of the keys are non-decreasing.',
            '  int x = 0, y = a.Nk;',
            '  while (x < y) { const int m = (x + y) >> 1; if (sel_id(a, a.k_offset + m) < id) x = m + 1; else y = m; }',
            '  lo = x; y = a.Nk;',
            '  while (x < y) { const int m = (x + y) >> 1; if (sel_id(a, a.k_offset + m) <= id) x = m + 1; else y = m; }',
            '  hi = x;',
          ]),
    '}',
  ];
}
