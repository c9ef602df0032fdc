// Opt-in instruction cuts of the Hopper backward's dK/dV tile body (issue 14 item 5), each its own
// knob so one H200 call can time them separately (bench/cuda/backward.sh, engines ws_*). With every
// knob off the kernel is byte-identical to the one before them. The profile that motivated them
// (ncu, bf16 D 128 S 16K full, producer variant): 12.6 G warp instructions against cuDNN's 6.1 G
// and Flex's 6.5 G, at 1358 instructions per consumer warp and q-tile:
//   fastExp    P by ex2.approx.ftz: exp2f's denormal-range fixup (FSETP, two predicated FMULs and a
//              PLOP3 around each MUFU.EX2) is ~4 instructions an element, 128 per warp and tile;
//              for identity scores (score text `x`) the scale and log2 e fold into one multiply.
//   splitMask  full tiles take an element loop without `ok`: the run-time MASKED flag left the
//              bounds tests (ISETP, PLOP3) and predicated lse loads in every full tile's elements.
//   packFirst  the register-A wgmmas (dV += Pᵀ·dO, dK += dSᵀ·Q) get every A fragment packed before
//              wgmma.fence: packing between wgmmas made ptxas inject a warpgroup.arrive before each
//              (C7519), which waits for the wgmmas in flight.
//   descLo     the S/dP/dV/dK wgmmas' descriptors as low words plus constants (as dqUnroll's): a
//              64-bit add (IADD3, IMAD.X, moves) per operand per wgmma becomes one 32-bit add.
//   dq8        dQ by 8-byte atomics (two per row pair and n-tile) instead of the 16-byte ones'
//              lane exchange (16 SHFL and their selects, the consumers' top short-scoreboard stalls).
//   n128       dV and dK (D = DV = 128) by one m64n128 wgmma per k-step instead of two m64n64 (the
//              MN-major B descriptor's LBO steps the second 64-wide panel): half the register-A
//              wgmmas and their descriptor arithmetic.
//   dqUnroll   dQ = dS·K unrolled, descriptors as a 32-bit low word (address and LBO) plus constant
//              offsets under a constant high word: the `#pragma unroll 1` loop rebuilt both 64-bit
//              descriptors per k-step (~25 instructions a wgmma) and serialised the wgmmas.
//   dqBulk     dQ off the consumers' serial chain (FlashAttention-3's design; producer kernel,
//              atomic mode): blocks stored to shared memory, added into dq_acc by bulk reductions
//              that the producer's last warp issues (backward-wgmma-dq-bulk.ts). The consumers'
//              128 atomics a thread and tile (and their LSU/L2 back-pressure) become 16 8-byte stores.
//   pingPong   (with dqBulk) the consumer warpgroups out of lockstep: dQ over each one's own keys,
//              partials summed in shared memory, scheduler barriers alternating the S/dP issue
//              (backward-wgmma-pingpong.ts).
//   splitCheapOnly  splitMask only where the mask is cheap (no tensor read, no division or
//              modulo: costlyMask): with the mask's code twice, ptxas serialises every wgmma of
//              document, modality, dilated and neighbourhood's bwd_dkdv (C7512, nvcc 13, D 128).
//   pingPongCheapOnly  pingPong (and the dqBulk it needs) only where the mask is cheap: document's
//              pingPong kernel has its wgmmas serialised (C7520), and dqBulk without pingPong was
//              slower than the 8-byte atomics on the H200 (full 16K: 37.5 vs 30.3 ms).
//   tileHandoff  (producer kernel, plain order, classifiers that read tensor summaries: document,
//              modality) the producer hands each filled buffer's q-tile (and its head step and
//              fullness) to the consumers in shared memory, so only the producer classifies: the
//              consumers lose the summary loads and ballot scan of their tile walk (latency on
//              their critical path, registers), and costlyMask stops counting the classifier, so
//              such masks take the cheap masks' knobs where their element mask is cheap.
//   keyMajor   (producer kernel, plain order) blocks take their key tiles in key-tile-major order:
//              every head's first key tile starts first, so the heavy tiles of causal, sink and
//              prefix masks (most q-tiles) do not start last and run alone at the end. H100 16K
//              (call 25): sinks + window 3.35 → 2.59 ms, document, sliding, prefix 1-3% faster;
//              full 26.9 → 32.4 and causal 13.5 → 13.9 (consecutive blocks no longer share a
//              head's Q and dO in L2).
//   firstTilesFirst  (producer kernel, plain order, tiles classified by position alone) every head's
//              first key tile first, the rest in the grid's head-major order (L2 sharing stays).
//              H100 16K (call 26): sinks + window 3.37 → 2.60 ms (deterministic 4.01 → 3.57),
//              causal 13.66 → 13.31, document 3.11 → 3.13 (deterministic 4.74 → 4.87, its kernel
//              spilling 168 bytes instead of 68: dropped where the classifier reads summaries);
//              on full, where every key tile has the same walk, 26.25 → 28.23: dropped there too.
//   dsMatrix   (with packFirst, atomic mode) dS into shared memory by stmatrix.trans from the packed
//              A fragments of dK += dSᵀ·Q (4 STSM a thread and tile): the accumulators are Sᵀ, and
//              the 32 16-bit stores a thread and tile, each with its own conversion and swizzled
//              address, were a fifth of the consumers' instructions (ncu, H100 full 16K, call 27:
//              8.62 G warp instructions against cuDNN's 6.07 G; STS 542 M against cuDNN's 105 M
//              of STS and STSM, F2FP 539 M against 270 M).
//   dqDouble   (with pingPong) the dQ block double-buffered: tile it's partial sum goes to block
//              it & 1 (the second block dqBulk lays out and pingPong left unused), handed over on
//              named barrier 4 or 7 and dq_full / dq_empty[it & 1], so warpgroup 0 waits for the dQ
//              warp to have read the block of two tiles back, not of the last one (call 27: that
//              wait was 5% of the consumers' stall samples on full).

import type { AttentionKernel } from '../../ir/kernel.js';
import type { Node } from '../../ir/graph.js';
import { Op } from '../../ir/ops.js';
import { elementMaskNodes } from './backward-mask-hoists.js';
import type { BlockOrder } from './backward-dkdv-parts.js';
import { backwardTileMode } from '../../ir/tile-mode.js';
import { wgmmaFn } from './wgmma-device.js';

/** The knobs (all off by default: the kernel the H200 timed last; WGMMA_BWD_TUNE is the default set). */
export interface BackwardWgmmaTune {
  readonly fastExp?: boolean;
  readonly splitMask?: boolean;
  readonly packFirst?: boolean;
  readonly dqUnroll?: boolean;
  readonly descLo?: boolean;
  readonly dq8?: boolean;
  readonly n128?: boolean;
  readonly dqBulk?: boolean;
  readonly pingPong?: boolean;
  readonly splitCheapOnly?: boolean;
  readonly pingPongCheapOnly?: boolean;
  readonly tileHandoff?: boolean;
  readonly keyMajor?: boolean;
  readonly firstTilesFirst?: boolean;
  readonly dsMatrix?: boolean;
  readonly dqDouble?: boolean;
}

export const NO_TUNE: BackwardWgmmaTune = {};

/**
 * Every round-9 knob on but dq8 (the bench's ws_all engine; dq8 is an alternative to the 16-byte
 * atomics); dqBulk (round 10) is off until the H200 has timed it.
 */
export const ALL_TUNE: Required<BackwardWgmmaTune> = {
  fastExp: true,
  splitMask: true,
  packFirst: true,
  dqUnroll: true,
  descLo: true,
  dq8: false,
  n128: true,
  dqBulk: false,
  pingPong: false,
  splitCheapOnly: false,
  pingPongCheapOnly: false,
  tileHandoff: false,
  keyMajor: false,
  firstTilesFirst: false,
  dsMatrix: false,
  dqDouble: false,
};

/** The knob names. */
export const TUNE_KNOBS = [
  'fastExp',
  'splitMask',
  'packFirst',
  'dqUnroll',
  'descLo',
  'dq8',
  'n128',
  'dqBulk',
  'pingPong',
  'splitCheapOnly',
  'pingPongCheapOnly',
  'tileHandoff',
  'keyMajor',
  'firstTilesFirst',
  'dsMatrix',
  'dqDouble',
] as const;

/** Round 10's default (every knob, 8-byte dQ atomics, ping-pong where the mask is cheap). */
const PINGPONG_DEFAULT: BackwardWgmmaTune = {
  ...ALL_TUNE,
  dq8: true,
  dqBulk: true,
  pingPong: true,
  pingPongCheapOnly: true,
};
/** Round 21's first step: the tile walk handed to the consumers where summaries are read. */
const HANDOFF_DEFAULT: BackwardWgmmaTune = { ...PINGPONG_DEFAULT, tileHandoff: true };

/**
 * The bench's tuned engines (bench/cuda/backward-emit.mjs: the producer kernel under each): one
 * knob each, then every knob but dq8 (an alternative to the 16-byte atomics), then with it too,
 * then the later defaults and their alternatives; ws_dq2 is WGMMA_BWD_TUNE (backward-wgmma.ts).
 */
export const TUNE_ENGINES: Readonly<Record<string, BackwardWgmmaTune>> = {
  ws_exp: { fastExp: true },
  ws_mask: { splitMask: true },
  ws_pack: { packFirst: true },
  ws_dqu: { dqUnroll: true },
  ws_desc: { descLo: true },
  ws_dq8: { dq8: true },
  ws_n128: { n128: true },
  ws_all: ALL_TUNE,
  ws_all8: { ...ALL_TUNE, dq8: true },
  // Round 9's default (ws_all8's knobs) with dQ off the consumers' path.
  ws_dqb: { ...ALL_TUNE, dq8: true, dqBulk: true },
  // ws_dqb with the consumer warpgroups out of lockstep.
  ws_pp: { ...ALL_TUNE, dq8: true, dqBulk: true, pingPong: true },
  // Round 9's default without splitMask: with it ptxas serialises every wgmma of document,
  // modality, dilated and neighbourhood's bwd_dkdv (C7512, insufficient registers; nvcc 13, D 128).
  // On those patterns it is that default + splitCheapOnly.
  ws_nosplit: { ...ALL_TUNE, dq8: true, splitMask: false },
  // The tile walk handed to the consumers (document, modality): with round 10's knobs (the cheap
  // masks' set where the element mask is cheap), then with splitMask but no ping-pong, then the
  // handoff alone (round 9's knobs, document's default before).
  ws_ho: HANDOFF_DEFAULT,
  ws_ho_split: { ...ALL_TUNE, dq8: true, splitCheapOnly: true, tileHandoff: true },
  ws_ho_only: { ...ALL_TUNE, dq8: true, splitMask: false, tileHandoff: true },
  // ws_ho with key-tile-major block order, then with every head's first key tile first (the default).
  ws_km: { ...HANDOFF_DEFAULT, keyMajor: true },
  ws_ft: { ...HANDOFF_DEFAULT, firstTilesFirst: true },
  // ws_ft with dS stored by stmatrix.trans (round 22's default).
  ws_dsm: { ...HANDOFF_DEFAULT, firstTilesFirst: true, dsMatrix: true },
  // ws_dsm with the dQ block double-buffered (the default since round 23).
  ws_dq2: { ...HANDOFF_DEFAULT, firstTilesFirst: true, dsMatrix: true, dqDouble: true },
};

/** The block order keyTileSetup (backward-dkdv-parts.ts) takes for these knobs. */
export const blockOrderOf = (t: BackwardWgmmaTune): BlockOrder =>
  t.keyMajor ? 'keyMajor' : t.firstTilesFirst ? 'firstTilesFirst' : 'grid';

/**
 * Whether the dK/dV kernel's mask is costly: its per-element part reads a tensor or divides (LOAD,
 * DIV, MOD nodes left after its one-sided parts moved to shared memory, backward-mask-hoists.ts),
 * or its tile classifier reads a tensor's summaries (their loads live in the consumers' tile walk). With
 * round 9's splitMask such masks tipped ptxas into serialising the wgmmas (C7512), and their ping-
 * pong kernels spill (document's 248 bytes a thread). Round 16 (H100, 16K): with the one-sided parts
 * hoisted, dilated and neighbourhood (cheap now) run fastest with the cheap masks' knobs (ws_pp
 * 18.53 / 5.19 ms beside 19.43 / 5.24); document stays on round 9's (3.68 ms; ws_pp 3.60).
 */
export function costlyMask(kernel: AttentionKernel, handoff = false): boolean {
  const costly = (n: Node): boolean => n.op === Op.LOAD || n.op === Op.DIV || n.op === Op.MOD;
  return elementMaskNodes(kernel).some(costly) || (!handoff && kernel.summaries.length > 0);
}

/**
 * Whether the tileHandoff knob applies: the producer kernel (the caller's `producer`) in the plain
 * order (no residue classes, no 2-D patches: their walks carry unit state the hand-over does not)
 * where the classifier reads tensor summaries (elsewhere the consumers' walk is arithmetic and
 * cheap, and the kernel stays the one without the knob).
 */
export function handoffApplies(kernel: AttentionKernel, patch: boolean): boolean {
  return kernel.summaries.length > 0 && !kernel.residue?.hoists && !patch;
}

/**
 * The knobs a kernel gets from the ones asked for: the "cheap only" knobs drop their subject where
 * the mask is costly; pingPong and dqBulk go together, and only where dqBulk applies (`bulkApplies`:
 * the producer kernel's atomic mode with room for its blocks, backward-wgmma.ts); tileHandoff only
 * where `handoffOk` (the producer kernel and handoffApplies), and then the classifier's summary
 * reads no longer make the mask costly.
 */
export function resolveTune(
  kernel: AttentionKernel,
  asked: BackwardWgmmaTune,
  bulkApplies: boolean,
  handoffOk = false,
  deterministic = false,
): BackwardWgmmaTune {
  const handoff = asked.tileHandoff === true && handoffOk;
  const costly = costlyMask(kernel, handoff);
  const bulk = asked.dqBulk === true && bulkApplies && !(asked.pingPongCheapOnly && costly);
  let t = asked;
  if ((asked.dqBulk || asked.pingPong) && !bulk) t = { ...t, dqBulk: false, pingPong: false };
  if (t.splitCheapOnly && t.splitMask && costly) t = { ...t, splitMask: false };
  if (t.tileHandoff && !handoff) t = { ...t, tileHandoff: false };
  // Only where tiles are classified by position alone does the position say which key tiles carry
  // more of the walk (with summaries the data does: document's heavy tiles are its documents'
  // first, anywhere; there it was no faster and spilled twice the bytes).
  const byPosition = backwardTileMode(kernel) === 'dynamic' && kernel.summaries.length === 0;
  if (t.firstTilesFirst && !byPosition) t = { ...t, firstTilesFirst: false };
  // The packed dK fragments are what it stores; the deterministic mode keeps no dS in shared memory
  // (bwd_dq recomputes it); at D = 64 (dK's wgmmas half as long) it was 2–5% slower (H100 16K,
  // calls 29–30: softcap, document; causal within the spread).
  const dsOk = t.packFirst === true && !deterministic && kernel.schedule.headDim >= 128;
  if (t.dsMatrix && !dsOk) t = { ...t, dsMatrix: false };
  if (t.dqDouble && !t.pingPong) t = { ...t, dqDouble: false }; // its second block is pingPong's spare
  return t;
}

/** Device helpers the knobs need (none when every knob is off, so the default source is unchanged). */
export function tuneHelpers(t: BackwardWgmmaTune, dtype: 'f16' | 'bf16'): string[] {
  return [
    ...(t.n128
      ? [
          ...wgmmaFn('wg_pv128', 128, dtype, true, true),
          '// d (64 × W) += A·B over one k16 step: one m64n128 at W = 128, else wg_pv (m64n64, W = 64).',
          'template <int W>',
          '__device__ __forceinline__ void wg_pv_w(float (&d)[W / 8][4], const unsigned (&a)[4], uint64_t db) {',
          '  if constexpr (W == 128) wg_pv128(d, a, db);',
          '  else wg_pv<0>(d, a, db);',
          '}',
        ]
      : []),
    ...(t.dsMatrix
      ? [
          '// Four 8 × 8 16-bit matrices of registers r, stored transposed: lane L gives the address of',
          '// row L % 8 of matrix L / 8 (sm_90).',
          '__device__ __forceinline__ void stsm_x4_t(T* dst, const unsigned (&r)[4]) {',
          '  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\\n"',
          '               ::"r"(smem_addr(dst)), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]) : "memory");',
          '}',
        ]
      : []),
    ...(t.fastExp
      ? [
          '// 2^x flushing denormal results to zero (P that small adds nothing): one MUFU.EX2, no',
          "// fixup around it as exp2f's; ex2(-inf) = +0 keeps the +inf lse rows at P = 0.",
          '__device__ __forceinline__ float ex2_ftz(float x) {',
          '  float y;',
          '  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));',
          '  return y;',
          '}',
        ]
      : []),
    ...(t.dqUnroll || t.descLo
      ? [
          '// The low word of desc128(p, lbo) (address >> 4 and the LBO); the high word (SBO 1024,',
          '// 128B swizzle) is the constant DESC_HI, so a k-step adds a constant to the low word only',
          '// (the address field cannot carry: shared memory ends below 2^18 bytes).',
          '__device__ __forceinline__ unsigned desc_lo(const T* p, unsigned lbo) {',
          '  return ((smem_addr(p) & 0x3FFFFu) >> 4) | ((lbo >> 4) << 16);',
          '}',
          'constexpr unsigned DESC_HI = 64u | (1u << 30);',
          '__device__ __forceinline__ uint64_t desc_of(unsigned lo) { return ((uint64_t)DESC_HI << 32) | lo; }',
          '__device__ __forceinline__ uint64_t dsc(unsigned lo, int elems) { return desc_of(lo + (unsigned)(elems >> 3)); }',
          '__device__ __forceinline__ unsigned opaque32(unsigned v) {',
          '  asm volatile("" : "+r"(v));',
          '  return v;',
          '}',
        ]
      : []),
  ];
}
