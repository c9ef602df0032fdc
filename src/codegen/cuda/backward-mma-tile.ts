// The per-q-tile body of the tensor-core dK/dV kernel (backward-mma.ts), FlashAttention-2's
// backward with mma.sync m16n8k16. Warp w owns keys 16w..16w+15 of the CTA's key tile and holds
// the transposed blocks Sᵀ, Pᵀ, dPᵀ, dSᵀ (16 keys × BM queries) in the forward engine's
// accumulator layout: element e of n-tile j of lane (g, t4) is key row 16w + g + 8·(e/2), query
// column 8j + 2·t4 + e%2. So the A operands of dV += Pᵀ·dO and dK += dSᵀ·Q are the packed
// accumulators (as the forward's P·V), and dQ += dS·K reads dS back from shared memory with a
// warp per 16 query rows.
import type { BackwardMmaExprs, Carried } from './backward-mma-exprs.js';
import { indent } from './indent.js';
import { pFragmentCode } from './mma-device.js';
import { voidIfUnread } from './unused.js';
import type { DkdvOrder } from './backward-residue.js';

/** An element's scaled q·k, which a score expression may ignore (`score exp(c)`). */
const X_DECL = 'const float x = s[j][e] * a.scale;';

/** Shared-memory word of carried slot `c` for this thread's element (j, e): conflict-free by lane. */
const slotAddr = (c: number): string => `Xs[(((${c} * WARPS + warp) * NT + j) * 4 + e) * 32 + lane]`;

function store(c: Carried, value: string): string[] {
  if (c.slot === undefined) return [];
  return [`${slotAddr(c.slot)} = ${c.int ? `__int_as_float(ok ? ${value} : 0)` : `ok ? ${value} : 0.f`};`];
}

const read = (c: Carried): string =>
  c.slot === undefined ? c.text : c.int ? `__float_as_int(${slotAddr(c.slot)})` : slotAddr(c.slot);

/** Sᵀ = K_w·Qᵀ, or dPᵀ = V_w·dOᵀ: the A operand is this warp's 16 rows of `rows`, B the tile's rows. */
export function gemmT(acc: string, rows: string, width: string, tile: string): string[] {
  return [
    '#pragma unroll',
    `for (int j = 0; j < NT; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;`,
    '#pragma unroll 2',
    `for (int ks = 0; ks < ${width} / 16; ++ks) {`,
    '  unsigned fa[4];',
    `  ldsm_x4(fa, ${rows} + swz<${width}>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));`,
    '#pragma unroll',
    '  for (int j = 0; j < NT; j += 2) {',
    '    unsigned fb[4];',
    `    ldsm_x4(fb, ${tile} + swz<${width}>(j * 8 + (lane & 7) + (lane >> 4) * 8, ks * 16 + ((lane >> 3) & 1) * 8));`,
    `    mma16816(${acc}[j], fa, fb[0], fb[1]);`,
    `    mma16816(${acc}[j + 1], fa, fb[2], fb[3]);`,
    '  }',
    '}',
  ];
}

/** acc (16 rows × width) += (packed `src` block, 16 × depth)·tile (depth × width, row-major in smem). */
export function gemmP(acc: string, src: string, width: string, tile: string, depth = 'BM'): string[] {
  return [
    '#pragma unroll',
    `for (int kv = 0; kv < ${depth} / 16; ++kv) {`,
    ...pFragmentCode(src, '  '),
    '#pragma unroll',
    `  for (int n = 0; n < ${width} / 8; n += 2) {`,
    '    unsigned fb[4];',
    `    ldsm_x4_t(fb, ${tile} + swz<${width}>(kv * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, n * 8 + (lane >> 4) * 8));`,
    `    mma16816(${acc}[n], pa, fb[0], fb[1]);`,
    `    mma16816(${acc}[n + 1], pa, fb[2], fb[3]);`,
    '  }',
    '}',
  ];
}

const eachElement = (body: readonly string[]): string[] => [
  '#pragma unroll',
  'for (int j = 0; j < NT; ++j) {',
  '#pragma unroll',
  '  for (int e = 0; e < 4; ++e) {',
  '    const int kl = warp * 16 + g + 8 * (e >> 1), ql = j * 8 + t4 * 2 + (e & 1);',
  '    (void)kl; (void)ql;',
  ...indent(body, '    '),
  '  }',
  '}',
];

/** Options of elementStep beyond the mask (backward-wgmma-tune.ts: fastExp, splitMask). */
export interface ElementStepOptions {
  /** P by ex2_ftz, and for identity scores one multiply by scale·log2 e. */
  readonly fastExp?: boolean;
  /** With a run-time MASKED: a second element loop for full tiles, without the `ok` tests. */
  readonly splitMask?: boolean;
}

/**
 * P = exp(score′ − lse) per element (0 where masked or past the ends), and the carried values.
 * `runtimeMask`: MASKED is a run-time bool (one copy of the tile body), not a template constant.
 */
export function elementStep(
  x: BackwardMmaExprs,
  runtimeMask = false,
  opts: ElementStepOptions = {},
): string[] {
  const carried = [x.dScore, ...x.dParams, ...x.loads.flatMap((l) => [l.d, ...l.index])];
  const stored = carried.filter((c) => c.slot !== undefined);
  const m = x.dkdvMask;
  const maskTest = m ? [...m.stmts, `ok = ok && (${m.text});`] : [];
  // Lb holds lse·log2 e, +inf for rows with no allowed key or past Nq: exp2 gives 0 there.
  const p = pText(x, opts.fastExp === true);
  const o = x.order;
  const body = (masked: boolean): string[] => [
    `const int kpos = ${o.elemKpos}, qpos = ${o.elemQpos};`,
    '(void)kpos; (void)qpos;',
    X_DECL,
    ...(p.startsWith('ex2_ftz(s[j][e]') ? ['(void)x; // folded into P'] : []),
    ...(masked
      ? [
          'bool ok = true;',
          runtimeMask ? 'if (MASKED) {' : 'if constexpr (MASKED) {',
          `  ok = k0 + kl < ${o.nk} && q0 + ql < ${o.nq};`,
          ...indent(maskTest, '  '),
          '}',
        ]
      : ['const bool ok = true; // a full tile: every element in range and allowed', '(void)ok;']),
    ...x.elemStmts,
    masked ? `s[j][e] = ok ? ${p} : 0.f;` : `s[j][e] = ${p};`,
    ...stored.flatMap((c) => store(c, c.text)),
  ];
  const step = (masked: boolean): string[] => eachElement(voidX(body(masked)));
  if (!(opts.splitMask && runtimeMask)) return step(true);
  return ['if (MASKED) {', ...indent(step(true), '  '), '} else {', ...indent(step(false), '  '), '}'];
}

/** An element step whose score ignores `x` (`score exp(c)`) casts it to void (nvcc #177). */
const voidX = (lines: readonly string[]): string[] => voidIfUnread(lines, lines.indexOf(X_DECL), 'x');

/** P's C text: exp2 of the base-2 score minus Lb[ql]. */
function pText(x: BackwardMmaExprs, fast: boolean): string {
  if (!fast) return `exp2f((${x.score}) * LOG2E - Lb[ql])`;
  // An identity score folds scale and log2 e into one multiply (as the forward's q scale does).
  if (x.score === 'x' && x.elemStmts.length === 0) return 'ex2_ftz(s[j][e] * (a.scale * LOG2E) - Lb[ql])';
  return `ex2_ftz((${x.score}) * LOG2E - Lb[ql])`;
}

/**
 * dscore′ = P·(dP − delta); the param/tensor gradients; dS = dscore′·∂score′/∂score, in s and (unless
 * deterministic, or `storeDs` false: the caller stores it) at `dsAt` in shared memory, the element
 * offset of (query ql, key kl) in Ss.
 */
export function dsStep(
  x: BackwardMmaExprs,
  deterministic: boolean,
  dsAt = 'swz<BN>(ql, kl & ~7) + (kl & 7)',
  storeDs = !deterministic,
): string[] {
  const loads = x.loads.map((l) => {
    const idx = l.index.map(read);
    const ok = idx.map((v, i) => `${v} >= 0 && ${v} < ${l.dims[i]!}`).join(' && ');
    let flat = `(long long)(${idx[0]!})`;
    for (let i = 1; i < idx.length; i++) flat = `(${flat}) * ${l.dims[i]!} + ${idx[i]!}`;
    return `if (dsp != 0.f && ${ok}) atomicAdd(a.grads + ${l.offset} + ${flat}, dsp * ${read(l.d)});`;
  });
  return eachElement([
    "const float dsp = s[j][e] * (dp[j][e] - Db[ql]); // dL/dscore'",
    // Deterministic mode: the dQ kernel sums the param gradients (tensor ones are refused).
    ...(deterministic ? [] : [...x.dParams.map((c, n) => `gp[${n}] += dsp * ${read(c)};`), ...loads]),
    `s[j][e] = dsp * ${read(x.dScore)};`,
    ...(storeDs ? [`Ss[${dsAt}] = from_f32(s[j][e]); // dS, [query][key]`] : []),
  ]);
}

/**
 * dQ += dS·K, added into the f32 dq_acc: warp w takes query rows 16·(w % RW) and the w / RW-th
 * share of the D columns (RW = BM / 16 row blocks), at most 64 columns at a time; adjacent
 * column pairs go as one 8-byte atomic where the arch has them (sm_90).
 */
const dqStep = (o: DkdvOrder): string[] => [
  'constexpr int RW = BM / 16, NC = D / 8 / (WARPS / RW), NCH = NC < 8 ? NC : 8; // n-tiles of a warp, per pass',
  'const int rb = warp % RW, nc0 = (warp / RW) * NC;',
  '#pragma unroll 1',
  'for (int nc = nc0; nc < nc0 + NC; nc += NCH) {',
  '  float acc[NCH][4];',
  '#pragma unroll',
  '  for (int n = 0; n < NCH; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;',
  // Two k-steps at a time: a full unroll hoists every dS fragment and spills (softcap, modality).
  '#pragma unroll 2',
  '  for (int ks = 0; ks < BN / 16; ++ks) {',
  '    unsigned fa[4];',
  '    ldsm_x4(fa, Ss + swz<BN>(rb * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));',
  '#pragma unroll',
  '    for (int n = 0; n < NCH; n += 2) {',
  '      unsigned fb[4];',
  '      ldsm_x4_t(fb, Ks + swz<D>(ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, (nc + n) * 8 + (lane >> 4) * 8));',
  '      mma16816(acc[n], fa, fb[0], fb[1]);',
  '      mma16816(acc[n + 1], fa, fb[2], fb[3]);',
  '    }',
  '  }',
  '#pragma unroll',
  '  for (int r = 0; r < 2; ++r) {',
  '    const int i = q0 + rb * 16 + g + 8 * r;',
  `    if (i >= ${o.nq}) continue;`,
  `    float* dst = a.dq_acc + (${o.qrow('i')}) * D + nc * 8 + t4 * 2;`,
  '#pragma unroll',
  '    for (int n = 0; n < NCH; ++n) add2(dst + n * 8, acc[n][2 * r], acc[n][2 * r + 1]);',
  '  }',
  '}',
];

/**
 * The head of both dK/dV tile lambdas (mma and wgmma): query tile qt's rows, its buffer `buf` of
 * Q, dO, lse and delta in shared memory, and the S and dP accumulators.
 */
export const tileBuffers: readonly string[] = [
  '  const int q0 = qt * BM;',
  '  const T* Qb = Qs + buf * (BM * D);',
  '  const T* Ob = Os + buf * (BM * DV);',
  '  const float* Lb = Ls + buf * BM;',
  '  const float* Db = Ds + buf * BM;',
  '  float s[NT][4], dp[NT][4];',
];

/** The `tile(masked, qt, buf)` lambda of the dK/dV kernel (deterministic: no dQ, bwd_dq has it). */
export function tileLambda(x: BackwardMmaExprs, deterministic: boolean): string[] {
  return [
    'auto tile = [&](auto masked, const int qt, const int buf) {',
    '  constexpr bool MASKED = decltype(masked)::value;',
    ...tileBuffers,
    "  // Sᵀ = K·Qᵀ for this warp's 16 keys, then P.",
    ...indent(gemmT('s', 'Ks', 'D', 'Qb'), '  '),
    ...indent(elementStep(x), '  '),
    '  // dV += Pᵀ·dO; dPᵀ = V·dOᵀ.',
    ...indent(gemmP('dv', 's', 'DV', 'Ob'), '  '),
    ...indent(gemmT('dp', 'Vs', 'DV', 'Ob'), '  '),
    ...indent(dsStep(x, deterministic), '  '),
    '  // dK += dSᵀ·Q.',
    ...indent(gemmP('dk', 's', 'D', 'Qb'), '  '),
    ...(deterministic
      ? []
      : ['  __syncthreads(); // dS complete in shared memory', ...indent(dqStep(x.order), '  ')]),
    '  __syncthreads(); // this Q/dO buffer and its lse/delta (and dS) are free again',
    '};',
  ];
}
