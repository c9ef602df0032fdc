// The SIMT flash-attention core: FMA units only, f32 everywhere on chip. One block per
// (q-tile, head, batch); K/V tiles staged in shared memory as f32; online softmax in base 2.
// A core is the part of the kernel a tensor-core variant replaces: it gets the rendered
// expressions (exprs.ts) and the shared prelude (storage type T, to_f32/from_f32, VecT, Flag,
// Args, helpers) and must provide `<entry>(const Args a, const float qscale)` launched on grid
// [cdiv(Nq, blockQ), H, B] with `threads` threads and `smemBytes` of dynamic shared memory.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { simtLoadKv, simtLoadTile } from './kv-load-simt.js';
import { kvHeadPtrDecls } from './kv-rows.js';
import type { SimtPlan } from './plan.js';
import { routedOf, routedTileScan, routeRowState, routeTileBits } from './routing-attn.js';

export interface CoreSpec {
  readonly kernel: AttentionKernel;
  readonly exprs: CoreExprs;
  readonly entry: string;
}

export interface CoreOutput {
  readonly code: string;
  readonly threads: number;
  readonly smemBytes: number;
  /** Global-memory vector width (elements) of q/k/v/out: the launcher checks their alignment. */
  readonly vectorElems: number;
  /** Human-readable mapping, for the manifest. */
  readonly mapping: Readonly<Record<string, number | string>>;
}

export interface AttentionCore {
  readonly id: string;
  render(spec: CoreSpec): CoreOutput;
}

// Pragmas stay in column 0, like the rest of the file's.
const indent = (lines: readonly string[], pad: string): string[] =>
  lines.map((l) => (l && !l.startsWith('#') ? pad + l : l));

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

/** The tile loop of a routed kernel: selected tiles only, MASKED unless full (routing-attn.ts). */
function routedTileLoop(e: CoreExprs, keyHoists: readonly string[]): string[] {
  return [
    'const int nkt = (a.Nk + BK - 1) / BK;',
    ...(e.mode === 'dynamic'
      ? [
          'const int q_lo = a.q_offset + blockIdx.x * BQ;',
          'const int q_hi = a.q_offset + min((int)(blockIdx.x + 1) * BQ, a.Nq) - 1;',
        ]
      : []),
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

function tileLoop(e: CoreExprs): string[] {
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
    'const int nkt = (a.Nk + BK - 1) / BK;',
    ...(e.mode === 'dynamic'
      ? [
          'const int q_lo = a.q_offset + blockIdx.x * BQ;',
          'const int q_hi = a.q_offset + min((int)(blockIdx.x + 1) * BQ, a.Nq) - 1;',
        ]
      : []),
    'for (int kt = 0; kt < nkt; ++kt) {',
    ...indent(classify, '  '),
    '  __syncthreads(); // the previous tile is no longer read',
    ...indent(simtLoadKv, '  '),
    ...indent(keyHoists, '  '),
    '  __syncthreads();',
    '  const bool tail = (kt + 1) * BK > a.Nk;',
    ...indent(dispatch(e.mode), '  '),
    '}',
  ];
}

function tileLambda(e: CoreExprs): string[] {
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

export function simtCore(plan: SimtPlan): AttentionCore {
  return {
    id: 'simt',
    render: ({ kernel, exprs: e, entry }) => {
      const s = kernel.schedule;
      const decls = [
        ...e.rowHoists.map((h) => `${h.type} ${h.name}[ROWS];`),
        ...e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
      ];
      const code = [
        `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, THREADS = ${s.threads};`,
        `constexpr int ROWS = ${plan.rows}, TPR = ${plan.tpr}, VW = ${plan.vw}, KC = ${plan.kc}, GV = ${plan.gv};`,
        'constexpr unsigned LANES = THREADS >= 32 ? 0xffffffffu : ((1u << THREADS) - 1u);',
        'static_assert(BQ == ROWS * (THREADS / TPR), "rows x groups must cover the q tile");',
        '',
        'template <int N>',
        '__device__ __forceinline__ void ld_smem(float (&dst)[N], const float* src) {',
        '  if constexpr (N == 4) {',
        '    const float4 t = *reinterpret_cast<const float4*>(src);',
        '    dst[0] = t.x; dst[1] = t.y; dst[2] = t.z; dst[3] = t.w;',
        '  } else if constexpr (N == 2) {',
        '    const float2 t = *reinterpret_cast<const float2*>(src);',
        '    dst[0] = t.x; dst[1] = t.y;',
        '  } else {',
        '    dst[0] = src[0];',
        '  }',
        '}',
        '',
        ...simtLoadTile(),
        '',
        `extern "C" __global__ void __launch_bounds__(THREADS) ${entry}(const Args a, const float qscale) {`,
        '  extern __shared__ float4 smem4[];',
        '  float* Ks = reinterpret_cast<float*>(smem4); // [BK][D]',
        '  float* Vs = Ks + BK * D;                      // [BK][DV]',
        ...indent(decls, '  '),
        '  const int tid = threadIdx.x, g = tid % TPR;',
        '  const int row0 = blockIdx.x * BQ + (tid / TPR) * ROWS;',
        '  const int h = blockIdx.y, b = blockIdx.z;',
        '  const int hkv = h / (a.H / a.Hkv);',
        ...indent(kvHeadPtrDecls({ k: 'kg', v: 'vg' }, 'b', 'hkv'), '  '),
        '  (void)kg; (void)vg; (void)b; (void)h;',
        '',
        "  // This lane's dims (chunks g, g+TPR, … of VW) of each of its rows: q pre-scaled, accumulators.",
        '  float qr[ROWS][D / TPR], acc[ROWS][DV / TPR], m[ROWS], l[ROWS];',
        '#pragma unroll',
        '  for (int r = 0; r < ROWS; ++r) {',
        '    const int i = row0 + r;',
        '    const T* qrow = static_cast<const T*>(a.q) + ((size_t)(b * a.H + h) * a.Nq + i) * D;',
        '#pragma unroll',
        '    for (int t = 0; t < D / (VW * TPR); ++t) {',
        '      const VecT<VW> x = i < a.Nq ? *reinterpret_cast<const VecT<VW>*>(qrow + VW * (g + TPR * t)) : VecT<VW>::zero();',
        '#pragma unroll',
        '      for (int u = 0; u < VW; ++u) qr[r][t * VW + u] = to_f32(x.v[u]) * qscale;',
        '    }',
        '#pragma unroll',
        '    for (int d = 0; d < DV / TPR; ++d) acc[r][d] = 0.f;',
        '    m[r] = -INFINITY;',
        '    l[r] = 0.f;',
        ...(e.rowStmts.length
          ? [
              '    {',
              '      const int qpos = i + a.q_offset;',
              '      (void)qpos;',
              ...indent(e.rowStmts, '      '),
              '    }',
            ]
          : []),
        '  }',
        '',
        ...(routedOf(e) && e.mode !== 'empty' ? indent(routeRowState('ROWS', 'row0 + r'), '  ') : []),
        ...(e.mode === 'empty' ? [] : indent(tileLambda(e), '  ')),
        '',
        ...indent(tileLoop(e), '  '),
        '',
        '  // out = acc / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf). A NaN or +inf',
        '  // score reaches l through exp2 (NaN - base, inf - inf), so l is NaN and so are out and lse.',
        '#pragma unroll',
        '  for (int r = 0; r < ROWS; ++r) {',
        '    const int i = row0 + r;',
        '    if (i >= a.Nq) continue;',
        '    const size_t row = (size_t)(b * a.H + h) * a.Nq + i;',
        '    const float inv = l[r] == 0.f ? 0.f : 1.f / l[r];',
        '    T* orow = static_cast<T*>(a.out) + row * DV;',
        '#pragma unroll',
        '    for (int t = 0; t < DV / (VW * TPR); ++t) {',
        '      VecT<VW> o;',
        '#pragma unroll',
        '      for (int u = 0; u < VW; ++u) o.v[u] = from_f32(acc[r][t * VW + u] * inv);',
        '      *reinterpret_cast<VecT<VW>*>(orow + VW * (g + TPR * t)) = o;',
        '    }',
        ...(kernel.outputs.lse
          ? [
              '    if (a.lse != nullptr && g == 0) a.lse[row] = l[r] == 0.f ? -INFINITY : (m[r] + log2f(l[r])) * LN2;',
            ]
          : []),
        '  }',
        '}',
      ];
      return {
        code: code.join('\n'),
        threads: s.threads,
        smemBytes: plan.smemBytes,
        vectorElems: plan.gv,
        mapping: {
          core: 'simt',
          rowsPerThread: plan.rows,
          threadsPerRow: plan.tpr,
          smemVectorWidth: plan.vw,
          keysPerSoftmaxStep: plan.kc,
          globalVectorElems: plan.gv,
        },
      };
    },
  };
}
