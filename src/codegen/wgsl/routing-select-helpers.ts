// Module-scope WGSL helpers of token selection (routing-select.ts has the passes and the
// design): the allowed-pair test, order-preserving u32 keys of f32, the affinity, the ranking
// metric (affinity, or the soft vote over the group's heads), the 64-bit prefix comparison of the
// radix select, and where each row's state and histogram live in `route_state`.
import { dequantFn } from './dequant-calls.js';
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { routingGroups, routingVote, type RoutingPlan } from '../../ir/routing.js';
import type { ClassMode } from './attention.js';

/** Keys one invocation scans per pass. */
export const SPAN = 16;
/** Words of per-row state before the histograms. */
export const ROW_WORDS = 8;
export const BINS = 256;

/** A load of one stored element, widened to f32. */
const load = (f: TensorFormat, e: string): string => (f.dtype === 'f16' ? `f32(${e})` : e);
/** Element d of key j (at k_at) of sel_aff: a float cache's, or a quantized one's through k_dequant. */
const keyElem = (f: TensorFormat): string =>
  f.kind === 'quant'
    ? `${dequantFn('k')}(k_at / HEAD_DIM, u32(j), d, u32(b) * u32(u.Hkv) + kvh, u32(u.Nk))`
    : load(f, 'k_buf[k_at + d]');

/** Whether the static mask allows (q, k) for head h: the allowed-pair test of a token. */
function allowedFn(mode: ClassMode): string[] {
  const body = mode === 'full' ? 'true' : mode === 'empty' ? 'false' : 'route_mask(b, h, q, k)';
  return ['fn sel_allowed(b: i32, h: i32, q: i32, k: i32) -> bool {', `  return ${body};`, '}'];
}

/** sel_key / sel_unkey: the order-preserving u32 of an f32 and back. */
const keyFns = [
  '// u32 whose unsigned order is the f32 order (NaN must be mapped away before).',
  'fn sel_key(x: f32) -> u32 {',
  '  let u = bitcast<u32>(x);',
  '  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);',
  '}',
  'fn sel_unkey(u: u32) -> f32 {',
  '  return bitcast<f32>(select(~u, u & 0x7fffffffu, (u & 0x80000000u) != 0u));',
  '}',
];

/** sel_aff: the affinity scale·<q, k> of a query row and a key (a float or quantized K cache). */
function affinityFn(f: TensorFormats): string[] {
  return [
    '// scale · <q row, key j> for query head h; NaN ranks as -inf (tested by bits).',
    'fn sel_aff(b: i32, h: i32, row: i32, j: i32) -> f32 {',
    '  let q_at = ((u32(b) * u32(u.H) + u32(h)) * u32(u.Nq) + u32(row)) * HEAD_DIM;',
    '  let kvh = u32(h) / (u32(u.H) / u32(u.Hkv));',
    // A float cache's row comes from its address function (kv-load.ts), a quantized one's packed.
    f.k.kind === 'quant'
      ? '  let k_at = ((u32(b) * u32(u.Hkv) + kvh) * u32(u.Nk) + u32(j)) * HEAD_DIM;'
      : '  let k_at = k_row(u32(b), kvh, u32(j));',
    '  var dot = 0.0f;',
    `  for (var d = 0u; d < HEAD_DIM; d++) { dot += ${load(f.q, 'q_buf[q_at + d]')} * ${keyElem(f.k)}; }`,
    '  let m = u.scale * dot;',
    '  if ((bitcast<u32>(m) & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>(neg_inf_bits); }',
    '  return m;',
    '}',
  ];
}

/** sel_vote_at: where a voter head's (max key, sum lo, sum hi) live, after the rows' state. */
const voteAtFn = [
  "// (max key, sum lo, sum hi) of head h for query row `row`, after the rows' state.",
  'fn sel_vote_at(b: i32, h: i32, row: i32) -> u32 {',
  '  let rows = u32(u.B) * u32(sel_groups()) * u32(u.Nq);',
  '  return rows * (SEL_ROW_WORDS + SEL_BINS) + ((u32(b) * u32(u.H) + u32(h)) * u32(u.Nq) + u32(row)) * 3u;',
  '}',
];

/** sel_metric: a key's ranking metric for a row (its affinity, or the soft vote of the heads). */
function metricFn(r: RoutingPlan): string[] {
  const metric = routingVote(r)
    ? [
        '  // Soft vote: Σ over voters of softmax_h(affinity), each over its own candidates.',
        '  var sum = 0.0f;',
        '  var cand = false;',
        '  for (var h = hs.x; h < hs.y; h++) {',
        '    if (!sel_allowed(b, h, q, k)) { continue; }',
        '    cand = true;',
        '    let at = sel_vote_at(b, h, row);',
        '    let mb = atomicLoad(&route_state[at]);',
        '    if (mb <= SEL_NEG_INF_KEY) { continue; } // no finite affinity: no vote',
        '    let z = f32(atomicLoad(&route_state[at + 2u])) + f32(atomicLoad(&route_state[at + 1u])) * 2.3283064365386963e-10f;',
        '    sum += exp(sel_aff(b, h, row, j) - sel_unkey(mb)) / z;',
        '  }',
        '  return vec2<f32>(sum, select(0.0f, 1.0f, cand));',
      ]
    : [
        '  if (!sel_allowed(b, hs.x, q, k)) { return vec2<f32>(0.0f, 0.0f); }',
        '  return vec2<f32>(sel_aff(b, hs.x, row, j), 1.0f);',
      ];
  return [
    '// (ranking metric, 1 if key j is a candidate of the row for some voter else 0).',
    'fn sel_metric(b: i32, g: i32, row: i32, j: i32) -> vec2<f32> {',
    '  let q = row + u.q_offset;',
    '  let k = j + u.k_offset;',
    '  let hs = sel_heads(g);',
    ...metric,
    '}',
  ];
}

/** sel_cmp: the radix select's comparison of a 64-bit key with the prefix found so far. */
const cmpFn = [
  '// Sign of (the top `bits` bits of key (hi, lo)) - (those of the prefix (ph, pl)).',
  'fn sel_cmp(hi: u32, lo: u32, ph: u32, pl: u32, bits: u32) -> i32 {',
  '  if (bits == 0u) { return 0i; }',
  '  if (bits <= 32u) {',
  '    let a = hi >> (32u - bits);',
  '    let c = ph >> (32u - bits);',
  '    return select(select(0i, -1i, a < c), 1i, a > c);',
  '  }',
  '  if (hi != ph) { return select(-1i, 1i, hi > ph); }',
  '  let a = lo >> (64u - bits);',
  '  let c = pl >> (64u - bits);',
  '  return select(select(0i, -1i, a < c), 1i, a > c);',
  '}',
];

/** sel_row / sel_hist_at: where a row's state and its histogram live in route_state. */
const rowStateFns = [
  '// Where the state of row (b, g, row) starts; its histogram is at sel_hist_at.',
  'fn sel_row(b: i32, g: i32, row: i32) -> u32 {',
  '  return ((u32(b) * u32(sel_groups()) + u32(g)) * u32(u.Nq) + u32(row)) * SEL_ROW_WORDS;',
  '}',
  'fn sel_hist_at(r: u32) -> u32 {',
  '  let rows = u32(u.B) * u32(sel_groups()) * u32(u.Nq);',
  '  return rows * SEL_ROW_WORDS + (r / SEL_ROW_WORDS) * SEL_BINS;',
  '}',
];

/** Module-scope WGSL the selection passes share: rank keys, affinity, metric, row state. */
export function selectHelpers(f: TensorFormats, r: RoutingPlan, mode: ClassMode): string[] {
  const G = { H: 'u.H', Hkv: 'u.Hkv', '1': '1i' }[routingGroups(r)];
  const heads =
    routingVote(r) === 'heads'
      ? 'vec2<i32>(0i, u.H)'
      : routingVote(r) === 'groups'
        ? 'vec2<i32>(g * (u.H / u.Hkv), (g + 1i) * (u.H / u.Hkv))'
        : 'vec2<i32>(g, g + 1i)';
  return [
    `const SEL_SPAN: u32 = ${SPAN}u;`,
    `const SEL_ROW_WORDS: u32 = ${ROW_WORDS}u;`,
    `const SEL_BINS: u32 = ${BINS}u;`,
    '// Order-preserving key of -inf: keys at or below it are no finite value.',
    'const SEL_NEG_INF_KEY: u32 = 0x007fffffu;',
    '',
    ...allowedFn(mode),
    '',
    '// Selection groups G of the rows: (b * G + g) * Nq + row.',
    `fn sel_groups() -> i32 { return ${G}; }`,
    '',
    '// The query heads [x, y) that rank for selection group g.',
    `fn sel_heads(g: i32) -> vec2<i32> { return ${heads}; }`,
    '',
    ...keyFns,
    '',
    ...affinityFn(f),
    '',
    ...(routingVote(r) ? [...voteAtFn, ''] : []),
    ...metricFn(r),
    '',
    ...cmpFn,
    '',
    ...rowStateFns,
  ];
}
