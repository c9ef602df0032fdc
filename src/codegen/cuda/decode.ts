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
import { kernelSlots } from '../common.js';
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
import { mergeKernel, partSlotFn, quantRowBases, splitCombine, splitKernelHead } from './decode-split.js';
import { K_ROWS, V_ROWS } from './kv-rows.js';
import type { CudaLayout } from './layout.js';
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
  const cx: CudaContext = {
    vars: {},
    ...kernelSlots(k),
    field: layout.field,
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
    ...partSlotFn(),
    '',
    ...splitKernelHead(),
    ...(quant ? quantRowBases(k) : []),
    ...([K_ROWS, V_ROWS] as const).map((t) => `  ${streamHandleDecl(k, t)}`),
    ...pipelinedLoop(k, classify, simtTile(k, needMask, identity)),
    ...splitCombine(),
    '',
    ...mergeKernel(lse),
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
