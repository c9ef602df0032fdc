// The K/V stream of CUDA decode mode (decode.ts): a split's tiles flow through STAGES shared-memory
// buffers filled by cp.async, STAGES − 1 tiles ahead of the tile being computed, so every block
// keeps (STAGES − 1) · TILE · (K_ROW + V_ROW) bytes in flight without holding them in registers.
// A float cache streams its elements (16-byte copies; 48 KiB in flight per block at bf16, D = 128,
// 4 stages); a quantized cache streams its packed code words (16-, 8- or 4-byte copies, whatever
// divides a row), which decode-quant.ts's chunk functions dequantize from shared memory, so the
// 4–16x smaller rows of int8..int2 are in flight the same way (up to 8 stages by default:
// decode-knobs.ts). Side tensors (scales, zeros, norms, recent rows, wide salient codes) are small
// and read through the cache hierarchy. Rows past the split's end arrive as zeros (cp.async
// zero-fill), so a masked-off key adds 0 · finite, never 0 · NaN garbage. A tile that no row of
// the block may see is neither fetched nor computed; its (empty) commit group still counts, so the
// waits count tiles. Compiled for the host (the CPU emulator, test/cuda), the copies are plain
// synchronous copies: the same kernel, its pipeline collapsed.
import { elementBytes } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { streamRowBytes } from './decode-knobs.js';
import { isQuantChunk } from './decode-quant.js';
import { K_ROWS, V_ROWS, kvAt, kvHead, pagedQuantRow, pagedTileFetch, type KvTensor } from './kv-rows.js';

export { decodeStages } from './decode-knobs.js';

/** Bytes of one stream row of K or V, and the copy unit (16, 8 or 4 bytes) that divides it. */
export function streamRow(k: AttentionKernel, t: KvTensor): { bytes: number; unit: number } {
  const s = k.schedule;
  const width = t.name === 'k' ? s.headDim : s.valueDim;
  const bytes = streamRowBytes(k.formats[t.name], width, elementBytes(k.formats.k));
  return { bytes, unit: [16, 8, 4].find((u) => bytes % u === 0) ?? 4 };
}

/** Declaration of the stream handle of K or V in the split kernel (b, hk, kv0 in scope). */
export function streamHandleDecl(k: AttentionKernel, t: KvTensor): string {
  if (!isQuantChunk(k.formats[t.name]))
    return `const KvRows ${t.name}g = ${kvHead(t, 'b', 'hk', k.formats.paged !== undefined)};`;
  // A quantized cache's codes are packed [B, Hkv, Nk, words] (decode-quant.ts), or pages of
  // [Hkv, P, words] through the block table (kv-rows.ts's kv_qrow).
  const row = `${t.name.toUpperCase()}_ROW`;
  if (k.formats.paged)
    return `const CodeRows ${t.name}g{static_cast<const unsigned char*>(a.${t.name}), ${row}, &a, bh};`;
  return `const CodeRows ${t.name}g{static_cast<const unsigned char*>(a.${t.name}) + kv0 * ${row}, ${row}};`;
}

/** Copies of one tensor's rows t0..t1-1 into `dst` (bytes), `unit` bytes a copy. */
function fetchRows(k: AttentionKernel, t: KvTensor): string[] {
  const quant = isQuantChunk(k.formats[t.name]);
  const { unit } = streamRow(k, t);
  const R = `${t.name.toUpperCase()}_ROW`;
  const handle = quant ? 'CodeRows' : 'KvRows';
  // Float rows address elements through kv-rows.ts; code rows are bytes.
  const src = quant
    ? `${t.name}g.row(ok ? kj : t0) + c * U`
    : kvAt(`${t.name}g`, '(ok ? kj : t0)', 'c * (U / sizeof(T))');
  const head = [
    `__device__ __forceinline__ void fetch_${t.name}(const ${handle}& ${t.name}g, unsigned char* dst, int t0, int t1) {`,
    `  constexpr int U = ${unit}, C = ${R} / U;`,
  ];
  // A paged float cache looks its pages up once per run of rows (kv-rows.ts).
  if (!quant && k.formats.paged)
    return [
      ...head,
      ...pagedTileFetch({
        handle: `${t.name}g`,
        tile: 'TILE',
        threads: 'THREADS',
        chunks: 'C',
        elems: '(U / (int)sizeof(T))',
        copy: (j, from, ok) => `dec_cp<U>(dst + (${j}) * ${R} + c * U, ${from}, ${ok});`,
      }),
      '}',
    ];
  return [
    ...head,
    '#pragma unroll',
    '  for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {',
    '    const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;',
    '    const bool ok = kj < t1;',
    `    if (i < TILE * C) dec_cp<U>(dst + j * ${R} + c * U, ${src}, ok);`,
    '  }',
    '}',
  ];
}

/** The handle of one cache head's code rows: packed, ROW bytes apart, or paged (kv_qrow). */
function codeRowsStruct(paged: boolean): string[] {
  if (!paged)
    return [
      '// Packed code rows of one cache head, ROW bytes apart.',
      'struct CodeRows {',
      '  const unsigned char* p;',
      '  long long rs;',
      '  __device__ __forceinline__ const unsigned char* row(long long j) const { return p + j * rs; }',
      '};',
    ];
  return [
    '// Code rows of one cache head of a paged cache: pool row kv_qrow (kv-rows.ts), ROW bytes each.',
    'struct CodeRows {',
    '  const unsigned char* p; // the pool',
    '  long long rs;',
    '  const Args* a;',
    '  size_t bh;',
    `  __device__ __forceinline__ const unsigned char* row(long long j) const { return p + ${pagedQuantRow('*a', 'bh', 'j')} * rs; }`,
    '};',
  ];
}

/** Device helpers (in namespace dec, after TILE and THREADS): the cp.async wrappers and the tile fetch. */
export function pipeDeviceCode(k: AttentionKernel): string[] {
  const async = '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800';
  const anyQuant = isQuantChunk(k.formats.k) || isQuantChunk(k.formats.v);
  return [
    'constexpr int STAGES = ATTNC_DEC_STAGES;',
    `constexpr int K_ROW = ${streamRow(k, K_ROWS).bytes}, V_ROW = ${streamRow(k, V_ROWS).bytes}; // stream bytes per key`,
    'constexpr size_t SPLIT_SMEM = (size_t)STAGES * TILE * (K_ROW + V_ROW); // dynamic, per block',
    "// The combine's static arrays (decode.ts); a block may have 227 KiB at most (sm_90), fewer on",
    '// smaller parts (the launcher checks the device and asks for the dynamic share).',
    'constexpr size_t SPLIT_STATIC_SMEM = sizeof(float) * ((size_t)GROUPS * MT + 2 * MT + (size_t)MT * DV);',
    'static_assert(SPLIT_SMEM + SPLIT_STATIC_SMEM <= 227 * 1024, "decode stream: ATTNC_DEC_STAGES x ATTNC_DEC_GROUPS x ATTNC_DEC_KPG keys need more than 227 KiB of shared memory per block: fewer stages or keys per tile");',
    ...(anyQuant ? codeRowsStruct(k.formats.paged !== undefined) : []),
    '// N (16, 8 or 4) bytes global -> shared, or N zero bytes when !ok (src is then not read).',
    'template <int N>',
    '__device__ __forceinline__ void dec_cp(void* dst, const void* src, bool ok) {',
    async,
    '  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);',
    '  if constexpr (N == 16)',
    '    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" ::"r"(d), "l"(src), "r"(ok ? 16 : 0) : "memory");',
    '  else',
    '    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\\n" ::"r"(d), "l"(src), "n"(N), "r"(ok ? N : 0) : "memory");',
    '#else',
    '  if (ok) memcpy(dst, src, N);',
    '  else memset(dst, 0, N);',
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
    '// Keys t0..t1-1 of a kv head into kd [TILE][K_ROW], vd [TILE][V_ROW] (bytes).',
    ...fetchRows(k, K_ROWS),
    ...fetchRows(k, V_ROWS),
  ];
}

/** The emulator's stand-in for the dynamic shared memory declaration below (test/cuda). */
export const PIPE_SMEM_DECL = 'extern __shared__ float4 dec_smem[];';

/** K or V chunk c of key kj from the tile buffer `buf` (bytes): a storage vector or a dequantized FChunk. */
function stagedChunk(k: AttentionKernel, t: KvTensor, buf: string, valid: string): string {
  const R = `${t.name.toUpperCase()}_ROW`;
  const row = `${buf} + (kj - t0) * ${R}`;
  if (!isQuantChunk(k.formats[t.name]))
    return `*reinterpret_cast<const VecT<VW>*>(reinterpret_cast<const T*>(${row}) + (lane + 8 * c) * VW)`;
  // The recent window and salient rows read global memory: keys past the split's end stay out.
  const words = `reinterpret_cast<const unsigned*>(${row})`;
  const qrow = k.formats.paged ? pagedQuantRow('a', 'bh', 'kj') : 'kv0 + kj';
  return `${valid} ? ${t.name}_chunk(a, ${qrow}, kj, (lane + 8 * c) * VW, bh, ${words}) : FChunk{}`;
}

/**
 * The split kernel's key loop over a pipelined stream: `classify` declares cls[MT] and `any`
 * for keys t0..t1-1; `tile` renders the tile's work given its K and V chunk loads.
 */
export function pipelinedLoop(
  k: AttentionKernel,
  classify: readonly string[],
  tile: (load: { k: string; v: string }) => string[],
): string[] {
  return [
    '  // K/V tiles stream through STAGES shared-memory buffers, STAGES - 1 ahead (decode-pipe.ts).',
    `  ${PIPE_SMEM_DECL}`,
    '  unsigned char* ks = reinterpret_cast<unsigned char*>(dec_smem);',
    '  unsigned char* vs = ks + STAGES * TILE * K_ROW;',
    '  const int n_tiles = k_end > k_begin ? (k_end - k_begin + TILE - 1) / TILE : 0;',
    '  auto fetch = [&](int it) {',
    '    if (it < n_tiles) {',
    '      const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);',
    ...classify.map((l) => (l.startsWith('#') ? l : `  ${l}`)),
    '      if (any) {',
    '        fetch_k(kg, ks + (it % STAGES) * TILE * K_ROW, t0, t1);',
    '        fetch_v(vg, vs + (it % STAGES) * TILE * V_ROW, t0, t1);',
    '      }',
    '    }',
    '    dec_commit(); // one group per tile, fetched or not',
    '  };',
    '  for (int s = 0; s < STAGES - 1; ++s) fetch(s);',
    '  for (int it = 0; it < n_tiles; ++it) {',
    "    dec_wait<STAGES - 2>(); // this thread's copies of tile it have landed",
    "    __syncthreads(); // everyone's have, and tile it - 1's buffer is free for tile it + STAGES - 1",
    '    fetch(it + STAGES - 1);',
    '    const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);',
    '    const unsigned char* kt = ks + (it % STAGES) * TILE * K_ROW;',
    '    const unsigned char* vt = vs + (it % STAGES) * TILE * V_ROW;',
    ...classify,
    '    if (!any) continue; // the same for every thread of the block',
    ...tile({ k: stagedChunk(k, K_ROWS, 'kt', 'valid'), v: stagedChunk(k, V_ROWS, 'vt', 'kj < t1') }),
    '  }',
  ];
}
