// `route_sort`: the last routing pass of token selection and of `… from t`, one workgroup per
// (query row, selection group, batch). It gathers the row's ids into workgroup memory — the
// ranked ids sel_write appended in any order, or the row of the index tensor `t` — plus the
// forced ids that are candidates (`from` only: token selection appended its own), sorts them
// ascending as u32 (bitonic, padded to a power of two with ROUTE_END, above every id: I32_MAX
// is the id of a key at 2^31 - 1), and writes them back to
// `indices` without duplicates, negative padding or ids with no key in the call, padded with −1.
// The attention walks that ascending row as its keys ascend. At most SORT_MAX ids per row
// (runtime/validate.ts rejects larger capacities with the `indices` buffer's name).
import { routingFrom, routingGroups, type RoutingPlan } from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import type { ClassMode } from './attention.js';
import { tensorVar } from './rules.js';

/** Ids one row may hold (k + first + local): 16 KiB of workgroup memory, WebGPU's minimum. */
export const SORT_MAX = 4096;
const THREADS = 256;

function candidate(r: RoutingPlan, mode: ClassMode): string[] {
  switch (r.unit.kind) {
    case 'chunks':
      return [
        '  let j0 = sort_chunk_start(id);',
        '  // Chunk I32_MAX ends at Nk: id + 1 would wrap to I32_MIN, and the chunk look empty.',
        '  let j1 = select(sort_chunk_start(id + 1i), u.Nk, id == I32_MAX);',
        '  return route_candidate_keys(b, h, q, q, u.k_offset + j0, u.k_offset + j1 - 1i);',
      ];
    case 'blocks':
      return ['  return route_candidate(b, h, q, q, id);'];
    case 'tokens': {
      const allowed = mode === 'full' ? 'true' : mode === 'empty' ? 'false' : 'route_mask(b, h, q, id)';
      // id - k_offset, not k_offset + Nk: that is 2^31 when the keys end at I32_MAX.
      return ['  if (id < u.k_offset || id - u.k_offset >= u.Nk) { return false; }', `  return ${allowed};`];
    }
  }
}

function present(r: RoutingPlan): string[] {
  switch (r.unit.kind) {
    case 'chunks':
      return ['  let j = sort_chunk_start(id);', '  return j < u.Nk && route_id(u.k_offset + j) == id;'];
    case 'tokens':
      return ['  return id >= u.k_offset && id - u.k_offset < u.Nk;'];
    case 'blocks':
      return [
        '  if (u.Nk <= 0i) { return false; }',
        '  return id >= route_floor_div(u.k_offset, ROUTE_BLOCK) &&',
        '    id <= route_floor_div(u.k_offset + u.Nk - 1i, ROUTE_BLOCK);',
      ];
  }
}

/** The row's i-th unsorted id as u32 (ROUTE_END: nothing). */
function gather(r: RoutingPlan): string[] {
  const from = routingFrom(r);
  if (!from) {
    return [
      'fn sort_gather(b: i32, g: i32, row: i32, i: u32, base: u32, cap: u32) -> u32 {',
      '  let n = min(atomicLoad(&route_state[sel_row(b, g, row) + 5u]), cap);',
      '  return select(ROUTE_END, u32(route_indices[base + i]), i < n);',
      '}',
    ];
  }
  const G = { H: 'u32(u.H)', Hkv: 'u32(u.Hkv)', '1': '1u' }[from.groups];
  return [
    'fn sort_gather(b: i32, g: i32, row: i32, i: u32, base: u32, cap: u32) -> u32 {',
    '  let c = route_counts();',
    '  let from_cap = cap - u32(c.y + c.z);',
    '  if (i < from_cap) {',
    `    let x = ${tensorVar(from.tensor)}[((u32(b) * ${G} + u32(g)) * u32(u.Nq) + u32(row)) * from_cap + i];`,
    '    return select(u32(x), ROUTE_END, x < 0i);',
    '  }',
    "  // Forced ids: first(c.y), then local(c.z) ending at the row's own id.",
    '  let q = row + u.q_offset;',
    '  let own = route_id(q);',
    '  let e = i32(i - from_cap);',
    '  let id = select(own - c.z + 1i + (e - c.y), e, e < c.y);',
    '  if (id < 0i) { return ROUTE_END; }',
    '  let hs = sort_heads(g);',
    '  for (var h = hs.x; h < hs.y; h++) {',
    '    if (sort_candidate(b, h, q, id)) { return u32(id); }',
    '  }',
    '  return ROUTE_END;',
    '}',
  ];
}

/** sort_chunk_start: the first key row of a chunk id, by binary search (chunk ids ascend). */
const chunkStartFn = [
  '// The first key row whose chunk id is >= id (Nk if none).',
  'fn sort_chunk_start(id: i32) -> i32 {',
  '  var lo = 0i;',
  '  var hi = u.Nk;',
  '  while (lo < hi) {',
  '    let mid = lo + (hi - lo) / 2i;',
  '    if (route_id(u.k_offset + mid) < id) { lo = mid + 1i; } else { hi = mid; }',
  '  }',
  '  return lo;',
  '}',
];

/** The workgroup's bitonic sort of sort_buf[0, n2), ascending. */
const bitonicSort = [
  '  // Bitonic sort, ascending.',
  '  for (var k = 2u; k <= n2; k <<= 1u) {',
  '    for (var j = k >> 1u; j > 0u; j >>= 1u) {',
  `      for (var i = lid; i < n2; i += ${THREADS}u) {`,
  '        let l = i ^ j;',
  '        if (l > i) {',
  '          let x = sort_buf[i];',
  '          let y = sort_buf[l];',
  '          if ((x > y) == ((i & k) == 0u)) {',
  '            sort_buf[i] = y;',
  '            sort_buf[l] = x;',
  '          }',
  '        }',
  '      }',
  '      workgroupBarrier();',
  '    }',
  '  }',
];

/** Invocation 0 writes the sorted ids without duplicates and absent ids, then -1 padding. */
const dedupAndPad = [
  '  // Without duplicates and ids with no key in the call; then -1 padding.',
  '  var n = 0u;',
  '  var prev = ROUTE_END;',
  '  for (var i = 0u; i < n2; i++) {',
  '    let x = sort_buf[i];',
  '    if (x == ROUTE_END) { break; }',
  '    if (x == prev || !sort_present(i32(x))) { continue; }',
  '    prev = x;',
  '    route_indices[base + n] = i32(x);',
  '    n++;',
  '  }',
  '  for (var i = n; i < cap; i++) { route_indices[base + i] = -1i; }',
];

export function sortSource(r: RoutingPlan, mode: ClassMode): string {
  const heads = {
    H: 'vec2<i32>(g, g + 1i)',
    Hkv: 'vec2<i32>(g * (u.H / u.Hkv), (g + 1i) * (u.H / u.Hkv))',
    '1': 'vec2<i32>(0i, u.H)',
  }[routingGroups(r)];
  return [
    // Chunk ids ascend with the position: a chunk's keys are found by binary search.
    ...(r.unit.kind === 'chunks' ? [...chunkStartFn, ''] : []),
    '// The query heads [x, y) of selection group g.',
    `fn sort_heads(g: i32) -> vec2<i32> { return ${heads}; }`,
    '',
    '// Whether id is a candidate of query position q for head h (some allowed pair).',
    'fn sort_candidate(b: i32, h: i32, q: i32, id: i32) -> bool {',
    ...candidate(r, mode),
    '}',
    '',
    '// Whether id has a key in the call.',
    'fn sort_present(id: i32) -> bool {',
    ...present(r),
    '}',
    '',
    ...gather(r),
    '',
    `var<workgroup> sort_buf: array<u32, ${SORT_MAX}>;`,
    '',
    `@compute @workgroup_size(${THREADS})`,
    'fn route_sort(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let row = i32(wg.x);',
    '  let g = i32(wg.y);',
    '  let b = i32(wg.z);',
    '  let cap = route_cap();',
    '  var n2 = 1u;',
    `  while (n2 < cap && n2 < ${SORT_MAX}u) { n2 <<= 1u; }`,
    '  let base = ((u32(b) * route_groups() + u32(g)) * u32(u.Nq) + u32(row)) * cap;',
    `  for (var i = lid; i < n2; i += ${THREADS}u) {`,
    '    sort_buf[i] = select(ROUTE_END, sort_gather(b, g, row, i, base, cap), i < cap);',
    '  }',
    '  workgroupBarrier();',
    ...bitonicSort,
    '  if (lid != 0u) { return; }',
    ...dedupAndPad,
    '}',
  ].join('\n');
}

export function sortEntry(r: RoutingPlan, reads: readonly string[]): EntryPoint {
  return {
    name: 'route_sort',
    role: 'routing',
    workgroupSize: [THREADS, 1, 1],
    grid: ['Nq', routingGroups(r), 'B'],
    bindings: [
      ...(r.source.kind === 'from' ? [r.source.tensor] : ['route_state']),
      ...reads,
      'indices',
      'uniforms',
    ],
  };
}
