// The deterministic mode's dQ kernel of the tensor-core CUDA backward (backward-mma.ts): a CTA per
// q-tile of BQ = 16·WARPS rows (a warp per 16 rows, the forward's layout) over the key tiles of
// its head, skipping empty ones: dP = dO·Vᵀ, S = Q·Kᵀ, then per element P, dscore′ = P·(dP − delta)
// and dS in place, then dQ += dS·K from the packed accumulators. No atomics: each dq row has one
// writer. The f32 param gradients are summed here too, per thread, then over the CTA in a fixed
// order into its own slice of `partials`; bwd_reduce adds the slices in CTA order. Under residue
// classes or 2-D patches the CTA loops over units of that order instead (backward-dq-order.ts).
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { nextTile } from './backward-dkdv-parts.js';
import { dqOrderOf, type DqOrder } from './backward-dq-order.js';
import { gemmP, gemmT } from './backward-mma-tile.js';
import { indent } from './indent.js';
import { voidIfUnread } from './unused.js';

/** Keys per step of bwd_dq. */
export const DQ_BK = 64;

function elementStep(x: BackwardMmaExprs, o: DqOrder): string[] {
  const maskTest = o.mask ? [...o.mask.stmts, `ok = ok && (${o.mask.text});`] : [];
  // A score that ignores `x` (`score exp(c)`) leaves it unread: a (void) cast keeps nvcc quiet.
  const element = voidIfUnread(
    [
      'const float x = s[j][e] * a.scale;',
      'bool ok = true;',
      'if constexpr (MASKED) {',
      `  ok = ${o.elem.ok};`,
      ...indent(maskTest, '  '),
      '}',
      ...x.elemStmts,
      `const float p = ok ? exp2f((${x.score}) * LOG2E - l2[e >> 1]) : 0.f;`,
      "const float dsp = p * (dp[j][e] - dl[e >> 1]); // dL/dscore'",
      ...x.dParams.map((c, n) => `if (ok) gp[${n}] += dsp * (${c.text});`),
      `s[j][e] = ok ? dsp * (${x.dScore.text}) : 0.f;`,
    ],
    0,
    'x',
  );
  return [
    '#pragma unroll',
    'for (int j = 0; j < NT; ++j) {',
    '#pragma unroll',
    '  for (int e = 0; e < 4; ++e) {',
    '    const int ql = warp * 16 + g + 8 * (e >> 1), kl = j * 8 + t4 * 2 + (e & 1);',
    `    const int qpos = ${o.elem.qpos}, kpos = ${o.elem.kpos};`,
    '    (void)qpos; (void)kpos;',
    ...indent(element, '    '),
    '  }',
    '}',
  ];
}

/**
 * bwd_dq: the CTA's q-tile (or, in residue or patch order, each of its units) and its row statistics, then
 * the key tiles it does not skip, double buffered, each through `tile`; dq written once, then the
 * param gradients' CTA slice.
 */
export function dqKernel(x: BackwardMmaExprs): string[] {
  const o = dqOrderOf(x);
  const np = x.grad.params.length;
  // The param gradients sum over every unit of the CTA: declared before a unit loop.
  const gp = np ? [`  float gp[${np}] = {};`] : [];
  const looped = o.open.length > 0;
  const unit = [
    ...dqRows(o),
    '  // (next_tile walks key tiles here: its `qt` is a key-tile index.)',
    ...indent(
      nextTile(
        o.walk,
        'nkt',
        `const int k_lo = ${o.keys.pos('qt * BK')}, k_hi = ${o.keys.pos(`min((qt + 1) * BK, ${o.keys.count}) - 1`)};`,
      ),
      '  ',
    ),
    '  auto load_kv = [&](const int kt, const int buf) {',
    `    ${o.keys.load('D', 'Ks + buf * (BK * D)', 'a.k')}`,
    `    ${o.keys.load('DV', 'Vs + buf * (BK * DV)', 'a.v')}`,
    ...o.keys.fill,
    '  };',
    '  float dq[D / 8][4];',
    '#pragma unroll',
    '  for (int n = 0; n < D / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;',
    ...(looped ? [] : gp),
    ...indent(tileLambda(x, o), '  '),
    ...keyTileLoop(o),
    ...dqStore(o),
  ];
  return [
    '__global__ void __launch_bounds__(THREADS) bwd_dq(const Args a) {',
    ...dqSetup(o),
    ...(looped ? [...gp, ...o.open, ...indent(unit, '  '), ...o.close] : unit),
    ...(np ? paramPartials(np) : []),
    '}',
  ];
}

/** `tile(masked, kt, buf)`: one key tile's dP and S, the element step, and dQ += dS·K. */
function tileLambda(x: BackwardMmaExprs, o: DqOrder): string[] {
  return [
    'auto tile = [&](auto masked, const int kt, const int buf) {',
    '  constexpr bool MASKED = decltype(masked)::value;',
    '  const int k0 = kt * BK;',
    '  const T* Kb = Ks + buf * (BK * D);',
    '  const T* Vb = Vs + buf * (BK * DV);',
    '  float s[NT][4], dp[NT][4];',
    "  // dP = dO·Vᵀ and S = Q·Kᵀ for this warp's 16 rows.",
    ...indent(gemmT('dp', 'Os', 'DV', 'Vb'), '  '),
    ...indent(gemmT('s', 'Qs', 'D', 'Kb'), '  '),
    ...indent(elementStep(x, o), '  '),
    '  // dQ += dS·K.',
    ...indent(gemmP('dq', 's', 'D', 'Kb', 'BK'), '  '),
    '};',
  ];
}

// The CTA's shared tiles, indices and the head's row bases.
function dqSetup(o: DqOrder): string[] {
  return [
    `  constexpr int BQ = 16 * WARPS, BK = ${DQ_BK}, NT = BK / 8; // rows, keys per step, key n-tiles`,
    '  extern __shared__ float4 smem4[];',
    '  T* Qs = reinterpret_cast<T*>(smem4); // [BQ][D], swizzled',
    '  T* Os = Qs + BQ * D;                 // [BQ][DV]: dO',
    '  T* Ks = Os + BQ * DV;                // [2][BK][D]',
    '  T* Vs = Ks + 2 * BK * D;             // [2][BK][DV]',
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;',
    '  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);',
    ...o.head,
    '  const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq, krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk;',
  ];
}

// The q-tile's q and dO rows staged, each lane row's lse and delta, the tile's bounds.
function dqRows(o: DqOrder): string[] {
  return [
    `  ${o.rows.load('D', 'Qs', 'a.q')}`,
    `  ${o.rows.load('DV', 'Os', 'a.dout')}`,
    "  float l2[2], dl[2]; // lse·log2 e (+inf: no gradient) and delta of this lane's two rows",
    '#pragma unroll',
    '  for (int r = 0; r < 2; ++r) {',
    '    const int i = q0 + warp * 16 + g + 8 * r;',
    '    l2[r] = INFINITY;',
    '    dl[r] = 0.f;',
    `    if (${o.rows.in('i')}) {`,
    `      const float v = a.lse[qrow0 + ${o.rows.index('i')}];`,
    '      l2[r] = v == -INFINITY ? INFINITY : v * LOG2E;',
    `      dl[r] = a.delta[qrow0 + ${o.rows.index('i')}];`,
    '    }',
    '  }',
    `  const int nkt = (${o.keys.count} + BK - 1) / BK;`,
    `  const int q_lo = ${o.rows.lo}, q_hi = ${o.rows.hi};`,
    `  const bool q_tail = ${o.rows.tail};`,
    '  (void)q_lo; (void)q_hi;',
  ];
}

// The key tiles next_tile does not skip: the next one loads while this one runs `tile` (masked
// where the tile is partial or runs past Nq or Nk).
function keyTileLoop(o: DqOrder): string[] {
  return [
    '  bool full, nfull;',
    '  int kt = next_tile(0, full), buf = 0;',
    '  if (kt < nkt) load_kv(kt, 0);',
    '  cp_commit();',
    '  while (kt < nkt) {',
    '    const int nk = next_tile(kt + 1, nfull);',
    '    if (nk < nkt) load_kv(nk, buf ^ 1);',
    '    cp_commit();',
    '    cp_wait<1>();',
    '    __syncthreads();',
    `    if (!full || q_tail || (kt + 1) * BK > ${o.keys.count}) tile(Flag<true>{}, kt, buf);`,
    '    else tile(Flag<false>{}, kt, buf);',
    '    __syncthreads(); // every warp is done with `buf` before it is refilled',
    '    buf ^= 1;',
    '    kt = nk;',
    '    full = nfull;',
    '  }',
    '  cp_wait<0>();',
  ];
}

// dq of this lane's two rows, scaled, in the storage dtype (one writer per row: no atomics).
function dqStore(o: DqOrder): string[] {
  return [
    '#pragma unroll',
    '  for (int r = 0; r < 2; ++r) {',
    '    const int i = q0 + warp * 16 + g + 8 * r;',
    `    if (${o.rows.past('i')}) continue;`,
    `    T* dqr = a.dq + (qrow0 + ${o.rows.index('i')}) * D + t4 * 2;`,
    '#pragma unroll',
    '    for (int n = 0; n < D / 8; ++n)',
    '      *reinterpret_cast<unsigned*>(dqr + n * 8) = pack2(a.scale * dq[n][2 * r], a.scale * dq[n][2 * r + 1]);',
    '  }',
  ];
}

/** The `np` param gradients: lanes, then warps, summed in a fixed order into this CTA's slice. */
function paramPartials(np: number): string[] {
  return [
    "  // Param gradients: lanes, then warps, summed in a fixed order into this CTA's slice.",
    `  __shared__ float red[WARPS][${np}];`,
    '#pragma unroll',
    `  for (int n = 0; n < ${np}; ++n) {`,
    '    float v = gp[n];',
    '#pragma unroll',
    '    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);',
    '    if (lane == 0) red[warp][n] = v;',
    '  }',
    '  __syncthreads();',
    `  if (tid < ${np}) {`,
    '    float v = 0.f;',
    '    for (int w = 0; w < WARPS; ++w) v += red[w][tid];',
    `    a.partials[((size_t)(b * a.H + h) * gridDim.x + blockIdx.x) * ${np} + tid] = v;`,
    '  }',
  ];
}

/** Param n of `grads`: the CTAs' partials summed in CTA order (deterministic). */
export function reduceKernel(np: number): string[] {
  return [
    '__global__ void __launch_bounds__(THREADS) bwd_reduce(const Args a, const int ctas) {',
    '  const int n = blockIdx.x * THREADS + threadIdx.x;',
    `  if (n >= ${np}) return;`,
    '  float v = 0.f;',
    `  for (int c = 0; c < ctas; ++c) v += a.partials[(size_t)c * ${np} + n];`,
    '  a.grads[n] = v;',
    '}',
  ];
}

/** Dynamic shared memory of bwd_dq (bytes). */
export function dqSmemBytes(warps: number, headDim: number, valueDim: number): number {
  return 2 * (16 * warps * (headDim + valueDim) + 2 * DQ_BK * (headDim + valueDim));
}
