// Token-level selection on WGSL (`select topk(k) by q . k [vote …] [force …]` and the unit-less
// `emit`): an id is a key position, and every query row ranks up to Nk keys, so the ranking is
// spread over the keys instead of one invocation per row walking them all. Entry points, in
// launch order (grid y = query row, z = batch × selection group unless said otherwise):
//   sel_init      one invocation per row: clears its state and histogram;
//   sel_vote_max  (vote) per (key span, row, batch × head): atomicMax of each voter's affinity
//                 over its candidate keys (order-preserving u32 bits);
//   sel_vote_sum  (vote) the same grid: Σ exp(affinity − max) as 32.32 fixed point in two u32
//                 atomics, so the sum does not depend on the order invocations add in;
//   sel_hist ×8   radix select of the k-th best 64-bit key (metric bits, then the inverted key
//                 position, so ties go to the lower position): each round histograms the next
//                 8 bits of the candidates that match the prefix so far;
//   sel_pick ×8   one invocation per row picks the round's digit from the histogram; a row is
//                 done as soon as the picked bin is taken whole (usually after round 4);
//   sel_write     per key span: appends the forced candidates and the ranked keys at or above
//                 the threshold to the row of `indices` (atomic counter, any order);
//   route_sort    (routing-sort.ts) one workgroup per row sorts it ascending and pads with -1.
// Memory: a few words and a 256-bin histogram per row (+3 words per row and head with vote),
// never a score per (row, key): O(Nq·(k + 256)) in all.
import type { TensorFormats } from '../../ir/formats.js';
import { routingGroups, routingVote, type RoutingPlan } from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import type { ClassMode } from './attention.js';
import { BINS, ROW_WORDS, SPAN, selectHelpers } from './routing-select-helpers.js';

const THREADS = 64;

/** u32 words of the `route_state` scratch buffer, as a shape expression. */
export function selectStateShape(r: RoutingPlan): string {
  const rows = `B * ${routingGroups(r)} * Nq`;
  return `${rows} * ${ROW_WORDS + BINS}${routingVote(r) ? ' + B * H * Nq * 3' : ''}`;
}

/** Header of the per-key-span passes: b, g (or h), row and this invocation's key span. */
function spanHead(name: string, over: 'groups' | 'heads'): string[] {
  return [
    `@compute @workgroup_size(${THREADS})`,
    `fn ${name}(@builtin(global_invocation_id) gid: vec3<u32>) {`,
    '  let row = i32(gid.y);',
    over === 'groups'
      ? '  let b = i32(gid.z) / sel_groups();\n  let g = i32(gid.z) % sel_groups();'
      : '  let b = i32(gid.z) / u.H;\n  let h = i32(gid.z) % u.H;',
    '  let j0 = i32(gid.x * SEL_SPAN);',
    '  let j1 = min(j0 + i32(SEL_SPAN), u.Nk);',
    '  let q = row + u.q_offset;',
  ];
}

/** sel_init: one invocation per row clears its state and histogram (and the voters' statistics). */
function initEntry(r: RoutingPlan): string[] {
  return [
    '@compute @workgroup_size(64)',
    'fn sel_init(@builtin(global_invocation_id) gid: vec3<u32>) {',
    '  let rows = u32(u.B) * u32(sel_groups()) * u32(u.Nq);',
    '  let r = gid.x;',
    ...(routingVote(r)
      ? [
          "  // Voters' statistics: one triple per (b, h, row).",
          '  let vrows = u32(u.B) * u32(u.H) * u32(u.Nq);',
          '  let v0 = rows * (SEL_ROW_WORDS + SEL_BINS);',
          '  for (var i = r; i < vrows; i += rows) {',
          '    for (var w = 0u; w < 3u; w++) { atomicStore(&route_state[v0 + i * 3u + w], 0u); }',
          '  }',
        ]
      : []),
    '  if (r >= rows) { return; }',
    '  let at = r * SEL_ROW_WORDS;',
    '  for (var w = 0u; w < SEL_ROW_WORDS; w++) { atomicStore(&route_state[at + w], 0u); }',
    '  atomicStore(&route_state[at + 3u], u32(route_counts().x)); // remaining',
    '  let hb = sel_hist_at(at);',
    '  for (var i = 0u; i < SEL_BINS; i++) { atomicStore(&route_state[hb + i], 0u); }',
    '}',
  ];
}

/** sel_vote_max and sel_vote_sum: the voters' max affinity, then their sum of exp(affinity - max). */
const voteEntries = [
  ...spanHead('sel_vote_max', 'heads'),
  '  let at = sel_vote_at(b, h, row);',
  '  for (var j = j0; j < j1; j++) {',
  '    if (sel_allowed(b, h, q, j + u.k_offset)) { atomicMax(&route_state[at], sel_key(sel_aff(b, h, row, j))); }',
  '  }',
  '}',
  '',
  ...spanHead('sel_vote_sum', 'heads'),
  '  let at = sel_vote_at(b, h, row);',
  '  let mb = atomicLoad(&route_state[at]);',
  '  if (mb <= SEL_NEG_INF_KEY) { return; }',
  '  let m = sel_unkey(mb);',
  '  for (var j = j0; j < j1; j++) {',
  '    if (!sel_allowed(b, h, q, j + u.k_offset)) { continue; }',
  '    // 32.32 fixed point: integer adds commute, so the sum is deterministic.',
  '    let t = exp(sel_aff(b, h, row, j) - m);',
  '    let whole = u32(floor(t));',
  '    let frac = u32((t - floor(t)) * 4294967296.0f);',
  '    let old = atomicAdd(&route_state[at + 1u], frac);',
  '    let carry = select(0u, 1u, old + frac < old);',
  '    if (whole + carry != 0u) { atomicAdd(&route_state[at + 2u], whole + carry); }',
  '  }',
  '}',
];

/** sel_hist: one radix round's histogram. */
const histEntry = [
  '// One radix round: histogram the next 8 bits of the candidates matching the prefix.',
  ...spanHead('sel_hist', 'groups'),
  '  let at = sel_row(b, g, row);',
  '  if (atomicLoad(&route_state[at + 4u]) != 0u) { return; } // the row is decided',
  '  let round = atomicLoad(&route_state[at + 2u]);',
  '  let ph = atomicLoad(&route_state[at]);',
  '  let pl = atomicLoad(&route_state[at + 1u]);',
  '  let c = route_counts();',
  '  let hb = sel_hist_at(at);',
  '  for (var j = j0; j < j1; j++) {',
  '    if (route_forced(j + u.k_offset, q, c)) { continue; }',
  '    let mc = sel_metric(b, g, row, j);',
  '    if (mc.y == 0.0f) { continue; }',
  '    let hi = sel_key(mc.x);',
  '    let lo = ~u32(j + u.k_offset);',
  '    if (sel_cmp(hi, lo, ph, pl, 8u * round) != 0i) { continue; }',
  '    let digit = select((lo >> (56u - 8u * round)) & 255u, (hi >> (24u - 8u * round)) & 255u, round < 4u);',
  '    atomicAdd(&route_state[hb + digit], 1u);',
  '  }',
  '}',
];

/** sel_pick: one invocation per row picks the round's digit. */
const pickEntry = [
  "// Picks the round's digit: the bin holding the remaining k-th best key.",
  '@compute @workgroup_size(64)',
  'fn sel_pick(@builtin(global_invocation_id) gid: vec3<u32>) {',
  '  let rows = u32(u.B) * u32(sel_groups()) * u32(u.Nq);',
  '  if (gid.x >= rows) { return; }',
  '  let at = gid.x * SEL_ROW_WORDS;',
  '  if (atomicLoad(&route_state[at + 4u]) != 0u) { return; }',
  '  let round = atomicLoad(&route_state[at + 2u]);',
  '  let rem = atomicLoad(&route_state[at + 3u]);',
  '  let hb = sel_hist_at(at);',
  '  var total = 0u;',
  '  for (var i = 0u; i < SEL_BINS; i++) { total += atomicLoad(&route_state[hb + i]); }',
  '  if (round == 0u && rem == 0u) { atomicStore(&route_state[at + 4u], 3u); return; } // k = 0',
  '  if (round == 0u && total <= rem) { atomicStore(&route_state[at + 4u], 2u); return; } // all',
  '  var above = 0u;',
  '  var bin = 0u;',
  '  var n = 0u;',
  '  for (var i = 0i; i < 256i; i++) {',
  '    bin = 255u - u32(i);',
  '    n = atomicLoad(&route_state[hb + bin]);',
  '    if (above + n >= rem) { break; }',
  '    above += n;',
  '  }',
  '  for (var i = 0u; i < SEL_BINS; i++) { atomicStore(&route_state[hb + i], 0u); }',
  '  if (round < 4u) {',
  '    atomicOr(&route_state[at], bin << (24u - 8u * round));',
  '  } else {',
  '    atomicOr(&route_state[at + 1u], bin << (56u - 8u * round));',
  '  }',
  '  atomicStore(&route_state[at + 3u], rem - above);',
  '  atomicStore(&route_state[at + 2u], round + 1u);',
  '  // The bin is taken whole (always so by round 8: positions are distinct): the top',
  '  // 8·(round+1) bits at or above the prefix select a key.',
  '  if (n == rem - above || round >= 7u) { atomicStore(&route_state[at + 4u], 1u); }',
  '}',
];

/** sel_write: appends each row's forced and selected keys to `indices`. */
const writeEntry = [
  '// Appends the forced candidates and the ranked keys at or above the threshold.',
  ...spanHead('sel_write', 'groups'),
  '  let at = sel_row(b, g, row);',
  '  let status = atomicLoad(&route_state[at + 4u]);',
  '  let bits = 8u * atomicLoad(&route_state[at + 2u]);',
  '  let ph = atomicLoad(&route_state[at]);',
  '  let pl = atomicLoad(&route_state[at + 1u]);',
  '  let c = route_counts();',
  '  let cap = route_cap();',
  '  let out0 = (u32(i32(gid.z) * u.Nq + row)) * cap;',
  '  for (var j = j0; j < j1; j++) {',
  '    let p = j + u.k_offset;',
  '    let mc = sel_metric(b, g, row, j);',
  '    if (mc.y == 0.0f) { continue; }',
  '    var take = route_forced(p, q, c);',
  '    if (!take && status == 2u) { take = true; }',
  '    if (!take && status == 1u) { take = sel_cmp(sel_key(mc.x), ~u32(p), ph, pl, bits) >= 0i; }',
  '    if (!take) { continue; }',
  '    let n = atomicAdd(&route_state[at + 5u], 1u);',
  '    if (n < cap) { route_indices[out0 + n] = p; }',
  '  }',
  '}',
];

function entries(r: RoutingPlan): string[] {
  return [
    ...initEntry(r),
    '',
    ...(routingVote(r) ? [...voteEntries, ''] : []),
    ...histEntry,
    '',
    ...pickEntry,
    '',
    ...writeEntry,
  ];
}

/** WGSL of the token selection passes (after the shared routing helpers). */
export function selectSource(f: TensorFormats, r: RoutingPlan, mode: ClassMode): string {
  return [...selectHelpers(f, r, mode), '', ...entries(r)].join('\n');
}

/** Launch records of the token selection, ending with the row sort (routing-sort.ts). */
export function selectEntries(r: RoutingPlan, maskBindings: readonly string[]): EntryPoint[] {
  const G = routingGroups(r);
  const rows = `B * ${G} * Nq`;
  const spans = `cdiv(Nk, ${SPAN * THREADS})`;
  const common = ['q', 'k', 'route_state', ...maskBindings, 'uniforms'];
  const span = (name: string, z: string): EntryPoint => ({
    name,
    role: 'routing',
    workgroupSize: [THREADS, 1, 1],
    grid: [spans, 'Nq', z],
    bindings: common,
  });
  const pick: EntryPoint = {
    name: 'sel_pick',
    role: 'routing',
    workgroupSize: [64, 1, 1],
    grid: [`cdiv(${rows}, 64)`, '1', '1'],
    bindings: ['route_state', 'uniforms'],
  };
  const rounds: EntryPoint[] = [];
  for (let i = 0; i < 8; i++) rounds.push(span('sel_hist', `B * ${G}`), pick);
  return [
    {
      name: 'sel_init',
      role: 'routing',
      workgroupSize: [64, 1, 1],
      grid: [`cdiv(${rows}, 64)`, '1', '1'],
      bindings: ['route_state', 'uniforms'],
    },
    ...(routingVote(r) ? [span('sel_vote_max', 'B * H'), span('sel_vote_sum', 'B * H')] : []),
    ...rounds,
    { ...span('sel_write', `B * ${G}`), bindings: [...common, 'indices'] },
  ];
}
