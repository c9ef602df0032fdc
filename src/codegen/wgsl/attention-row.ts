// The row engine's per-row pieces that decode-body.ts's split pass shares: the row's q and
// running online-softmax state, the staged K/V tiles, and one tile's scoring and update. What the
// coop engine shares with it is in entry-lines.ts, so that a page compiling for the coop engine
// with compileAsync loads neither attention.ts nor this (codegen/wgsl/features.ts).
import type { Schedule } from '../../ir/kernel.js';
import type { StorageDType } from '../../ir/formats.js';
import type { AttentionParts } from './attention.js';
import { pad, whereAllowed } from './entry-lines.js';

/** Widens a loaded element to f32. */
export function load(dtype: StorageDType, expr: string): string {
  return dtype === 'f16' ? `f32(${expr})` : expr;
}

/**
 * A NaN built at run time: WGSL rejects a non-finite constant, and neg_inf_bits is a variable.
 * (docs/LANGUAGE.md "Non-finite values": the out and lse of a row with a NaN or +inf score.)
 */
export const NAN_F32 = 'bitcast<f32>(neg_inf_bits | 0x00400000u)';

/**
 * Sets `row_nan` when score `s` is NaN or +inf. The test is on the bits: WGSL lets a compiler
 * assume floats are finite, so `s != s` or a NaN-dropping max() could not be relied on.
 */
export const flagPoisonedScore = [
  'let s_bits = bitcast<u32>(s);',
  'if ((s_bits & 0x7fffffffu) > 0x7f800000u || s_bits == 0x7f800000u) { row_nan = true; }',
];

/** The K and V tiles staged in workgroup memory (f32). */
export const kvTiles = (s: Schedule): string[] => [
  `var<workgroup> k_tile: array<f32, ${s.blockK * s.headDim}>; // BLOCK_K x HEAD_DIM`,
  `var<workgroup> v_tile: array<f32, ${s.blockK * s.valueDim}>; // BLOCK_K x VALUE_DIM`,
];

/** The row's q (widened to f32; rows past Nq keep zeros) and its row-invariant parts of mask and score. */
export function queryRow(p: AttentionParts): string[] {
  return [
    '  var qrow: array<f32, HEAD_DIM>;',
    '  if (row_ok) {',
    '    for (var d = 0u; d < HEAD_DIM; d++) {',
    `      qrow[d] = ${load(p.formats.q.dtype, 'q_buf[(bh * Nq + row) * HEAD_DIM + d]')};`,
    '    }',
    '  }',
    ...(p.row.stmts.length
      ? ['  // Parts of mask and score that depend only on the row.', ...pad(p.row.stmts, 2)]
      : []),
  ];
}

/** The row's online-softmax state, its tile's scores and the tile count. */
export const rowState = [
  '  var m_run = MASKED; // running max of allowed scores',
  '  var l_run = 0.0f; // running sum of exp(score - m_run)',
  '  var row_nan = false; // an allowed score was NaN or +inf: the row is NaN',
  '  var acc: array<f32, VALUE_DIM>;',
  '  var s_tile: array<f32, BLOCK_K>;',
  '  let n_tiles = (Nk + BLOCK_K - 1u) / BLOCK_K;',
];

/** Scores key column j of the tile for the row's `qrow` (decode-body.ts reuses it for its lanes). */
export function staticScoreKey(p: AttentionParts): string[] {
  // With a score expression, a NaN q·k is flagged before it: WGSL compilers may assume finite
  // floats and fold it away (`score - score` to 0), and a NaN q or k must poison the row anyway.
  const identity = p.score.stmts.length === 0 && p.score.roots[0] === 'score';
  const dot = [
    'var dot = 0.0f;',
    'for (var d = 0u; d < HEAD_DIM; d++) {',
    '  dot += qrow[d] * k_tile[j * HEAD_DIM + d];',
    '}',
    'let score = u.scale * dot;',
    ...(identity ? [] : ['if ((bitcast<u32>(score) & 0x7fffffffu) > 0x7f800000u) { row_nan = true; }']),
    ...p.score.stmts,
    `s = ${p.score.roots[0]};`,
  ];
  return whereAllowed(p.mode, p.mask, dot);
}

/**
 * One staged tile's online-softmax update of a row (`m_run`, `l_run`, `acc`, `row_nan`): pass 1
 * scores the keys, takes their max and flags a NaN or +inf score, pass 2 rescales the running
 * state and adds the tile (a flagged row's state is discarded at the end). `first`/`step`
 * pick which of the tile's keys this invocation takes (all of them, or every `lanes`-th in the
 * decode split, whose lanes are merged afterwards).
 */
export function tileUpdate(
  score: readonly string[],
  walk: { readonly first: string; readonly step: string; readonly notes: boolean },
): string[] {
  const loop = `for (var kj = ${walk.first}; kj < k_end; ${walk.step}) {`;
  return [
    ...(walk.notes ? ['      // Pass 1: scores of this tile and their max.'] : []),
    '      var m_tile = MASKED;',
    `      ${loop}`,
    '        let j = kj - k0;',
    '        let k = u.k_offset + i32(kj);',
    '        var s = MASKED;',
    ...pad(score, 8),
    '        s_tile[j] = s;',
    '        m_tile = max(m_tile, s);',
    ...pad(flagPoisonedScore, 8),
    '      }',
    ...(walk.notes
      ? ['      // Pass 2 (if some key was allowed): rescale the running state to the new max, add the tile.']
      : []),
    '      if (m_tile > MASKED) {',
    '        let m_new = max(m_run, m_tile);',
    '        let corr = exp(m_run - m_new);',
    '        l_run *= corr;',
    '        for (var d = 0u; d < VALUE_DIM; d++) {',
    '          acc[d] *= corr;',
    '        }',
    `        ${loop}`,
    '          let j = kj - k0;',
    '          let sj = s_tile[j];',
    '          if (sj > MASKED) {',
    '            let pj = exp(sj - m_new);',
    '            l_run += pj;',
    '            for (var d = 0u; d < VALUE_DIM; d++) {',
    '              acc[d] += pj * v_tile[j * VALUE_DIM + d];',
    '            }',
    '          }',
    '        }',
    '        m_run = m_new;',
    '      }',
  ];
}
