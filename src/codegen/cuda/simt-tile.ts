// The SIMT core's K/V tile loop and per-tile body (simt.ts): the loop that classifies, stages
// (kv-load-simt.ts) and dispatches each tile, and the `tile` lambda — scores, modifier, mask,
// online softmax (base 2) and P·V on f32 tiles in shared memory.
import type { CoreExprs } from './exprs.js';
import { simtLoadKv } from './kv-load-simt.js';
import { routedOf, routedTileScan, routeTileBits } from './routing-attn.js';
import { indent } from './indent.js';

/** The element step: modifier and mask on s[r][jj] (q·k, already scaled), result in log2 units. */
function elementCode(e: CoreExprs): string[] {
  if (e.score === null && e.mask === null) {
    return [
      'float y = s[r][jj];',
      'if constexpr (TAIL) { if (kbase + kk >= a.Nk) y = -INFINITY; }',
      's[r][jj] = y;',
    ];
  }
  return [
    'const int kpos = a.k_offset + kbase + kk;',
    '(void)kpos; // a mask that never reads k',
    'const float x = s[r][jj];',
    ...e.elemStmts,
    e.score === null ? 'float y = x;' : `float y = ${e.score} * LOG2E;`,
    // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md).
    ...(e.score === null ? [] : ['if (isnan(x)) y = x;']),
    'if constexpr (TAIL) { if (kbase + kk >= a.Nk) y = -INFINITY; }',
    ...(e.mask === null
      ? []
      : ['/* predicate */', `if constexpr (MASKED) { if (!(${e.mask})) y = -INFINITY; }`]),
    's[r][jj] = y;',
  ];
}

/** Dispatch of one loaded tile to the right specialisation of `tile`. */
function dispatch(mode: CoreExprs['mode']): string[] {
  const call = (m: boolean): string =>
    `if (tail) tile(Flag<${m}>{}, Flag<true>{}, kt); else tile(Flag<${m}>{}, Flag<false>{}, kt);`;
  if (mode === 'full') return [call(false)];
  if (mode === 'partial') return [call(true)];
  return [`if (can_false) { ${call(true)} } else { ${call(false)} }`];
}

/** The key tiles of the row block, and (dynamic classes) its query positions [q_lo, q_hi]. */
function tileCount(mode: CoreExprs['mode']): string[] {
  return [
    'const int nkt = (a.Nk + BK - 1) / BK;',
    ...(mode === 'dynamic'
      ? [
          'const int q_lo = a.q_offset + blockIdx.x * BQ;',
          'const int q_hi = a.q_offset + min((int)(blockIdx.x + 1) * BQ, a.Nq) - 1;',
        ]
      : []),
  ];
}

/** The tile loop of a routed kernel: selected tiles only, MASKED unless full (routing-attn.ts). */
function routedTileLoop(e: CoreExprs, keyHoists: readonly string[]): string[] {
  return [
    ...tileCount(e.mode),
    ...routedTileScan(e, '(int)(blockIdx.x * BQ)'),
    'bool route_full;',
    'for (int kt = next_tile(0, route_full); kt < nkt; kt = next_tile(kt + 1, route_full)) {',
    '  __syncthreads(); // the previous tile is no longer read',
    ...indent(simtLoadKv, '  '),
    ...indent(keyHoists, '  '),
    '  __syncthreads();',
    '  const bool tail = (kt + 1) * BK > a.Nk;',
    ...indent(routeTileBits('ROWS'), '  '),
    '  if (!route_full) { if (tail) tile(Flag<true>{}, Flag<true>{}, kt); else tile(Flag<true>{}, Flag<false>{}, kt); }',
    '  else if (tail) tile(Flag<false>{}, Flag<true>{}, kt); else tile(Flag<false>{}, Flag<false>{}, kt);',
    '}',
  ];
}

/**
 * The K/V tile loop: classify (dynamic), stage, hoist per-key values, run `tile`. `afterStage`:
 * lines run on the staged tile before `tile` (qk int8 quantizes K there; they end in a barrier).
 */
export function tileLoop(e: CoreExprs, afterStage: readonly string[] = []): string[] {
  if (e.mode === 'empty') return ['// Every tile is empty: no key is ever loaded.'];
  const classify =
    e.mode === 'dynamic'
      ? [
          'const int k_lo = a.k_offset + kt * BK;',
          'const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;',
          ...e.classify,
          'if (!can_true) continue; // empty tile: skipped, nothing loaded',
        ]
      : [];
  const keyHoists = e.keyHoists.length
    ? [
        'for (int kk = tid; kk < BK; kk += THREADS) {',
        '  const int kpos = a.k_offset + kt * BK + kk;',
        ...indent(e.keyStmts, '  '),
        '}',
      ]
    : [];
  if (routedOf(e)) return routedTileLoop(e, keyHoists);
  return [
    ...tileCount(e.mode),
    'for (int kt = 0; kt < nkt; ++kt) {',
    ...indent(classify, '  '),
    '  __syncthreads(); // the previous tile is no longer read',
    ...indent(simtLoadKv, '  '),
    ...indent(keyHoists, '  '),
    '  __syncthreads();',
    ...indent(afterStage, '  '),
    '  const bool tail = (kt + 1) * BK > a.Nk;',
    ...indent(dispatch(e.mode), '  '),
    '}',
  ];
}

/** The tile lambda; `scaleScores`: lines after the dot products (qk int8's code-sum scaling). */
export function tileLambda(e: CoreExprs, scaleScores: readonly string[] = []): string[] {
  return [
    '// One K/V tile in shared memory: scores, modifier, mask, online softmax, P·V. Only MASKED',
    '// tiles test the mask per element; TAIL tiles drop keys past Nk.',
    'auto tile = [&](auto masked, auto tail_flag, const int kt) {',
    '  constexpr bool MASKED = decltype(masked)::value;',
    '  constexpr bool TAIL = decltype(tail_flag)::value;',
    '  (void)MASKED;',
    '  const int kbase = kt * BK;',
    '#pragma unroll 1',
    '  for (int c0 = 0; c0 < BK; c0 += KC) {',
    '    float s[ROWS][KC];',
    '#pragma unroll',
    '    for (int jj = 0; jj < KC; ++jj) {',
    '      const float* krow = Ks + (c0 + jj) * D;',
    '#pragma unroll',
    '      for (int r = 0; r < ROWS; ++r) s[r][jj] = 0.f;',
    '#pragma unroll',
    '      for (int t = 0; t < D / (VW * TPR); ++t) {',
    '        float kv[VW];',
    '        ld_smem<VW>(kv, krow + VW * (g + TPR * t));',
    '#pragma unroll',
    '        for (int r = 0; r < ROWS; ++r)',
    '#pragma unroll',
    '          for (int u = 0; u < VW; ++u) s[r][jj] = fmaf(qr[r][t * VW + u], kv[u], s[r][jj]);',
    '      }',
    '    }',
    '    // Each lane holds a partial dot over its dims; the xor butterfly leaves the sum in all lanes.',
    '#pragma unroll',
    '    for (int off = TPR / 2; off > 0; off >>= 1)',
    '#pragma unroll',
    '      for (int r = 0; r < ROWS; ++r)',
    '#pragma unroll',
    '        for (int jj = 0; jj < KC; ++jj) s[r][jj] += __shfl_xor_sync(LANES, s[r][jj], off);',
    ...indent(scaleScores, '    '),
    '#pragma unroll',
    '    for (int r = 0; r < ROWS; ++r) {',
    '      const int qpos = row0 + r + a.q_offset;',
    '      (void)qpos;',
    '#pragma unroll',
    '      for (int jj = 0; jj < KC; ++jj) {',
    '        const int kk = c0 + jj;',
    ...indent(elementCode(e), '        '),
    '      }',
    '      // Online softmax over this chunk (base 2). A row with nothing allowed yet keeps m = -inf;',
    '      // `base` keeps exp2 away from inf - inf.',
    '      float mx = m[r];',
    '#pragma unroll',
    '      for (int jj = 0; jj < KC; ++jj) mx = fmaxf(mx, s[r][jj]);',
    '      const float base = mx == -INFINITY ? 0.f : mx;',
    '      const float alpha = exp2f(m[r] - base);',
    '      float sum = 0.f;',
    '#pragma unroll',
    '      for (int jj = 0; jj < KC; ++jj) {',
    '        s[r][jj] = exp2f(s[r][jj] - base);',
    '        sum += s[r][jj];',
    '      }',
    '      m[r] = mx;',
    '      l[r] = l[r] * alpha + sum;',
    '#pragma unroll',
    '      for (int d = 0; d < DV / TPR; ++d) acc[r][d] *= alpha;',
    '    }',
    '#pragma unroll',
    '    for (int jj = 0; jj < KC; ++jj) {',
    '      const float* vrow = Vs + (c0 + jj) * DV;',
    '#pragma unroll',
    '      for (int t = 0; t < DV / (VW * TPR); ++t) {',
    '        float vv[VW];',
    '        ld_smem<VW>(vv, vrow + VW * (g + TPR * t));',
    '#pragma unroll',
    '        for (int r = 0; r < ROWS; ++r)',
    '#pragma unroll',
    '          for (int u = 0; u < VW; ++u) acc[r][t * VW + u] = fmaf(s[r][jj], vv[u], acc[r][t * VW + u]);',
    '      }',
    '    }',
    '  }',
    '};',
  ];
}
