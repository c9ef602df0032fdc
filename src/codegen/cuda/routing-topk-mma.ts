// Raw-query block routing on tensor cores (NSA / landmark / cca: `route blocks(n) … by q . pool(k)`).
// The SIMT top-k (routing.ts) computes every (query row × key block) affinity with FMA units and
// keeps a row's whole affinity row in shared memory; at 64K that is 119 ms. This pass instead:
//   - one block per (64 query rows, selection group, batch), a warp per 16 rows;
//   - the pooled keys stream through shared memory 64 blocks (a chunk) at a time, split into two
//     16-bit parts (hi = round(k), lo = round(k - hi)), so mma.sync m16n8k16 with the exact 16-bit
//     query gives q · k to about 2^-16 relative instead of bf16's 2^-8 — close enough to the f32
//     ranking that the float64 oracle's near-tie tolerance (1e-4) holds;
//   - chunks no row of the block can use (the static mask's tile classifier on the chunk's key
//     range: causal skips the upper half) are never staged or multiplied;
//   - vote groups take two passes: per (row, voter) the softmax max and sum over the candidates
//     (online), then the summed vote per block; without a vote, one pass over the affinities;
//   - a streaming top-k per row: a sorted list of the best `topk` (metric desc, id asc — ties go
//     to the lower id) in shared memory; a quad's 4 lanes hold the row's scores of a chunk and
//     insert, one lane at a time, only the scores that beat the list's last entry;
//   - at the end a thread per row merges the forced blocks that are candidates with the ranked
//     ids, ascending, pads with -1, as the SIMT pass does (same candidacy: route_candidate).
// The launcher takes this pass when topk ≤ ROUTE_KMAX, the SIMT pass otherwise.
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  ROUTE_TC_THREADS,
  chunkClassFn,
  mmaHelper,
  routeTopkTcName,
  stageAndScoreLambdas,
} from './routing-topk-mma-parts.js';
import type { CudaContext } from './rules.js';
import { sharedStorage } from '../../ir/formats.js';
import { isRankedBlocks } from '../../ir/routing.js';
import { rankedBlocksOf } from './routing-case.js';

export { ROUTE_TC_THREADS, routeTopkTcName } from './routing-topk-mma-parts.js';
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
  const voters =
    over === 'heads'
      ? ['0', 'a.H']
      : over === 'groups'
        ? ['g * (a.H / a.Hkv)', '(g + 1) * (a.H / a.Hkv)']
        : ['g', 'g + 1'];
  const nvoters = over === 'heads' ? 'a.H' : over === 'groups' ? 'a.H / a.Hkv' : '1';
  const dtype = sharedStorage(k.formats) as 'f16' | 'bf16';
  return [
    '// ---- block routing, raw queries: affinities on tensor cores + streaming top-k (routing-topk-mma.ts) ----',
    'constexpr int ROUTE_MQ = 64;   // query rows per block (a warp per 16)',
    'constexpr int ROUTE_KC = 64;   // pooled key blocks per chunk',
    'constexpr int ROUTE_KMAX = 64; // the largest topk kept per row (larger: the SIMT pass)',
    'constexpr int ROUTE_KP = D + 8; // padded row of a staged key (16-bit elements): conflict-free reads',
    `constexpr bool ROUTE_VOTE = ${vote};`,
    ...mmaHelper(dtype),
    ...chunkClassFn(k, cx),
    `__host__ __device__ __forceinline__ int route_voters(const Args& a) { (void)a; return ${nvoters}; }`,
    '// Dynamic shared memory: split keys (hi, lo), per-row lists (metric, id), counts, vote stats.',
    '__host__ __device__ __forceinline__ size_t route_tc_smem(const Args& a, const int ktop) {',
    '  return 2 * sizeof(T) * ROUTE_KC * ROUTE_KP + 8 * (size_t)ROUTE_MQ * ktop + 4 * ROUTE_MQ +',
    '         (ROUTE_VOTE ? 8 * (size_t)ROUTE_MQ * route_voters(a) : 0);',
    '}',
    '// (m1, id1) ranks before (m2, id2): larger metric first, then the lower id.',
    '__device__ __forceinline__ bool route_before(const float m1, const int id1, const float m2, const int id2) {',
    '  return m1 > m2 || (m1 == m2 && id1 < id2);',
    '}',
    '',
    `extern "C" __global__ void __launch_bounds__(${ROUTE_TC_THREADS}) ${routeTopkTcName(k)}(const Args a) {`,
    '  extern __shared__ __align__(16) unsigned char route_tc_smem_raw[];',
    '  T* khi = reinterpret_cast<T*>(route_tc_smem_raw);',
    '  T* klo = khi + ROUTE_KC * ROUTE_KP;',
    '  const int ktop = (int)route_count(a, 0), nv = route_voters(a);',
    '  float* lm = reinterpret_cast<float*>(klo + ROUTE_KC * ROUTE_KP); // [ROUTE_MQ][ktop] sorted metrics',
    '  int* lid = reinterpret_cast<int*>(lm + ROUTE_MQ * ktop);          // [ROUTE_MQ][ktop] their ids',
    '  int* lcnt = lid + ROUTE_MQ * ktop;                                // [ROUTE_MQ] list lengths',
    '  float* vst = reinterpret_cast<float*>(lcnt + ROUTE_MQ);           // [ROUTE_MQ][nv][2] vote max, sum',
    '  (void)vst; (void)nv;',
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gq = lane / 4, t4 = lane % 4;',
    '  // Last rows first: under causal-like masks they rank the most chunks, so the long blocks start early.',
    '  const int g = blockIdx.y, b = blockIdx.z, row0 = (gridDim.x - 1 - blockIdx.x) * ROUTE_MQ;',
    '  const int kb0 = route_kb0(a), nkb = route_nkb(a), cap = route_cap(a);',
    '  const long long c_first = route_count(a, 1), c_local = route_count(a, 2);',
    '  for (int i = tid; i < ROUTE_MQ; i += blockDim.x) lcnt[i] = 0;',
    '  if (ROUTE_VOTE)',
    '    for (int i = tid; i < ROUTE_MQ * nv; i += blockDim.x) { vst[2 * i] = -INFINITY; vst[2 * i + 1] = 0.f; }',
    "  // This warp's rows (and this lane's two of them: gq and gq + 8), as query positions.",
    '  const int wr0 = row0 + warp * 16, wrows = max(0, min(16, a.Nq - wr0));',
    '  const int wq_lo = wr0 + a.q_offset, wq_hi = wr0 + wrows - 1 + a.q_offset;',
    '  const int lr[2] = {warp * 16 + gq, warp * 16 + gq + 8}; // block-local rows',
    '  const bool lvalid[2] = {row0 + lr[0] < a.Nq, row0 + lr[1] < a.Nq};',
    '  const int lq[2] = {row0 + lr[0] + a.q_offset, row0 + lr[1] + a.q_offset};',
    '  const int lown[2] = {route_floor_div(lq[0], RB), route_floor_div(lq[1], RB)};',
    '  // Forced: id < c_first or flo <= id <= own (32-bit: the launcher bounds the counts by 2^20).',
    '  const int c_first32 = (int)c_first, flo[2] = {lown[0] - (int)c_local + 1, lown[1] - (int)c_local + 1};',
    '  __syncthreads();',
    ...stageAndScoreLambdas(),
    "  // Bit j * 4 + e: element (j, e) of chunk c0 is a candidate of voter h (cls: the warp's chunk class).",
    '  auto candidates = [&](const int cls, const int h, const int c0) -> unsigned {',
    '    unsigned bits = 0u;',
    '#pragma unroll',
    '    for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '      for (int e = 0; e < 4; ++e) {',
    '        const int jj = c0 + j * 8 + 2 * t4 + (e & 1), rr = e >> 1;',
    '        const bool ok = jj < nkb && lvalid[rr] && (cls == 1 || route_candidate(a, b, h, lq[rr], lq[rr], kb0 + jj));',
    '        bits |= (unsigned)ok << (j * 4 + e);',
    '      }',
    '    return bits;',
    '  };',
    '  float acc[ROUTE_KC / 8][4], met[ROUTE_KC / 8][4];',
    '  for (int pass = ROUTE_VOTE ? 0 : 1; pass < 2; ++pass) {',
    '    for (int c0 = 0; c0 < nkb; c0 += ROUTE_KC) {',
    '      const int id_lo = kb0 + c0, id_hi = kb0 + min(c0 + ROUTE_KC, nkb) - 1;',
    '      bool need = false;',
    `      for (int h = ${voters[0]}; h < ${voters[1]} && wrows > 0; ++h)`,
    '        need = need || route_chunk_class(a, b, h, wq_lo, wq_hi, id_lo, id_hi) != 0;',
    '      if (!__syncthreads_or(need)) continue; // no row of the block can use this chunk',
    '      int staged = -1;',
    '#pragma unroll',
    '      for (int j = 0; j < ROUTE_KC / 8; ++j) met[j][0] = met[j][1] = met[j][2] = met[j][3] = NAN;',
    `      for (int h = ${voters[0]}; h < ${voters[1]}; ++h) {`,
    '        const int hkv = h / (a.H / a.Hkv);',
    '        if (hkv != staged) { // block-uniform: every warp walks the same voters',
    '          __syncthreads();',
    '          stage(c0, hkv);',
    '          __syncthreads();',
    '          staged = hkv;',
    '        }',
    '        const int cls = wrows > 0 ? route_chunk_class(a, b, h, wq_lo, wq_hi, id_lo, id_hi) : 0;',
    '        if (cls == 0) continue; // warp-uniform',
    '        scores(h, acc);',
    '        const unsigned cand = candidates(cls, h, c0);',
    '        if (pass == 0) {',
    "          // Vote pass 1: this voter's softmax max and sum per row, merged online over chunks.",
    '          float* st = vst + 2 * (size_t)(h - ' + voters[0] + ');',
    '#pragma unroll',
    '          for (int rr = 0; rr < 2; ++rr) {',
    '            float cm = -INFINITY;',
    '#pragma unroll',
    '            for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '              for (int e1 = 0; e1 < 2; ++e1)',
    '                if ((cand >> (j * 4 + 2 * rr + e1)) & 1u) cm = fmaxf(cm, acc[j][2 * rr + e1]);',
    '            cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 1));',
    '            cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 2));',
    '            float cz = 0.f;',
    '            if (cm > -INFINITY)',
    '#pragma unroll',
    '              for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '                for (int e1 = 0; e1 < 2; ++e1)',
    '                  if ((cand >> (j * 4 + 2 * rr + e1)) & 1u) cz += expf(acc[j][2 * rr + e1] - cm);',
    '            cz += __shfl_xor_sync(0xffffffffu, cz, 1);',
    '            cz += __shfl_xor_sync(0xffffffffu, cz, 2);',
    '            float* s = st + 2 * (size_t)nv * lr[rr];',
    '            if (t4 == 0 && cm > -INFINITY) {',
    '              const float m0 = s[0], mx = fmaxf(m0, cm);',
    '              s[1] = s[1] * expf(m0 - mx) + cz * expf(cm - mx);',
    '              s[0] = mx;',
    '            }',
    '          }',
    '          continue;',
    '        }',
    "        // This voter's softmax max and sum of the lane's two rows (pass 1 wrote them; barriers since).",
    '        float vm[2] = {0.f, 0.f}, vz[2] = {1.f, 1.f};',
    '        if (ROUTE_VOTE)',
    '#pragma unroll',
    '          for (int rr = 0; rr < 2; ++rr) {',
    '            const float* s = vst + 2 * ((size_t)nv * lr[rr] + (h - ' + voters[0] + '));',
    '            vm[rr] = s[0];',
    '            vz[rr] = s[1];',
    '          }',
    '#pragma unroll',
    '        for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '          for (int e = 0; e < 4; ++e) {',
    '            if (!((cand >> (j * 4 + e)) & 1u)) continue;',
    '            const float x = acc[j][e];',
    '            if (!ROUTE_VOTE) { met[j][e] = x; continue; }',
    '            const float m0 = vm[e >> 1];',
    '            const float v = m0 > -INFINITY ? expf(x - m0) / vz[e >> 1] : 0.f; // no finite affinity: no vote',
    '            met[j][e] = (isnan(met[j][e]) ? 0.f : met[j][e]) + v;',
    '          }',
    '      }',
    '      if (pass == 0 || ktop <= 0) continue;',
    "      // Streaming top-k: each lane inserts, in turn within its quad, the scores that beat its rows' lists.",
    '      bool any = false;',
    '#pragma unroll',
    '      for (int rr = 0; rr < 2; ++rr) {',
    '        const int n = lcnt[lr[rr]];',
    '        const float tm = n < ktop ? -INFINITY : lm[lr[rr] * ktop + ktop - 1];',
    '        const int ti = n < ktop ? INT_MAX : lid[lr[rr] * ktop + ktop - 1];',
    '#pragma unroll',
    '        for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '          for (int e1 = 0; e1 < 2; ++e1) {',
    '            const float x = met[j][2 * rr + e1];',
    '            any = any || (!isnan(x) && (n < ktop || route_before(x, kb0 + c0 + j * 8 + 2 * t4 + e1, tm, ti)));',
    '          }',
    '      }',
    '      if (!__any_sync(0xffffffffu, any)) continue;',
    '      for (int turn = 0; turn < 4; ++turn) {',
    '        if (t4 == turn) {',
    '#pragma unroll',
    '          for (int rr = 0; rr < 2; ++rr) {',
    '            float* m = lm + lr[rr] * ktop;',
    '            int* ids = lid + lr[rr] * ktop;',
    '            int n = lcnt[lr[rr]];',
    '#pragma unroll',
    '            for (int j = 0; j < ROUTE_KC / 8; ++j)',
    '#pragma unroll',
    '              for (int e1 = 0; e1 < 2; ++e1) {',
    '                const float x = met[j][2 * rr + e1];',
    '                const int id = kb0 + c0 + j * 8 + 2 * t4 + e1;',
    '                if (isnan(x)) continue; // not a candidate',
    '                if (id < c_first32 || (id >= flo[rr] && id <= lown[rr])) continue; // forced',
    '                if (n == ktop && !route_before(x, id, m[ktop - 1], ids[ktop - 1])) continue;',
    '                int p = n < ktop ? n++ : ktop - 1;',
    '                for (; p > 0 && route_before(x, id, m[p - 1], ids[p - 1]); --p) {',
    '                  m[p] = m[p - 1];',
    '                  ids[p] = ids[p - 1];',
    '                }',
    '                m[p] = x;',
    '                ids[p] = id;',
    '              }',
    '            lcnt[lr[rr]] = n;',
    '          }',
    '        }',
    '        __syncwarp();',
    '      }',
    '    }',
    '  }',
    '  __syncthreads();',
    '  // A thread per row: forced candidates and ranked ids, merged ascending, then -1 padding.',
    '  for (int rl = tid; rl < ROUTE_MQ; rl += blockDim.x) {',
    '    const int i = row0 + rl;',
    '    if (i >= a.Nq) continue;',
    '    const int q = i + a.q_offset, own = route_floor_div(q, RB);',
    '    int* ids = lid + rl * ktop;',
    '    const int n = ktop > 0 ? lcnt[rl] : 0;',
    '    for (int x = 1; x < n; ++x) { // ranked ids ascending (insertion sort of at most ktop)',
    '      const int v = ids[x];',
    '      int y = x;',
    '      for (; y > 0 && ids[y - 1] > v; --y) ids[y] = ids[y - 1];',
    '      ids[y] = v;',
    '    }',
    '    int* out = a.indices + ((size_t)(b * route_groups(a) + g) * a.Nq + i) * cap;',
    '    int w = 0, p = 0;',
    '    // Forced ids ascending: [kb0, first) then the local window (own - local, own], in the call.',
    '    const int f_hi = (int)min((long long)kb0 + nkb, c_first);',
    '    const int l_lo = (int)max((long long)max(kb0, f_hi), own - c_local + 1), l_hi = min(own, kb0 + nkb - 1);',
    '    for (int pass = 0; pass < 2; ++pass) {',
    '      const int lo = pass == 0 ? kb0 : l_lo, hi = pass == 0 ? f_hi - 1 : l_hi;',
    '      for (int id = lo; id <= hi; ++id) {',
    '        bool cand = false;',
    `        for (int h = ${voters[0]}; h < ${voters[1]} && !cand; ++h) cand = route_candidate(a, b, h, q, q, id);`,
    '        if (!cand) continue;',
    '        for (; p < n && ids[p] < id; ++p) out[w++] = ids[p];',
    '        out[w++] = id;',
    '      }',
    '    }',
    '    for (; p < n; ++p) out[w++] = ids[p];',
    '    for (; w < cap; ++w) out[w] = -1;',
    '  }',
    '}',
  ].join('\n');
}
