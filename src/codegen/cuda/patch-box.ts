// Schedule.patchTweaks 'boxMask' (with unitRegs and rowTable, which it implies): the neighbourhood
// mask of a patch unit as two bit words. The patch shape is clamped to at most 16 rows and 16
// columns (patch_grid_box), so a query is one row bit (0..15) and one column bit (16..31) of its
// patch; a key's word holds the patch rows and columns within the radii of its pixel, computed
// once per tile beside its row in the table. An element is allowed when the key's word has both
// of the query's bits: an AND and a compare per score instead of two hoist loads, two differences,
// two absolute values and two compares. Only for a mask that is exactly the two conjuncts (no
// other conjunct, no score modifier); plain fallback units (patch.ts) run the general mask, the
// unit body instantiated for both (PBOX).
import type { AttentionKernel } from '../../ir/kernel.js';
import { Op } from '../../ir/ops.js';
import { conjuncts, findNeighbourhood } from '../../ir/passes/neighbourhood.js';
import type { CoreExprs } from './exprs.js';

/** Host/device text, after patchUnitSource (the host test in test/cuda/patch.test.ts runs it too). */
export const patchBoxSource: readonly string[] = [
  '// boxMask: the patch shape clamped to at most 16 rows and 16 columns (PH·PW = BQ ≤ 256), so',
  "// that a query's place in its patch is a row bit (0..15) and a column bit (16..31) of a word.",
  '__host__ __device__ inline PatchGrid patch_grid_box(PatchGrid g, int W, int BQ, int grid) {',
  '  if (g.plain) return g;',
  '  const int bq_log = pow2_ceil_log(BQ);',
  '  int pw_log = g.pw_log < 4 ? g.pw_log : 4;',
  '  if (bq_log - pw_log > 4) pw_log = bq_log - 4;',
  '  const long long ph = BQ >> pw_log, pw = 1ll << pw_log;',
  '  g.pw_log = pw_log;',
  '  g.pr = (g.rows_span + ph - 1) / ph;',
  '  g.pc = (W + pw - 1) / pw;',
  '  g.plain = g.pr * g.pc > 4ll * grid + 16;',
  '  return g;',
  '}',
  '// Bits lo..hi of a 16-bit run (clipped to 0..15; none when lo > hi).',
  '__host__ __device__ inline unsigned patch_bit_run(long long lo, long long hi) {',
  '  lo = lo < 0 ? 0 : lo;',
  '  hi = hi > 15 ? 15 : hi;',
  '  return lo > hi ? 0u : (2u << hi) - (1u << lo);',
  '}',
  '// The patch rows (bits 0..15) and columns (16..31) within the radii of key j of the unit (0: none).',
  '__host__ __device__ inline unsigned patch_key_bits(const PatchUnit& u, int j, int ry, int rx) {',
  '  if (j >= u.nk) return 0u;',
  '  const unsigned t = (unsigned)(u.first + j), L = (unsigned)u.L, row = t / L;',
  '  const long long ky = (long long)u.ky0 + row, kx = (long long)u.kx0 + (t - row * L);',
  '  return patch_bit_run(ky - ry - u.y0, ky + ry - u.y0) | patch_bit_run(kx - rx - u.x0, kx + rx - u.x0) << 16;',
  '}',
  "// Unit-local query i's row and column bits (patch_grid_box: both below 16).",
  '__host__ __device__ inline unsigned patch_query_bits(const PatchUnit& u, int i) {',
  '  return (1u << (i >> u.pw_log)) | (1u << (16 + (i & ((1 << u.pw_log) - 1))));',
  '}',
];

/** The mask is the neighbourhood's two conjuncts and nothing else, with no score modifier. */
export function boxMaskApplies(kernel: AttentionKernel): boolean {
  const n = findNeighbourhood(kernel.mask);
  const plainScore = kernel.score.op === Op.VAR && kernel.score.arg === 'score';
  return n !== undefined && conjuncts(kernel.mask).length === 2 && plainScore;
}

/**
 * The element mask and key hoists under boxMask: the bit test in box units (PBOX, a constexpr of
 * the unit body), the general mask in plain ones; the hoists only feed the general mask.
 */
export function withBoxMask(e: CoreExprs): CoreExprs {
  if (e.mask === null || e.score !== null) return e;
  return {
    ...e,
    mask: `(PBOX ? ((pkb_s[buf][kk] & pqm[r]) == pqm[r]) : (${e.mask}))`,
    keyStmts: e.keyStmts.length ? ['if constexpr (!PBOX) {', ...e.keyStmts.map((l) => '  ' + l), '}'] : [],
  };
}

/** The unit body as a lambda instantiated for box units and for plain ones. */
export function boxUnitBody(body: readonly string[]): string[] {
  return [
    '  auto unit_body = [&](auto box) {',
    '    constexpr bool PBOX = decltype(box)::value; // boxMask: the bit-word mask (not a plain unit)',
    ...body.map((l) => (l && !l.startsWith('#') ? '    ' + l : l)),
    '  };',
    '  if (pu.plain) unit_body(Flag<false>{});',
    '  else unit_body(Flag<true>{});',
  ];
}
