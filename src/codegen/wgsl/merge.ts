// The split-KV log-sum-exp merge of the WGSL backend: one renderer for every entry point that
// combines a row's partial records [acc[Dv], m, l] (decode mode today). With m and l in the
// natural base:
//   M = max m_i over records with l_i > 0, L = Σ l_i·e^(m_i−M), out = Σ acc_i·e^(m_i−M) / L,
//   lse = M + log L;
// a row with no record (L = 0) gets 0 and −inf, and a row with a poisoned record (l_i NaN: a NaN
// or +inf score) gets NaN in out and lse (docs/LANGUAGE.md "Non-finite values").
import { NAN_F32 } from './attention-row.js';
import { lseStore, pad } from './entry-lines.js';

/** How the merge visits a row's records. */
export interface WgslRecords {
  /** The scratch array holding the records. */
  readonly buffer: string;
  /**
   * Wraps `body` (statements using `slot`, the record's first element) in the loops over the
   * row's records, at the given indent.
   */
  readonly each: (indent: number, body: readonly string[]) => string[];
}

export interface WgslMerge {
  readonly records: WgslRecords;
  /** Storage dtype of out: f16 converts on store. */
  readonly dtype: string;
  /** Invocations of the workgroup (they share the Dv columns). */
  readonly threads: number;
  /** Index of the row's first output element, and of its lse (if the kernel has the output). */
  readonly outBase: string;
  readonly lseIndex?: string;
}

const store = (dtype: string, expr: string): string => (dtype === 'f16' ? `f16(${expr})` : expr);

/** Statements of the merge, after the caller has located the row's records. */
export function wgslMergeBody(m: WgslMerge): string[] {
  const buf = m.records.buffer;
  const each = m.records.each;
  const l = `let li = ${buf}[slot + VALUE_DIM + 1u];`;
  return [
    '  var m = MASKED;',
    '  var row_nan = false; // some partial saw a NaN or +inf score (its l is NaN)',
    ...each(2, [
      l,
      'if ((bitcast<u32>(li) & 0x7fffffffu) > 0x7f800000u) { row_nan = true; }',
      `if (li > 0.0f) { m = max(m, ${buf}[slot + VALUE_DIM]); }`,
    ]),
    '  var l = 0.0f;',
    ...each(2, [l, `if (li > 0.0f) { l += li * exp(${buf}[slot + VALUE_DIM] - m); }`]),
    '  let inv_l = select(0.0f, 1.0f / l, l > 0.0f);',
    `  let nan = ${NAN_F32};`,
    `  let o_base = ${m.outBase};`,
    `  for (var d = lid; d < VALUE_DIM; d += ${m.threads}u) {`,
    '    var o = 0.0f;',
    ...each(4, [l, `if (li > 0.0f) { o += ${buf}[slot + d] * exp(${buf}[slot + VALUE_DIM] - m); }`]),
    `    out_buf[o_base + d] = ${store(m.dtype, 'select(o * inv_l, nan, row_nan)')};`,
    '  }',
    ...(m.lseIndex !== undefined
      ? [
          '  if (lid == 0u) {',
          ...pad(lseStore({ index: m.lseIndex, poisoned: 'row_nan', nan: 'nan', m: 'm', l: 'l' }), 4),
          '  }',
        ]
      : []),
  ];
}
