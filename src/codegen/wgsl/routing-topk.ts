// The `route_topk` entry point of block routing (see routing.ts for the pipeline): one invocation
// per (query unit, selection group, batch). It writes forced candidates, then `k` rounds, each
// taking the best block *strictly after* the previous pick in the order (metric desc, id asc):
// no per-unit array is needed (k and the block count are runtime values), and the ranking is
// deterministic, since the same f32 arithmetic ranks each block in every round.
// Without a vote the metric is the affinity of the group's one head, and candidacy is tested
// lazily (only for a block about to become the round's best). With `vote`, the metric is
// Σ_h softmax_h(affinity) over the voting heads, each head's softmax over its own candidates: a
// first sweep stores each voter's (max, sum) in the scratch buffer; a block is a candidate if it
// is one for some voter, and a head whose affinities are all -inf casts no vote.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import type { PoolRankPlan } from '../../ir/routing.js';

/** A load of one stored element, widened to f32. */
const load = (f: TensorFormat, e: string): string => (f.dtype === 'f16' ? `f32(${e})` : e);

/** Module-scope helpers the top-k needs: affinity, voter range, the vote's metric. */
function helpers(f: TensorFormats, r: PoolRankPlan): string[] {
  const qAt =
    r.source.q === 'raw'
      ? ['  let q_at = ((u32(b) * u32(u.H) + u32(h)) * u32(u.Nq) + u32(r_lo)) * HEAD_DIM;']
      : ['  let q_at = route_q_base() + ((u32(b) * u32(u.H) + u32(h)) * route_qslots() + unit) * HEAD_DIM;'];
  const qVal = r.source.q === 'raw' ? load(f.q, 'q_buf[q_at + d]') : 'route_pool[q_at + d]';
  const voters =
    r.source.vote === 'heads'
      ? 'vec2<i32>(0i, u.H)'
      : r.source.vote === 'groups'
        ? 'vec2<i32>(g * (u.H / u.Hkv), (g + 1i) * (u.H / u.Hkv))'
        : 'vec2<i32>(g, g + 1i)';
  const out = [
    '// scale · <q of the unit for head h, pooled keys of key slot s>; NaN ranks as -inf (tested by',
    '// bits: NaN comparisons may be folded away).',
    'fn route_aff(b: i32, h: i32, unit: u32, r_lo: i32, s: i32) -> f32 {',
    ...qAt,
    '  let kvh = u32(h) / (u32(u.H) / u32(u.Hkv));',
    '  let k_at = ((u32(b) * u32(u.Hkv) + kvh) * route_kslots() + u32(s)) * HEAD_DIM;',
    '  var dot = 0.0f;',
    `  for (var d = 0u; d < HEAD_DIM; d++) { dot += ${qVal} * route_pool[k_at + d]; }`,
    '  let m = u.scale * dot;',
    '  if ((bitcast<u32>(m) & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>(neg_inf_bits); }',
    '  return m;',
    '}',
    '',
    '// The query heads [x, y) that rank for selection group g.',
    'fn route_voters(g: i32) -> vec2<i32> {',
    `  return ${voters};`,
    '}',
  ];
  if (!r.source.vote) return out;
  return [
    ...out,
    '',
    '// (max, sum of exp) of head h for unit `unit` in the scratch buffer.',
    'fn route_stats_at(b: i32, h: i32, unit: u32) -> u32 {',
    `  let units = ${r.source.q === 'raw' ? 'u32(u.Nq)' : 'route_qslots()'};`,
    '  return route_vote_base() + ((u32(b) * u32(u.H) + u32(h)) * units + unit) * 2u;',
    '}',
    '',
    '// (Σ over voters of softmax_h(affinity of key slot s, keys kr), 1 if it is a candidate for',
    '// some voter, else 0).',
    'fn route_vote(b: i32, g: i32, unit: u32, r_lo: i32, q_lo: i32, q_hi: i32, s: i32, kr: vec2<i32>) -> vec2<f32> {',
    '  let hs = route_voters(g);',
    '  var sum = 0.0f;',
    '  var cand = 0.0f;',
    '  for (var h = hs.x; h < hs.y; h++) {',
    '    if (!route_candidate_keys(b, h, q_lo, q_hi, kr.x, kr.x + (kr.y - 1i))) { continue; }',
    '    cand = 1.0f;',
    '    let at = route_stats_at(b, h, unit);',
    '    let m = route_pool[at];',
    '    if (!(m > bitcast<f32>(neg_inf_bits))) { continue; } // no finite affinity: no vote',
    '    sum += exp(route_aff(b, h, unit, r_lo, s) - m) / route_pool[at + 1u];',
    '  }',
    '  return vec2<f32>(sum, cand);',
    '}',
  ];
}

/** The voters' softmax statistics over their own candidates (vote only). */
const voteStats = [
  "  // Each voter: max and sum of exp of its candidates' affinities (its softmax).",
  '  let hs = route_voters(g);',
  '  for (var h = hs.x; h < hs.y; h++) {',
  '    var m = bitcast<f32>(neg_inf_bits);',
  '    for (var s = 0i; s < nslots; s++) {',
  '      let kr = route_slot_range(s, u.k_offset, u.Nk);',
  '      if (kr.y <= 0i) { continue; }',
  '      if (route_candidate_keys(b, h, q_lo, q_hi, kr.x, kr.x + (kr.y - 1i))) { m = max(m, route_aff(b, h, unit, r_lo, s)); }',
  '    }',
  '    var z = 0.0f;',
  '    if (m > bitcast<f32>(neg_inf_bits)) {',
  '      for (var s = 0i; s < nslots; s++) {',
  '        let kr = route_slot_range(s, u.k_offset, u.Nk);',
  '        if (kr.y <= 0i) { continue; }',
  '        if (route_candidate_keys(b, h, q_lo, q_hi, kr.x, kr.x + (kr.y - 1i))) { z += exp(route_aff(b, h, unit, r_lo, s) - m); }',
  '      }',
  '    }',
  '    let at = route_stats_at(b, h, unit);',
  '    route_pool[at] = m;',
  '    route_pool[at + 1u] = z;',
  '  }',
];

/** The forced blocks that are candidates, ascending, first in the row's list. */
function forcedFirst(cand: string): string[] {
  return [
    '  // Forced blocks that are candidates, ascending.',
    '  for (var s = 0i; s < nslots; s++) {',
    '    let kr = route_slot_range(s, u.k_offset, u.Nk);',
    '    if (kr.y <= 0i) { continue; }',
    '    let id = route_id(kr.x);',
    `    if (route_forced(id, own, c) && ${cand}) {`,
    '      route_indices[out0 + n] = id;',
    '      n++;',
    '    }',
    '  }',
  ];
}

/** Ranked blocks, best first: each round takes the best block strictly after the last pick. */
function rankedRounds(rank: readonly string[]): string[] {
  return [
    '  // Ranked blocks, best first: each round takes the best block strictly after the last pick.',
    '  var have_last = false;',
    '  var last_m = 0.0f;',
    '  var last_id = 0i;',
    '  for (var round = 0i; round < c.x; round++) {',
    '    var found = false;',
    '    var best_m = 0.0f;',
    '    var best_id = 0i;',
    '    for (var s = 0i; s < nslots; s++) {',
    '      let kr = route_slot_range(s, u.k_offset, u.Nk);',
    '      if (kr.y <= 0i) { continue; }',
    '      let id = route_id(kr.x);',
    '      if (route_forced(id, own, c)) { continue; }',
    ...rank,
    '      found = true;',
    '      best_m = m;',
    '      best_id = id;',
    '    }',
    '    if (!found) { break; }',
    '    route_indices[out0 + n] = best_id;',
    '    n++;',
    '    have_last = true;',
    '    last_m = best_m;',
    '    last_id = best_id;',
    '  }',
  ];
}

/** The row's list sorted ascending and padded with -1, then copied to the unit's other rows. */
const sortAndShare = [
  '  // Ascending order (insertion sort of at most cap ids), then -1 padding.',
  '  for (var i = 1u; i < n; i++) {',
  '    let x = route_indices[out0 + i];',
  '    var j = i;',
  '    while (j > 0u && route_indices[out0 + j - 1u] > x) {',
  '      route_indices[out0 + j] = route_indices[out0 + j - 1u];',
  '      j--;',
  '    }',
  '    route_indices[out0 + j] = x;',
  '  }',
  '  for (var i = n; i < cap; i++) { route_indices[out0 + i] = -1i; }',
  '  // The other rows of the unit share the selection.',
  '  for (var row = r_lo + 1i; row < r_hi; row++) {',
  '    let o = base + u32(row) * cap;',
  '    for (var i = 0u; i < cap; i++) { route_indices[o + i] = route_indices[out0 + i]; }',
  '  }',
];

export function topkSource(f: TensorFormats, r: PoolRankPlan): string {
  const pooled = r.source.q !== 'raw';
  const unit = pooled
    ? [
        '  let unit = gid.x;',
        '  let qr = route_slot_range(i32(unit), u.q_offset, u.Nq);',
        '  if (qr.y <= 0i) { return; } // qr: first position, length',
        '  let own = route_id(qr.x);',
        '  let r_lo = qr.x - u.q_offset;',
        '  let r_hi = r_lo + qr.y;',
      ]
    : [
        '  let unit = gid.x;',
        '  let r_lo = i32(unit);',
        '  if (r_lo >= u.Nq) { return; }',
        '  let r_hi = r_lo + 1i;',
        '  let own = route_id(r_lo + u.q_offset);',
      ];
  const cand = r.source.vote
    ? 'route_vote(b, g, unit, r_lo, q_lo, q_hi, s, kr).y > 0.0f'
    : 'route_candidate_keys(b, g, q_lo, q_hi, kr.x, kr.x + (kr.y - 1i))';
  // One block's rank this round: the vote tests candidacy itself; an affinity tests it lazily.
  const rank = r.source.vote
    ? [
        '      let mv = route_vote(b, g, unit, r_lo, q_lo, q_hi, s, kr);',
        '      if (mv.y == 0.0f) { continue; }',
        '      let m = mv.x;',
        '      if (have_last && !(m < last_m || (m == last_m && id > last_id))) { continue; }',
        '      // Ids ascend, so a tie keeps the lower id.',
        '      if (found && !(m > best_m)) { continue; }',
      ]
    : [
        '      let m = route_aff(b, g, unit, r_lo, s);',
        '      if (have_last && !(m < last_m || (m == last_m && id > last_id))) { continue; }',
        '      // Ids ascend, so a tie keeps the lower id.',
        '      if (found && !(m > best_m)) { continue; }',
        '      if (!route_candidate_keys(b, g, q_lo, q_hi, kr.x, kr.x + (kr.y - 1i))) { continue; }',
      ];
  return [
    ...helpers(f, r),
    '',
    '@compute @workgroup_size(64)',
    'fn route_topk(@builtin(global_invocation_id) gid: vec3<u32>) {',
    '  let b = i32(gid.z);',
    '  let g = i32(gid.y); // selection group: the head, its kv head, or 0',
    ...unit,
    '  let q_lo = r_lo + u.q_offset;',
    '  let q_hi = r_hi - 1i + u.q_offset;',
    '  let c = route_counts();',
    '  let cap = route_cap();',
    '  // Key slots: blocks (or chunk starts) of the call, ascending in id; empty ones are skipped.',
    '  let nslots = i32(route_kslots());',
    ...(r.source.vote ? voteStats : []),
    '  let base = (gid.z * route_groups() + gid.y) * u32(u.Nq) * cap;',
    '  let out0 = base + u32(r_lo) * cap;',
    '  var n = 0u;',
    ...forcedFirst(cand),
    ...rankedRounds(rank),
    ...sortAndShare,
    '}',
  ].join('\n');
}
