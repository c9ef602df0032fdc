// The token-granular attention of raw-query block routing (token-form.ts says when it runs).
// One warp owns 16 rows: row R of kv head hkv is query token R / G with query head hkv·G + R % G
// (G = H / Hkv), so a run of tokens × the GQA group's heads are stacked as the MMA's M dimension.
// Each thread holds rows gq and gq + 8 of its warp (gq = lane / 4) and, of a tile's scores, the
// columns j·8 + 2·t4 + {0, 1} (t4 = lane % 4): the m16n8k16 accumulator layout, kept by the SIMT
// form too so that the selection walk, masking and softmax are one code for both forms.
// Per row the selection is walked ascending (routing-attn.ts's route_sel / route_hit): the warp
// visits the next key tile that some of its rows selected (a warp-wide min), stages it in its own
// shared memory (cp.async in the mma form), evaluates q·k only there, ands the row's selected-block
// bits with the static mask, and runs an online softmax (base 2) and P·V. Warps never wait on each
// other: no block barrier. Forced first/local blocks are ordinary entries of the selection.
// The matrix products of each form: token-mma.ts (mma.sync) and token-simt.ts (FMA).
// Schedule.tokenOrder 'key' launches the key-major passes instead (token-keymajor*.ts; emitted
// after this kernel, whose mma helpers they use); element and softmax steps: token-steps.ts.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';
import { tokenAttentionName, type TokenPlan } from './token-form.js';
import { tokenMmaParts } from './token-mma.js';
import { tokenSimtParts } from './token-simt.js';
import { elementStep, softmaxStep } from './token-steps.js';
import { keyMajorDeviceCode } from './token-keymajor.js';

/** What a form supplies to the shared kernel body (lines at kernel-body indentation). */
export interface TokenFormParts {
  /** Device helpers before the kernel. */
  readonly helpers: readonly string[];
  /** Dynamic shared memory per warp in bytes, as a C expression. */
  readonly smemPerWarp: string;
  /** Declarations of this warp's shared memory and its query rows (after row_q/row_h/row_ok). */
  readonly setup: readonly string[];
  /** Stages key tile `kbase` (rows past Nk are zero) into this warp's shared memory. */
  readonly stage: readonly string[];
  /** s[j][e] = q·k (unscaled) of the staged tile. */
  readonly scores: readonly string[];
  /** o[rr] *= alpha for the row rr (inside the softmax loop). */
  readonly rescale: readonly string[];
  /** o += P·V with P = s (probabilities). */
  readonly accumulate: readonly string[];
  /** o / l into out for row rr (inv in scope, row pointer orow). */
  readonly store: readonly string[];
}

/** The row walk: per row, the cursor into its ascending selection (route_sel: INT_MAX past it). */
const rowState = [
  "// This thread's two rows: query position, head, selection row and cursor.",
  'const int cap = route_cap(a), G = a.H / a.Hkv;',
  'const long long rows_all = (long long)a.Nq * G;',
  'int row_i[2], row_q[2], row_h[2], tok_p[2], tok_id[2];',
  'bool row_ok[2];',
  'const int* tok_row[2];',
  '#pragma unroll',
  'for (int rr = 0; rr < 2; ++rr) {',
  '  const long long R = ((long long)blockIdx.x * TOK_WARPS + warp) * 16 + gq + 8 * rr;',
  '  row_ok[rr] = R < rows_all;',
  '  row_i[rr] = row_ok[rr] ? (int)(R / G) : 0;',
  '  row_h[rr] = hkv * G + (row_ok[rr] ? (int)(R % G) : 0);',
  '  row_q[rr] = row_i[rr] + a.q_offset;',
  '  tok_row[rr] = row_ok[rr] && cap > 0',
  '      ? a.indices + ((size_t)(b * route_groups(a) + route_group(a, row_h[rr])) * a.Nq + row_i[rr]) * cap',
  '      : nullptr;',
  '  tok_p[rr] = 0;',
  '  tok_id[rr] = route_sel(tok_row[rr], 0, cap);',
  '}',
];

/** Helpers of both forms: key ranges of a block id and the warp-wide minimum. */
const sharedHelpers = [
  '// Key index (0 .. Nk-1) of the last key of block id in the call (may be < 0: before the call).',
  '__device__ __forceinline__ long long tok_last_key(const Args& a, const int id) {',
  '  return min((long long)id * RB + RB, (long long)a.k_offset + a.Nk) - a.k_offset - 1;',
  '}',
  '// The first tile at or after kt holding a key of block id (INT_MAX: no id).',
  '__device__ __forceinline__ int tok_tile_of(const Args& a, const int id, const int kt) {',
  '  if (id == INT_MAX) return INT_MAX;',
  '  const long long lo = max((long long)id * RB, (long long)a.k_offset) - a.k_offset;',
  '  return (int)max((long long)kt, min(lo / TOK_BK, (long long)INT_MAX));',
  '}',
  '__device__ __forceinline__ int tok_warp_min(int v) {',
  '#pragma unroll',
  '  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));',
  '  return v;',
  '}',
];

/** The walk over the tiles some row of this warp selected. */
function tileLoop(e: CoreExprs, p: TokenFormParts): string[] {
  return [
    'const int nkt = (a.Nk + TOK_BK - 1) / TOK_BK;',
    'int kt = tok_warp_min(min(tok_tile_of(a, tok_id[0], 0), tok_tile_of(a, tok_id[1], 0)));',
    '#pragma unroll 1',
    'while (kt < nkt) {',
    '  const int kbase = kt * TOK_BK;',
    ...indent(p.stage, '  '),
    "  // Each row's selected blocks among the tile's (bit i: block kid0 + i; at most 32, token-form.ts).",
    '  const int kid0 = (a.k_offset + kbase) / RB, kid1 = (a.k_offset + min(kbase + TOK_BK, a.Nk) - 1) / RB;',
    '  unsigned tok_bits[2];',
    '#pragma unroll',
    '  for (int rr = 0; rr < 2; ++rr) {',
    '    while (tok_id[rr] < kid0) tok_id[rr] = route_sel(tok_row[rr], ++tok_p[rr], cap);',
    '    unsigned bits = 0u;',
    '    for (int pp = tok_p[rr], id = tok_id[rr]; id <= kid1; id = route_sel(tok_row[rr], ++pp, cap))',
    '      bits |= 1u << (id - kid0);',
    '    tok_bits[rr] = bits;',
    '  }',
    `  float s[TOK_BK / 8][4];`,
    ...indent(p.scores, '  '),
    ...indent(elementStep(e), '  '),
    ...indent(softmaxStep(p.rescale), '  '),
    ...indent(p.accumulate, '  '),
    '  // Past the blocks that end in this tile; the next tile is the first one a row still needs.',
    '  int next = INT_MAX;',
    '#pragma unroll',
    '  for (int rr = 0; rr < 2; ++rr) {',
    '    while (tok_id[rr] != INT_MAX && tok_last_key(a, tok_id[rr]) < kbase + TOK_BK)',
    '      tok_id[rr] = route_sel(tok_row[rr], ++tok_p[rr], cap);',
    '    next = min(next, tok_tile_of(a, tok_id[rr], kt + 1));',
    '  }',
    '  kt = tok_warp_min(next);',
    '  __syncwarp(); // the staged tile is no longer read',
    '}',
  ];
}

/** Ends the token attention's device code (the CPU emulation in test/cuda cuts the core after it). */
export const TOKEN_END = '// ---- end of the token-granular attention ----';

/** Device code of the token attention kernel (after routing.ts's and routing-attn.ts's helpers). */
export function tokenAttentionDeviceCode(k: AttentionKernel, plan: TokenPlan, e: CoreExprs): string {
  const p = plan.form === 'mma' ? tokenMmaParts(k, plan) : tokenSimtParts(k, plan);
  const rowHoists = e.rowHoists.map((x) => `${x.type} ${x.name}[2];`);
  return [
    `// ---- token-granular routed attention, ${plan.form} form (token-attn.ts) ----`,
    `constexpr int TOK_WARPS = ${plan.warps}; // warps per block, each on its own 16 rows`,
    `constexpr int TOK_BK = ${plan.tileKeys}; // keys per staged tile`,
    'constexpr int TOK_THREADS = 32 * TOK_WARPS;',
    ...sharedHelpers,
    ...p.helpers,
    '__host__ __device__ __forceinline__ size_t tok_smem_bytes() {',
    `  return (size_t)TOK_WARPS * (${p.smemPerWarp});`,
    '}',
    '',
    `extern "C" __global__ void __launch_bounds__(TOK_THREADS) ${tokenAttentionName(k)}(const Args a, const float qscale) {`,
    '  extern __shared__ __align__(16) unsigned char tok_smem[];',
    '  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, gq = lane / 4, t4 = lane % 4;',
    '  const int hkv = blockIdx.y, b = blockIdx.z;',
    ...indent(rowState, '  '),
    ...indent(rowHoists, '  '),
    ...(e.rowStmts.length
      ? [
          '#pragma unroll',
          '  for (int r = 0; r < 2; ++r) {',
          '    const int qpos = row_q[r], h = row_h[r];',
          '    (void)qpos; (void)h;',
          ...indent(e.rowStmts, '    '),
          '  }',
        ]
      : []),
    ...indent(p.setup, '  '),
    '  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};',
    ...indent(tileLoop(e, p), '  '),
    '',
    '  // out = o / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf); NaN stays NaN.',
    '#pragma unroll',
    '  for (int rr = 0; rr < 2; ++rr) {',
    '    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);',
    '    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);',
    '    if (!row_ok[rr]) continue;',
    ...(k.outputs.lse
      ? ['    const size_t row = (size_t)(b * a.H + row_h[rr]) * a.Nq + row_i[rr]; // lse stays packed']
      : []),
    '    const float inv = l[rr] == 0.f ? 0.f : 1.f / l[rr];',
    '    T* orow = out_row(a, b, row_h[rr], row_i[rr]);',
    ...indent(p.store, '    '),
    ...(k.outputs.lse
      ? [
          '    if (a.lse != nullptr && t4 == 0) a.lse[row] = l[rr] == 0.f ? -INFINITY : (m[rr] + log2f(l[rr])) * LN2;',
        ]
      : []),
    '  }',
    '}',
    ...(plan.keyMajor ? ['', keyMajorDeviceCode(k, plan, e)] : []),
    TOKEN_END,
  ].join('\n');
}
