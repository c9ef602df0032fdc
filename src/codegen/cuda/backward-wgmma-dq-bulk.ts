// The dqBulk knob of the Hopper backward's producer kernel (backward-wgmma-tune.ts): dQ off the
// consumers' path, as FlashAttention-3 does it. A consumer warpgroup no longer adds its 64 × 64
// f32 dQ block into dq_acc by atomics; it stores the block into shared memory (one buffer per
// warpgroup) with its dq_acc row and row count, and arrives on dq_full[wg]. The producer
// warpgroup's last warp (the dQ warp) adds each block into dq_acc by bulk reductions
// (cp.reduce.async.bulk .add.f32: the TMA unit reads shared memory and adds in L2, no tensor map,
// one 256-byte row segment an instruction), waits until they have read shared memory and arrives
// on dq_empty[wg]; the consumers wait for that only before writing the next block, a whole tile
// later. The other three producer warps load Q, dO, lse and delta as before.
//   consumers  (tile it) dQ wgmma → wait dq_empty[wg] (phase it - 1) → st.shared, the block's row
//              and count → proxy fence → arrive dq_full[wg] (128 arrivals); after the last tile
//              a count of -1 (done) the same way;
//   dQ warp    (block it) per wg: wait dq_full[wg] (phase it) → bulk adds of the block's rows →
//              commit, wait until read → arrive dq_empty[wg] (lane 0); until a count of -1.
// The dQ warp is told each block's place rather than walking the q-tiles itself: its own copy of
// next_tile at 40 registers spilled (document: 160 bytes against 20 without it).
// Only the atomic mode has it (the deterministic mode adds no dQ in bwd_dkdv), only where dq_acc is
// 16-byte aligned (a run-time flag, uniform over the CTA: otherwise the 8-byte atomics) and only
// where the buffers fit in shared memory (dqBulkSmemBytes; renderCudaBackwardWgmma drops the knob).
import { dqAdd2 } from './backward-wgmma-tile.js';
import { indent } from './indent.js';
import type { DkdvOrder } from './backward-residue.js';

/**
 * Floats between rows of a dQ block in shared memory: 64 columns and 8 of padding, so a half
 * warp's 8-byte stores (rows g..g+3, columns 2·t4..) fall on 32 distinct banks; 288-byte rows
 * keep every row segment 16-byte aligned, as the bulk copy needs.
 */
export const DQ_LD = 72;

/** Shared memory the knob adds: dq_full[2], dq_empty[2], dq_meta[2][2] and two [BM][DQ_LD] f32 blocks. */
export const DQ_BULK_BYTES = 4 * 8 + 4 * 8 + 2 * 64 * DQ_LD * 4;

/**
 * What dqDouble (with pingPong, whose one block is D + 8 floats a row and fills DQ_BULK_BYTES's
 * room for two 64-wide ones at D = 128) adds: room for a second D-wide block.
 */
export const dqDoubleExtraBytes = (D: number): number =>
  Math.max(0, 4 * 8 + 4 * 8 + 2 * 64 * (D + 8) * 4 - DQ_BULK_BYTES);

/** Producer threads that still load Q/dO/lse/delta when the last warp does the dQ adds. */
export const DQ_BULK_LOADERS = 96;

/** Device helpers of the knob (tuneHelpers). */
export const dqBulkHelpers: readonly string[] = [
  '// bytes of shared memory at src added into global memory at dst by the TMA unit (f32 adds in',
  '// L2); 16-byte aligned, a multiple of 16 bytes. Completes as a bulk group of this thread.',
  '__device__ __forceinline__ void bulk_add_f32(float* dst, const float* src, unsigned bytes) {',
  '  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\\n"',
  '               ::"l"(dst), "r"(smem_addr(src)), "r"(bytes) : "memory");',
  '}',
  '__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\\n" ::: "memory"); }',
  "// This thread's bulk groups have read their shared memory (it may be written again).",
  '__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\\n" ::: "memory"); }',
  "// This thread's bulk groups have completed (their global writes are done).",
  '__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\\n" ::: "memory"); }',
];

/** The kernel's declarations of the knob's barriers and blocks, after empty_bar. */
export const dqBulkSmemDecls: readonly string[] = [
  '  uint64_t* dq_full = empty_bar + 2;  // [2]: warpgroup wg stored its dQ block',
  '  uint64_t* dq_empty = dq_full + 2;   // [2]: the dQ warp has read it',
  "  long long* dq_meta = reinterpret_cast<long long*>(dq_empty + 2); // [2][2]: a block's dq_acc row, rows (-1: done)",
  '  float* dQs = reinterpret_cast<float*>(dq_meta + 4); // [2][BM][DQ_LD]: the blocks, 16-byte aligned',
];

/** Their initialisation (thread 0, beside full_bar and empty_bar's). */
export const dqBulkInit: readonly string[] = [
  '      mbar_init(&dq_full[i], 128);',
  '      mbar_init(&dq_empty[i], 1);',
];

/**
 * What replaces the consumers' dQ atomics (TileSync.dqAdd): the block into shared memory for the
 * dQ warp when dq_acc is 16-byte aligned (`v4`, the kernel's flag), else the 8-byte atomics. `it`
 * is the consumer loop's tile count (the lambda captures it).
 */
export const dqBulkStore = (o: DkdvOrder): string[] => [
  'if (v4) {',
  '  float* dqw = dQs + wg * (BM * DQ_LD);',
  '  if (it > 0) mbar_wait(&dq_empty[wg], (it - 1) & 1); // the dQ warp has read the previous block',
  '#pragma unroll',
  '  for (int r = 0; r < 2; ++r) {',
  '    float* row = dqw + ((warp & 3) * 16 + g + 8 * r) * DQ_LD + t4 * 2;',
  '#pragma unroll',
  '    for (int n = 0; n < 8; ++n) *reinterpret_cast<float2*>(row + n * 8) = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);',
  '  }',
  '  if ((tid & 127) == 0) {',
  `    dq_meta[2 * wg] = (long long)(${o.qrow('q0')});`,
  `    dq_meta[2 * wg + 1] = min(BM, ${o.nq} - q0);`,
  '  }',
  '  proxy_fence(); // generic-proxy stores, read by the bulk adds through the async proxy',
  '  mbar_arrive(&dq_full[wg]); // releases the block and dq_meta to the dQ warp',
  '} else {',
  ...indent(dqAdd2(o), '  '),
  '}',
];

/** After the consumers' last tile: the dQ warp's stop (a row count of -1), sent as a block is. */
export const dqBulkDone: readonly string[] = [
  'if (v4) {',
  '  if (it > 0) mbar_wait(&dq_empty[wg], (it - 1) & 1);',
  '  if ((tid & 127) == 0) dq_meta[2 * wg + 1] = -1;',
  '  mbar_arrive(&dq_full[wg]);',
  '}',
];

/**
 * The dQ warp's loop (producer threads DQ_LOADERS..127): warpgroup w's block `it` is rows
 * [row, row + rows) of dq_acc, columns 64·w.. (D = 128; at D = 64 both blocks are partial sums
 * over the two warpgroups' keys, added into the same 64 columns); each row one 256-byte bulk add,
 * lane and lane + 32. Both warpgroups walk the same q-tiles, so both stop at the same `it`.
 */
export function dqBulkWarpLoop(pingPong = false, residue = false, double = false): string[] {
  // pingPong: one block a tile, the two warpgroups' partial sums already added, D columns a row
  // (dqDouble: in block it & 1, its barriers' (it >> 1)-th phase).
  const [blocks, col, bytes] = pingPong ? [1, '0', 'D * 4'] : [2, '(D == 128 ? 64 * w : 0)', '64 * 4'];
  const dbl = pingPong && double;
  const [b, phase] = dbl ? ['blk', '(it >> 1) & 1'] : ['w', 'it & 1']; // (`b` is the kernel's batch)
  // Residue classes (backward-residue.ts): a block's rows are `step` apart (the same step in every unit).
  const [lane, row] = residue ? ['(long long)ru.step * lane', '(size_t)r * ru.step * D'] : ['lane', 'r * D'];
  return [
    'if (!v4) return; // the consumers add dQ by atomics',
    '#pragma unroll 1',
    'for (int it = 0;; ++it) {',
    '  bool done = false;',
    '#pragma unroll 1',
    `  for (int w = 0; w < ${blocks}; ++w) {`,
    ...(dbl ? ['    const int blk = it & 1; // dqDouble: tile it in block it & 1'] : []),
    `    mbar_wait(&dq_full[${b}], ${phase});`,
    `    const int rows = (int)dq_meta[2 * ${b} + 1];`,
    '    if (rows < 0) {',
    '      done = true;',
    '      continue;',
    '    }',
    `    const float* src = dQs + ${b} * (BM * DQ_LD) + lane * DQ_LD;`,
    `    float* dst = a.dq_acc + (size_t)(dq_meta[2 * ${b}] + ${lane}) * D + ${col};`,
    '#pragma unroll',
    '    for (int r = 0; r < BM; r += 32)',
    `      if (lane + r < rows) bulk_add_f32(dst + ${row}, src + r * DQ_LD, ${bytes});`,
    '    bulk_commit();',
    '    bulk_wait_read();',
    '    __syncwarp();',
    `    if (lane == 0) mbar_arrive(&dq_empty[${b}]);`,
    '  }',
    '  if (done) break;',
    '}',
    'bulk_wait_all(); // every add has landed before the kernel ends (bwd_dq_out reads dq_acc)',
  ];
}
