// The K/V stream of CUDA decode mode (decode.ts) for float caches: a split's tiles flow through
// STAGES shared-memory buffers filled by 16-byte cp.async, STAGES − 1 tiles ahead of the tile
// being computed, so every block keeps (STAGES − 1) · TILE · (D + DV) · sizeof(T) bytes in flight
// (48 KiB at bf16, D = 128) without holding them in registers. Rows past the split's end arrive
// as zeros (cp.async zero-fill), so a masked-off key adds 0 · 0, never 0 · NaN garbage. A tile
// that no row of the block may see is neither fetched nor computed; its (empty) commit group
// still counts, so the waits count tiles. Compiled for the host (the CPU emulator, test/cuda),
// the copies are plain synchronous copies: the same kernel, its pipeline collapsed.
import { elementBytes } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { kvAt } from './kv-rows.js';

/** Keys per tile (decode.ts: GROUPS · KPG). */
const TILE = 32;
/** Shared memory one block may take for its stages (3 blocks of 64 KiB fit an H100/H200 SM). */
const STAGE_BUDGET = 96 * 1024;

/** Number of buffers: as many as fit the budget, 2 to 4. */
export function decodeStages(k: AttentionKernel): number {
  const s = k.schedule;
  const tileBytes = TILE * (s.headDim + s.valueDim) * elementBytes(k.formats.k);
  return Math.max(2, Math.min(4, Math.floor(STAGE_BUDGET / tileBytes)));
}

/** Device helpers (in namespace dec, after TILE and THREADS): the cp.async wrappers and the tile fetch. */
export function pipeDeviceCode(k: AttentionKernel): string[] {
  const async = '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800';
  const at = (h: string) => kvAt(h, '(ok ? kj : t0)', 'c * E');
  return [
    `constexpr int STAGES = ${decodeStages(k)};`,
    'constexpr size_t SPLIT_SMEM = (size_t)STAGES * TILE * (D + DV) * sizeof(T); // dynamic, per block',
    '// 16 bytes global -> shared, or 16 zero bytes when !ok (src is then not read).',
    '__device__ __forceinline__ void dec_cp16(void* dst, const void* src, bool ok) {',
    async,
    '  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),',
    '               "l"(src), "r"(ok ? 16 : 0) : "memory");',
    '#else',
    '  if (ok) memcpy(dst, src, 16);',
    '  else memset(dst, 0, 16);',
    '#endif',
    '}',
    '__device__ __forceinline__ void dec_commit() {',
    async,
    '  asm volatile("cp.async.commit_group;\\n" ::: "memory");',
    '#endif',
    '}',
    'template <int N>',
    '__device__ __forceinline__ void dec_wait() {',
    async,
    '  asm volatile("cp.async.wait_group %0;\\n" ::"n"(N) : "memory");',
    '#endif',
    '}',
    '// Keys t0..t1-1 of a kv head (its KvRows handles, kv-rows.ts) into kd [TILE][D], vd [TILE][DV].',
    '__device__ __forceinline__ void fetch_tile(const KvRows& kg, const KvRows& vg, T* kd, T* vd, int t0, int t1) {',
    '  constexpr int E = 16 / sizeof(T), KC = D / E, VC = DV / E;',
    '#pragma unroll',
    '  for (int n = 0; n < (TILE * KC + THREADS - 1) / THREADS; ++n) {',
    '    const int i = threadIdx.x + n * THREADS, j = i / KC, c = i % KC, kj = t0 + j;',
    '    const bool ok = kj < t1;',
    `    if (i < TILE * KC) dec_cp16(kd + j * D + c * E, ${at('kg')}, ok);`,
    '  }',
    '#pragma unroll',
    '  for (int n = 0; n < (TILE * VC + THREADS - 1) / THREADS; ++n) {',
    '    const int i = threadIdx.x + n * THREADS, j = i / VC, c = i % VC, kj = t0 + j;',
    '    const bool ok = kj < t1;',
    `    if (i < TILE * VC) dec_cp16(vd + j * DV + c * E, ${at('vg')}, ok);`,
    '  }',
    '}',
  ];
}

/** The emulator's stand-in for the dynamic shared memory declaration below (test/cuda). */
export const PIPE_SMEM_DECL = 'extern __shared__ float4 dec_smem[];';

/**
 * The split kernel's key loop over a pipelined stream: `classify` declares cls[MT] and `any`
 * for keys t0..t1-1; `tile` renders the tile's work given its K and V chunk loads.
 */
export function pipelinedLoop(
  classify: readonly string[],
  tile: (load: { k: string; v: string }) => string[],
): string[] {
  const chunk = (buf: string, W: string) =>
    `*reinterpret_cast<const VecT<VW>*>(${buf} + (kj - t0) * ${W} + (lane + 8 * c) * VW)`;
  return [
    '  // K/V tiles stream through STAGES shared-memory buffers, STAGES - 1 ahead (decode-pipe.ts).',
    `  ${PIPE_SMEM_DECL}`,
    '  T* ks = reinterpret_cast<T*>(dec_smem);',
    '  T* vs = ks + STAGES * TILE * D;',
    '  const int n_tiles = k_end > k_begin ? (k_end - k_begin + TILE - 1) / TILE : 0;',
    '  auto fetch = [&](int it) {',
    '    if (it < n_tiles) {',
    '      const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);',
    ...classify.map((l) => (l.startsWith('#') ? l : `  ${l}`)),
    '      if (any) fetch_tile(kg, vg, ks + (it % STAGES) * TILE * D, vs + (it % STAGES) * TILE * DV, t0, t1);',
    '    }',
    '    dec_commit(); // one group per tile, fetched or not',
    '  };',
    '  for (int s = 0; s < STAGES - 1; ++s) fetch(s);',
    '  for (int it = 0; it < n_tiles; ++it) {',
    "    dec_wait<STAGES - 2>(); // this thread's copies of tile it have landed",
    "    __syncthreads(); // everyone's have, and tile it - 1's buffer is free for tile it + STAGES - 1",
    '    fetch(it + STAGES - 1);',
    '    const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);',
    '    const T* kt = ks + (it % STAGES) * TILE * D;',
    '    const T* vt = vs + (it % STAGES) * TILE * DV;',
    ...classify,
    '    if (!any) continue; // the same for every thread of the block',
    ...tile({ k: chunk('kt', 'D'), v: chunk('vt', 'DV') }),
    '  }',
  ];
}
