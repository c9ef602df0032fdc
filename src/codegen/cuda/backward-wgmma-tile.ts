// The per-q-tile body of the Hopper (sm_90a) dK/dV kernel (backward-wgmma.ts), FlashAttention-3's
// backward with warpgroup MMAs. Warpgroup wg owns keys 64·wg..64·wg+63 of the CTA's 128-key tile
// and runs, per q-tile of BM = 64 queries:
//   Sᵀ  = K_wg·Qᵀ      m64n64k16, both operands K-major from shared memory;
//   dPᵀ = V_wg·dOᵀ     the same shape, committed as a second group so P is computed while it runs;
//   dV += Pᵀ·dO        register A (Pᵀ straight from the accumulators), dO MN-major;
//   dK += dSᵀ·Q        register A, Q MN-major;
//   dQ  = dS·K         dS through shared memory ([query][key] panels), K MN-major; added into the
//                      f32 dq_acc with 8-byte atomics (deterministic mode: bwd_dq does it instead).
// The wgmma accumulator of a warp is the mma.sync m16n8 layout per n-tile, and warp w of the CTA
// holds keys 16w..16w+15 — the mma backward's layout — so its element and dS steps
// (backward-mma-tile.ts: P, the derivative expressions, the carried slots) are reused as they are.
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { dsStep, elementStep, tileBuffers } from './backward-mma-tile.js';
import { NO_TUNE, type BackwardWgmmaTune } from './backward-wgmma-tune.js';
import { indent } from './indent.js';
import { pFragmentCode } from './mma-device.js';
import type { DkdvOrder } from './backward-residue.js';

/**
 * A descriptor `elems` 16-bit elements past descriptor `base`: a 64-bit add (du) by default, or
 * with the descLo knob a 32-bit add to the low word under the constant high word (dsc).
 */
export type DescAt = (base: string, elems: string) => string;
const du64: DescAt = (base, elems) => `${base} + du(${elems})`;
const dscLo: DescAt = (base, elems) => `dsc(${base}, ${elems})`;

const zero = (acc: string, tiles: string): string[] => [
  '#pragma unroll',
  `for (int j = 0; j < ${tiles}; ++j) ${acc}[j][0] = ${acc}[j][1] = ${acc}[j][2] = ${acc}[j][3] = 0.f;`,
];

/**
 * acc (64 × BM) = rows·tileᵀ, both K-major by descriptor (`rows`: this warpgroup's 64 rows of a
 * [BN][width] tile, `tile`: [BM][width]); a k16 step is 32 bytes along a panel row (2 descriptor
 * units), every 4th a new 64-wide panel.
 */
export function gemmKmajor(
  acc: string,
  rows: string,
  width: string,
  tile: string,
  at: DescAt = du64,
): string[] {
  return [
    '#pragma unroll',
    `for (int ks = 0; ks < ${width} / 16; ++ks)`,
    `  wg_qk(${acc}, ${at(rows, '(ks >> 2) * (BN * 64) + (ks & 3) * 16')}, ${at(tile, '(ks >> 2) * (BM * 64) + (ks & 3) * 16')});`,
  ];
}

/**
 * acc (64 keys × width) += (accumulator block `src`, 64 keys × BM queries, as register A)·tile
 * ([BM][width], MN-major: 16 rows a k-step, one 64-wide panel per wgmma).
 */
/** How gemmRegA issues its wgmmas (backward-wgmma-tune.ts: packFirst, descLo, n128). */
export interface RegAOptions {
  readonly packFirst?: boolean;
  readonly at?: DescAt;
  /** One m64n128 wgmma per k-step at width 128 (wg_pv_w), instead of two m64n64. */
  readonly n128?: boolean;
  /** Lines after the A fragments are packed, before wgmma.fence (packFirst only). */
  readonly afterPack?: readonly string[];
}

/** The wgmmas of one k-step kv: A fragment `pa`, B rows kv·16.. of `tile`. */
function pvStep(acc: string, pa: string, width: string, tile: string, o: RegAOptions): string[] {
  const at = o.at ?? du64;
  if (o.n128) return [`  wg_pv_w<${width}>(${acc}, ${pa}, ${at(tile, 'kv * 16 * 64')});`];
  return [
    `  wg_pv<0>(${acc}, ${pa}, ${at(tile, 'kv * 16 * 64')});`,
    `  if constexpr (${width} == 128) wg_pv<1>(${acc}, ${pa}, ${at(tile, 'BM * 64 + kv * 16 * 64')});`,
  ];
}

export function gemmRegA(
  acc: string,
  src: string,
  width: string,
  tile: string,
  o: RegAOptions = {},
): string[] {
  if (o.packFirst) return gemmRegAPacked(acc, src, width, tile, o);
  return [
    `acc_fence(${acc});`,
    'wg_fence();',
    '#pragma unroll',
    'for (int kv = 0; kv < BM / 16; ++kv) {',
    ...pFragmentCode(src, '  '),
    ...pvStep(acc, 'pa', width, tile, o),
    '}',
    'wg_commit();',
  ];
}

/**
 * gemmRegA with every A fragment packed before wgmma.fence (the packFirst knob): no register
 * written between the fence and the last wgmma, so ptxas injects no warpgroup.arrive between them.
 */
function gemmRegAPacked(acc: string, src: string, width: string, tile: string, o: RegAOptions): string[] {
  const pa = `pa_${acc}`;
  return [
    `unsigned ${pa}[BM / 16][4];`,
    '#pragma unroll',
    'for (int kv = 0; kv < BM / 16; ++kv) {',
    `  ${pa}[kv][0] = pack2(${src}[2 * kv][0], ${src}[2 * kv][1]);`,
    `  ${pa}[kv][1] = pack2(${src}[2 * kv][2], ${src}[2 * kv][3]);`,
    `  ${pa}[kv][2] = pack2(${src}[2 * kv + 1][0], ${src}[2 * kv + 1][1]);`,
    `  ${pa}[kv][3] = pack2(${src}[2 * kv + 1][2], ${src}[2 * kv + 1][3]);`,
    '}',
    ...(o.afterPack ?? []),
    `acc_fence(${acc});`,
    'wg_fence();',
    '#pragma unroll',
    'for (int kv = 0; kv < BM / 16; ++kv) {',
    ...pvStep(acc, `${pa}[kv]`, width, tile, o),
    '}',
    'wg_commit();',
  ];
}

/**
 * dQ of this q-tile: warpgroup wg takes columns DQ_C0 = 64·wg (D = 128, all BN keys) or all 64
 * columns over its own 64 keys (D = 64), so each adds one 64 × 64 block; dS is [query][key]
 * panels of [BM][64] (A, K-major), K [key][d] panels (B, MN-major). `add` adds the block's
 * accumulators into dq_acc (dqAdd2: 8-byte atomics, the default kernel's).
 */
export function dqStepLines(add: readonly string[], unrolled = false): string[] {
  if (unrolled) return dqStepUnrolled(add);
  return [
    'float acc[8][4];',
    ...zero('acc', '8'),
    'const int c0 = D == 128 ? 64 * wg : 0, kk0 = D == 128 ? 0 : 64 * wg;',
    'const uint64_t sd = opaque(desc128(Ss, 16)), kb = opaque(desc128(Ks + (c0 >> 6) * (BN * 64), 1024));',
    'wg_fence();',
    // Not unrolled: unrolled, the compiler keeps every step's descriptors live and spills (D = 128).
    '#pragma unroll 1',
    'for (int ks = 0; ks < (D == 128 ? BN : 64) / 16; ++ks) {',
    '  const int kk = kk0 + ks * 16;',
    '  wg_dq(acc, sd + du((kk >> 6) * (BM * 64) + (kk & 63)), kb + du(kk * 64));',
    '}',
    'wg_commit();',
    'wg_wait<0>();',
    'acc_fence(acc);',
    ...add,
  ];
}

/**
 * dqStepLines with the k-loop unrolled (the dqUnroll knob): the two descriptors' low words made
 * opaque once per tile (hoisted across tiles they would pin registers for the whole kernel), each
 * k-step adding a constant to them under the constant high word DESC_HI.
 */
function dqStepUnrolled(add: readonly string[]): string[] {
  return [
    'float acc[8][4];',
    ...zero('acc', '8'),
    'const int c0 = D == 128 ? 64 * wg : 0, kk0 = D == 128 ? 0 : 64 * wg;',
    'const unsigned sd = opaque32(desc_lo(Ss + (kk0 >> 6) * (BM * 64), 16));',
    'const unsigned kb = opaque32(desc_lo(Ks + (c0 >> 6) * (BN * 64) + kk0 * 64, 1024));',
    'wg_fence();',
    '#pragma unroll',
    'for (int ks = 0; ks < (D == 128 ? BN : 64) / 16; ++ks) {',
    '  const int kk = ks * 16; // from kk0',
    '  wg_dq(acc, desc_of(sd + ((kk >> 6) * (BM * 64) + (kk & 63)) / 8), desc_of(kb + kk * 64 / 8));',
    '}',
    'wg_commit();',
    'wg_wait<0>();',
    'acc_fence(acc);',
    ...add,
  ];
}

/** dq_acc += acc by row pairs: this lane's two columns of each n-tile, one 8-byte atomic each. */
export const dqAdd2 = (o: DkdvOrder): string[] => [
  '#pragma unroll',
  'for (int r = 0; r < 2; ++r) {',
  '  const int i = q0 + (warp & 3) * 16 + g + 8 * r;',
  `  if (i >= ${o.nq}) continue;`,
  `  float* dst = a.dq_acc + (${o.qrow('i')}) * D + c0 + t4 * 2;`,
  '#pragma unroll',
  '  for (int n = 0; n < 8; ++n) add2(dst + n * 8, acc[n][2 * r], acc[n][2 * r + 1]);',
  '}',
];

/** Barriers of the tile body: CTA-wide (the default kernel) or among the consumer warpgroups. */
export interface TileSync {
  /** A barrier over every thread that runs the tile body. */
  readonly sync: string;
  /** What adds this warpgroup's dQ block into dq_acc (dqStepLines' `add`). */
  readonly dqAdd: readonly string[];
  /** The whole dQ step instead of dqStepLines (the pingPong knob: dQ over the warpgroup's own keys). */
  readonly dqStep?: readonly string[];
  /** Lines around the S/dP wgmmas' issue (the pingPong knob's scheduler barriers). */
  readonly sdp?: { readonly before: string; readonly after: string };
}

const ctaSync = (o: DkdvOrder): TileSync => ({ sync: '__syncthreads()', dqAdd: dqAdd2(o) });

/** The tile's descriptors; n128's MN-major views step 64-wide panels by LBO (n64 ignores it). */
function descDecls(tune: BackwardWgmmaTune): string[] {
  const decls = tune.descLo ? DESC_LO_DECLS : DESC_DECLS;
  if (!tune.n128) return decls;
  return decls.map((l) =>
    l.replaceAll(', 1024)', ', BM * 128)').replace('MN-major views', 'MN-major views, LBO a panel'),
  );
}

const DESC_DECLS = [
  "  // Descriptors, made opaque per tile so the compiler cannot hoist every step's out of the loop.",
  '  const uint64_t kd = opaque(desc128(Kw, 16)), vd = opaque(desc128(Vw, 16));',
  '  const uint64_t qd = desc128(Qb, 16), od = desc128(Ob, 16); // K-major views',
  '  const uint64_t qt_d = desc128(Qb, 1024), ot_d = desc128(Ob, 1024); // MN-major views',
];
// The descLo knob: the same descriptors as low words (backward-wgmma-tune.ts: desc_lo, dsc).
const DESC_LO_DECLS = [
  "  // Descriptor low words, made opaque per tile so the compiler cannot hoist every step's out of the loop.",
  '  const unsigned kd = opaque32(desc_lo(Kw, 16)), vd = opaque32(desc_lo(Vw, 16));',
  '  const unsigned qd = desc_lo(Qb, 16), od = desc_lo(Ob, 16); // K-major views',
  '  const unsigned qt_d = desc_lo(Qb, 1024), ot_d = desc_lo(Ob, 1024); // MN-major views',
];

/**
 * dS into its [query][key] panels from dK's packed A fragments (the dsMatrix knob): pa_dk[kv][m] is
 * the 8 × 8 block of keys 16·warp + 8·(m & 1).. × queries 8·(2 kv + m / 2).. held as the
 * accumulators hold Sᵀ (a lane's pair: one key, two queries); stored transposed, each 16-byte row
 * of 8 keys lands where the element stores put it (pswz's chunk of row `query`).
 */
const DS_MATRIX_STORE: readonly string[] = [
  '// dS, [query][key]: lane L names row L % 8 of block L / 8.',
  '#pragma unroll',
  'for (int kv = 0; kv < BM / 16; ++kv)',
  '  stsm_x4_t(Ss + pswz<BM>(lane & 7, warp * 16 + 8 * ((lane >> 3) & 1)) + (2 * kv + (lane >> 4)) * (8 * 64), pa_dk[kv]);',
];

/** The `tile(MASKED, qt, buf)` lambda of the wgmma dK/dV kernel. */
export function wgmmaTileLambda(
  x: BackwardMmaExprs,
  deterministic: boolean,
  ts: TileSync = ctaSync(x.order),
  tune: BackwardWgmmaTune = NO_TUNE,
): string[] {
  const at = tune.descLo ? dscLo : du64;
  const regA: RegAOptions = { packFirst: tune.packFirst, at, n128: tune.n128 };
  // resolveTune keeps dsMatrix only where it applies (atomic mode, packFirst, D 128).
  const dsMatrix = tune.dsMatrix === true;
  const dsByElement = !deterministic && !dsMatrix;
  return [
    // MASKED is a run-time flag: two inlined copies of this body (masked, full) cost 64-190 bytes
    // of spills at D = 128 (the register allocator plans both in one loop); one copy, 0-20.
    'auto tile = [&](const bool MASKED, const int qt, const int buf) {',
    ...tileBuffers,
    ...descDecls(tune),
    ...indent([...zero('s', 'NT'), ...zero('dp', 'NT')], '  '),
    "  // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for this warpgroup's 64 keys: two groups, P while dPᵀ runs.",
    ...(ts.sdp ? [`  ${ts.sdp.before}`] : []),
    '  wg_fence();',
    ...indent(gemmKmajor('s', 'kd', 'D', 'qd', at), '  '),
    '  wg_commit();',
    ...indent(gemmKmajor('dp', 'vd', 'DV', 'od', at), '  '),
    '  wg_commit();',
    ...(ts.sdp ? [`  ${ts.sdp.after}`] : []),
    '  wg_wait<1>();',
    '  acc_fence(s);',
    ...indent(elementStep(x, true, tune), '  '),
    '  // dV += Pᵀ·dO (in flight while dS is computed).',
    ...indent(gemmRegA('dv', 's', 'DV', 'ot_d', regA), '  '),
    '  wg_wait<1>();',
    '  acc_fence(dp);',
    ...indent(
      dsStep(x, deterministic, 'pswz<BM>(t4 * 2 + (e & 1), kl) + (kl & 7) + j * (8 * 64)', dsByElement),
      '  ',
    ),
    '  // dK += dSᵀ·Q.',
    ...indent(
      gemmRegA('dk', 's', 'D', 'qt_d', dsMatrix ? { ...regA, afterPack: DS_MATRIX_STORE } : regA),
      '  ',
    ),
    ...(deterministic
      ? ['  wg_wait<0>();']
      : [
          '  proxy_fence(); // dS: generic-proxy stores, read by wgmma through the async proxy',
          `  ${ts.sync}; // dS complete in shared memory`,
          ...indent(ts.dqStep ?? dqStepLines(ts.dqAdd, tune.dqUnroll === true), '  '),
        ]),
    '  acc_fence(dk);',
    '  acc_fence(dv);',
    `  ${ts.sync}; // this Q/dO buffer and its lse/delta (and dS) are free again`,
    '};',
  ];
}
