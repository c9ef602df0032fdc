// The tensor-core attention core (sm_80+, f16/bf16 in, f32 accumulate), FlashAttention-2 style:
// each warp owns 16 query rows; S = Q·Kᵀ and O += P·V run on mma.sync.m16n8k16 from ldmatrix
// fragments; K/V tiles stream through swizzled shared memory with cp.async, `stages` deep; the
// online softmax stays in registers (base 2, log2 e folded into the score scale). The fused
// modifier and mask apply per accumulator element, whose (row, key) the fragment layout fixes:
// element e of n-tile j of lane (g = lane/4, t = lane%4) is row g + 8·(e/2), key 8j + 2t + e%2.
import type { CoreExprs } from './exprs.js';
import { mmaDeviceHelpers } from './mma-device.js';
import { classifyCode } from './mma-tiles.js';
import type { MmaPlan } from './mma-plan.js';
import type { AttentionCore } from './simt.js';

const indent = (lines: readonly string[], pad: string): string[] =>
  lines.map((l) => (l && !l.startsWith('#') ? pad + l : l));

/** Modifier, tail and mask on one accumulator element s[j][e]; the result in log2 units. */
function elementCode(e: CoreExprs): string[] {
  const tail = 'if constexpr (MASKED) { if (kbase + kk >= a.Nk) y = -INFINITY; }';
  if (e.score === null && e.mask === null) return ['float y = s[j][e] * qscale;', tail, 's[j][e] = y;'];
  return [
    'const int kpos = a.k_offset + kbase + kk;',
    'const float x = s[j][e] * qscale;',
    ...e.elemStmts,
    // With a modifier, qscale is the plain scale: the modifier sees natural units, then log2 e.
    e.score === null ? 'float y = x;' : `float y = (${e.score}) * LOG2E;`,
    tail,
    ...(e.mask === null
      ? []
      : ['/* predicate */', `if constexpr (MASKED) { if (!(${e.mask})) y = -INFINITY; }`]),
    '(void)kpos;',
    's[j][e] = y;',
  ];
}

/** The per-tile body: scores, element step, online softmax, P·V (MASKED: mask and tail checks). */
function tileLambda(e: CoreExprs, plan: MmaPlan): string[] {
  return [
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
    // With Q in registers every k-step must unroll (constant fragment index); otherwise 2 at a
    // time, which stops ptxas hoisting all K fragments at once (spills at D = 128).
    plan.qInRegisters ? '#pragma unroll' : '#pragma unroll 2',
    '  for (int ks = 0; ks < D / 16; ++ks) {',
    '    unsigned qa[4];',
    '    if constexpr (Q_REGS) { qa[0] = qf[ks][0]; qa[1] = qf[ks][1]; qa[2] = qf[ks][2]; qa[3] = qf[ks][3]; }',
    '    else ldsm_x4(qa, Qs + swz<D>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));',
    '#pragma unroll',
    '    for (int j = 0; j < NT; j += 2) {',
    '      unsigned kf[4]; // n-tiles j and j+1 of Kᵀ, k-step ks',
    '      ldsm_x4(kf, Kb + swz<D>(j * 8 + (lane & 7) + (lane >> 4) * 8, ks * 16 + ((lane >> 3) & 1) * 8));',
    '      mma16816(s[j], qa, kf[0], kf[1]);',
    '      mma16816(s[j + 1], qa, kf[2], kf[3]);',
    '    }',
    '  }',
    '#pragma unroll',
    '  for (int j = 0; j < NT; ++j) {',
    '#pragma unroll',
    '    for (int e = 0; e < 4; ++e) {',
    '      const int r = e >> 1, kk = j * 8 + t4 * 2 + (e & 1);',
    '      const int qpos = qpos_r[r];',
    '      (void)r; (void)kk; (void)qpos;',
    ...indent(elementCode(e), '      '),
    '    }',
    '  }',
    '  // Online softmax (base 2) per row; a row is spread over the 4 lanes of a quad. A row with',
    '  // nothing allowed yet keeps m = -inf, and `base` keeps exp2 away from inf - inf.',
    '#pragma unroll',
    '  for (int r = 0; r < 2; ++r) {',
    '    float mx = m[r];',
    '#pragma unroll',
    '    for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));',
    '    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));',
    '    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));',
    '    const float base = mx == -INFINITY ? 0.f : mx;',
    '    const float alpha = exp2f(m[r] - base);',
    '    float sum = 0.f;',
    '#pragma unroll',
    '    for (int j = 0; j < NT; ++j) {',
    '      s[j][2 * r] = exp2f(s[j][2 * r] - base);',
    '      s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - base);',
    '      sum += s[j][2 * r] + s[j][2 * r + 1];',
    '    }',
    '    m[r] = mx;',
    "    l[r] = l[r] * alpha + sum; // this lane's share; the quad is summed once, at the end",
    '#pragma unroll',
    '    for (int n = 0; n < DV / 8; ++n) {',
    '      o[n][2 * r] *= alpha;',
    '      o[n][2 * r + 1] *= alpha;',
    '    }',
    '  }',
    '  // P·V: the score accumulators of n-tiles 2kv, 2kv+1 are exactly the A fragment of k-step kv.',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    '    const unsigned pa[4] = {pack2(s[2 * kv][0], s[2 * kv][1]), pack2(s[2 * kv][2], s[2 * kv][3]),',
    '                            pack2(s[2 * kv + 1][0], s[2 * kv + 1][1]), pack2(s[2 * kv + 1][2], s[2 * kv + 1][3])};',
    '#pragma unroll',
    '    for (int n = 0; n < DV / 8; n += 2) {',
    '      unsigned vf[4]; // n-tiles n and n+1 of V, k-step kv (transposed: V is [key][dv])',
    '      ldsm_x4_t(vf, Vb + swz<DV>(kv * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, n * 8 + (lane >> 4) * 8));',
    '      mma16816(o[n], pa, vf[0], vf[1]);',
    '      mma16816(o[n + 1], pa, vf[2], vf[3]);',
    '    }',
    '  }',
    '};',
  ];
}

function keyHoistCode(e: CoreExprs): string[] {
  if (!e.keyHoists.length) return [];
  return [
    'for (int kk = tid; kk < BK; kk += THREADS) {',
    '  const int kpos = a.k_offset + kt * BK + kk;',
    ...indent(e.keyStmts, '  '),
    '}',
    '__syncthreads();',
  ];
}

function loopCode(e: CoreExprs, stages: number, readsMemory: boolean): string[] {
  if (e.mode === 'empty') return ['// Every tile is empty: no key is ever loaded.'];
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
    '  load_rows<D, BK>(Ks + buf * (BK * D), kg + (size_t)kt * BK * D, a.Nk - kt * BK, tid);',
    '  load_rows<DV, BK>(Vs + buf * (BK * DV), vg + (size_t)kt * BK * DV, a.Nk - kt * BK, tid);',
    '};',
    'bool kt_full, nk_full;',
    'int kt = next_tile(0, kt_full), buf = 0;',
    'if (kt < nkt) load_kv(kt, 0);',
    'cp_commit();',
    'cp_wait<0>(); // Q and the first K/V tile',
    '__syncthreads();',
    ...qFragments(),
    'while (kt < nkt) {',
    '  const int nk = next_tile(kt + 1, nk_full);',
    ...prefetch,
    '  __syncthreads();',
    ...indent(keyHoistCode(e), '  '),
    '  const bool tail = (kt + 1) * BK > a.Nk;',
    '  if (tail || !kt_full) tile(Flag<true>{}, kt, buf);',
    '  else tile(Flag<false>{}, kt, buf); // full tile: no predicate',
    ...after,
    '  kt = nk;',
    '  kt_full = nk_full;',
    '}',
  ];
}

function qFragments(): string[] {
  return [
    "// This warp's 16 rows of Q as A fragments (qf), one per 16-wide k-step, if they stay in",
    '// registers; otherwise each tile re-reads them from shared memory (wide heads: fewer registers).',
    'if constexpr (Q_REGS) {',
    '#pragma unroll',
    '  for (int ks = 0; ks < D / 16; ++ks)',
    '    ldsm_x4(qf[ks], Qs + swz<D>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));',
    '}',
  ];
}

export function mmaCore(plan: MmaPlan): AttentionCore {
  return {
    id: 'mma',
    render: ({ kernel, exprs: e, entry }) => {
      const s = kernel.schedule;
      const decls = [
        ...e.rowHoists.map((h) => `${h.type} ${h.name}[2];`),
        ...e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
      ];
      const code = [
        `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, WARPS = ${plan.warps}, THREADS = WARPS * 32;`,
        "constexpr int NT = BK / 8; // key n-tiles of a warp's score block",
        `constexpr bool Q_REGS = ${plan.qInRegisters}; // Q fragments held in registers across tiles`,
        'static_assert(BQ == 16 * WARPS && BK % 16 == 0 && D % 64 == 0 && DV % 64 == 0, "mma tiling");',
        '',
        ...mmaDeviceHelpers(s.dtype),
        '',
        `extern "C" __global__ void __launch_bounds__(THREADS) ${entry}(const Args a, const float qscale) {`,
        '  extern __shared__ float4 smem4[];',
        '  T* Qs = reinterpret_cast<T*>(smem4); // [BQ][D], swizzled',
        `  T* Ks = Qs + BQ * D;                  // [${plan.stages}][BK][D]`,
        `  T* Vs = Ks + ${plan.stages} * BK * D;              // [${plan.stages}][BK][DV]`,
        ...indent(decls, '  '),
        '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
        '  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);',
        '  // Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start',
        '  // early and the short ones fill the tail of the grid.',
        '  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
        '  const T* kg = static_cast<const T*>(a.k) + (size_t)(b * a.Hkv + hkv) * a.Nk * D;',
        '  const T* vg = static_cast<const T*>(a.v) + (size_t)(b * a.Hkv + hkv) * a.Nk * DV;',
        '  const int nkt = (a.Nk + BK - 1) / BK;',
        '  (void)kg; (void)vg; (void)b; (void)h; (void)g; (void)nkt;',
        ...(e.mode === 'dynamic'
          ? ['  const int q_lo = a.q_offset + q0;', '  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;']
          : []),
        ...(e.mode === 'empty'
          ? ['  (void)Qs; (void)Ks; (void)Vs; (void)t4;']
          : [
              '  load_rows<D, BQ>(Qs, static_cast<const T*>(a.q) + ((size_t)(b * a.H + h) * a.Nq + q0) * D, a.Nq - q0, tid);',
            ]),
        '',
        "  // This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.",
        '  const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};',
        '  const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};',
        '  (void)qpos_r;',
        '  float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};',
        '#pragma unroll',
        '  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
        ...(e.rowStmts.length
          ? [
              '#pragma unroll',
              '  for (int r = 0; r < 2; ++r) {',
              '    const int qpos = qpos_r[r];',
              '    (void)qpos;',
              ...indent(e.rowStmts, '    '),
              '  }',
            ]
          : []),
        '',
        ...(e.mode === 'empty'
          ? []
          : ['  unsigned qf[Q_REGS ? D / 16 : 1][4];', ...indent(tileLambda(e, plan), '  ')]),
        '',
        ...indent(loopCode(e, plan.stages, kernel.summaries.length > 0), '  '),
        '',
        '  // out = o / l (0 for a row with no allowed key), lse = ln(sum exp) (-inf for such a row).',
        '#pragma unroll',
        '  for (int r = 0; r < 2; ++r) {',
        '    float sum = l[r];',
        '    sum += __shfl_xor_sync(0xffffffffu, sum, 1);',
        '    sum += __shfl_xor_sync(0xffffffffu, sum, 2);',
        '    const int i = row_r[r];',
        '    if (i >= a.Nq) continue;',
        '    const size_t row = (size_t)(b * a.H + h) * a.Nq + i;',
        '    const float inv = sum > 0.f ? 1.f / sum : 0.f;',
        '    T* orow = static_cast<T*>(a.out) + row * DV;',
        '#pragma unroll',
        '    for (int n = 0; n < DV / 8; ++n)',
        '      *reinterpret_cast<unsigned*>(orow + n * 8 + t4 * 2) = pack2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);',
        ...(kernel.outputs.lse
          ? [
              '    if (a.lse != nullptr && t4 == 0) a.lse[row] = sum > 0.f ? (m[r] + log2f(sum)) * LN2 : -INFINITY;',
            ]
          : []),
        '  }',
        '}',
      ];
      return {
        code: code.join('\n'),
        threads: s.threads,
        smemBytes: plan.smemBytes,
        vectorElems: 8,
        mapping: {
          core: 'mma',
          instruction: `mma.sync.m16n8k16.${s.dtype}`,
          warps: plan.warps,
          rowsPerWarp: 16,
          stages: plan.stages,
          swizzle: '16B-chunk xor row%8',
          globalVectorElems: 8,
        },
      };
    },
  };
}
