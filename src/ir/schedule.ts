// The Schedule: tile sizes, threads, engine and the tuning knobs of the backends. A frozen,
// hashable value beside the kernel IR (kernel.ts): changing the schedule never changes the algorithm.

export interface Schedule {
  /** Queries owned by one workgroup / thread block. */
  readonly blockQ: number;
  /** Keys per K/V tile staged in workgroup / shared memory. */
  readonly blockK: number;
  /** Invocations per workgroup / threads per block. */
  readonly threads: number;
  /** K/V pipelining depth (1 = load then compute). */
  readonly stages: number;
  /** Head dim of q and k (compile-time: it sizes register arrays). */
  readonly headDim: number;
  /** Head dim of v and out. */
  readonly valueDim: number;
  /** Positions per block of a tensor min/max summary (tile classification of lookups). */
  readonly summaryBlock: number;
  /**
   * CUDA compute engine: 'simt' (FMA units, any dtype and head dim) or 'mma' (tensor cores,
   * mma.sync; f16/bf16 with head dims that are multiples of 64) or 'wgmma' (Hopper warpgroup MMA,
   * f16/bf16 at D = 64/128; chosen only by override until verified). Absent means 'simt', so that
   * backends without a choice (WGSL) keep their schedule values, and hashes, unchanged.
   */
  readonly engine?: Engine;
  /**
   * How the CUDA tensor-core engines find a q-tile's non-empty K/V tiles: 'bounds' (warp ballots
   * find the first and last, then tiles in between are classified one by one) or 'ballot' (32
   * tiles per warp ballot, so long runs of empty tiles in between cost little: two-range masks
   * such as sinks + window). Absent: 'ballot' when the classifier reads tensor summaries, else
   * 'bounds'. A tuning choice; never changes results.
   */
  readonly tileScan?: 'ballot' | 'bounds';
  /**
   * wgmma-ws consumers (absent: 'serial', a tile's S = Q·Kᵀ, softmax and P·V one after another):
   * 'overlap' issues the next tile's S = Q·Kᵀ beside this P·V and runs its softmax under it
   * (FlashAttention-3 §3.2); 'pingpong' has the two consumer warpgroups take turns issuing their
   * matrix products, so one's softmax runs under the other's (§3.1); 'fa3' both. Tuning only.
   */
  readonly wsConsumers?: 'serial' | 'overlap' | 'pingpong' | 'fa3';
  /**
   * wgmma-ws: the producer warp alone classifies the tiles and computes their per-key hoists,
   * handing the consumers each tile's index and kind through the stage ring (absent: every
   * consumer warp walks the tile sequence too). Tuning only.
   */
  readonly wsProducerWalk?: boolean;
  /**
   * wgmma-ws over quantized K/V: how the producer warpgroup converts the tiles (absent:
   * 'pipelined', two staging buffers so the next tile's code words load while this one converts,
   * and the fast converter where the format allows; 'serial': one staging buffer, load then
   * convert, the general converter). Tuning only.
   */
  readonly wsDequant?: 'serial' | 'pipelined';
  /**
   * CUDA prefill over quantized K/V (codegen/cuda/quant-stage.ts): 'staged' adds a launch entry
   * taking a workspace, where a memory-bound pass dequantizes the K/V rows once (the fused tile
   * converter's values bit for bit) and the float engine attends over them; the plain launch stays
   * fused (absent: 'fused', every tile converted inside the attention).
   */
  readonly quantPrefill?: 'staged' | 'fused';
  /**
   * CUDA decode's tensor-core kernel (codegen/cuda/decode-mma-lean.ts): its lean per-step code
   * (ATTNC_DEC_MMA_LEAN bits: 1 rescale O only on a row-max rise, 2 skip padding rows 8..15).
   * 'off': the kernel without it; 'knob': with it behind the macro, default 0 (the off arithmetic;
   * a build sets -DATTNC_DEC_MMA_LEAN=1..3); 'on': default 3. Absent: 'on' for quantized K/V
   * caches, 'off' for float ones (decodeLeanOf, measured on the H200). Tuning only: exact.
   */
  readonly decodeLean?: DecodeLean;
  /**
   * wgmma-ws refinements after FlashAttention-3 (issue 13), each its own switch so that they can be
   * timed one by one (absent: none; codegen/cuda/wgmma-ws-tweaks.ts says what each does). Tuning only.
   */
  readonly wsTweaks?: readonly WsTweak[];
  /**
   * mma/wgmma over 2-D neighbourhood patches (issue 13 item 4): refinements of the patch layout,
   * each its own switch so that they can be timed one by one (absent: none;
   * codegen/cuda/patch-tweaks.ts says what each does). Ignored by kernels without patches.
   * Tuning only: the same results.
   */
  readonly patchTweaks?: readonly PatchTweak[];
  /**
   * CUDA raw-query block routing (codegen/cuda/token-form.ts): the order of the token attention.
   * Absent = 'query' (a block per run of query rows gathers each row's selected blocks); 'key'
   * inverts the selection and runs a block per selected key block over the rows that chose it,
   * then merges each row's partials (token-keymajor.ts). Tuning only: the same results.
   */
  readonly tokenOrder?: 'query' | 'key';
  /**
   * WGSL engine: absent = the row engine (an invocation per query row, for CPU adapters), 'coop' =
   * the cooperative engine (codegen/wgsl/coop.ts: register-blocked S and O over a workgroup, for
   * GPUs). Absent by default so row kernels keep their schedule hashes.
   */
  readonly wgslEngine?: 'coop';
  /** WGSL coop engine: reduce row maxima with subgroup shuffles (needs the `subgroups` feature). */
  readonly subgroups?: boolean;
  /**
   * WGSL coop engine: invocations that share a query row (4, 8, 16 or 32; absent = 4). More lanes
   * give each invocation more rows (threads = lanes·blockQ / rows per invocation) and fewer columns
   * of S and O: a larger register block per shared-memory load. A tuning choice.
   */
  readonly coopLanes?: number;
  /**
   * WGSL coop engine: stage K and V in two workgroup buffers in one phase (one barrier less per
   * tile, more memory) instead of V taking K's place. Absent = one buffer. A tuning choice.
   */
  readonly coopSplitKv?: boolean;
  /**
   * WGSL coop engine: load the next tile's K and V into registers while this tile is computed
   * (their latency hidden behind the arithmetic; ⌈blockK·D/4/threads⌉ vec4 registers each).
   * Absent = off. A tuning choice.
   */
  readonly coopPrefetch?: boolean;
  /**
   * WGSL coop engine: read Q from its storage buffer (through the cache) in the S loop instead of
   * staging the Q tile in workgroup memory: frees blockQ·D·4 bytes for larger K/V tiles. Absent =
   * staged. A tuning choice.
   */
  readonly coopQGlobal?: boolean;
  /**
   * WGSL coop engine: two K (and V) tile buffers in workgroup memory, taken in turn, and a chunk's
   * tile classes read 16 to a word: the barrier that kept a tile's loads from overwriting the
   * previous tile's K/V while it was still read goes (one barrier less per tile; twice the K/V
   * tile memory). Absent = off. A tuning choice.
   */
  readonly coopDoubleKv?: boolean;
  /**
   * WGSL coop engine: workgroup x takes the query tiles from the last one down, so that under
   * masks whose later rows see more keys (causal, prefix-LM) the longest tiles start first and
   * the short ones fill the last wave instead of trailing it. Absent = first tile first. A tuning
   * choice (the results do not depend on it).
   */
  readonly coopQDescending?: boolean;
  /**
   * WGSL coop engine (f32 arithmetic): S = Q·Kᵀ and O += P·V as explicit fma() chains instead of
   * `s += dot(q, k)` (a multiply, three fused adds and an add: five instructions for four products)
   * and `o += p * v` (fused only where the driver contracts). Absent = dot and +=. A tuning choice
   * (the sums' rounding order differs, within the f32 reference bound).
   */
  readonly coopFma?: boolean;
  /**
   * WGSL coop engine: the S loop over the head dimension and, over float K/V, the P·V loop over a
   * tile's keys get constant trip counts (CO_D4, BLOCK_K: keys past Nk are zero in the staged tile
   * and in P), so a GPU driver can unroll them. Absent = bounds read at run time, which keeps
   * LLVM-based CPU drivers (lavapipe) from unrolling them (about 10× their compile time). A tuning
   * choice.
   */
  readonly coopUnroll?: boolean;
  /**
   * WGSL coop engine, masks classified per tile: a chunk's tile loop runs from its first tile with
   * work to its last (found with two workgroup atomics after the chunk is classified) instead of
   * over every tile, each empty one costing a barrier (its class is read uniformly). Under a
   * sliding window or a document mask most of a row's tiles are empty. Absent = every tile. A
   * tuning choice.
   */
  readonly coopChunkSpan?: boolean;
  /**
   * WGSL coop engine on devices with subgroups: P stays in the registers that held S, and P·V
   * reads key j of a row from the lane that owns it (subgroupShuffle) instead of from workgroup
   * memory. The P tile (blockQ × (blockK + 1) floats) leaves workgroup memory, which lets 64-key
   * tiles fit 48 KiB beside 128 query rows (half the Q reads a key in the S loop), and the split
   * K/V buffers lose the barrier that published P. Where a row's lanes turn out not to share a
   * subgroup (checked at run time), P goes through a blockQ × lanes buffer a score column at a
   * time. Absent = P through workgroup memory. A tuning choice (the D ≤ 64 default; at D 128 every
   * tile measured ran 30–45% slower on an H100).
   */
  readonly coopPShuffle?: boolean;
  /**
   * WGSL coop engine: workgroups, taken in launch order (x fastest), cover every (head, batch) of
   * a query tile before the next tile, instead of every tile of a head before the next head. With
   * coopQDescending the longest tiles of all heads then start first; otherwise a head's longest
   * tiles start only after the previous heads' tiles have been handed out, and under causal masks
   * the last wave trails (a list-scheduling model: 1.24× the ideal time at 64 tiles a head, one
   * workgroup an SM). Absent = one head's tiles after another. A tuning choice.
   */
  readonly coopHeadsInner?: boolean;
  /**
   * WGSL coop engine where shuffles need the run-time subgroup check (more than four lanes a row,
   * or coopPShuffle): the check branches once, around the whole tile loop (rendered once with
   * shuffles only and once with workgroup memory only), instead of at the row max and at P·V of
   * every tile. Twice the loop's code; no branch inside it. Absent = checked where used. A tuning
   * choice (results are the same either way).
   */
  readonly coopSgHoist?: boolean;
  /**
   * WGSL coop decode over a quantized K/V cache: 'wide' = each lane owns a contiguous run of
   * channels and loads its codes with vec4<u32> (or vec2<u32> / u32) loads, one per 16 bytes, and
   * reads a scale shared by the run once (codegen/wgsl/dequant-run.ts); formats whose row does not
   * split into whole runs keep the word-per-vec4 loads. 'wide16': as 'wide' with fewer lanes per key
   * row where needed for every run to be 16 bytes, up to runs of 32 channels (at D = 128: int4 on 4
   * lanes, 16 bytes; int2 on 4 lanes, 8 bytes). 'words': one code word per vec4 of channels (the
   * path before round 10). Absent = 'wide16' (codegen/wgsl/decode-coop.ts). A tuning choice.
   */
  readonly coopDecodeCodes?: 'words' | 'wide' | 'wide16';
  /**
   * WGSL coop decode: invocations that share a key row of the decode module (a power of 2 up to
   * 32). Absent = the default (8, fewer for narrow rows, halved by 'wide16' where int4 / int2 runs
   * would be under 16 bytes). Wide code loads are made for these lanes, and a rendered module keeps
   * them (retuneCoopDecode re-tunes every other knob): the way to sweep lanes over a quantized
   * cache. A tuning choice.
   */
  readonly coopDecodeLanes?: number;
}

/** Schedule.decodeLean: how the CUDA tensor-core decode's lean code is emitted. */
export type DecodeLean = 'off' | 'knob' | 'on';
export const DECODE_LEAN_MODES: readonly DecodeLean[] = ['off', 'knob', 'on'];

/** Schedule.wsTweaks: the wgmma-ws refinements (codegen/cuda/wgmma-ws-tweaks.ts). */
export type WsTweak =
  | 'splitKv'
  | 'fastExp'
  | 'lazyRescale'
  | 'zeroInit'
  | 'pvN128'
  | 'rescaleInTurn'
  | 'packFirst'
  | 'regs240'
  | 'foldScale';

/**
 * Schedule.patchTweaks: the patch-layout refinements (codegen/cuda/patch-tweaks.ts), and
 * 'backward': the tensor-core backward's dK/dV kernel in 2-D patch order too
 * (codegen/cuda/backward-patch.ts): the default where no patchTweaks are named; a list without it
 * keeps the backward's plain order.
 */
export type PatchTweak =
  'unitRegs' | 'rowTable' | 'boxMask' | 'visitAll' | 'blocks2' | 'blocks3' | 'blocks4' | 'backward';

/** 'wgmma-ws': as wgmma, with a TMA producer warpgroup and mbarrier stages (warp-specialized). */
export type Engine = 'simt' | 'mma' | 'wgmma' | 'wgmma-ws';
