// Raw-query block routing on tensor cores (NSA / landmark / cca: `route blocks(n) … by q . pool(k)`).
// The SIMT top-k (routing.ts) computes every (query row × key block) affinity with FMA units and
// keeps a row's whole affinity row in shared memory; at 64K that is 119 ms. This pass instead:
//   - one block per (ROUTE_MQ = 16 · ROUTE_WARPS query rows, selection group, batch), a warp per 16 rows;
//   - the pooled keys stream through shared memory ROUTE_KC (32) blocks (a chunk) at a time: cp.async copies
//     chunk c + 1 (f32) while the block scores chunk c; then split() turns it into two 16-bit parts
//     (hi = round(k), lo = round(k - hi)), so mma.sync m16n8k16 with the exact 16-bit query gives
//     q · k to about 2^-16 relative instead of bf16's 2^-8 — close enough to the f32 ranking that
//     the float64 oracle's near-tie tolerance (1e-4) holds;
//   - chunks no row of the block can use (the static mask's tile classifier on the block's rows and
//     the chunk's key range: causal skips the upper half) are never staged; a warp skips the
//     multiplications of chunks none of its own rows can use;
//   - vote groups take two passes: per (row, voter) the softmax max and sum over the candidates
//     (online), then the summed vote per block; without a vote, one pass over the affinities;
//   - a streaming top-k per row as four lane-private sorted lists (metric desc, id asc — ties go to
//     the lower id) in shared memory: lane t4 of the row's quad keeps the best `topk` of its own
//     columns; an element is inserted only if it beats every full list's last entry of the quad
//     (those are `topk` ranked blocks that beat it), so after the first chunks few elements insert,
//     and the four lanes insert at once (no turns, no barrier);
//   - at the end a thread per row merges the four lists' best `topk`, and the forced blocks that are
//     candidates, ascending, pads with -1, as the SIMT pass does (same candidacy: route_candidate).
// Work at 64K, 16 heads over 4 kv heads, topk 13, vote groups (per call): MMA 64K rows × 16 heads ×
// ~512 causal blocks × D 128 × 2 flop × 2 (hi, lo) × 2 passes ≈ 0.55 TFLOP; exp 2 × 0.54 G; pooled
// keys staged 4 groups × 512 blocks (128 rows) × ~16 chunks × 2 passes × 16 KB ≈ 1.1 GB from L2;
// insertions per row and lane ≈ 16 (first chunk) + ~13 · ln(512 / 32) / 4 later.
// Query fragments are re-read (L2: at 186 KiB of shared memory an SM, L1 cannot keep them) per
// chunk and voter: 128 KiB a step for 128 rows × 4 voters against 16 KiB of staged keys, ≈ 8.6 GB a
// call at 16 heads and 34 GB at 64 — the reason for ROUTE_QVEC (fewer, wider loads in flight) and
// ROUTE_QREG (opt-in, routing-topk-mma-voter.ts): the statistics pass voter-outer, a voter's
// fragments held in registers across chunks, keys restaged per voter — half the re-reads; the vote
// pass stays chunk-outer (its top-k needs every voter's probability of a block at once).
// Precision: the oracles accept a selection whose worst pick is within 1e-3 (emulator tests, on
// the metric) or 1e-4 · max(1, |metric|) (routing.py on the GPU) of the best unpicked block. The
// vote metric is a sum of probabilities (≈ 1e-3 each at 64K), whose error is p · (error of q · k):
// far inside either. Raw affinities (no vote) of magnitude ~1 are the tight case. One f16 key part
// with f16 queries (half the MMAs, each row and chunk scaled by a power of two into f16's range) was
// built in round 9 and measured in round 10: no faster on the H200 (64K: 6.09 / 20.2 ms against
// 6.05 / 19.0 at 16 / 64 heads) and racecheck found shared-memory hazards in it, so it was removed
// (docs/PERFORMANCE.md, rounds 9 and 10, hold its figures).
// Main's version (serial quad insertion, 180 registers: 8 warps an SM) took 15 ms under ncu: 4.8 G
// warp instructions at IPC 1.4, 146 M shared stores — issue- and latency-bound on the per-element
// code, not on the tensor cores; hence few instructions per element and no serial chains here.
// Shape (H200, 64K, bf16 D 128, 4 kv heads): 8 warps × 32-block chunks ranked in 6.8 ms at 16 heads
// and 22.3 ms at 64 (4 warps × 64 blocks: 8.3 and 24.3; 4 × 32: 7.9 and 27.3): each staged chunk
// feeds 128 rows. Shared memory at D 128, topk 13, 4 voters: 93 KiB (2 blocks, 16 warps an SM).
// The launcher takes this pass when topk ≤ ROUTE_KMAX, the SIMT pass otherwise.
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  chunkClassFn,
  cpAsyncHelpers,
  mmaHelper,
  routeTopkTcName,
  sharedHelpers,
  topkConstants,
} from './routing-topk-mma-parts.js';
import { stageAndScoreLambdas } from './routing-topk-mma-scores.js';
import { voterOuterStats } from './routing-topk-mma-voter.js';
import type { CudaContext } from './rules.js';
import { sharedStorage } from '../../ir/formats.js';
import { isRankedBlocks } from '../../ir/routing.js';
import { rankedBlocksOf, voterRange } from './routing-case.js';
import { finalMerge, laneTopk, passStats } from './routing-topk-mma-steps.js';

export { ROUTE_TC_THREADS, ROUTE_TC_WARPS, routeTopkTcName } from './routing-topk-mma-parts.js';
export { tensorTopkEntry, tensorTopkHostLaunch } from './routing-topk-mma-host.js';

/** Whether `k` gets the tensor-core top-k: raw query side, 16-bit storage, D a multiple of 16. */
export function hasTensorTopk(k: AttentionKernel): boolean {
  const r = k.routing;
  return (
    !!r &&
    isRankedBlocks(r) &&
    r.source.q === 'raw' &&
    sharedStorage(k.formats) !== 'f32' &&
    k.schedule.headDim % 16 === 0
  );
}

/** The tensor-core top-k kernel and its helpers (device code, after routing.ts's helpers). */
export function tensorTopkDeviceCode(k: AttentionKernel, cx: Omit<CudaContext, 'vars'>): string {
  const over = rankedBlocksOf(k).source.vote;
  const vote = over !== undefined;
  const voters = voterRange(over);
  const nvoters = over === 'heads' ? 'a.H' : over === 'groups' ? 'a.H / a.Hkv' : '1';
  const dtype = sharedStorage(k.formats) as 'f16' | 'bf16';
  return [
    ...topkConstants(vote),
    ...mmaHelper(dtype),
    ...cpAsyncHelpers,
    ...chunkClassFn(k, cx),
    ...sharedHelpers(nvoters),
    '',
    `extern "C" __global__ void __launch_bounds__(ROUTE_THREADS, ROUTE_MINB) ${routeTopkTcName(k)}(const Args a) {`,
    ...blockSetup(voters),
    ...chunkScan(),
    ...stageAndScoreLambdas(),
    ...elementMasks(),
    '  float acc[ROUTE_KC / 8][4], met[ROUTE_KC / 8][4];',
    "  unsigned any_cand = 0u; // the chunk's elements some voter had as a candidate",
    ...passStats(voters[0]!),
    ...laneTopk(),
    ...stepLoop(),
    '  __syncthreads();',
    ...finalMerge(voters),
    '}',
  ].join('\n');
}

/**
 * The kernel's shared-memory carve-up, its rows (block, warp and lane) and voters, and the
 * forced-block bounds of the lane's two rows.
 */
function blockSetup(voters: readonly [string, string]): string[] {
  return [
    '  extern __shared__ __align__(16) unsigned char route_tc_smem_raw[];',
    '  float* kst = reinterpret_cast<float*>(route_tc_smem_raw);        // [ROUTE_KC][D] chunk in flight',
    '  T* khi = reinterpret_cast<T*>(kst + ROUTE_KC * D);               // [ROUTE_KC][ROUTE_KP]',
    '  T* klo = khi + ROUTE_KC * ROUTE_KP;',
    '  const int ktop = (int)route_count(a, 0), nv = route_voters(a);',
    '  float* lm = reinterpret_cast<float*>(klo + ROUTE_KC * ROUTE_KP); // [ROUTE_MQ][4][ktop] sorted metrics',
    '  int* lid = reinterpret_cast<int*>(lm + ROUTE_MQ * 4 * ktop);      // [ROUTE_MQ][4][ktop] their ids',
    '  int* lcnt = lid + ROUTE_MQ * 4 * ktop;                            // [ROUTE_MQ][4] list lengths',
    '  float* vst = reinterpret_cast<float*>(lcnt + ROUTE_MQ * 4);       // [ROUTE_MQ][nv][2] vote max, 1 / sum',
    '  (void)vst; (void)nv;',
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane / 4, t4 = lane % 4;',
    '  // Last rows first: under causal-like masks they rank the most chunks, so the long blocks start early.',
    '  const int g = blockIdx.y, b = blockIdx.z, row0 = (gridDim.x - 1 - blockIdx.x) * ROUTE_MQ;',
    '  const int kb0 = route_kb0(a), nkb = route_nkb(a), cap = route_cap(a);',
    '  const long long c_first = route_count(a, 1), c_local = route_count(a, 2);',
    '  for (int i = tid; i < ROUTE_MQ * 4; i += ROUTE_THREADS) lcnt[i] = 0;',
    '  if (ROUTE_VOTE)',
    '    for (int i = tid; i < ROUTE_MQ * nv; i += ROUTE_THREADS) { vst[2 * i] = -INFINITY; vst[2 * i + 1] = 0.f; }',
    "  // This warp's rows (and this lane's two of them: gq and gq + 8), as query positions.",
    '  const int wr0 = row0 + warp * 16, wrows = max(0, min(16, a.Nq - wr0));',
    '  const int wq_lo = wr0 + a.q_offset, wq_hi = wr0 + wrows - 1 + a.q_offset;',
    '  const int lr[2] = {warp * 16 + gq, warp * 16 + gq + 8}; // block-local rows',
    '  const bool lvalid[2] = {row0 + lr[0] < a.Nq, row0 + lr[1] < a.Nq};',
    '  const int lq[2] = {row0 + lr[0] + a.q_offset, row0 + lr[1] + a.q_offset};',
    '  const int lown[2] = {route_floor_div(lq[0], RB), route_floor_div(lq[1], RB)};',
    '  // Forced: id < c_first or flo <= id <= own (32-bit: the launcher bounds the counts by 2^20).',
    '  const int c_first32 = (int)c_first, flo[2] = {lown[0] - (int)c_local + 1, lown[1] - (int)c_local + 1};',
    "  // The block's rows as query positions, and the kv heads of its voters (block-uniform).",
    '  const int bq_lo = row0 + a.q_offset, bq_hi = min(row0 + ROUTE_MQ, a.Nq) - 1 + a.q_offset;',
    `  const int v_lo = ${voters[0]}, v_hi = ${voters[1]}, G = a.H / a.Hkv;`,
    '  const int hkv_lo = v_lo / G, hkv_hi = (v_hi - 1) / G;',
  ];
}

/** next_chunk: skips the chunks of key blocks no row of the block can use (never staged). */
function chunkScan(): string[] {
  return [
    '  // The first chunk at or after c0 some row of the block can use (nkb: none).',
    '  auto next_chunk = [&](int c0) -> int {',
    '    for (; c0 < nkb; c0 += ROUTE_KC) {',
    '      const int id_lo = kb0 + c0, id_hi = kb0 + min(c0 + ROUTE_KC, nkb) - 1;',
    '      for (int h = v_lo; h < v_hi; ++h)',
    '        if (route_chunk_class(a, b, h, bq_lo, bq_hi, id_lo, id_hi) != 0) return c0;',
    '    }',
    '    return nkb;',
    '  };',
  ];
}

/**
 * Bit masks over a chunk's accumulator elements: in range of the call (in_range) and, of those,
 * a voter's candidates (candidates), so a masked element never ranks.
 */
function elementMasks(): string[] {
  return [
    '  // Bit j * 4 + e: element (j, e) of chunk c0 (a block of the call, a valid row).',
    '  auto in_range = [&](const int c0) -> unsigned {',
    '    unsigned bits = 0u;',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '      for (int e = 0; e < 4; ++e)',
    '        bits |= (unsigned)(lvalid[e >> 1] && c0 + j * 8 + 2 * t4 + (e & 1) < nkb) << (j * 4 + e);',
    '    return bits;',
    '  };',
    '  const unsigned row_bits = in_range(-ROUTE_KC); // every block in range: the rows only',
    "  // Of those (inr), the candidates of voter h (cls: the warp's chunk class; 1: all are).",
    '  auto candidates = [&](const int cls, const int h, const int c0, const unsigned inr) -> unsigned {',
    '    if (cls == 1) return inr;',
    '    unsigned bits = 0u;',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '      for (int e = 0; e < 4; ++e) {',
    '        const int jj = c0 + j * 8 + 2 * t4 + (e & 1), rr = e >> 1;',
    '        const bool ok = ((inr >> (j * 4 + e)) & 1u) && route_candidate(a, b, h, lq[rr], lq[rr], kb0 + jj);',
    '        bits |= (unsigned)ok << (j * 4 + e);',
    '      }',
    '    return bits;',
    '  };',
  ];
}

/**
 * The pipelined steps over (pass, chunk, voter kv head): stage the next chunk while this one is
 * split, scored, and fed to the statistics (pass 0) or the votes and lane top-k (pass 1).
 */
function stepLoop(): string[] {
  return [
    '  // The steps: (pass, chunk, kv head of the voters); stage_issue runs one step ahead.',
    '  int pass = ROUTE_VOTE && !route_qreg ? 0 : 1, c0 = next_chunk(0), hkv = hkv_lo;',
    '  if (c0 >= nkb) pass = 2;',
    '  __syncthreads(); // lists and statistics initialised',
    ...voterOuterStats(),
    '  if (pass < 2) stage_issue(c0, hkv);',
    '#pragma unroll 1',
    '  while (pass < 2) {',
    '    int np = pass, nc = c0, nh = hkv + 1;',
    '    if (nh > hkv_hi) {',
    '      nh = hkv_lo;',
    '      nc = next_chunk(c0 + ROUTE_KC);',
    '      if (nc >= nkb) { ++np; nc = next_chunk(0); }',
    '    }',
    '    route_cp_wait_all();',
    "    __syncthreads(); // this step's chunk has landed; no warp still reads the split keys",
    '    split();',
    '    __syncthreads(); // split keys ready; kst is free',
    '    if (np < 2) stage_issue(nc, nh); // lands while this step multiplies',
    '    const int id_lo = kb0 + c0, id_hi = kb0 + min(c0 + ROUTE_KC, nkb) - 1;',
    '    const unsigned inr = c0 + ROUTE_KC <= nkb ? row_bits : in_range(c0);',
    '    if (hkv == hkv_lo) {',
    '      any_cand = 0u;',
    '#pragma unroll',
    '      for (int j = 0; j < ROUTE_KC / 8; ++j) met[j][0] = met[j][1] = met[j][2] = met[j][3] = 0.f;',
    '    }',
    '    for (int h = max(v_lo, hkv * G); h < min(v_hi, (hkv + 1) * G); ++h) {',
    '      const int cls = wrows > 0 ? route_chunk_class(a, b, h, wq_lo, wq_hi, id_lo, id_hi) : 0;',
    '      if (cls == 0) continue; // warp-uniform',
    '      scores(h, acc);',
    '      const unsigned cand = candidates(cls, h, c0, inr);',
    '      if (pass == 0) stats(h, cand);',
    '      else vote_into(h, cand);',
    '      any_cand |= cand;',
    '    }',
    '    if (pass == 1 && hkv == hkv_hi && ktop > 0) {',
    '#pragma unroll',
    '      for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '        for (int e = 0; e < 4; ++e)',
    "          if (!((any_cand >> (j * 4 + e)) & 1u)) met[j][e] = NAN; // no voter's candidate",
    '      lane_topk(c0);',
    '    }',
    '    pass = np;',
    '    c0 = nc;',
    '    hkv = nh;',
    '  }',
  ];
}
