// The patch layout of the tensor-core cores for 2-D neighbourhood masks (IR:
// passes/neighbourhood.ts). A work unit is one 2-D patch of the W-wide image, PH rows × PW columns
// (PH·PW = BQ, powers of two): its query rows are the patch's pixels, gathered, and its keys are
// the patch's neighbourhood box — image rows y0 - ry .. y1 + ry, columns x0 - rx .. x1 + rx
// clipped to the image — packed row after row. Box positions increase with the slot index, so the
// slots outside the key range are a prefix and a suffix: the unit's keys are the valid middle run,
// contiguous like any key range (tiles, tail, classifier bounds work unchanged). The whole mask
// is still evaluated on them. When the layout cannot help or could be wrong (W < 1; positions
// near the int range, where the mask's wrapping differences could see far keys; more units than
// 4× the grid plus 16) a unit is a plain q-tile over every key, as without the record.
import type { AttentionKernel, PatchTweak } from '../../ir/kernel.js';
import {
  gatherTableLoader,
  patchTweaksOf,
  rowTableLoad,
  tweakDecls,
  unitInRegisters,
  visitAllGuard,
} from './patch-tweaks.js';
import { boxUnitBody, patchBoxSource } from './patch-box.js';

/** Engines whose cores implement the permuted mappings (the mma-body.ts family). */
const patchingEngines: ReadonlySet<string> = new Set(['mma', 'wgmma']);

export function patchActive(kernel: AttentionKernel): boolean {
  return kernel.neighbourhood !== undefined && patchingEngines.has(kernel.schedule.engine ?? 'simt');
}

/**
 * The unit arithmetic as host/device functions: the same text runs in the kernel and, with the
 * qualifiers defined away, in the CPU tests (test/cuda/patch.test.ts).
 */
export const patchUnitSource: readonly string[] = [
  '// 2-D patches of a W-wide image (neighbourhood masks). Positions p are pixels (p / W, p % W),',
  '// floor division. Unit u: query rows row(i), i < BQ (Nq when pixel i is not a query), and keys',
  '// key(j), j < nk (indices into k). `plain`: unit u is q-tile u over all keys.',
  'struct PatchUnit {',
  "  int plain, pw_log, W, nk, q_lo, q_hi; // q_lo..q_hi: the rows' bounding positions",
  '  int ky0, kx0, L, first, qo, ko, Nq; // key box; 32-bit by patch_safe (registers in the tile loop)',
  '  long long y0, x0;',
  '};',
  '__host__ __device__ inline long long floor_div_ll(long long a, long long b) {',
  '  const long long t = a / b;',
  '  return (t * b != a && ((a < 0) != (b < 0))) ? t - 1 : t;',
  '}',
  '__host__ __device__ inline int pow2_ceil_log(long long n) {',
  '  int l = 0;',
  '  while ((1ll << l) < n && l < 30) ++l;',
  '  return l;',
  '}',
  '// The patch shape: PH = 2^(log BQ - pw_log) rows of PW = 2^pw_log pixels, near square, no taller',
  '// than the image rows the queries cover and no wider than the image (powers of two).',
  '__host__ __device__ inline int patch_pw_log(long long rows_span, int W, int BQ) {',
  '  const int bq_log = pow2_ceil_log(BQ);',
  '  int ph_log = bq_log / 2;',
  '  const int span_log = pow2_ceil_log(rows_span);',
  '  if (ph_log > span_log) ph_log = span_log;',
  '  int pw_log = bq_log - ph_log;',
  '  const int w_log = pow2_ceil_log(W);',
  '  if (pw_log > w_log) pw_log = w_log;',
  '  return pw_log;',
  '}',
  "// Positions and W within 2^29: the mask's int differences (q / W - k / W, q % W - k % W) cannot",
  '// wrap, and key slots and positions fit the 32-bit arithmetic of patch_key.',
  '__host__ __device__ inline bool patch_safe(int W, int Nq, int Nk, int qo, int ko) {',
  '  const long long lim = 1ll << 29;',
  '  return W >= 1 && W <= lim && qo >= -lim && (long long)qo + Nq <= lim && ko >= -lim && (long long)ko + Nk <= lim;',
  '}',
  'struct PatchGrid {',
  '  int plain, pw_log;',
  '  long long ya, rows_span, pr, pc;',
  '};',
  '__host__ __device__ inline PatchGrid patch_grid(int W, int Nq, int Nk, int qo, int ko, int BQ, int grid) {',
  '  PatchGrid g;',
  '  g.plain = 1;',
  '  g.pw_log = 0;',
  '  g.ya = g.rows_span = g.pr = 0;',
  '  g.pc = 1;',
  '  if (Nq <= 0 || !patch_safe(W, Nq, Nk, qo, ko)) return g;',
  '  g.ya = floor_div_ll(qo, W);',
  '  g.rows_span = floor_div_ll((long long)qo + Nq - 1, W) - g.ya + 1;',
  '  g.pw_log = patch_pw_log(g.rows_span, W, BQ);',
  '  const long long ph = BQ >> g.pw_log, pw = 1ll << g.pw_log;',
  '  g.pr = (g.rows_span + ph - 1) / ph;',
  '  g.pc = (W + pw - 1) / pw;',
  '  g.plain = g.pr * g.pc > 4ll * grid + 16;',
  '  return g;',
  '}',
  '__host__ __device__ inline int patch_units(const PatchGrid& g, int Nq, int BQ) {',
  '  return g.plain ? (Nq + BQ - 1) / BQ : (int)(g.pr * g.pc);',
  '}',
  '// Box slots (rows ky0.., columns kx0..kx0 + L - 1) whose position is below p.',
  '__host__ __device__ inline long long patch_slots_below(const PatchUnit& u, long long rows, long long p) {',
  '  const long long py = floor_div_ll(p, u.W), px = p - py * u.W;',
  '  if (py < u.ky0) return 0;',
  '  if (py >= u.ky0 + rows) return rows * u.L;',
  '  const long long in_row = px - u.kx0, L = u.L;',
  '  return (py - u.ky0) * L + (in_row < 0 ? 0 : in_row > L ? L : in_row);',
  '}',
  '__host__ __device__ inline PatchUnit patch_unit(const PatchGrid& g, int unit, int W, int ry, int rx, int Nq, int Nk, int qo, int ko, int BQ) {',
  '  PatchUnit u;',
  '  u.plain = g.plain;',
  '  u.pw_log = g.pw_log;',
  '  u.W = W;',
  '  u.qo = qo;',
  '  u.ko = ko;',
  '  u.Nq = Nq;',
  '  u.y0 = u.x0 = u.ky0 = u.kx0 = u.first = 0;',
  '  u.L = 1;',
  '  if (g.plain) {',
  "    u.x0 = (long long)unit * BQ; // the q-tile's first row",
  '    u.nk = Nk;',
  '    u.q_lo = (int)(qo + u.x0);',
  '    u.q_hi = (int)(qo + (u.x0 + BQ < Nq ? u.x0 + BQ : Nq) - 1);',
  '    return u;',
  '  }',
  '  const long long ph = BQ >> g.pw_log, pw = 1ll << g.pw_log;',
  '  u.y0 = g.ya + (unit / g.pc) * ph;',
  '  u.x0 = (unit % g.pc) * pw;',
  '  const long long x1 = u.x0 + pw - 1 < W - 1 ? u.x0 + pw - 1 : W - 1;',
  '  const long long lo = u.y0 * W + u.x0, hi = (u.y0 + ph - 1) * W + x1;',
  '  const long long qa = lo > qo ? lo : qo, qb = hi < (long long)qo + Nq - 1 ? hi : (long long)qo + Nq - 1;',
  '  u.q_lo = (int)qa;',
  '  u.q_hi = (int)qb; // q_lo > q_hi: no query in the patch',
  '  u.nk = 0;',
  '  if (ry < 0 || rx < 0 || qa > qb) return u; // a negative radius allows nothing',
  '  // Box rows clamped to the image rows of the keys, so slot counts stay below Nk + 2W.',
  '  const long long ka = floor_div_ll(ko, W), kb = floor_div_ll((long long)ko + Nk - 1, W);',
  '  u.ky0 = (int)(u.y0 - ry > ka ? u.y0 - ry : ka);',
  '  const long long ky1 = u.y0 + ph - 1 + ry < kb ? u.y0 + ph - 1 + ry : kb;',
  '  const long long rows = ky1 >= u.ky0 ? ky1 - u.ky0 + 1 : 0;',
  '  u.kx0 = (int)(u.x0 - rx > 0 ? u.x0 - rx : 0);',
  '  const long long kx1 = x1 + rx < W - 1 ? x1 + rx : W - 1;',
  '  u.L = (int)(kx1 - u.kx0 + 1);',
  '  u.first = (int)patch_slots_below(u, rows, ko);',
  '  u.nk = (int)(patch_slots_below(u, rows, (long long)ko + Nk) - u.first);',
  '  return u;',
  '}',
  '// Query row of unit-local index i (Nq when pixel i is outside the image or the queries).',
  '__host__ __device__ inline int patch_row(const PatchUnit& u, int i) {',
  '  if (u.plain) return u.x0 + i < u.Nq ? (int)(u.x0 + i) : (int)u.Nq;',
  '  const long long x = u.x0 + (i & ((1 << u.pw_log) - 1));',
  '  const long long p = (u.y0 + (i >> u.pw_log)) * u.W + x - u.qo;',
  '  return x < u.W && p >= 0 && p < u.Nq ? (int)p : (int)u.Nq;',
  '}',
  '// Key index of unit-local key j < nk.',
  '__host__ __device__ inline int patch_key(const PatchUnit& u, int j) {',
  '  if (u.plain) return j;',
  '  // 32-bit: slots < Nk + 2W and positions within ±2^30 (patch_safe); one division per call.',
  '  const unsigned t = (unsigned)(u.first + j), L = (unsigned)u.L, row = t / L;',
  '  return (u.ky0 + (int)row) * u.W + u.kx0 + (int)(t - row * L) - u.ko;',
  '}',
];

/** `NAME_gather<W, ROWS>(dst, base, row_of, tid)`: `loader` over rows row_of(r) of base (-1: zeros): a packed pointer or a KvRows. */
export function gatherLoader(loader: string, swizzle: string): string[] {
  return [
    `// ${loader} over gathered rows: row r of the tile is row row_of(r) of base (< 0: zeros).`,
    'template <int W, int ROWS, class Src, class RowOf>',
    `__device__ __forceinline__ void ${loader}_gather(T* dst, const Src& base, const RowOf& row_of, int tid) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '  // Not unrolled: each step divides (patch_key), and unrolled steps would hold their quotients',
    '  // in registers the score tile needs.',
    '#pragma unroll 1',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % THREADS == 0 || idx < TOTAL) {',
    '      const int src = row_of(r);',
    '      const bool ok = src >= 0;',
    `      cp_async16(dst + ${swizzle}, row_addr(base, ok ? src : 0, W) + c * 8, ok);`, // kv-rows.ts
    '    }',
    '  }',
    '}',
  ];
}

/** The helpers a patched core adds after its device helpers. */
export function patchHelpers(kernel: AttentionKernel, loader: string, swizzle: string): string[] {
  if (!patchActive(kernel)) return [];
  const tweaks = patchTweaksOf(kernel);
  const table = tweaks.has('rowTable') ? ['', ...gatherTableLoader(loader, swizzle)] : [];
  const box = tweaks.has('boxMask') ? ['', ...patchBoxSource] : [];
  return ['', ...patchUnitSource, ...box, '', ...gatherLoader(loader, swizzle), ...table];
}

/** C texts of W and the radii (literals or param fields). */
export interface PatchTexts {
  readonly width: string;
  readonly rowRadius: string;
  readonly colRadius: string;
  /** Schedule.patchTweaks (patch-tweaks.ts). */
  readonly tweaks: ReadonlySet<PatchTweak>;
}

/** A gather's row_of for key tile `tile` of unit `pu` (BK slots of its box; -1: past its keys). */
export const keyRow = (tile: string): string =>
  `[&](const int r) { const int j = ${tile} * BK + r; return j < pu.nk ? patch_key(pu, j) : -1; }`;

/** A gather's row_of for the query rows of unit `pu` (-1: a pixel that is no query). */
export const queryRow = '[&](const int r) { const int i = patch_row(pu, r); return i < a.Nq ? i : -1; }';

/** Per-unit code of the patch layout, in the shape of residue.ts's `perm` (see permutation.ts). */
export function patchPerm(t: PatchTexts) {
  const box = t.tweaks.has('boxMask');
  return {
    // The unit lives in shared memory, not registers: the tile loop reads a few fields per tile,
    // and the score and output accumulators need every register (an array in registers spills).
    unitLoop: (body: readonly string[]): string[] => [
      `const int PW_ = ${t.width}, PRY = ${t.rowRadius}, PRX = ${t.colRadius}; // image width, radii`,
      ...tweakDecls(t.tweaks),
      ...(t.tweaks.has('unitRegs')
        ? unitInRegisters(box)
        : [
            '__shared__ PatchUnit pu_s;',
            'const PatchUnit& pu = pu_s;',
            'const int units = patch_units(patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x), a.Nq, BQ);',
            'for (int iu = blockIdx.x; iu < units; iu += gridDim.x) {',
            '  __syncthreads(); // every thread is done with the previous unit',
            '  if (threadIdx.x == 0)',
            '    pu_s = patch_unit(patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x), iu, PW_, PRY, PRX,',
            '                      a.Nq, a.Nk, a.q_offset, a.k_offset, BQ);',
            '  __syncthreads();',
          ]),
      '  if (pu.q_lo > pu.q_hi) continue; // no query in this patch (uniform over the block)',
      ...(box ? boxUnitBody(body) : body.map((l) => (l && !l.startsWith('#') ? '  ' + l : l))),
      '  __syncthreads(); // shared memory is reused by the next unit',
      '}',
    ],
    q0: 'const int q0 = 0; (void)q0; // rows are gathered by patch_row',
    nkt: 'const int nkt = (pu.nk + BK - 1) / BK;',
    qBounds: ['const int q_lo = pu.q_lo;', 'const int q_hi = pu.q_hi;'],
    qLoad: (loader: string): string => `${loader}_gather<D, BQ>(Qs, q_rows(a, b, h, 0), ${queryRow}, tid);`,
    rows: [
      'const int row_r[2] = {patch_row(pu, warp * 16 + g), patch_row(pu, warp * 16 + g + 8)}; // Nq: none',
      ...(box
        ? [
            'const unsigned pqm[2] = {PBOX ? patch_query_bits(pu, warp * 16 + g) : 0u,',
            '                         PBOX ? patch_query_bits(pu, warp * 16 + g + 8) : 0u}; // boxMask',
            '(void)pqm;',
          ]
        : []),
    ],
    kpos: (j: string): string => `a.k_offset + patch_key(pu, ${j})`,
    // visitAll in a box unit (PBOX: never a plain one): the classifier calls every tile non-empty.
    everyTile: box && t.tweaks.has('visitAll') ? 'PBOX' : undefined,
    keyCount: 'pu.nk',
    kBounds: [
      ...(t.tweaks.has('visitAll') ? [visitAllGuard] : []),
      'const int k_lo = a.k_offset + patch_key(pu, kt * BK);',
      'const int k_hi = a.k_offset + patch_key(pu, min((kt + 1) * BK, pu.nk) - 1);',
    ],
    kvLoad: (loader: string): string[] =>
      t.tweaks.has('rowTable')
        ? rowTableLoad(loader, box)
        : [
            `  ${loader}_gather<D, BK>(Ks + buf * (BK * D), kg, ${keyRow('kt')}, tid);`,
            `  ${loader}_gather<DV, BK>(Vs + buf * (BK * DV), vg, ${keyRow('kt')}, tid);`,
          ],
  };
}
