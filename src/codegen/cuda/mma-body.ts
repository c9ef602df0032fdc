// What the two tensor-core cores (mma.sync in mma.ts, wgmma in wgmma.ts) share: both leave the
// scores of a tile in the same per-thread layout — element e of n-tile j of lane (g = lane/4,
// t = lane%4) of warp w is row 16w + g + 8·(e/2), key 8j + 2t + e%2 — so the fused modifier and
// mask, the online softmax, the tile loop and the epilogue are the same text; only the matrix
// products, the shared-memory layout and the loader differ.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { classifyCode } from './mma-tiles.js';
import { routedOf, routeRowState, routeTileBits } from './routing-attn.js';
import { mmaLoadKv } from './kv-load-mma.js';
import { permutationOf } from './permutation.js';
import { indent } from './indent.js';
import { tcDequantCode, tcHeadDecls, type TileLoader } from './dequant-tile.js';
import { residueHelpers } from './residue.js';
import { patchHelpers } from './patch.js';
import { cudaLayout } from './layout.js';

/** The loaders an mma or wgmma core's tiles go through: quantized caches, residues, patches. */
export function tileLoaderCode(kernel: AttentionKernel, loader: TileLoader): string[] {
  return [
    ...tcDequantCode(kernel.formats, cudaLayout(kernel).field, loader),
    ...residueHelpers(kernel, loader.name, loader.swizzle),
    ...patchHelpers(kernel, loader.name, loader.swizzle),
  ];
}

/** The mma and wgmma cores' tile lambda up to S = Q·Kᵀ: the stage's K/V tiles and a zeroed S. */
export const tileLambdaHead: readonly string[] = [
  '// One K/V tile in shared memory. Only MASKED tiles (partial, or past Nk) test per element.',
  'auto tile = [&](auto masked, const int kt, const int buf) {',
  '  constexpr bool MASKED = decltype(masked)::value;',
  '  const T* Kb = Ks + buf * (BK * D);',
  '  const T* Vb = Vs + buf * (BK * DV);',
  '  const int kbase = kt * BK;',
  '  (void)kbase;',
  '  float s[NT][4];',
  '#pragma unroll',
  '  for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
];

/** Modifier, tail and mask on one accumulator element s[j][e]; the result in log2 units. */
export function elementCode(e: CoreExprs): string[] {
  const p = permutationOf(e);
  const keys = p ? p.keyCount : 'a.Nk';
  const tail = `if constexpr (MASKED) { if (kbase + kk >= ${keys}) y = -INFINITY; }`;
  if (e.score === null && e.mask === null) return ['float y = s[j][e] * qscale;', tail, 's[j][e] = y;'];
  return [
    p ? `const int kpos = ${p.kpos('kbase + kk')};` : 'const int kpos = a.k_offset + kbase + kk;',
    'const float x = s[j][e] * qscale;',
    ...e.elemStmts,
    // With a modifier, qscale is the plain scale: the modifier sees natural units, then log2 e.
    e.score === null ? 'float y = x;' : `float y = (${e.score}) * LOG2E;`,
    // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md); a select,
    // only in kernels with a modifier.
    ...(e.score === null ? [] : ['if (isnan(x)) y = x;']),
    tail,
    ...(e.mask === null
      ? []
      : ['/* predicate */', `if constexpr (MASKED) { if (!(${e.mask})) y = -INFINITY; }`]),
    '(void)kpos;',
    's[j][e] = y;',
  ];
}

/** `element` (the step on s[j][e], with r, kk and qpos in scope) over every score of the tile. */
export const elementLoopCode = (element: readonly string[]): string[] => [
  '#pragma unroll',
  'for (int j = 0; j < NT; ++j) {',
  '#pragma unroll',
  '  for (int e = 0; e < 4; ++e) {',
  '    const int r = e >> 1, kk = j * 8 + t4 * 2 + (e & 1);',
  '    const int qpos = qpos_r[r];',
  '    (void)r; (void)kk; (void)qpos;',
  ...indent(element, '    '),
  '  }',
  '}',
];

/** The element step over every score of the tile, then the online softmax (base 2) per row. */
export function softmaxCode(e: CoreExprs): string[] {
  return [
    ...elementLoopCode(elementCode(e)),
    '// Online softmax (base 2) per row; a row is spread over the 4 lanes of a quad. A row with',
    '// nothing allowed yet keeps m = -inf, and `base` keeps exp2 away from inf - inf.',
    '#pragma unroll',
    'for (int r = 0; r < 2; ++r) {',
    '  float mx = m[r];',
    '#pragma unroll',
    '  for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));',
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));',
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));',
    '  const float base = mx == -INFINITY ? 0.f : mx;',
    '  const float alpha = exp2f(m[r] - base);',
    '  float sum = 0.f;',
    '#pragma unroll',
    '  for (int j = 0; j < NT; ++j) {',
    '    s[j][2 * r] = exp2f(s[j][2 * r] - base);',
    '    s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - base);',
    '    sum += s[j][2 * r] + s[j][2 * r + 1];',
    '  }',
    '  m[r] = mx;',
    "  l[r] = l[r] * alpha + sum; // this lane's share; the quad is summed once, at the end",
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n) {',
    '    o[n][2 * r] *= alpha;',
    '    o[n][2 * r + 1] *= alpha;',
    '  }',
    '}',
  ];
}

function keyHoistCode(e: CoreExprs, maskedOnly: boolean): string[] {
  if (!e.keyHoists.length) return [];
  const p = permutationOf(e);
  const code = [
    'for (int kk = tid; kk < BK; kk += THREADS) {',
    p ? `  const int kpos = ${p.kpos('kt * BK + kk')};` : '  const int kpos = a.k_offset + kt * BK + kk;',
    ...indent(e.keyStmts, '  '),
    '}',
    '__syncthreads();',
  ];
  // A full tile evaluates no mask: when only the mask reads the hoists, it skips their loads and
  // the barrier (kt_full and the tail test are uniform over the block).
  if (!maskedOnly || e.scoreUsesKeyHoists || routedOf(e)) return code;
  const keys = p ? p.keyCount : 'a.Nk';
  return [
    `if ((kt + 1) * BK > ${keys} || !kt_full) { // a masked tile: the mask reads the hoists`,
    ...indent(code, '  '),
    '}',
  ];
}

/** How a core stages K/V tiles and readies its operands; the loop around them is shared. */
export interface LoopParts {
  /** The tile loader: `NAME<W, ROWS>(dst, src, valid_rows, tid)`, issuing cp.async. */
  readonly loader: string;
  /** After each cp.async wait, before the barrier (e.g. a proxy fence for wgmma). */
  readonly afterWait: readonly string[];
  /** Before the loop, once Q and the first tile are in shared memory. */
  readonly qInit: readonly string[];
  /**
   * Skip per-key hoists on full tiles when only the mask reads them (a conditional barrier: the
   * mma core at D = 64 spills under it for modality, so each core opts in).
   */
  readonly hoistOnMaskedTilesOnly?: boolean;
}

export function loopCode(e: CoreExprs, stages: number, readsMemory: boolean, p: LoopParts): string[] {
  if (e.mode === 'empty') return ['// Every tile is empty: no key is ever loaded.'];
  const perm = permutationOf(e);
  const prefetch =
    stages > 1
      ? [
          '  if (nk < nkt) load_kv(nk, buf ^ 1); // the next tile streams in while this one computes',
          '  cp_commit();',
          '  cp_wait<1>();',
        ]
      : ['  cp_wait<0>();'];
  const after =
    stages > 1
      ? ['  __syncthreads(); // every warp is done with `buf` before it is refilled', '  buf ^= 1;']
      : ['  __syncthreads();', '  if (nk < nkt) load_kv(nk, 0);', '  cp_commit();'];
  return [
    ...classifyCode(e, readsMemory),
    'auto load_kv = [&](const int kt, const int buf) {',
    ...(perm ? perm.kvLoad(p.loader) : mmaLoadKv(p.loader, false)),
    '};',
    'bool kt_full, nk_full;',
    'int kt = next_tile(0, kt_full), buf = 0;',
    'if (kt < nkt) load_kv(kt, 0);',
    'cp_commit();',
    'cp_wait<0>(); // Q and the first K/V tile',
    ...p.afterWait,
    '__syncthreads();',
    ...p.qInit,
    'while (kt < nkt) {',
    '  const int nk = next_tile(kt + 1, nk_full);',
    ...prefetch,
    ...indent(p.afterWait, '  '),
    '  __syncthreads();',
    ...indent(keyHoistCode(e, p.hoistOnMaskedTilesOnly === true), '  '),
    ...(routedOf(e) ? indent(routeTileBits('2'), '  ') : []),
    `  const bool tail = (kt + 1) * BK > ${perm ? perm.keyCount : 'a.Nk'};`,
    '  if (tail || !kt_full) tile(Flag<true>{}, kt, buf);',
    '  else tile(Flag<false>{}, kt, buf); // full tile: no predicate',
    ...after,
    '  kt = nk;',
    '  kt_full = nk_full;',
    '}',
  ];
}

/** The kernel body around the tile loop: per-block setup, then out = o / l and lse. */
/** After `row_r` (this lane's two rows): positions, accumulators, the row-invariant statements. */
export function rowStateCode(e: CoreExprs): string[] {
  return [
    'const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};',
    '(void)qpos_r;',
    'float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};',
    '#pragma unroll',
    'for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
    ...(e.rowStmts.length
      ? [
          '#pragma unroll',
          'for (int r = 0; r < 2; ++r) {',
          '  const int qpos = qpos_r[r];',
          '  (void)qpos;',
          ...indent(e.rowStmts, '  '),
          '}',
        ]
      : []),
  ];
}

/**
 * out = o / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf). A NaN or +inf score
 * reaches l through exp2 (NaN - base, inf - inf) whatever fmaxf dropped from the row max, so l
 * is NaN and so are out and lse (docs/LANGUAGE.md "Non-finite values"): no per-element test.
 */
export function epilogueCode(lse: boolean): string[] {
  return [
    '#pragma unroll',
    'for (int r = 0; r < 2; ++r) {',
    '  float sum = l[r];',
    '  sum += __shfl_xor_sync(0xffffffffu, sum, 1);',
    '  sum += __shfl_xor_sync(0xffffffffu, sum, 2);',
    '  const int i = row_r[r];',
    '  if (i >= a.Nq) continue;',
    ...(lse ? ['  const size_t row = (size_t)(b * a.H + h) * a.Nq + i; // lse stays packed'] : []),
    '  const float inv = sum == 0.f ? 0.f : 1.f / sum;',
    '  T* orow = out_row(a, b, h, i);',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n)',
    '    *reinterpret_cast<unsigned*>(orow + n * 8 + t4 * 2) = pack2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);',
    ...(lse
      ? [
          '  if (a.lse != nullptr && t4 == 0) a.lse[row] = sum == 0.f ? -INFINITY : (m[r] + log2f(sum)) * LN2;',
        ]
      : []),
    '}',
  ];
}

export function coreBody(
  kernel: AttentionKernel,
  e: CoreExprs,
  parts: { readonly smem: readonly string[]; readonly qLoad: string; readonly tile: readonly string[] },
  loop: readonly string[],
): string[] {
  const paged = kernel.formats.paged !== undefined;
  const decls = [
    ...e.rowHoists.map((h) => `${h.type} ${h.name}[2];`),
    ...e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
  ];
  const r = permutationOf(e);
  // One q-tile's work: the whole block in row order, one unit of a residue class when permuted.
  const unit = [
    ...(r
      ? [r.q0]
      : [
          '// Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start',
          '// early and the short ones fill the tail of the grid.',
          'const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
        ]),
    ...(r ? [] : tcHeadDecls(kernel.formats, 'b', 'hkv', paged)),
    r ? r.nkt : 'const int nkt = (a.Nk + BK - 1) / BK;',
    '(void)kg; (void)vg; (void)b; (void)h; (void)g; (void)nkt;',
    ...(e.mode === 'dynamic'
      ? r
        ? r.qBounds
        : ['const int q_lo = a.q_offset + q0;', 'const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;']
      : []),
    ...(e.mode === 'empty'
      ? ['(void)Qs; (void)Ks; (void)Vs; (void)t4;']
      : [r ? r.qLoad(parts.qLoad) : `${parts.qLoad}<D, BQ>(Qs, q_rows(a, b, h, q0), a.Nq - q0, tid);`]),
    '',
    "// This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.",
    ...(r ? r.rows : ['const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};']),
    ...rowStateCode(e),
    '',
    ...(routedOf(e) && e.mode !== 'empty' ? routeRowState('2', 'row_r[r]') : []),
    ...(e.mode === 'empty' ? [] : parts.tile),
    '',
    ...loop,
    '',
    '// out = o / l (0 for a row with no allowed key), lse = ln(sum exp) (-inf for such a row).',
    ...epilogueCode(kernel.outputs.lse),
  ];
  return [
    ...indent(parts.smem, '  '),
    ...indent(decls, '  '),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    '  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);',
    ...(r ? indent(tcHeadDecls(kernel.formats, 'b', 'hkv', paged), '  ') : []),
    ...indent(r ? r.unitLoop(unit) : unit, '  '),
    '}',
  ];
}
