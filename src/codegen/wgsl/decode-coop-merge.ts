// attention_merge of the coop decode module (decode-coop.ts): one workgroup per (query row, head,
// batch) combines the row's partials, one per split, by log-sum-exp, the splits spread over the
// workgroup (a long KV has hundreds of splits; a loop over them per column would be latency-bound):
// M = max m_i over partials with l_i > 0, L = Σ l_i·e^(m_i−M), out = Σ acc_i·e^(m_i−M) / L,
// lse = M + log L; a row with no partial (L = 0) gets 0 and −inf, a row with a poisoned partial
// (l_i NaN) gets NaN in out and lse (docs/LANGUAGE.md "Non-finite values").
import { lseStore, pad } from './entry-lines.js';

/** What the merge writes: out's element type and whether the kernel has an lse output. */
export interface MergeOutputs {
  readonly f16Out: boolean;
  readonly lse: boolean;
}

/**
 * Invocations of the merge workgroup (a power of 2: the reductions halve it). D = 128 takes 32 of
 * them per column pass, so each walks an eighth of the splits (256 at Nk = 128K).
 */
export const COOP_MERGE_THREADS = 256;

export function coopDecodeMergeBody(p: MergeOutputs): string {
  return [
    ...MERGE_SHARED,
    '',
    ...MERGE_REDUCE,
    '',
    ...MERGE_ROW,
    ...rowStatistics(),
    ...mergeColumns(p.f16Out),
    ...(p.lse
      ? [
          '  if (lid == 0u) {',
          ...pad(lseStore({ index: 'bh * Nq + row', poisoned: 'row_nan', nan: 'nan_v', m: 'm', l: 'l' }), 4),
          '  }',
        ]
      : []),
    '}',
  ].join('\n');
}

// The merge's sizes and its workgroup memory for the reductions.
const MERGE_SHARED = [
  `const DM_THREADS: u32 = ${COOP_MERGE_THREADS}u;`,
  'const DM_COLS: u32 = min(DC_DV4, DM_THREADS); // vec4 output columns per pass',
  'const DM_SUBS: u32 = DM_THREADS / DM_COLS; // split subsets per column',
  'var<workgroup> dm_red: array<f32, DM_THREADS>;',
  'var<workgroup> dm_red4: array<vec4<f32>, DM_THREADS>;',
];

// dm_reduce: a workgroup max or sum, every invocation gets the result.
const MERGE_REDUCE = [
  '// The workgroup max (sum) of x; every invocation gets it.',
  'fn dm_reduce(x: f32, lid: u32, sum: bool) -> f32 {',
  '  dm_red[lid] = x;',
  '  // A start LLVM-based drivers (lavapipe) cannot fold: unrolled barriers took long to compile.',
  '  for (var w = select(DM_THREADS / 2u, 0u, u.Nk < 0i); w > 0u; w >>= 1u) {',
  '    workgroupBarrier();',
  '    if (lid < w) {',
  '      let y = dm_red[lid + w];',
  '      dm_red[lid] = select(max(dm_red[lid], y), dm_red[lid] + y, sum);',
  '    }',
  '  }',
  '  let r = workgroupUniformLoad(&dm_red[0]);',
  '  workgroupBarrier(); // dm_red[0] is read before the next reduction writes it',
  '  return r;',
  '}',
];

// The entry point and its row: query row, head, kv head, packed row and partials' base.
const MERGE_ROW = [
  '// grid: (Nq, H, B)',
  '@compute @workgroup_size(DM_THREADS)',
  'fn attention_merge(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
  '  let Nq = u32(u.Nq);',
  '  let g = dc_geom();',
  '  let row = wg.x;',
  '  let h = wg.y;',
  '  let bh = wg.z * u32(u.H) + h;',
  '  let hk = h / g.group;',
  '  let pk = (h % g.group) * Nq + row;',
  '  let ml0 = dc_ml_base(g);',
];

/** Over the row's partials: M (max m_i where l_i > 0), whether one is poisoned, and L. */
function rowStatistics(): string[] {
  return [
    '  var m = MASKED;',
    '  var nan = 0.0f; // 1: some partial is poisoned (its l is NaN)',
    '  for (var sp = lid; sp < g.n_splits; sp += DM_THREADS) {',
    '    let o = ml0 + 2u * dc_slot(g, wg.z, hk, sp, pk);',
    '    let li = decode_part[o + 1u];',
    '    if ((bitcast<u32>(li) & 0x7fffffffu) > 0x7f800000u) { nan = 1.0f; }',
    '    if (li > 0.0f) { m = max(m, decode_part[o]); }',
    '  }',
    '  m = dm_reduce(m, lid, false);',
    '  let row_nan = dm_reduce(nan, lid, false) > 0.0f;',
    '  var l = 0.0f;',
    '  for (var sp = lid; sp < g.n_splits; sp += DM_THREADS) {',
    '    let o = ml0 + 2u * dc_slot(g, wg.z, hk, sp, pk);',
    '    let li = decode_part[o + 1u];',
    '    if (li > 0.0f) { l += li * exp(decode_part[o] - m); }',
    '  }',
    '  l = dm_reduce(l, lid, true);',
    '  let inv_l = select(0.0f, 1.0f / l, l > 0.0f);',
    '  let nan_v = bitcast<f32>(neg_inf_bits | 0x00400000u);',
  ];
}

/** out = Σ acc_i·e^(m_i−M) / L per vec4 column: split subsets per column, summed in workgroup memory. */
function mergeColumns(f16: boolean): string[] {
  const store = (x: string): string => (f16 ? `f16(${x})` : x);
  return [
    '  let o_base = (bh * Nq + row) * VALUE_DIM;',
    '  let sub = lid / DM_COLS;',
    '  for (var c0 = 0u; c0 < DC_DV4; c0 += DM_COLS) {',
    '    let col = c0 + lid % DM_COLS;',
    '    var o = vec4<f32>(0.0f);',
    '    if (col < DC_DV4 && sub < DM_SUBS) {',
    '      for (var sp = sub; sp < g.n_splits; sp += DM_SUBS) {',
    '        let slot = dc_slot(g, wg.z, hk, sp, pk);',
    '        let ml = ml0 + 2u * slot;',
    '        let li = decode_part[ml + 1u];',
    '        if (li > 0.0f) { // the split reads acc only where l > 0',
    '          let a = slot * VALUE_DIM + 4u * col;',
    '          let x = vec4<f32>(decode_part[a], decode_part[a + 1u], decode_part[a + 2u], decode_part[a + 3u]);',
    '          o += x * exp(decode_part[ml] - m);',
    '        }',
    '      }',
    '    }',
    '    dm_red4[lid] = o;',
    '    workgroupBarrier(); // the subsets\u2019 sums are written',
    '    if (sub == 0u && col < DC_DV4) {',
    '      var t = vec4<f32>(0.0f);',
    '      for (var j = 0u; j < DM_SUBS; j++) { t += dm_red4[j * DM_COLS + lid]; }',
    '      for (var x = 0u; x < 4u; x++) {',
    `        out_buf[o_base + 4u * col + x] = ${store('select(t[x] * inv_l, nan_v, row_nan)')};`,
    '      }',
    '    }',
    '    workgroupBarrier(); // dm_red4 is read',
    '  }',
  ];
}
