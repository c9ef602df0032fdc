// The wide attention_merge of the coop decode module (tuning.mergeCols set; decode-coop-merge.ts
// is the default): one workgroup per (query row, head, slab of DW_COLS vec4 output columns), so a
// row's merge runs on several workgroups (32 heads × 4 slabs at D = 128 is 128 workgroups where the
// default has 32), and ONE pass over the splits: each invocation keeps an online (m, l, acc) of
// its column over the splits sub, sub + DW_SUBS, …, loading a split's m, l and acc together (no
// load waits on another: the default merge reads l first and acc only where l > 0, two dependent
// latencies per split, in three passes). The invocations of a column then combine their states by
// log-sum-exp through workgroup memory. Same contract as the default: M = max m_i over l_i > 0,
// out = Σ acc_i·e^(m_i−M) / Σ l_i·e^(m_i−M), lse = M + log L; no partial: 0 and −inf; a poisoned
// partial (l_i NaN): NaN in out and lse.
import type { EntryPoint } from '../artifact.js';
import { lseStore, pad } from './entry-lines.js';
import type { MergeOutputs } from './decode-coop-merge.js';

export interface WideMergeShape extends MergeOutputs {
  /** vec4 output columns per merge workgroup (tuning.mergeCols). */
  readonly cols: number;
  /** Invocations per merge workgroup (a multiple of cols). */
  readonly threads: number;
  /** Value head dim (the slabs per row follow from it). */
  readonly valueDim: number;
}

/** Workgroups per query row: the row's vec4 columns in slabs of `cols`. */
export const wideMergeSlabs = (m: WideMergeShape): number => Math.ceil(m.valueDim / 4 / m.cols);

export const wideMergeGrid = (m: WideMergeShape): EntryPoint['grid'] => [
  wideMergeSlabs(m) === 1 ? 'Nq' : `Nq * ${wideMergeSlabs(m)}`,
  'H',
  'B',
];

const lseWrite = [
  '    if (slab == 0u && lid == 0u) {',
  ...pad(lseStore({ index: 'bh * Nq + row', poisoned: 'poisoned', nan: 'nan_v', m: 'm', l: 'l' }), 6),
  '    }',
];

export function coopDecodeWideMergeBody(w: WideMergeShape): string {
  const store = (x: string): string => (w.f16Out ? `f16(${x})` : x);
  return [
    `const DW_THREADS: u32 = ${w.threads}u; // merge invocations per workgroup`,
    `const DW_COLS: u32 = ${w.cols}u; // vec4 output columns per workgroup`,
    'const DW_SUBS: u32 = DW_THREADS / DW_COLS; // split subsets per column',
    'const DW_SLABS: u32 = (DC_DV4 + DW_COLS - 1u) / DW_COLS; // workgroups per query row',
    'var<workgroup> dw_ml: array<vec2<f32>, DW_THREADS>; // each invocation\u2019s (m, l); l NaN: poisoned',
    'var<workgroup> dw_o: array<vec4<f32>, DW_THREADS>; // and its acc, scaled to its m',
    '',
    ...MERGE_ENTRY,
    ...SUBSET_STATE,
    '  if (sub == 0u) {',
    ...COMBINE_SUBSETS,
    '    let inv_l = select(0.0f, 1.0f / l, l > 0.0f);',
    '    if (col < DC_DV4) {',
    '      let o_base = (bh * Nq + row) * VALUE_DIM + 4u * col;',
    '      for (var x = 0u; x < 4u; x++) {',
    `        out_buf[o_base + x] = ${store('select(o[x] * inv_l, nan_v, poisoned)')};`,
    '      }',
    '    }',
    ...(w.lse ? lseWrite : []),
    '  }',
    '}',
  ].join('\n');
}

// The entry point: the query row and column slab of the workgroup, and this invocation's state.
const MERGE_ENTRY = [
  '// grid: (Nq * DW_SLABS, H, B)',
  '@compute @workgroup_size(DW_THREADS)',
  'fn attention_merge(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
  '  let Nq = u32(u.Nq);',
  '  let g = dc_geom();',
  '  let row = wg.x / DW_SLABS;',
  '  let slab = wg.x % DW_SLABS;',
  '  let h = wg.y;',
  '  let bh = wg.z * u32(u.H) + h;',
  '  let hk = h / g.group;',
  '  let pk = (h % g.group) * Nq + row;',
  '  let ml0 = dc_ml_base(g);',
  '  let col = slab * DW_COLS + lid % DW_COLS;',
  '  let sub = lid / DW_COLS;',
  '  let nan_v = bitcast<f32>(neg_inf_bits | 0x00400000u);',
  '  var m = MASKED;',
  '  var l = 0.0f;',
  '  var o = vec4<f32>(0.0f);',
  '  var poisoned = false;',
];

// Each invocation's online merge of its subset of the splits (for its column), into dw_ml / dw_o.
const SUBSET_STATE = [
  '  for (var sp = sub; sp < g.n_splits; sp += DW_SUBS) {',
  '    let slot = dc_slot(g, wg.z, hk, sp, pk);',
  '    let mi = decode_part[ml0 + 2u * slot];',
  '    let li = decode_part[ml0 + 2u * slot + 1u];',
  '    var x = vec4<f32>(0.0f);',
  '    if (col < DC_DV4) {',
  '      let a = slot * VALUE_DIM + 4u * col;',
  '      x = vec4<f32>(decode_part[a], decode_part[a + 1u], decode_part[a + 2u], decode_part[a + 3u]);',
  '    }',
  '    if ((bitcast<u32>(li) & 0x7fffffffu) > 0x7f800000u) { poisoned = true; }',
  '    if (li > 0.0f) { // acc counts only where l > 0 (as in the default merge)',
  '      let m_new = max(m, mi);',
  '      let corr = exp(m - m_new);',
  '      let p = exp(mi - m_new);',
  '      l = l * corr + li * p;',
  '      o = o * corr + x * p;',
  '      m = m_new;',
  '    }',
  '  }',
  '  dw_ml[lid] = vec2<f32>(m, select(l, nan_v, poisoned));',
  '  dw_o[lid] = o;',
  '  workgroupBarrier(); // every subset\u2019s state is written',
];

// The first subset's invocations combine every subset's (m, l) and acc by log-sum-exp.
const COMBINE_SUBSETS = [
  '    m = MASKED;',
  '    for (var s = 0u; s < DW_SUBS; s++) {',
  '      let ml = dw_ml[s * DW_COLS + lid];',
  '      if ((bitcast<u32>(ml.y) & 0x7fffffffu) > 0x7f800000u) { poisoned = true; }',
  '      if (ml.y > 0.0f) { m = max(m, ml.x); }',
  '    }',
  '    l = 0.0f;',
  '    o = vec4<f32>(0.0f);',
  '    for (var s = 0u; s < DW_SUBS; s++) {',
  '      let ml = dw_ml[s * DW_COLS + lid];',
  '      if (ml.y > 0.0f) {',
  '        let w = exp(ml.x - m);',
  '        l += ml.y * w;',
  '        o += dw_o[s * DW_COLS + lid] * w;',
  '      }',
  '    }',
];
