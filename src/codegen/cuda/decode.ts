// CUDA decode mode (flash-decoding): few queries (Nq ≤ 16) over a long KV. The prefill engines
// tile 64–128 query rows per block, so at Nq = 1 most of a block idles and only H·B blocks run.
// Here a block covers one (KV split, row tile, kv head, batch); its rows are the GQA group's
// query heads × the Nq rows (MT "packed rows" per block), so each K/V row read from global memory
// serves every query head of the group. The 128 threads form 16 groups of 8 lanes; a group takes
// one key at a time (lanes split the head dim into VW-wide vectors, dots are reduced by three
// xor-shuffles), 2 keys per 32-key tile, with its own online softmax (base 2) per packed row.
// Tiles are classified per row (empty: skipped, full: no mask, partial: mask per element), and a
// tile empty for every row of the block is not loaded. At the end the 16 groups' states are
// combined in shared memory into one unnormalised partial (acc[Dv], m, l) per row and block, in a
// stream-ordered scratch buffer; a merge kernel combines a row's partials (one per split) by
// log-sum-exp into out and lse (merge.ts).
//
// K/V stream through a multi-stage cp.async pipeline in shared memory (decode-pipe.ts: 48 KiB in
// flight per block at bf16, D = 128): float elements, or a quantized cache's packed code words,
// which decode-quant.ts dequantizes from shared memory (integer codes by the 2^23 magic number,
// fp8 by cvt.f16x2 on sm_89+, per-channel f16 scales in 16-byte loads). The host picks the split
// count from the SM count and how many split blocks an SM holds (decode-host.ts); the tuning
// knobs are decode-knobs.ts's; a tile's scores, softmax and p·v are decode-step.ts's lines.
//
// Compute bound, not bandwidth bound, for int4/int2 (H200 sweep: int4 reads 1/4 of bf16's bytes
// yet ran 2x slower than bf16). At 4.8 TB/s an SM receives ~18 bytes a clock: 9 bf16 elements
// (x 4 FMAs, MT rows = 36 lane-ops: bandwidth bound), but 37 int4 / 73 int2 elements, each 4 FMAs
// + 3-4 dequantization ops (decode, zero, scale) = ~290 / ~580 lane-ops against 128 FMA lanes:
// 2.3x / 4.6x compute bound. Tensor cores (mma.m16n8k16, the GQA group x Nq as M, the dequantized
// f16 tile as B) take the 4 FMAs per element; f16x2 dequantization (2 elements an op) halves the
// rest; both are needed for int2's target. 16-bit float caches take the tensor-core split kernel
// on sm_80+ (decode-mma.ts; same partials, same merge), and so do int8 / fp8 caches with per-token f16
// scales (decode-mma-quant.ts: codes to f16 pairs, scales folded) and KIVI int4 / int2 caches
// (decode-mma-kivi.ts's mmaKiviOf says which shapes); other quantized formats keep the SIMT kernel.
//
// The launcher takes this path when Nq ≤ 16 and Nk ≥ 1024 (env ATTNC_DECODE=0 disables it, =1
// forces it for any Nq ≥ 1, Nk ≥ 1), after the summaries and before the engine's attention.
import { hasQuantizedKv } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { decodeElementFns } from './decode-elements.js';
import { decodeVectorWidth } from './decode-facts.js';
import { decodeHostSource } from './decode-host.js';
import { KIVI_MMA_SWITCH, mmaKiviOf } from './decode-mma-kivi.js';
import { decodeKnobs } from './decode-knobs.js';
import { hasMmaDecode, mmaDecodeDevice } from './decode-mma.js';
import { pipeDeviceCode, pipelinedLoop, streamHandleDecl } from './decode-pipe.js';
import { kvAlignment } from './decode-loads.js';
import { decodeQuantCode } from './decode-quant.js';
import { simtTile } from './decode-step.js';
import { K_ROWS, V_ROWS } from './kv-rows.js';
import type { CudaLayout } from './layout.js';
import { cudaMergeBody } from './merge.js';
import { exactMulOf, type CudaContext } from './rules.js';
import { helperSource } from './rules-helpers.js';

export { DECODE_MAX_NQ, DECODE_MIN_NK } from './decode-host.js';
export { hasCudaDecode } from './decode-facts.js';

/** Packed rows (query head × query row) per block. */
export const DECODE_ROWS = 4;

const decodeNs = 'dec';
export const decodeLaunch = (ns: string): string => `${ns}::${decodeNs}::launch`;
export const decodeWanted = (ns: string): string => `${ns}::${decodeNs}::wanted`;

/** Ends the device part of decodeSource (the CPU emulation in test/cuda takes what precedes it). */
export const DEVICE_END = '// ---- decode: host side ----';

/** Device + host code of the decode path, in `namespace ns::dec` (after ns's fail/ptr_ok). */
export function decodeSource(k: AttentionKernel, layout: CudaLayout, ns: string): string {
  const s = k.schedule;
  const cx: CudaContext = {
    vars: {},
    params: new Map(k.params.map((p) => [p.name, p])),
    tensors: new Map(k.tensors.map((t) => [t.name, t])),
    field: layout.field,
    summaryBlock: s.summaryBlock,
    used: new Set(),
    exactMul: exactMulOf(k),
  };
  const { fns, dynamic, staticClass, needMask, identity } = decodeElementFns(k, cx);
  const helpers = helperSource(cx);
  const vw = decodeVectorWidth(k);
  const quant = hasQuantizedKv(k.formats);
  const mma = hasMmaDecode(k, vw);
  const f = (key: string): string => `a.${layout.field(key)}`;
  const lse = k.outputs.lse ? f('lse') : undefined;
  const classExpr = dynamic
    ? 'tile_class(a, b, hr[r], qp[r], qp[r], t0 + a.k_offset, t1 - 1 + a.k_offset)'
    : String(staticClass);

  // The tile's bookkeeping (cls[r], any) and its scores and online softmax (t0, t1 in scope).
  const classify: string[] = [
    '    int cls[MT];',
    '    bool any = false;',
    '#pragma unroll',
    '    for (int r = 0; r < MT; ++r) {',
    `      cls[r] = rok[r] ? ${classExpr} : 0;`,
    '      any |= cls[r] != 0;',
    '    }',
  ];
  return [
    `namespace ${ns} {`,
    `namespace ${decodeNs} {`,
    '// ---- decode mode (split-KV + lse merge): codegen/cuda/decode.ts ----',
    ...decodeKnobs(k, identity && !needMask),
    `constexpr int MT = ${DECODE_ROWS}, GROUPS = ATTNC_DEC_GROUPS, KPG = ATTNC_DEC_KPG, TILE = GROUPS * KPG, THREADS = 8 * GROUPS;`,
    `constexpr int VW = ${vw}, CD = D / (8 * VW), CV = DV / (8 * VW);`,
    ...(helpers ? [helpers] : []),
    ...decodeQuantCode(k.formats, layout.field, vw),
    ...pipeDeviceCode(k),
    ...fns,
    '',
    '// Partial (acc[DV], m, l) of packed row r of a block (its lane groups combined).',
    '__device__ __forceinline__ size_t part_slot(const Args& a, int b, int hk, int rt, int row_tiles, int split, int n_splits, int r) {',
    '  return ((((size_t)b * a.Hkv + hk) * row_tiles + rt) * n_splits + split) * MT * (DV + 2) + (size_t)r * (DV + 2);',
    '}',
    '',
    '__global__ void __launch_bounds__(THREADS, ATTNC_DEC_MIN_BLOCKS) split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {',
    '  const int group = a.H / a.Hkv, packed = group * a.Nq;',
    '  const int split = blockIdx.x / row_tiles, rt = blockIdx.x % row_tiles;',
    '  const int hk = blockIdx.y, b = blockIdx.z;',
    '  const int lane = threadIdx.x & 7, g = threadIdx.x >> 3;',
    '  [[maybe_unused]] int hr[MT], qp[MT];',
    '  bool rok[MT];',
    '  VecT<VW> qx[MT][CD]; // kept in storage type: half the registers of f32 at 16 bits',
    '#pragma unroll',
    '  for (int r = 0; r < MT; ++r) {',
    '    const int p = rt * MT + r;',
    '    rok[r] = p < packed;',
    '    const int pp = rok[r] ? p : 0;',
    '    const int row = pp % a.Nq;',
    '    hr[r] = hk * group + pp / a.Nq;',
    '    qp[r] = row + a.q_offset;',
    '    const T* qrow = q_row(a, b, hr[r], row);',
    '#pragma unroll',
    '    for (int c = 0; c < CD; ++c) {',
    '      qx[r][c] = *reinterpret_cast<const VecT<VW>*>(qrow + (lane + 8 * c) * VW);',
    '    }',
    '  }',
    '  float m[MT], l[MT], acc[MT][CV][VW];',
    '#pragma unroll',
    '  for (int r = 0; r < MT; ++r) {',
    '    m[r] = -INFINITY;',
    '    l[r] = 0.f;',
    '#pragma unroll',
    '    for (int c = 0; c < CV; ++c)',
    '#pragma unroll',
    '      for (int e = 0; e < VW; ++e) acc[r][c][e] = 0.f;',
    '  }',
    '  const int k_begin = split * split_keys, k_end = min(a.Nk, k_begin + split_keys);',
    ...(quant
      ? [
          '  // A quantized cache addresses its codes by global row (packed layout: decode-quant.ts).',
          // Paged: rows come through the block table (decode-pipe.ts), kv0 goes unused.
          `  ${k.formats.paged ? '[[maybe_unused]] ' : ''}const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk;`,
          '  [[maybe_unused]] const size_t bh = (size_t)b * a.Hkv + hk; // a cache head',
        ]
      : []),
    ...([K_ROWS, V_ROWS] as const).map((t) => `  ${streamHandleDecl(k, t)}`),
    ...pipelinedLoop(k, classify, simtTile(k, needMask, identity)),
    '  // Combine the 16 groups in shared memory: one partial per row and block.',
    '  __shared__ float sm_m[GROUPS][MT], sm_max[MT], sm_l[MT], sm_acc[MT][DV];',
    '  for (int i = threadIdx.x; i < MT * DV; i += THREADS) sm_acc[i / DV][i % DV] = 0.f;',
    '  if (threadIdx.x < MT) sm_l[threadIdx.x] = 0.f;',
    '  if (lane == 0)',
    '#pragma unroll',
    '    for (int r = 0; r < MT; ++r) sm_m[g][r] = l[r] != 0.f ? m[r] : -INFINITY; // l NaN: poisoned, kept',
    '  __syncthreads();',
    '#pragma unroll',
    '  for (int r = 0; r < MT; ++r) {',
    '    float M = -INFINITY;',
    '#pragma unroll',
    '    for (int j = 0; j < GROUPS; ++j) M = fmaxf(M, sm_m[j][r]);',
    '    if (l[r] != 0.f) { // a NaN l carries into sm_l',
    '      const float f = exp2f(m[r] - M);',
    '#pragma unroll',
    '      for (int c = 0; c < CV; ++c)',
    '#pragma unroll',
    '        for (int e = 0; e < VW; ++e) atomicAdd(&sm_acc[r][(lane + 8 * c) * VW + e], acc[r][c][e] * f);',
    '      if (lane == 0) atomicAdd(&sm_l[r], l[r] * f);',
    '    }',
    '    if (threadIdx.x == 0) sm_max[r] = M;',
    '  }',
    '  __syncthreads();',
    '  for (int i = threadIdx.x; i < MT * (DV + 2); i += THREADS) {',
    '    const int r = i / (DV + 2), c = i % (DV + 2);',
    '    if (!rok[r]) continue;',
    '    float* dst = part + part_slot(a, b, hk, rt, row_tiles, split, n_splits, r);',
    '    dst[c] = c < DV ? sm_acc[r][c] : c == DV ? sm_max[r] : sm_l[r];',
    '  }',
    '}',
    '',
    '// One block per (query row, head, batch): M = max m_i over partials with l_i != 0,',
    '// L = sum l_i 2^(m_i - M), out = sum acc_i 2^(m_i - M) / L, lse = (M + log2 L) ln 2. L == 0:',
    '// an empty row (out 0, lse -inf); a partial with l NaN (a NaN or +inf score) makes L NaN.',
    'constexpr int MERGE_THREADS = 128;',
    '__global__ void __launch_bounds__(MERGE_THREADS) merge_kernel(const Args a, const float* __restrict__ part, int n_splits, int row_tiles) {',
    '  const int row = blockIdx.x, h = blockIdx.y, b = blockIdx.z;',
    '  const int group = a.H / a.Hkv, hk = h / group, p = (h % group) * a.Nq + row;',
    '  const int rt = p / MT, r = p % MT, n = n_splits;',
    '  const float* base = part + part_slot(a, b, hk, rt, row_tiles, 0, n_splits, r);',
    '  const size_t stride = (size_t)MT * (DV + 2); // between consecutive splits',
    ...cudaMergeBody({
      strategy: 'block',
      base: 'log2',
      threads: 'MERGE_THREADS',
      records: { first: 'base', stride: 'stride', count: 'n', countLabel: 'n_splits' },
      sink: {
        decl: 'T* og = out_row(a, b, h, row);',
        at: (d) => `og[${d}]`,
        lse: lse ? { ptr: lse, index: '((size_t)b * a.H + h) * a.Nq + row' } : undefined,
      },
    }),
    '}',
    ...(mma ? ['', ...mmaDecodeDevice(k, { dynamic, staticClass, needMask, identity }, layout.field)] : []),
    `} // namespace ${decodeNs}`,
    `} // namespace ${ns}`,
    DEVICE_END,
    ...decodeHostSource(
      f,
      ns,
      decodeNs,
      quant ? kvAlignment(k, vw, layout.field) : undefined,
      mma,
      mmaKiviOf(k) ? KIVI_MMA_SWITCH : undefined,
    ),
  ].join('\n');
}
