// Where Q rows are read and output rows written, for every CUDA engine (issue 12: "any layout
// whose last dim is contiguous; the kernel takes strides"). Every Q load and O store of the
// backend takes its address from this file, as every K/V load takes it from kv-rows.ts.
//
// Row n of query head h of batch b starts at element
//   b·q_stride_b + h·q_stride_h + n·q_stride_n
// of `q` (`out` alike with out_stride_*), the strides 64-bit runtime arguments. args_init sets the
// packed [B, H, Nq, W] ones (so existing callers read and write contiguous BHND as before); a caller
// may pass a BNHD view (stride_h = W, stride_n = H·W) or any layout whose last dim is contiguous.
// lse stays packed [B, H, Nq] f32 (callers allocate it; nothing is gained by a layout there).
//
// The emitted helpers (qoRowsPrelude): `q_row(a, b, h, n)` / `out_row(a, b, h, n)` are row
// addresses; `q_rows(a, b, h, n0)` is a QRows handle over the rows from n0 on, which the tile
// loaders take through `row_addr` (kv-rows.ts) like a K/V handle.

/** Args fields of q's or out's strides (elements, 64-bit): batch, head, row. */
export const qoStrideFields = (t: 'q' | 'out'): readonly [string, string, string] => [
  `${t}_stride_b`,
  `${t}_stride_h`,
  `${t}_stride_n`,
];

/** Device helpers after the prelude (Args and T are declared there; row_addr in kv-rows.ts). */
export function qoRowsPrelude(): string[] {
  const at = (t: 'q' | 'out') => {
    const [sb, sh, sn] = qoStrideFields(t).map((f) => `a.${f}`);
    return `${sb} * b + ${sh} * h + ${sn} * n`;
  };
  return [
    '// Q rows read and output rows written through 64-bit element strides (qo-rows.ts).',
    '__device__ __forceinline__ const T* q_row(const Args& a, long long b, long long h, long long n) {',
    `  return static_cast<const T*>(a.q) + ${at('q')};`,
    '}',
    '__device__ __forceinline__ T* out_row(const Args& a, long long b, long long h, long long n) {',
    `  return static_cast<T*>(a.out) + ${at('out')};`,
    '}',
    '// Rows n0, n0 + 1, ... of one (batch, head) of q: what the tile loaders take.',
    'struct QRows {',
    '  const T* p;',
    '  long long rs;',
    '};',
    '__device__ __forceinline__ QRows q_rows(const Args& a, long long b, long long h, long long n0) {',
    '  return QRows{q_row(a, b, h, n0), a.q_stride_n};',
    '}',
    '__device__ __forceinline__ const T* row_addr(const QRows& q, long long r, int) { return q.p + r * q.rs; }',
  ];
}

/** args_init's q/out strides: packed [B, H, Nq, W] rows (W the head or value dim). */
export function qoStrideDefaults(headDim: number, valueDim: number, args: string): string[] {
  return (['q', 'out'] as const).flatMap((t) => {
    const w = t === 'q' ? headDim : valueDim;
    const [sb, sh, sn] = qoStrideFields(t);
    return [
      `  ${args}->${sn} = ${w};`,
      `  ${args}->${sh} = (long long)Nq * ${w};`,
      `  ${args}->${sb} = (long long)H * Nq * ${w};`,
    ];
  });
}

/**
 * Launcher checks of the q/out strides (run after the `Nq == 0` early return): non-negative, out
 * rows that do not overlap, multiples of the kernel's vector width so its loads and stores stay
 * aligned. Each message names the offending argument.
 */
export function qoStrideChecks(valueDim: number, vecElems: number, ns: string): string[] {
  const disjoint = `${ns}::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, ${valueDim})`;
  const overlap = `if (!${disjoint}) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, ${valueDim}] = [%d, %d, %d, ${valueDim}])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);`;
  return (['q', 'out'] as const).flatMap((t) => {
    const [sb, sh, sn] = qoStrideFields(t);
    return [
      `if (a.${sb} < 0 || a.${sh} < 0 || a.${sn} < 0) return fail(ATTNC_ERR_ARGS, "${t} strides must be >= 0 (got ${sb} = %lld, ${sh} = %lld, ${sn} = %lld)", a.${sb}, a.${sh}, a.${sn});`,
      ...(t === 'out' ? [overlap] : []),
      `if (a.${sb} % ${vecElems} || a.${sh} % ${vecElems} || a.${sn} % ${vecElems}) return fail(ATTNC_ERR_ARGS, "${t} strides must be multiples of ${vecElems} elements, the kernel's vector loads (got ${sb} = %lld, ${sh} = %lld, ${sn} = %lld)", a.${sb}, a.${sh}, a.${sn});`,
    ];
  });
}

/**
 * Host helper (in the launcher's namespace): whether [n_b, n_h, n_n] rows of w elements at these
 * strides are disjoint. Sufficient test: dims of size > 1 sorted by stride, each stride at least
 * the extent of the smaller ones (a row to begin with). Distinct out rows must not alias: blocks
 * write them concurrently.
 */
export const rowsDisjointFn = [
  '[[maybe_unused]] static bool rows_disjoint(long long sb, int nb, long long sh, int nh, long long sn, int nn, long long w) {',
  '  long long s[3] = {sb, sh, sn}, n[3] = {nb, nh, nn};',
  '  for (int i = 0; i < 3; ++i)',
  '    for (int j = i + 1; j < 3; ++j)',
  '      if (s[j] < s[i]) { long long t = s[i]; s[i] = s[j]; s[j] = t; t = n[i]; n[i] = n[j]; n[j] = t; }',
  '  long long extent = w;',
  '  for (int i = 0; i < 3; ++i) {',
  '    if (n[i] <= 1) continue;',
  '    if (s[i] < extent) return false;',
  '    extent += s[i] * (n[i] - 1);',
  '  }',
  '  return true;',
  '}',
].join('\n');

/** TMA (wgmma-ws): q as a 4-D map (columns, rows, heads, batches) with its strides, as K/V. */
export const qTmaShape = 'a.q, D, a.Nq, a.H, a.B, a.q_stride_n, a.q_stride_h, a.q_stride_b';

/** Coordinates (row, head, batch) of row `row` of head `h` of batch `b` in q's map. */
export const qTmaCoords = (row: string, b: string, h: string): string => `${row}, ${h}, ${b}`;
