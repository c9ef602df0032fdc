// attnc kernel "paged_decode" for CUDA (sm_90a). Generated code: do not edit.
// build: nvcc -arch=sm_90a -std=c++17 --shared -Xcompiler -fPIC paged_decode.cu -o libpaged_decode.so
// source aca6518b14e4dfe3, schedule 0f4cfeb9697f1888
//   score: score
//   mask:  (ge q k)
// schedule: blockQ=128 blockK=128 threads=256 D=64 Dv=64 bf16 summaryBlock=16 engine=wgmma stages=2
// mapping: core=wgmma instruction=wgmma.mma_async.m64nNk16.bf16 warpgroups=2 rowsPerWarpgroup=64 stages=2 swizzle=128B (64-wide panels) globalVectorElems=8
// tiles:
//   dynamic, per (q-tile, k-tile), from inclusive position bounds q_lo..q_hi, k_lo..k_hi:
//     empty (skipped, nothing loaded) unless canBeTrue = (ge q_hi k_lo)
//     full (no predicate evaluated)   unless canBeFalse = (lt q_lo k_hi)
//     partial otherwise (predicate per element)
// Semantics: query row i has position q = i + q_offset, key j has k = j + k_offset; GQA kv head
// h / (H / Hkv); scores scale * <q, k> then the modifier then the mask; a row with no allowed
// key gives out = 0 and lse = -inf.
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef ATTNC_PAGED_DECODE_H
#define ATTNC_PAGED_DECODE_H
#include <stddef.h>
#include <cuda_runtime_api.h>

#ifndef ATTNC_STATUS_CODES
#define ATTNC_STATUS_CODES
#define ATTNC_OK 0
#define ATTNC_ERR_ARGS 1 /* bad sizes, NULL or misaligned pointers */
#define ATTNC_ERR_CUDA 2 /* a CUDA call failed (no device, launch configuration, ...) */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Device pointers; q, out, k and v addressed by their *_stride_* fields (args_init: packed); q, k, v and out must be 16-byte aligned. */
/* Limits the launcher checks (ATTNC_ERR_ARGS past them), so that no 32-bit index overflows:
 *   1 <= B, H <= 65535, B * H <= 2^31 - 1, Hkv >= 1, H % Hkv == 0;
 *   0 <= Nq, Nk <= 2146435072 (2^31 - 2^20), and so are params that size a tensor;
 *   positions fit an int with 1024 to spare (the kernels compute positions of a tile's
 *   padding rows): q_offset + Nq - 1 and k_offset + Nk - 1 <= 2^31 - 1 - 1024;
 *   every q - k fits an int (masks compute it);
 *   scale and f32 params are finite;
 *   q, k, v, out 16-byte aligned; lse, block_table 4-byte (when not NULL).
 * Element offsets are 64-bit. */
typedef struct AttncArgs_paged_decode {
  const void* q; /* [B, H, Nq, 64] bf16 at q_stride_* (args_init: packed; any layout with a contiguous last dim) */
  const void* k; /* pages [pages, Hkv, 16, 64] bf16 as args_init's strides say (any page layout the k/v strides describe) */
  const void* v; /* pages [pages, Hkv, 16, 64] bf16 as args_init's strides say (any page layout the k/v strides describe) */
  void* out; /* [B, H, Nq, 64] bf16, written at out_stride_* (args_init: packed) */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  const int* block_table; /* [B, max_pages] page ids: key j of batch b is row j % 16 of page block_table[b * max_pages + j / 16] */
  long long k_stride_b; /* elements between pages (args_init: Hkv * P * W, W the row width) */
  long long k_stride_h; /* elements between kv heads (args_init: P * W, W the row width) */
  long long k_stride_n; /* elements between rows (keys) (args_init: W, W the row width) */
  long long v_stride_b; /* elements between pages (args_init: Hkv * P * W, W the row width) */
  long long v_stride_h; /* elements between kv heads (args_init: P * W, W the row width) */
  long long v_stride_n; /* elements between rows (keys) (args_init: W, W the row width) */
  long long q_stride_b; /* elements between batches (args_init: H * Nq * W, W the row width; a BNHD view: h W, n H * W) */
  long long q_stride_h; /* elements between heads (args_init: Nq * W, W the row width; a BNHD view: h W, n H * W) */
  long long q_stride_n; /* elements between rows (queries) (args_init: W, W the row width; a BNHD view: h W, n H * W) */
  long long out_stride_b; /* elements between batches (args_init: H * Nq * W, W the row width; a BNHD view: h W, n H * W) */
  long long out_stride_h; /* elements between heads (args_init: Nq * W, W the row width; a BNHD view: h W, n H * W) */
  long long out_stride_n; /* elements between rows (queries) (args_init: W, W the row width; a BNHD view: h W, n H * W) */
  int B;
  int H;
  int Hkv;
  int Nq;
  int Nk;
  int max_pages; /* row length of block_table (args_init: ceil(Nk / page size)) */
  int q_offset; /* position of query row 0 (args_init: Nk - Nq) */
  int k_offset; /* position of key row 0 (args_init: 0) */
  float scale; /* scores are scale * <q, k> (args_init: 1/sqrt(64)) */
} AttncArgs_paged_decode;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_paged_decode_args_init(AttncArgs_paged_decode* args, int B, int H, int Hkv, int Nq, int Nk);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_paged_decode_launch(const AttncArgs_paged_decode* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_paged_decode_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_PAGED_DECODE_H */

namespace attnc_paged_decode {
using Args = ::AttncArgs_paged_decode;
typedef __nv_bfloat16 T; // storage type of q, k, v, out (bf16); all arithmetic is f32
constexpr int D = 64, DV = 64;
constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;
__device__ __forceinline__ float to_f32(T x) { return __bfloat162float(x); }
__device__ __forceinline__ T from_f32(float x) { return __float2bfloat16_rn(x); }

// N storage elements, aligned so that one load or store moves all of them.
template <int N>
struct alignas(N * sizeof(T)) VecT {
  T v[N];
  static __device__ __forceinline__ VecT zero() {
    VecT z;
#pragma unroll
    for (int i = 0; i < N; ++i) z.v[i] = from_f32(0.f);
    return z;
  }
};

template <int N>
__device__ __forceinline__ void store_f32(float* dst, const VecT<N>& x) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4)
      *reinterpret_cast<float4*>(dst + i) =
          make_float4(to_f32(x.v[i]), to_f32(x.v[i + 1]), to_f32(x.v[i + 2]), to_f32(x.v[i + 3]));
  } else if constexpr (N == 2) {
    *reinterpret_cast<float2*>(dst) = make_float2(to_f32(x.v[0]), to_f32(x.v[1]));
  } else {
    dst[0] = to_f32(x.v[0]);
  }
}

template <bool V>
struct Flag {
  static constexpr bool value = V;
};

// K/V rows of one (batch, kv head) of a paged cache: pages of 16 rows (kv-rows.ts).
constexpr int PAGE = 16, LOG2_PAGE = 4;
// 1: a tile fetch looks a thread's pages up once per run of rows; 0: once per copied row (the
// round-6 fetch, kept so one bench run compares both: bench/cuda/paged-decode.py).
#ifndef ATTNC_KV_PAGE_RUNS
#define ATTNC_KV_PAGE_RUNS 1
#endif
// 1: a decode tile reads its K, V (and scale) page ids in one pass (kv-pages-once.ts); 0: each
// fetch looks its own up (before round 31; kept for the same comparison).
#ifndef ATTNC_KV_PAGE_ONCE
#define ATTNC_KV_PAGE_ONCE 1
#endif
// 1: there, a run of rows inside one page is addressed from one base (int8 pages 6-8% faster on
// an H100, round 32 call 65); 0: every row through row(), as in round 31.
#ifndef ATTNC_KV_PAGE_BASE
#define ATTNC_KV_PAGE_BASE 1
#endif
struct KvRows {
  const T* p;         // the kv head in page 0
  const int* pages;   // this batch's row of the block table
  long long ps, rs;   // page and row strides (elements)
  __device__ __forceinline__ const T* row(long long j) const {
    return p + (long long)__ldg(pages + (j >> LOG2_PAGE)) * ps + (j & (PAGE - 1)) * rs;
  }
  // Rows first..last (last - first < PAGE): the bases of their (at most two) pages.
  struct Run {
    long long first_page;
    const T* lo; // page of row first
    const T* hi; // page of row last
  };
  __device__ __forceinline__ Run run(long long first, long long last) const {
    const int lo = __ldg(pages + (first >> LOG2_PAGE)), hi = __ldg(pages + (last >> LOG2_PAGE));
    return Run{first >> LOG2_PAGE, p + (long long)lo * ps, p + (long long)hi * ps};
  }
  // Row j of a run (first <= j <= last).
  __device__ __forceinline__ const T* row(const Run& r, long long j) const {
    return ((j >> LOG2_PAGE) == r.first_page ? r.lo : r.hi) + (long long)(int)(j & (PAGE - 1)) * rs;
  }
};
// Rows first + step·r of a KvRows (a tile of keys, or a residue class's keys).
struct KvFrom {
  KvRows h;
  long long first, step;
};
// Row r of a packed matrix (rows w apart), of a KvRows, or of a KvFrom.
__device__ __forceinline__ const T* row_addr(const T* p, long long r, int w) { return p + r * w; }
__device__ __forceinline__ const T* row_addr(const KvRows& h, long long r, int) { return h.row(r); }
__device__ __forceinline__ const T* row_addr(const KvFrom& f, long long r, int) { return f.h.row(f.first + f.step * r); }
// The rows of a tile: a KvFrom over a KvRows (quantized caches have their own: dequant-tile.ts).
__device__ __forceinline__ KvFrom kv_from(const KvRows& h, long long first, long long step) { return KvFrom{h, first, step}; }
// Q rows read and output rows written through 64-bit element strides (qo-rows.ts).
__device__ __forceinline__ const T* q_row(const Args& a, long long b, long long h, long long n) {
  return static_cast<const T*>(a.q) + a.q_stride_b * b + a.q_stride_h * h + a.q_stride_n * n;
}
__device__ __forceinline__ T* out_row(const Args& a, long long b, long long h, long long n) {
  return static_cast<T*>(a.out) + a.out_stride_b * b + a.out_stride_h * h + a.out_stride_n * n;
}
// Rows n0, n0 + 1, ... of one (batch, head) of q: what the tile loaders take.
struct QRows {
  const T* p;
  long long rs;
};
__device__ __forceinline__ QRows q_rows(const Args& a, long long b, long long h, long long n0) {
  return QRows{q_row(a, b, h, n0), a.q_stride_n};
}
__device__ __forceinline__ const T* row_addr(const QRows& q, long long r, int) { return q.p + r * q.rs; }

constexpr int BQ = 128, BK = 128, WARPS = 8, THREADS = WARPS * 32;
constexpr int NT = BK / 8; // key n-tiles of a warp's score block
static_assert(BQ == 16 * WARPS && BQ % 64 == 0 && BK % 16 == 0, "wgmma tiling");
static_assert((D == 64 || D == 128) && (DV == 64 || DV == 128), "wgmma head dims");

// Element offset of (row, col) in a [rows][W] 16-bit tile whose 16-byte chunks are XOR-swizzled
// by row % 8 (col a multiple of 8): the 8 rows an ldmatrix phase reads, and the chunks a
// cp.async phase writes, fall in 8 distinct 16-byte bank groups, so neither conflicts.
template <int W>
__device__ __forceinline__ int swz(int row, int col) {
  return row * W + ((((col >> 3) ^ row) & 7) | ((col >> 3) & ~7)) * 8;
}

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared, bypassing L1; src_bytes = 0 zero-fills (rows past the end).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// Rows [0, ROWS) of a [.., W] matrix from `src` (row 0 = src) into swizzled `dst`; rows at or
// past `valid_rows` are zero-filled (never read), so tails need no other care.
template <int W, int ROWS, class Src>
__device__ __forceinline__ void load_rows(T* dst, const Src& src, int valid_rows, int tid) {
  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;
    if (TOTAL % THREADS == 0 || idx < TOTAL) {
      const bool ok = r < valid_rows;
      cp_async16(dst + swz<W>(r, c * 8), row_addr(src, ok ? r : 0, W) + c * 8, ok);
    }
  }
}

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const T* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], const T* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a·b for one m16n8k16 tile: a row-major 16×16 (4 regs), b column-major 16×8 (2 regs).
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two f32 → one register of two 16-bit values, `lo` in the low half (the lower column).
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// wgmma exists only in sm_90a SASS; `-arch=sm_90a` also emits compute_90 PTX, which gets
// empty wgmma helpers and a kernel that traps (a GPU without sm_90a features never runs it).
#ifndef ATTNC_SM90A
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ATTNC_SM90A 0
#else
#define ATTNC_SM90A 1
#endif
#endif

// Element offset of (row, col) in a [ROWS][W] tile kept as W/64 panels of [ROWS][64]: a panel
// row is one 128-byte line whose 16-byte chunks are XOR-swizzled by row % 8 — wgmma's 128B
// swizzle, which the hardware applies from address bits, hence 1024-byte-aligned tiles.
template <int ROWS>
__device__ __forceinline__ int pswz(int row, int col) {
  return (col >> 6) * (ROWS * 64) + row * 64 + ((((col >> 3) ^ row) & 7) << 3);
}

// load_rows into the panel layout; rows at or past `valid_rows` are zero-filled.
template <int W, int ROWS, class Src>
__device__ __forceinline__ void load_panel(T* dst, const Src& src, int valid_rows, int tid) {
  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;
    if (TOTAL % THREADS == 0 || idx < TOTAL) {
      const bool ok = r < valid_rows;
      cp_async16(dst + pswz<ROWS>(r, c * 8), row_addr(src, ok ? r : 0, W) + c * 8, ok);
    }
  }
}

// Matrix descriptor of a 128B-swizzled operand at p: 8-row groups 1024 bytes apart (SBO);
// `lbo` is the byte stride between 64-wide panels along M/N (MN-major operands only).
__device__ __forceinline__ uint64_t desc128(const T* p, unsigned lbo) {
  return (uint64_t)((smem_addr(p) & 0x3FFFFu) >> 4) | ((uint64_t)(lbo >> 4) << 16) | (64ull << 32) |
         (1ull << 62);
}

__device__ __forceinline__ void wg_fence() {
#if ATTNC_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#if ATTNC_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_wait0() {
#if ATTNC_SM90A
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
// cp.async writes shared memory through the generic proxy; wgmma reads it through the async one.
__device__ __forceinline__ void proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Pins accumulators after a wait: without it the compiler may read them before the wgmma ends.
template <int N>
__device__ __forceinline__ void acc_fence(float (&d)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}

__device__ __forceinline__ void wg_qk(float (&d)[16][4], uint64_t a, uint64_t db) {
#if ATTNC_SM90A
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      :
        "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
        "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
        "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]),
        "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]),
        "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]),
        "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]),
        "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
      : "l"(a), "l"(db), "r"(1)
      : "memory");
#endif
}

template <int P>
__device__ __forceinline__ void wg_pv(float (&d)[8][4], const unsigned (&a)[4], uint64_t db) {
#if ATTNC_SM90A
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      :
        "+f"(d[P * 8 + 0][0]), "+f"(d[P * 8 + 0][1]), "+f"(d[P * 8 + 0][2]), "+f"(d[P * 8 + 0][3]), "+f"(d[P * 8 + 1][0]), "+f"(d[P * 8 + 1][1]), "+f"(d[P * 8 + 1][2]), "+f"(d[P * 8 + 1][3]),
        "+f"(d[P * 8 + 2][0]), "+f"(d[P * 8 + 2][1]), "+f"(d[P * 8 + 2][2]), "+f"(d[P * 8 + 2][3]), "+f"(d[P * 8 + 3][0]), "+f"(d[P * 8 + 3][1]), "+f"(d[P * 8 + 3][2]), "+f"(d[P * 8 + 3][3]),
        "+f"(d[P * 8 + 4][0]), "+f"(d[P * 8 + 4][1]), "+f"(d[P * 8 + 4][2]), "+f"(d[P * 8 + 4][3]), "+f"(d[P * 8 + 5][0]), "+f"(d[P * 8 + 5][1]), "+f"(d[P * 8 + 5][2]), "+f"(d[P * 8 + 5][3]),
        "+f"(d[P * 8 + 6][0]), "+f"(d[P * 8 + 6][1]), "+f"(d[P * 8 + 6][2]), "+f"(d[P * 8 + 6][3]), "+f"(d[P * 8 + 7][0]), "+f"(d[P * 8 + 7][1]), "+f"(d[P * 8 + 7][2]), "+f"(d[P * 8 + 7][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1)
      : "memory");
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attnc_paged_decode_attention(const Args a, const float qscale) {
#if !ATTNC_SM90A
  __trap(); // the compute_90 PTX image: no wgmma there
#endif
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // wgmma swizzles by address bits: every tile starts on a 1024-byte boundary.
  T* Qs = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));
  T* Ks = Qs + BQ * D;                  // [2][BK][D], 64-wide panels
  T* Vs = Ks + 2 * BK * D; // [2][BK][DV], 64-wide panels
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);
  // Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start
  // early and the short ones fill the tail of the grid.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)hkv * a.k_stride_h, a.block_table + (size_t)b * a.max_pages, a.k_stride_b, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)hkv * a.v_stride_h, a.block_table + (size_t)b * a.max_pages, a.v_stride_b, a.v_stride_n};
  const int nkt = (a.Nk + BK - 1) / BK;
  (void)kg; (void)vg; (void)b; (void)h; (void)g; (void)nkt;
  const int q_lo = a.q_offset + q0;
  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;
  load_panel<D, BQ>(Qs, q_rows(a, b, h, q0), a.Nq - q0, tid);

  // This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.
  const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};
  (void)qpos_r;
  float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

  // This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.
  const T* Qw = Qs + (warp / 4) * 64 * 64;
  // One K/V tile in shared memory. Only MASKED tiles (partial, or past Nk) test per element.
  auto tile = [&](auto masked, const int kt, const int buf) {
    constexpr bool MASKED = decltype(masked)::value;
    const T* Kb = Ks + buf * (BK * D);
    const T* Vb = Vs + buf * (BK * DV);
    const int kbase = kt * BK;
    (void)kbase;
    float s[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    // S = Q·Kᵀ, both K-major: a k16 step is 32 bytes along a panel row, every 4th a new panel.
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
      wg_qk(s, desc128(Qw + (ks >> 2) * (BQ * 64) + (ks & 3) * 16, 16),
            desc128(Kb + (ks >> 2) * (BK * 64) + (ks & 3) * 16, 16));
    wg_commit();
    wg_wait0();
    acc_fence(s);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1, kk = j * 8 + t4 * 2 + (e & 1);
        const int qpos = qpos_r[r];
        (void)r; (void)kk; (void)qpos;
        const int kpos = a.k_offset + kbase + kk;
        const float x = s[j][e] * qscale;
        const bool e0 = qpos >= kpos;
        float y = x;
        if constexpr (MASKED) { if (kbase + kk >= a.Nk) y = -INFINITY; }
        /* predicate */
        if constexpr (MASKED) { if (!(e0)) y = -INFINITY; }
        (void)kpos;
        s[j][e] = y;
      }
    }
    // Online softmax (base 2) per row; a row is spread over the 4 lanes of a quad. A row with
    // nothing allowed yet keeps m = -inf, and `base` keeps exp2 away from inf - inf.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = m[r];
#pragma unroll
      for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;
      const float alpha = exp2f(m[r] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        s[j][2 * r] = exp2f(s[j][2 * r] - base);
        s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - base);
        sum += s[j][2 * r] + s[j][2 * r + 1];
      }
      m[r] = mx;
      l[r] = l[r] * alpha + sum; // this lane's share; the quad is summed once, at the end
#pragma unroll
      for (int n = 0; n < DV / 8; ++n) {
        o[n][2 * r] *= alpha;
        o[n][2 * r + 1] *= alpha;
      }
    }
    // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major, 16 keys
    // a step (two 8-row groups), one dv panel per wgmma.
    acc_fence(o);
    wg_fence();
#pragma unroll
    for (int kv = 0; kv < BK / 16; ++kv) {
      const unsigned pa[4] = {pack2(s[2 * kv][0], s[2 * kv][1]), pack2(s[2 * kv][2], s[2 * kv][3]),
                              pack2(s[2 * kv + 1][0], s[2 * kv + 1][1]), pack2(s[2 * kv + 1][2], s[2 * kv + 1][3])};
      wg_pv<0>(o, pa, desc128(Vb + kv * 16 * 64, 1024));
      if constexpr (DV == 128) wg_pv<1>(o, pa, desc128(Vb + BK * 64 + kv * 16 * 64, 1024));
    }
    wg_commit();
    wg_wait0();
    acc_fence(o);
  };

  auto classify = [&](const int kt, bool& full) -> bool {
    const int k_lo = a.k_offset + kt * BK;
    const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;
    const bool c0 = q_hi >= k_lo;
    const bool c1 = q_lo < k_hi;
    const bool can_true = c0;
    const bool can_false = c1;
    full = !can_false;
    return can_true;
  };
  int first = nkt, last = -1;
  for (int base = 0; base < nkt; base += 32) {
    bool f = false;
    const unsigned bits = __ballot_sync(0xffffffffu, base + lane < nkt && classify(base + lane, f));
    if (bits) { first = base + __ffs(bits) - 1; break; }
  }
  for (int base = nkt - 1; base >= first; base -= 32) {
    bool f = false;
    const unsigned bits = __ballot_sync(0xffffffffu, base - lane >= first && classify(base - lane, f));
    if (bits) { last = base - (__ffs(bits) - 1); break; }
  }
  auto next_tile = [&](int kt, bool& full) {
    full = false;
    for (kt = max(kt, first); kt <= last; ++kt)
      if (classify(kt, full)) return kt; // empty tile: skipped, nothing loaded
    return nkt;
  };
  auto load_kv = [&](const int kt, const int buf) {
    load_panel<D, BK>(Ks + buf * (BK * D), kv_from(kg, (long long)kt * BK, 1), a.Nk - kt * BK, tid);
    load_panel<DV, BK>(Vs + buf * (BK * DV), kv_from(vg, (long long)kt * BK, 1), a.Nk - kt * BK, tid);
  };
  bool kt_full, nk_full;
  int kt = next_tile(0, kt_full), buf = 0;
  if (kt < nkt) load_kv(kt, 0);
  cp_commit();
  cp_wait<0>(); // Q and the first K/V tile
  proxy_fence();
  __syncthreads();
  while (kt < nkt) {
    const int nk = next_tile(kt + 1, nk_full);
    if (nk < nkt) load_kv(nk, buf ^ 1); // the next tile streams in while this one computes
    cp_commit();
    cp_wait<1>();
    proxy_fence();
    __syncthreads();
    const bool tail = (kt + 1) * BK > a.Nk;
    if (tail || !kt_full) tile(Flag<true>{}, kt, buf);
    else tile(Flag<false>{}, kt, buf); // full tile: no predicate
    __syncthreads(); // every warp is done with `buf` before it is refilled
    buf ^= 1;
    kt = nk;
    kt_full = nk_full;
  }

  // out = o / l (0 for a row with no allowed key), lse = ln(sum exp) (-inf for such a row).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int i = row_r[r];
    if (i >= a.Nq) continue;
    const size_t row = (size_t)(b * a.H + h) * a.Nq + i; // lse stays packed
    const float inv = sum == 0.f ? 0.f : 1.f / sum;
    T* orow = out_row(a, b, h, i);
#pragma unroll
    for (int n = 0; n < DV / 8; ++n)
      *reinterpret_cast<unsigned*>(orow + n * 8 + t4 * 2) = pack2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    if (a.lse != nullptr && t4 == 0) a.lse[row] = sum == 0.f ? -INFINITY : (m[r] + log2f(sum)) * LN2;
  }
}
} // namespace attnc_paged_decode

// ---- host code: argument checks and launches ----
namespace attnc_paged_decode {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_paged_decode: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - n, fmt, ap);
  va_end(ap);
  // A failed runtime call (an attribute, a launch) stays the thread's last error: cleared here,
  // the next call's cudaGetLastError does not report it as the next launch's own.
  if (code == ATTNC_ERR_CUDA) (void)cudaGetLastError();
  return code;
}
static bool ptr_ok(const void* p, size_t align) { return p != NULL && (uintptr_t)p % align == 0; }
[[maybe_unused]] static bool kv_strides_ok(const Args& a, long long elems) { return a.k_stride_b % elems == 0 && a.k_stride_h % elems == 0 && a.k_stride_n % elems == 0 && a.v_stride_b % elems == 0 && a.v_stride_h % elems == 0 && a.v_stride_n % elems == 0 && a.q_stride_b % elems == 0 && a.q_stride_h % elems == 0 && a.q_stride_n % elems == 0 && a.out_stride_b % elems == 0 && a.out_stride_h % elems == 0 && a.out_stride_n % elems == 0; }
[[maybe_unused]] static bool rows_disjoint(long long sb, int nb, long long sh, int nh, long long sn, int nn, long long w) {
  long long s[3] = {sb, sh, sn}, n[3] = {nb, nh, nn};
  for (int i = 0; i < 3; ++i)
    for (int j = i + 1; j < 3; ++j)
      if (s[j] < s[i]) { long long t = s[i]; s[i] = s[j]; s[j] = t; t = n[i]; n[i] = n[j]; n[j] = t; }
  long long extent = w;
  for (int i = 0; i < 3; ++i) {
    if (n[i] <= 1) continue;
    if (s[i] < extent) return false;
    extent += s[i] * (n[i] - 1);
  }
  return true;
}
} // namespace attnc_paged_decode

namespace attnc_paged_decode {
namespace dec {
// ---- decode mode (split-KV + lse merge): codegen/cuda/decode.ts ----
// Tuning knobs (decode-knobs.ts): rebuild with -DATTNC_DEC_<KNOB>=n to override.
#ifndef ATTNC_DEC_GROUPS
#define ATTNC_DEC_GROUPS 16
#endif
#ifndef ATTNC_DEC_KPG
#define ATTNC_DEC_KPG 2
#endif
#ifndef ATTNC_DEC_STAGES
#define ATTNC_DEC_STAGES 4
#endif
#ifndef ATTNC_DEC_MIN_BLOCKS
#define ATTNC_DEC_MIN_BLOCKS 1
#endif
#ifndef ATTNC_DEC_SPLITS
#define ATTNC_DEC_SPLITS 0
#endif
#ifndef ATTNC_DEC_VSIDES
#define ATTNC_DEC_VSIDES 1
#endif
static_assert(ATTNC_DEC_GROUPS >= 4 && ATTNC_DEC_GROUPS <= 128 && ATTNC_DEC_GROUPS % 4 == 0, "ATTNC_DEC_GROUPS: 4..128, whole warps");
static_assert(ATTNC_DEC_KPG >= 1 && ATTNC_DEC_STAGES >= 2 && ATTNC_DEC_MIN_BLOCKS >= 1 && ATTNC_DEC_SPLITS >= 0, "decode knobs");
constexpr int MT = 4, GROUPS = ATTNC_DEC_GROUPS, KPG = ATTNC_DEC_KPG, TILE = GROUPS * KPG, THREADS = 8 * GROUPS;
constexpr int VW = 8, CD = D / (8 * VW), CV = DV / (8 * VW);
constexpr int STAGES = ATTNC_DEC_STAGES;
constexpr int K_ROW = 128, V_ROW = 128; // stream bytes per key
constexpr size_t SPLIT_SMEM = (size_t)STAGES * TILE * (K_ROW + V_ROW); // dynamic, per block
// The combine's static arrays (decode.ts); a block may have 227 KiB at most (sm_90), fewer on
// smaller parts (the launcher checks the device and asks for the dynamic share).
constexpr size_t SPLIT_STATIC_SMEM = sizeof(float) * ((size_t)GROUPS * MT + 2 * MT + (size_t)MT * DV);
static_assert(SPLIT_SMEM + SPLIT_STATIC_SMEM <= 227 * 1024, "decode stream: ATTNC_DEC_STAGES x ATTNC_DEC_GROUPS x ATTNC_DEC_KPG keys need more than 227 KiB of shared memory per block: fewer stages or keys per tile");
// N (16, 8 or 4) bytes global -> shared, or N zero bytes when !ok (src is then not read).
template <int N>
__device__ __forceinline__ void dec_cp(void* dst, const void* src, bool ok) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  if constexpr (N == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(ok ? 16 : 0) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(N), "r"(ok ? N : 0) : "memory");
#else
  if (ok) memcpy(dst, src, N);
  else memset(dst, 0, N);
#endif
}
__device__ __forceinline__ void dec_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void dec_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
// Keys t0..t1-1 of a kv head into kd [TILE][K_ROW], vd [TILE][V_ROW] (bytes).
__device__ __forceinline__ void fetch_k(const KvRows& kg, unsigned char* dst, int t0, int t1) {
  constexpr int U = 16, C = K_ROW / U;
  if constexpr (ATTNC_KV_PAGE_RUNS && THREADS % C == 0 && (TILE * C) % THREADS == 0) {
    constexpr int N = TILE * C / THREADS; // rows a thread
    const int c = threadIdx.x % C, j0 = threadIdx.x / C * N;
    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.
    const long long first = min(t0 + j0, t1 - 1), last = min(t0 + j0 + N - 1, t1 - 1);
    if constexpr (N <= PAGE) {
      const auto r = kg.run(first, last);
#pragma unroll
      for (int n = 0; n < N; ++n) {
        const int kj = t0 + j0 + n;
        const bool ok = kj < t1;
        dec_cp<U>(dst + (j0 + n) * K_ROW + c * U, kg.row(r, ok ? kj : first) + c * (U / (int)sizeof(T)), ok);
      }
    } else {
      const T* rows[N > 0 ? N : 1];
#pragma unroll
      for (int n = 0; n < N; ++n) rows[n] = kg.row(min(t0 + j0 + n, t1 - 1));
#pragma unroll
      for (int n = 0; n < N; ++n) dec_cp<U>(dst + (j0 + n) * K_ROW + c * U, rows[n] + c * (U / (int)sizeof(T)), t0 + j0 + n < t1);
    }
  } else {
#pragma unroll
    for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
      const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
      const bool ok = kj < t1;
      if (i < TILE * C) dec_cp<U>(dst + (j) * K_ROW + c * U, kg.row((ok ? kj : t0)) + c * (U / (int)sizeof(T)), ok);
    }
  }
}
__device__ __forceinline__ void fetch_v(const KvRows& vg, unsigned char* dst, int t0, int t1) {
  constexpr int U = 16, C = V_ROW / U;
  if constexpr (ATTNC_KV_PAGE_RUNS && THREADS % C == 0 && (TILE * C) % THREADS == 0) {
    constexpr int N = TILE * C / THREADS; // rows a thread
    const int c = threadIdx.x % C, j0 = threadIdx.x / C * N;
    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.
    const long long first = min(t0 + j0, t1 - 1), last = min(t0 + j0 + N - 1, t1 - 1);
    if constexpr (N <= PAGE) {
      const auto r = vg.run(first, last);
#pragma unroll
      for (int n = 0; n < N; ++n) {
        const int kj = t0 + j0 + n;
        const bool ok = kj < t1;
        dec_cp<U>(dst + (j0 + n) * V_ROW + c * U, vg.row(r, ok ? kj : first) + c * (U / (int)sizeof(T)), ok);
      }
    } else {
      const T* rows[N > 0 ? N : 1];
#pragma unroll
      for (int n = 0; n < N; ++n) rows[n] = vg.row(min(t0 + j0 + n, t1 - 1));
#pragma unroll
      for (int n = 0; n < N; ++n) dec_cp<U>(dst + (j0 + n) * V_ROW + c * U, rows[n] + c * (U / (int)sizeof(T)), t0 + j0 + n < t1);
    }
  } else {
#pragma unroll
    for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
      const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
      const bool ok = kj < t1;
      if (i < TILE * C) dec_cp<U>(dst + (j) * V_ROW + c * U, vg.row((ok ? kj : t0)) + c * (U / (int)sizeof(T)), ok);
    }
  }
}
// Tile class of rows q_lo..q_hi x keys k_lo..k_hi (positions): 0 empty, 1 full, 2 partial.
__device__ __forceinline__ int tile_class(const Args& a, int b, int h, int q_lo, int q_hi, int k_lo, int k_hi) {
  const bool ct0 = q_hi >= k_lo;
  if (!(ct0)) return 0;
  const bool cf0 = q_lo < k_hi;
  return (cf0) ? 2 : 1;
}
__device__ __forceinline__ bool elem_mask(const Args& a, int b, int h, int qpos, int kpos) {
  const bool m0 = qpos >= kpos;
  return m0;
}

// Partial (acc[DV], m, l) of packed row r of a block (its lane groups combined).
__device__ __forceinline__ size_t part_slot(const Args& a, int b, int hk, int rt, int row_tiles, int split, int n_splits, int r) {
  return ((((size_t)b * a.Hkv + hk) * row_tiles + rt) * n_splits + split) * MT * (DV + 2) + (size_t)r * (DV + 2);
}

__global__ void __launch_bounds__(THREADS, ATTNC_DEC_MIN_BLOCKS) split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {
  const int group = a.H / a.Hkv, packed = group * a.Nq;
  const int split = blockIdx.x / row_tiles, rt = blockIdx.x % row_tiles;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 7, g = threadIdx.x >> 3;
  [[maybe_unused]] int hr[MT], qp[MT];
  bool rok[MT];
  VecT<VW> qx[MT][CD]; // kept in storage type: half the registers of f32 at 16 bits
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    const int p = rt * MT + r;
    rok[r] = p < packed;
    const int pp = rok[r] ? p : 0;
    const int row = pp % a.Nq;
    hr[r] = hk * group + pp / a.Nq;
    qp[r] = row + a.q_offset;
    const T* qrow = q_row(a, b, hr[r], row);
#pragma unroll
    for (int c = 0; c < CD; ++c) {
      qx[r][c] = *reinterpret_cast<const VecT<VW>*>(qrow + (lane + 8 * c) * VW);
    }
  }
  float m[MT], l[MT], acc[MT][CV][VW];
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < CV; ++c)
#pragma unroll
      for (int e = 0; e < VW; ++e) acc[r][c][e] = 0.f;
  }
  const int k_begin = split * split_keys, k_end = min(a.Nk, k_begin + split_keys);
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)hk * a.k_stride_h, a.block_table + (size_t)b * a.max_pages, a.k_stride_b, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)hk * a.v_stride_h, a.block_table + (size_t)b * a.max_pages, a.v_stride_b, a.v_stride_n};
  // K/V tiles stream through STAGES shared-memory buffers, STAGES - 1 ahead (decode-pipe.ts).
  extern __shared__ float4 dec_smem[];
  unsigned char* ks = reinterpret_cast<unsigned char*>(dec_smem);
  unsigned char* vs = ks + STAGES * TILE * K_ROW;
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + TILE - 1) / TILE : 0;
  auto fetch = [&](int it) {
    if (it < n_tiles) {
      const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);
      int cls[MT];
      bool any = false;
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        cls[r] = rok[r] ? tile_class(a, b, hr[r], qp[r], qp[r], t0 + a.k_offset, t1 - 1 + a.k_offset) : 0;
        any |= cls[r] != 0;
      }
      if (any) {
        fetch_k(kg, ks + (it % STAGES) * TILE * K_ROW, t0, t1);
        fetch_v(vg, vs + (it % STAGES) * TILE * V_ROW, t0, t1);
      }
    }
    dec_commit(); // one group per tile, fetched or not
  };
  for (int s = 0; s < STAGES - 1; ++s) fetch(s);
  for (int it = 0; it < n_tiles; ++it) {
    dec_wait<STAGES - 2>(); // this thread's copies of tile it have landed
    __syncthreads(); // everyone's have, and tile it - 1's buffer is free for tile it + STAGES - 1
    fetch(it + STAGES - 1);
    const int t0 = k_begin + it * TILE, t1 = min(t0 + TILE, k_end);
    const unsigned char* kt = ks + (it % STAGES) * TILE * K_ROW;
    const unsigned char* vt = vs + (it % STAGES) * TILE * V_ROW;
    int cls[MT];
    bool any = false;
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      cls[r] = rok[r] ? tile_class(a, b, hr[r], qp[r], qp[r], t0 + a.k_offset, t1 - 1 + a.k_offset) : 0;
      any |= cls[r] != 0;
    }
    if (!any) continue; // the same for every thread of the block
    float sc[KPG][MT];
    // V rows are requested with the K rows (one memory round trip per tile, not two).
    VecT<VW> vx[KPG][CV];
#pragma unroll
    for (int i = 0; i < KPG; ++i) {
      const int kj = t0 + g + GROUPS * i;
#pragma unroll
      for (int c = 0; c < CV; ++c)
        vx[i][c] = *reinterpret_cast<const VecT<VW>*>(reinterpret_cast<const T*>(vt + (kj - t0) * V_ROW) + (lane + 8 * c) * VW);
    }
#pragma unroll
    for (int i = 0; i < KPG; ++i) {
      const int kj = t0 + g + GROUPS * i;
      const bool valid = kj < t1;
      VecT<VW> kx[CD];
#pragma unroll
      for (int c = 0; c < CD; ++c)
        kx[c] = *reinterpret_cast<const VecT<VW>*>(reinterpret_cast<const T*>(kt + (kj - t0) * K_ROW) + (lane + 8 * c) * VW);
      [[maybe_unused]] const int kpos = kj + a.k_offset;
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        float dot = 0.f;
#pragma unroll
        for (int c = 0; c < CD; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) dot = fmaf(to_f32(qx[r][c].v[e]), to_f32(kx[c].v[e]), dot);
        dot += __shfl_xor_sync(0xffffffffu, dot, 1);
        dot += __shfl_xor_sync(0xffffffffu, dot, 2);
        dot += __shfl_xor_sync(0xffffffffu, dot, 4);
        const float x = a.scale * dot;
        const bool ok = valid && cls[r] != 0 && (cls[r] == 1 || elem_mask(a, b, hr[r], qp[r], kpos));
        sc[i][r] = ok ? x * LOG2E : -INFINITY;
      }
    }
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      float mt = sc[0][r];
#pragma unroll
      for (int i = 1; i < KPG; ++i) mt = fmaxf(mt, sc[i][r]);
      if (mt > -INFINITY) {
        const float mn = fmaxf(m[r], mt), corr = exp2f(m[r] - mn);
        l[r] *= corr;
#pragma unroll
        for (int c = 0; c < CV; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) acc[r][c][e] *= corr;
        m[r] = mn;
      }
    }
#pragma unroll
    for (int i = 0; i < KPG; ++i) {
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN (NaN - m, inf - inf), which
        // makes l NaN: the row comes out NaN (docs/LANGUAGE.md "Non-finite values").
        const float p = sc[i][r] == -INFINITY ? 0.f : exp2f(sc[i][r] - m[r]);
        l[r] += p;
#pragma unroll
        for (int c = 0; c < CV; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) acc[r][c][e] = fmaf(p, to_f32(vx[i][c].v[e]), acc[r][c][e]);
      }
    }
  }
  // Combine the 16 groups in shared memory: one partial per row and block.
  __shared__ float sm_m[GROUPS][MT], sm_max[MT], sm_l[MT], sm_acc[MT][DV];
  for (int i = threadIdx.x; i < MT * DV; i += THREADS) sm_acc[i / DV][i % DV] = 0.f;
  if (threadIdx.x < MT) sm_l[threadIdx.x] = 0.f;
  if (lane == 0)
#pragma unroll
    for (int r = 0; r < MT; ++r) sm_m[g][r] = l[r] != 0.f ? m[r] : -INFINITY; // l NaN: poisoned, kept
  __syncthreads();
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    float M = -INFINITY;
#pragma unroll
    for (int j = 0; j < GROUPS; ++j) M = fmaxf(M, sm_m[j][r]);
    if (l[r] != 0.f) { // a NaN l carries into sm_l
      const float f = exp2f(m[r] - M);
#pragma unroll
      for (int c = 0; c < CV; ++c)
#pragma unroll
        for (int e = 0; e < VW; ++e) atomicAdd(&sm_acc[r][(lane + 8 * c) * VW + e], acc[r][c][e] * f);
      if (lane == 0) atomicAdd(&sm_l[r], l[r] * f);
    }
    if (threadIdx.x == 0) sm_max[r] = M;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < MT * (DV + 2); i += THREADS) {
    const int r = i / (DV + 2), c = i % (DV + 2);
    if (!rok[r]) continue;
    float* dst = part + part_slot(a, b, hk, rt, row_tiles, split, n_splits, r);
    dst[c] = c < DV ? sm_acc[r][c] : c == DV ? sm_max[r] : sm_l[r];
  }
}

// One block per (query row, head, batch): M = max m_i over partials with l_i != 0,
// L = sum l_i 2^(m_i - M), out = sum acc_i 2^(m_i - M) / L, lse = (M + log2 L) ln 2. L == 0:
// an empty row (out 0, lse -inf); a partial with l NaN (a NaN or +inf score) makes L NaN.
constexpr int MERGE_THREADS = 128;
__global__ void __launch_bounds__(MERGE_THREADS) merge_kernel(const Args a, const float* __restrict__ part, int n_splits, int row_tiles) {
  const int row = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int group = a.H / a.Hkv, hk = h / group, p = (h % group) * a.Nq + row;
  const int rt = p / MT, r = p % MT, n = n_splits;
  const float* base = part + part_slot(a, b, hk, rt, row_tiles, 0, n_splits, r);
  const size_t stride = (size_t)MT * (DV + 2); // between consecutive splits
  // Block-wide max and sum over the splits, then each split's weight 2^(m_j - M) in shared memory.
  extern __shared__ float w[]; // n_splits weights
  __shared__ float red[4];
  const int warp = threadIdx.x >> 5, ln = threadIdx.x & 31;
  float M = -INFINITY;
  for (int j = threadIdx.x; j < n; j += MERGE_THREADS)
    if (base[j * stride + DV + 1] != 0.f) M = fmaxf(M, base[j * stride + DV]);
  for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
  if (ln == 0) red[warp] = M;
  __syncthreads();
  M = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
  __syncthreads();
  float L = 0.f;
  for (int j = threadIdx.x; j < n; j += MERGE_THREADS) {
    const float lj = base[j * stride + DV + 1];
    const float wj = lj != 0.f ? exp2f(base[j * stride + DV] - M) : 0.f;
    w[j] = wj;
    L += lj * wj;
  }
  for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(0xffffffffu, L, off);
  if (ln == 0) red[warp] = L;
  __syncthreads();
  L = red[0] + red[1] + red[2] + red[3];
  const float inv = L == 0.f ? 0.f : 1.f / L;
  T* og = out_row(a, b, h, row);
  for (int d = threadIdx.x; d < DV; d += MERGE_THREADS) {
    float o = 0.f; // every split wrote its acc (0 where l = 0)
#pragma unroll 8
    for (int j = 0; j < n; ++j) o = fmaf(w[j], base[j * stride + d], o);
    og[d] = from_f32(o * inv);
  }
  if (threadIdx.x == 0 && a.lse != NULL)
    a.lse[((size_t)b * a.H + h) * a.Nq + row] = L == 0.f ? -INFINITY : (M + log2f(L)) * LN2;
}

// ---- tensor-core split kernel (sm_80+): codegen/cuda/decode-mma.ts ----
#ifndef ATTNC_DEC_MMA
#define ATTNC_DEC_MMA 1
#endif
#ifndef ATTNC_DEC_MMA_WARPS
#define ATTNC_DEC_MMA_WARPS 8
#endif
#ifndef ATTNC_DEC_MMA_KEYS
#define ATTNC_DEC_MMA_KEYS 16
#endif
#ifndef ATTNC_DEC_MMA_STAGES
#define ATTNC_DEC_MMA_STAGES 2
#endif
#ifndef ATTNC_DEC_MMA_MIN_BLOCKS
#define ATTNC_DEC_MMA_MIN_BLOCKS 1
#endif
static_assert(ATTNC_DEC_MMA_WARPS >= 1 && ATTNC_DEC_MMA_WARPS <= 16, "ATTNC_DEC_MMA_WARPS: 1..16");
static_assert(ATTNC_DEC_MMA_KEYS >= 16 && ATTNC_DEC_MMA_KEYS % 16 == 0, "ATTNC_DEC_MMA_KEYS: a multiple of 16");
static_assert(ATTNC_DEC_MMA_STAGES >= 2 && ATTNC_DEC_MMA_MIN_BLOCKS >= 1, "decode mma knobs");
constexpr int MMA_ROWS = 16, MMA_WARPS = ATTNC_DEC_MMA_WARPS, MMA_KEYS = ATTNC_DEC_MMA_KEYS;
constexpr int MMA_THREADS = 32 * MMA_WARPS, MMA_TILE = MMA_WARPS * MMA_KEYS, MMA_STAGES = ATTNC_DEC_MMA_STAGES;
constexpr int KP = D + 8, VP = DV + 8; // padded row pitches (elements): conflict-free ldmatrix
constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * MMA_TILE * (KP + VP) * sizeof(T);
constexpr size_t MMA_COMBINE = sizeof(float) * (size_t)MMA_WARPS * MMA_ROWS * (DV + 2);
constexpr size_t MMA_SMEM = MMA_STREAM > MMA_COMBINE ? MMA_STREAM : MMA_COMBINE; // dynamic, per block
static_assert(MMA_SMEM <= 227 * 1024, "decode mma: ATTNC_DEC_MMA_STAGES x WARPS x KEYS keys need more than 227 KiB of shared memory per block");
#if defined(__CUDACC__) || defined(ATTNC_EMU_DECODE_MMA) // plain emulator builds skip it
__device__ __forceinline__ void dm_ldsm(unsigned (&r)[4], const T* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"((unsigned)__cvta_generic_to_shared(p)));
}
__device__ __forceinline__ void dm_ldsm_t(unsigned (&r)[4], const T* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"((unsigned)__cvta_generic_to_shared(p)));
}
// c += a·b: a row-major 16×16 (4 regs), b column-major 16×8 (2 regs), f32 accumulators.
__device__ __forceinline__ void dm_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned dm_pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}
template <int W, int PITCH>
__device__ __forceinline__ void dm_fetch(const KvRows& g, T* dst, int t0, int t1) {
  constexpr int C = W * (int)sizeof(T) / 16, E = 16 / (int)sizeof(T);
  if constexpr (ATTNC_KV_PAGE_RUNS && MMA_THREADS % C == 0 && (MMA_TILE * C) % MMA_THREADS == 0) {
    constexpr int N = MMA_TILE * C / MMA_THREADS; // rows a thread
    const int c = threadIdx.x % C, j0 = threadIdx.x / C * N;
    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.
    const long long first = min(t0 + j0, t1 - 1), last = min(t0 + j0 + N - 1, t1 - 1);
    if constexpr (N <= PAGE) {
      const auto r = g.run(first, last);
#pragma unroll
      for (int n = 0; n < N; ++n) {
        const int kj = t0 + j0 + n;
        const bool ok = kj < t1;
        dec_cp<16>(dst + (j0 + n) * PITCH + c * E, g.row(r, ok ? kj : first) + c * E, ok);
      }
    } else {
      const T* rows[N > 0 ? N : 1];
#pragma unroll
      for (int n = 0; n < N; ++n) rows[n] = g.row(min(t0 + j0 + n, t1 - 1));
#pragma unroll
      for (int n = 0; n < N; ++n) dec_cp<16>(dst + (j0 + n) * PITCH + c * E, rows[n] + c * E, t0 + j0 + n < t1);
    }
  } else {
#pragma unroll
    for (int n = 0; n < (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS; ++n) {
      const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;
      const bool ok = kj < t1;
      if (i < MMA_TILE * C) dec_cp<16>(dst + (j) * PITCH + c * E, g.row((ok ? kj : t0)) + c * E, ok);
    }
  }
}
// K and V rows t0..t1-1 of a paged cache, every page id read before the first copy (kv-pages-once.ts).
template <int KW, int KP, int VW, int VP>
__device__ __forceinline__ void dm_fetch_kv_pages(const KvRows& kg, const KvRows& vg, T* kd, T* vd, int t0, int t1) {
  constexpr int KC = KW * (int)sizeof(T) / 16, VC = VW * (int)sizeof(T) / 16, E = 16 / (int)sizeof(T);
  constexpr int KN = MMA_TILE * KC / MMA_THREADS, VN = MMA_TILE * VC / MMA_THREADS; // rows a thread
  constexpr bool once = ATTNC_KV_PAGE_ONCE && ATTNC_KV_PAGE_RUNS &&
      MMA_THREADS % KC == 0 && (MMA_TILE * KC) % MMA_THREADS == 0 && KN >= 1 && KN <= PAGE &&
      MMA_THREADS % VC == 0 && (MMA_TILE * VC) % MMA_THREADS == 0 && VN >= 1 && VN <= PAGE;
  if constexpr (!once) {
    dm_fetch<KW, KP>(kg, kd, t0, t1);
    dm_fetch<VW, VP>(vg, vd, t0, t1);
  } else {
    const int kc = threadIdx.x % KC, kj0 = threadIdx.x / KC * KN;
    const int vc = threadIdx.x % VC, vj0 = threadIdx.x / VC * VN;
    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.
    const long long kf = min(t0 + kj0, t1 - 1), kl = min(t0 + kj0 + KN - 1, t1 - 1);
    const long long vf = min(t0 + vj0, t1 - 1), vl = min(t0 + vj0 + VN - 1, t1 - 1);
    // Every page id first: the runs’ first and last rows’ and this thread’s scale word’s.
    const int* pg = kg.pages;
    const int klo = __ldg(pg + (kf >> LOG2_PAGE)), khi = __ldg(pg + (kl >> LOG2_PAGE));
    const int vlo = __ldg(pg + (vf >> LOG2_PAGE)), vhi = __ldg(pg + (vl >> LOG2_PAGE));
    const KvRows::Run kr{kf >> LOG2_PAGE, kg.p + (long long)klo * kg.ps, kg.p + (long long)khi * kg.ps};
    const KvRows::Run vr{vf >> LOG2_PAGE, vg.p + (long long)vlo * vg.ps, vg.p + (long long)vhi * vg.ps};
    const bool k1 = ATTNC_KV_PAGE_BASE && (kl >> LOG2_PAGE) == (kf >> LOG2_PAGE); // inside one page
    const T* kb = kg.row(kr, kf);
#pragma unroll
    for (int r = 0; r < KN; ++r) {
      const int kj = t0 + kj0 + r;
      const bool ok = kj < t1;
      const T* src = !ok ? kb : k1 ? kb + r * kg.rs : kg.row(kr, kj);
      dec_cp<16>(kd + (kj0 + r) * KP + kc * E, src + kc * E, ok);
    }
    const bool v1 = ATTNC_KV_PAGE_BASE && (vl >> LOG2_PAGE) == (vf >> LOG2_PAGE); // inside one page
    const T* vb = vg.row(vr, vf);
#pragma unroll
    for (int r = 0; r < VN; ++r) {
      const int kj = t0 + vj0 + r;
      const bool ok = kj < t1;
      const T* src = !ok ? vb : v1 ? vb + r * vg.rs : vg.row(vr, kj);
      dec_cp<16>(vd + (vj0 + r) * VP + vc * E, src + vc * E, ok);
    }
  }
}

__global__ void __launch_bounds__(MMA_THREADS, ATTNC_DEC_MMA_MIN_BLOCKS) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  constexpr int NT = MMA_KEYS / 8; // key tiles of 8 per warp and tile
  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;
  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;
  unsigned qf[D / 16][4];
  {
#pragma unroll
    for (int h8 = 0; h8 < 2; ++h8) { // rows r0 (a0, a2) and r0 + 8 (a1, a3)
      const int p = rg * MMA_ROWS + r0 + 8 * h8;
      const bool ok = p < packed;
      const int pp = ok ? p : 0;
      const unsigned short* qs = reinterpret_cast<const unsigned short*>(q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq));
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const int c = ks * 16 + 2 * (lane & 3);
        qf[ks][h8] = ok ? (unsigned)qs[c] | ((unsigned)qs[c + 1] << 16) : 0u;
        qf[ks][h8 + 2] = ok ? (unsigned)qs[c + 8] | ((unsigned)qs[c + 9] << 16) : 0u;
      }
    }
  }
  [[maybe_unused]] int hr2[2], qp2[2];
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8) {
    const int p = rg * MMA_ROWS + r0 + 8 * h8, pp = p < packed ? p : 0; // padding rows: discarded
    hr2[h8] = hk * group + pp / a.Nq;
    qp2[h8] = pp % a.Nq + a.q_offset;
  }
  const int crow = rg * MMA_ROWS + (int)(threadIdx.x % MMA_ROWS); // the row this thread classifies
  const bool crow_ok = crow < packed;
  const int crow_h = hk * group + (crow_ok ? crow : 0) / a.Nq, crow_q = (crow_ok ? crow : 0) % a.Nq + a.q_offset;
  unsigned fetched = 0; // bit s: stage buffer s holds its tile
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  [[maybe_unused]] const float sl2 = a.scale * LOG2E; // identity scores: one multiply to base 2
  const int k_begin = split * split_keys, k_end = min(a.Nk, k_begin + split_keys);
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)hk * a.k_stride_h, a.block_table + (size_t)b * a.max_pages, a.k_stride_b, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)hk * a.v_stride_h, a.block_table + (size_t)b * a.max_pages, a.v_stride_b, a.v_stride_n};
  extern __shared__ float4 dm_smem[];
  T* ks = reinterpret_cast<T*>(dm_smem);
  T* vs = ks + MMA_STAGES * MMA_TILE * KP;
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;
  auto fetch = [&](int it) {
    const int f0 = k_begin + it * MMA_TILE, f1 = min(f0 + MMA_TILE, k_end);
    const bool any = __syncthreads_or(it < n_tiles && crow_ok && tile_class(a, b, crow_h, crow_q, crow_q, f0 + a.k_offset, f1 - 1 + a.k_offset) != 0);
    fetched = any ? fetched | (1u << (it % MMA_STAGES)) : fetched & ~(1u << (it % MMA_STAGES));
    if (any) {
      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);
      dm_fetch_kv_pages<D, KP, DV, VP>(kg, vg, ks + (it % MMA_STAGES) * MMA_TILE * KP, vs + (it % MMA_STAGES) * MMA_TILE * VP, t0, t1);
    }
    dec_commit(); // one group per tile, fetched or not
  };
  for (int st = 0; st < MMA_STAGES - 1; ++st) fetch(st);
  for (int it = 0; it < n_tiles; ++it) {
    dec_wait<MMA_STAGES - 2>();
    // fetch() begins with the barrier: every copy of tile it landed, tile it - 1 is free
    fetch(it + MMA_STAGES - 1);
    const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);
    if (!((fetched >> (it % MMA_STAGES)) & 1u)) continue; // the same for the whole block
    int cls2[2];
#pragma unroll
    for (int h8 = 0; h8 < 2; ++h8) cls2[h8] = tile_class(a, b, hr2[h8], qp2[h8], qp2[h8], t0 + a.k_offset, t1 - 1 + a.k_offset);
    const int kw = t0 + warp * MMA_KEYS;
    if (kw < t1) { // warp-uniform: a warp past the split end has no keys in this tile
      const T* kt = ks + (it % MMA_STAGES) * MMA_TILE * KP + warp * MMA_KEYS * KP;
      const T* vt = vs + (it % MMA_STAGES) * MMA_TILE * VP + warp * MMA_KEYS * VP;
      float s[NT][4];
#pragma unroll
      for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
        for (int jj = 0; jj < NT / 2; ++jj) {
          unsigned kb[4]; // keys jj*16 + 0..7 (cols 0-7, 8-15), 8..15 (cols 0-7, 8-15)
          dm_ldsm(kb, kt + (jj * 16 + (lane >> 4) * 8 + (lane & 7)) * KP + ks * 16 + ((lane >> 3) & 1) * 8);
          dm_mma(s[2 * jj], qf[ks], kb[0], kb[1]);
          dm_mma(s[2 * jj + 1], qf[ks], kb[2], kb[3]);
        }
      float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int kj = kw + j * 8 + 2 * (lane & 3) + (e & 1);
          [[maybe_unused]] const int kpos = kj + a.k_offset;
          s[j][e] = kj < t1 && cls2[e >> 1] != 0 && (cls2[e >> 1] == 1 || elem_mask(a, b, hr2[e >> 1], qp2[e >> 1], kpos)) ? s[j][e] * sl2 : -INFINITY;
          mt[e >> 1] = fmaxf(mt[e >> 1], s[j][e]);
        }
#pragma unroll
      for (int h8 = 0; h8 < 2; ++h8) {
        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 1));
        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 2));
        if (mt[h8] > -INFINITY) {
          const float mn = fmaxf(m[h8], mt[h8]), corr = exp2f(m[h8] - mn);
          l[h8] *= corr;
#pragma unroll
          for (int n = 0; n < DV / 8; ++n) o[n][2 * h8] *= corr, o[n][2 * h8 + 1] *= corr;
          m[h8] = mn;
        }
      }
      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e >> 1]);
          l[e >> 1] += s[j][e];
        }
#pragma unroll
      for (int kk = 0; kk < NT / 2; ++kk) {
        // P's C fragments of key tiles 2kk, 2kk + 1 are the A fragment of keys kk*16..+15.
        const unsigned pa[4] = {dm_pack(s[2 * kk][0], s[2 * kk][1]), dm_pack(s[2 * kk][2], s[2 * kk][3]),
                                dm_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), dm_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int nn = 0; nn < DV / 16; ++nn) {
          unsigned vb[4]; // keys 0-7, 8-15 of columns nn*16 + 0..7, then of + 8..15
          dm_ldsm_t(vb, vt + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * VP + nn * 16 + (lane >> 4) * 8);
          dm_mma(o[2 * nn], pa, vb[0], vb[1]);
          dm_mma(o[2 * nn + 1], pa, vb[2], vb[3]);
        }
      }
    }
  }
  dec_wait<0>();
  __syncthreads(); // the stream buffers are free: they hold the combine now
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8) {
    l[h8] += __shfl_xor_sync(0xffffffffu, l[h8], 1);
    l[h8] += __shfl_xor_sync(0xffffffffu, l[h8], 2);
  }
  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][16] m, then l, then o [WARPS][16][DV]
  float* cl = cm + MMA_WARPS * MMA_ROWS;
  float* co = cl + MMA_WARPS * MMA_ROWS;
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8) {
    const int r = r0 + 8 * h8;
    if ((lane & 3) == 0) {
      cm[warp * MMA_ROWS + r] = l[h8] != 0.f ? m[h8] : -INFINITY; // l NaN: poisoned, kept
      cl[warp * MMA_ROWS + r] = l[h8];
    }
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) {
      float* dst = co + ((size_t)warp * MMA_ROWS + r) * DV + n * 8 + 2 * (lane & 3);
      dst[0] = o[n][2 * h8];
      dst[1] = o[n][2 * h8 + 1];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < MMA_ROWS * (DV + 2); i += MMA_THREADS) {
    const int r = i / (DV + 2), c = i % (DV + 2), p = rg * MMA_ROWS + r;
    if (p >= packed) continue;
    float M = -INFINITY;
    for (int w = 0; w < MMA_WARPS; ++w) M = fmaxf(M, cm[w * MMA_ROWS + r]);
    float x = 0.f;
    if (c == DV) {
      x = M;
    } else {
      for (int w = 0; w < MMA_WARPS; ++w) {
        const float lw = cl[w * MMA_ROWS + r];
        if (lw == 0.f) continue; // a NaN l carries on
        const float f = exp2f(cm[w * MMA_ROWS + r] - M);
        x += (c < DV ? co[((size_t)w * MMA_ROWS + r) * DV + c] : lw) * f;
      }
    }
    part[part_slot(a, b, hk, p / MT, row_tiles, split, n_splits, p % MT) + c] = x;
  }
#else
  __trap(); // the host launches this kernel on compute capability 8.0 and up only
#endif
}
#endif // __CUDACC__
} // namespace dec
} // namespace attnc_paged_decode
// ---- decode: host side ----
namespace attnc_paged_decode {
namespace dec {
// Host: whether this launch takes decode mode (env ATTNC_DECODE=0 never, =1 always).
static bool wanted(const Args& a) {
  static const int env = [] {
    const char* e = getenv("ATTNC_DECODE");
    return e == NULL ? -1 : (e[0] == '0' ? 0 : 1);
  }();
  if (env == 0 || a.Nq < 1 || a.Nk < 1) return false;
  // The decode kernels pack a KV head's (H / Hkv) · Nq query rows in an int: past that, prefill.
  if ((long long)(a.H / a.Hkv) * a.Nq > 2147483647LL - MT) return false;
  const size_t align = VW * sizeof(T);
  if (!ptr_ok(a.q, align) || !ptr_ok(a.k, align) || !ptr_ok(a.v, align)) return false;
  if (!kv_strides_ok(a, VW)) return false; // K/V strides (kv-rows.ts) off its vector width
  return env == 1 || (a.Nq <= 16 && a.Nk >= 1024);
}

// Cost of w splits for `base` (kv head, batch, row tile) blocks: blocks on the busiest SM per
// split, between exact shares (a partial wave as fast as its blocks) and whole waves.
static double split_cost(long long base, long long w, int sms, int resident) {
  const long long per_sm = (base * w + sms - 1) / sms;
  const long long waves = (per_sm + resident - 1) / resident;
  return (double)(per_sm + waves * resident) / (2.0 * (double)w);
}

static int mma_resident(int dev) {
  static int state[64] = {};
  if (state[dev] != 0) return state[dev];
  const char* e = getenv("ATTNC_DECODE_MMA");
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) major = 0;
  if (!ATTNC_DEC_MMA || major < 8 || (e != NULL && e[0] == '0')) return state[dev] = -1;
  int optin = 0;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) optin = 0;
  if (optin > 0 && MMA_SMEM > (size_t)optin) {
    fail(ATTNC_ERR_ARGS, "decode: ATTNC_DEC_MMA_STAGES (%d) x ATTNC_DEC_MMA_WARPS (%d) x ATTNC_DEC_MMA_KEYS (%d) keys need %zu bytes of shared memory per block, above the %d this device allows: rebuild with fewer", MMA_STAGES, MMA_WARPS, MMA_KEYS, MMA_SMEM, optin);
    return -2;
  }
  if (cudaFuncSetAttribute(mma_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MMA_SMEM) != cudaSuccess)
    return state[dev] = -1; // the SIMT kernel then
  int n = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, mma_split_kernel, MMA_THREADS, MMA_SMEM) != cudaSuccess || n < 1) n = 1;
  return state[dev] = n;
}

static int launch(const Args& a, cudaStream_t stream) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
  if (dev < 0 || dev >= 64) return fail(ATTNC_ERR_CUDA, "decode: device %d beyond 64", dev);
  // Per device, once: SMs, the stages' shared memory, and how many split blocks an SM holds.
  static int sm_count[64] = {}, resident_blocks[64] = {};
  if (resident_blocks[dev] == 0) {
    if (cudaDeviceGetAttribute(&sm_count[dev], cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) sm_count[dev] = 132;
    int optin = 0;
    // A limit that cannot be read is not checked: the request below then reports the device's error.
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) optin = 0;
    cudaFuncAttributes fa = {};
    const size_t fixed = cudaFuncGetAttributes(&fa, split_kernel) == cudaSuccess ? fa.sharedSizeBytes : SPLIT_STATIC_SMEM;
    if (optin > 0 && SPLIT_SMEM + fixed > (size_t)optin)
      return fail(ATTNC_ERR_ARGS, "decode: ATTNC_DEC_STAGES (%d) x ATTNC_DEC_GROUPS (%d) x ATTNC_DEC_KPG (%d) keys of the decode stream need %zu bytes of shared memory per block (+ %zu static), above the %d this device allows: rebuild with fewer stages or keys per tile", STAGES, GROUPS, KPG, SPLIT_SMEM, fixed, optin);
    const cudaError_t se = cudaFuncSetAttribute(split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SPLIT_SMEM);
    if (se != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode: cannot reserve %zu bytes of shared memory: %s", SPLIT_SMEM, cudaGetErrorString(se));
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, split_kernel, THREADS, SPLIT_SMEM) != cudaSuccess || n < 1) n = 1;
    resident_blocks[dev] = n;
  }
  const int mma_blocks = mma_resident(dev);
  if (mma_blocks == -2) return ATTNC_ERR_ARGS; // fail() said why
  const bool use_mma = mma_blocks > 0;
  // The tensor-core kernel (decode-mma.ts) takes MMA_ROWS packed rows a block, the SIMT one MT.
  const int sms = sm_count[dev], resident = (use_mma ? mma_blocks : resident_blocks[dev]);
  const int tile_keys = (use_mma ? MMA_TILE : TILE), stages = (use_mma ? MMA_STAGES : STAGES);
  const int packed = (a.H / a.Hkv) * a.Nq, row_tiles = (packed + MT - 1) / MT;
  const int rows = (use_mma ? MMA_ROWS : MT), row_groups = (packed + rows - 1) / rows;
  const long long base = (long long)a.Hkv * a.B * row_groups;
  const int tiles = (a.Nk + tile_keys - 1) / tile_keys;
  // Splits: enough blocks for every SM to hold `resident` of them, then, within 1/2x..4x of
  // that, the count that spreads blocks most evenly over the SMs (a larger count only when 3%
  // better); each split at least 2 * STAGES tiles (its pipeline fills) and a whole number of tiles.
  const long long most = tiles / (2 * stages) > 1 ? tiles / (2 * stages) : 1;
  const long long fill = ((long long)resident * sms + base - 1) / base;
  long long want = fill > most ? most : fill, best = want > 1 ? want / 2 : 1;
  double best_cost = split_cost(base, best, sms, resident);
  for (long long w = best + 1; w <= 4 * want && w <= most; ++w) {
    const double c = split_cost(base, w, sms, resident);
    if (c < 0.97 * best_cost) best = w, best_cost = c;
  }
  if (ATTNC_DEC_SPLITS > 0) best = ATTNC_DEC_SPLITS < tiles ? ATTNC_DEC_SPLITS : tiles; // a sweep's fixed count
  const int split_keys = (int)((tiles + best - 1) / best) * tile_keys;
  const int n_splits = (a.Nk + split_keys - 1) / split_keys;
  if ((long long)n_splits * row_tiles > 2147483647LL || a.Hkv > 65535)
    return fail(ATTNC_ERR_ARGS, "decode grid too large (splits %d x row tiles %d)", n_splits, row_tiles);
  const size_t bytes = (size_t)a.Hkv * a.B * row_tiles * n_splits * MT * (DV + 2) * sizeof(float);
  // Scratch comes from a pool of our own (never the device default pool, which belongs to the
  // host application): stream-ordered, and kept between launches up to 64 MiB.
  static cudaMemPool_t pools[64] = {}; // one per device of the process
  cudaError_t pe = cudaSuccess;
  if (pools[dev] == NULL) {
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    pe = cudaMemPoolCreate(&pools[dev], &props);
    if (pe != cudaSuccess) pools[dev] = NULL;
    uint64_t keep = 64ull << 20;
    if (pe == cudaSuccess) pe = cudaMemPoolSetAttribute(pools[dev], cudaMemPoolAttrReleaseThreshold, &keep);
  }
  if (pe != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch pool: %s", cudaGetErrorString(pe));
  cudaMemPool_t pool = pools[dev];
  float* part = NULL;
  cudaError_t e = cudaMallocFromPoolAsync(reinterpret_cast<void**>(&part), bytes, pool, stream);
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch of %zu bytes: %s", bytes, cudaGetErrorString(e));
  if (use_mma)
    mma_split_kernel<<<dim3(n_splits * row_groups, a.Hkv, a.B), MMA_THREADS, MMA_SMEM, stream>>>(a, part, split_keys, n_splits, row_tiles);
  else
  split_kernel<<<dim3(n_splits * row_tiles, a.Hkv, a.B), THREADS, SPLIT_SMEM, stream>>>(a, part, split_keys, n_splits, row_tiles);
  e = cudaGetLastError();
  if (e == cudaSuccess) {
    merge_kernel<<<dim3(a.Nq, a.H, a.B), MERGE_THREADS, n_splits * sizeof(float), stream>>>(a, part, n_splits, row_tiles);
    e = cudaGetLastError();
  }
  const cudaError_t f = cudaFreeAsync(part, stream);
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode attention: %s", cudaGetErrorString(e));
  if (f != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch free: %s", cudaGetErrorString(f));
  return ATTNC_OK;
}
} // namespace dec
} // namespace attnc_paged_decode

extern "C" const char* attnc_paged_decode_last_error(void) { return attnc_paged_decode::last_error; }

extern "C" void attnc_paged_decode_args_init(AttncArgs_paged_decode* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, sizeof *a);
  a->B = B; a->H = H; a->Hkv = Hkv; a->Nq = Nq; a->Nk = Nk;
  a->q_offset = Nk - Nq;
  a->k_offset = 0;
  a->scale = 1.0f / sqrtf(64.0f);
  a->k_stride_n = 64;
  a->k_stride_h = 16LL * 64;
  a->k_stride_b = (long long)Hkv * 16LL * 64;
  a->v_stride_n = 64;
  a->v_stride_h = 16LL * 64;
  a->v_stride_b = (long long)Hkv * 16LL * 64;
  a->max_pages = (Nk + 15) / 16;
  a->q_stride_n = 64;
  a->q_stride_h = (long long)Nq * 64;
  a->q_stride_b = (long long)H * Nq * 64;
  a->out_stride_n = 64;
  a->out_stride_h = (long long)Nq * 64;
  a->out_stride_b = (long long)H * Nq * 64;
}

extern "C" int attnc_paged_decode_launch(const AttncArgs_paged_decode* args, cudaStream_t stream) {
  using attnc_paged_decode::fail;
  using attnc_paged_decode::ptr_ok;
  attnc_paged_decode::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_paged_decode& a = *args;
  if (a.B < 1 || a.H < 1 || a.Hkv < 1 || a.Nq < 0 || a.Nk < 0)
    return fail(ATTNC_ERR_ARGS, "need B, H, Hkv >= 1 and Nq, Nk >= 0 (got B=%d H=%d Hkv=%d Nq=%d Nk=%d)", a.B, a.H, a.Hkv, a.Nq, a.Nk);
  if (a.H % a.Hkv != 0) return fail(ATTNC_ERR_ARGS, "H (%d) must be a multiple of Hkv (%d)", a.H, a.Hkv);
  if (a.H > 65535 || a.B > 65535) return fail(ATTNC_ERR_ARGS, "H (%d) and B (%d) must be at most 65535", a.H, a.B);
  if ((long long)a.B * a.H > 2147483647LL) return fail(ATTNC_ERR_ARGS, "B * H (%d * %d) must be at most 2147483647", a.B, a.H);
  if (a.Nq > 2146435072 || a.Nk > 2146435072) return fail(ATTNC_ERR_ARGS, "Nq (%d) and Nk (%d) must be at most 2146435072 (2^31 - 2^20)", a.Nq, a.Nk);
  if (a.Nq > 0 && (long long)a.q_offset + a.Nq - 1 > 2147482623LL) return fail(ATTNC_ERR_ARGS, "query positions [%d, %lld] are too close to the int32 limit (q_offset + Nq - 1 must be <= 2147482623, 2^31 - 1 - 1024: tile padding; got q_offset = %d, Nq = %d)", a.q_offset, (long long)a.q_offset + a.Nq - 1, a.q_offset, a.Nq);
  if (a.Nk > 0 && (long long)a.k_offset + a.Nk - 1 > 2147482623LL) return fail(ATTNC_ERR_ARGS, "key positions [%d, %lld] are too close to the int32 limit (k_offset + Nk - 1 must be <= 2147482623, 2^31 - 1 - 1024: tile padding; got k_offset = %d, Nk = %d)", a.k_offset, (long long)a.k_offset + a.Nk - 1, a.k_offset, a.Nk);
  if (a.Nq > 0 && a.Nk > 0 && ((long long)a.q_offset + a.Nq - 1 - a.k_offset > 2147483647LL || (long long)a.q_offset - ((long long)a.k_offset + a.Nk - 1) < -2147483647LL))
    return fail(ATTNC_ERR_ARGS, "q - k ranges over [%lld, %lld], which leaves int32 (q_offset = %d, k_offset = %d)", (long long)a.q_offset - ((long long)a.k_offset + a.Nk - 1), (long long)a.q_offset + a.Nq - 1 - a.k_offset, a.q_offset, a.k_offset);
  if (!isfinite(a.scale)) return fail(ATTNC_ERR_ARGS, "scale must be finite (got %g)", (double)a.scale);
  if (a.Nq == 0) return ATTNC_OK;
  if (!ptr_ok(a.q, 16) || !ptr_ok(a.out, 16) || (a.Nk > 0 && (!ptr_ok(a.k, 16) || !ptr_ok(a.v, 16))))
    return fail(ATTNC_ERR_ARGS, "q, k, v and out must be non-NULL and 16-byte aligned");
  if ((uintptr_t)a.lse % 4 != 0) return fail(ATTNC_ERR_ARGS, "lse must be 4-byte aligned (got %p)", (const void*)a.lse);
  if ((uintptr_t)a.block_table % 4 != 0) return fail(ATTNC_ERR_ARGS, "block_table must be 4-byte aligned (got %p)", (const void*)a.block_table);
  if (a.k_stride_b < 0 || a.k_stride_h < 0 || a.k_stride_n < 0) return fail(ATTNC_ERR_ARGS, "k strides must be >= 0 (got k_stride_b = %lld, k_stride_h = %lld, k_stride_n = %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.Nk > 1 && a.k_stride_n < 64) return fail(ATTNC_ERR_ARGS, "k_stride_n (%lld) is smaller than a row of k (%d elements): its rows would overlap", a.k_stride_n, 64);
  if (a.k_stride_b % 8 || a.k_stride_h % 8 || a.k_stride_n % 8) return fail(ATTNC_ERR_ARGS, "k strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.v_stride_b < 0 || a.v_stride_h < 0 || a.v_stride_n < 0) return fail(ATTNC_ERR_ARGS, "v strides must be >= 0 (got v_stride_b = %lld, v_stride_h = %lld, v_stride_n = %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 1 && a.v_stride_n < 64) return fail(ATTNC_ERR_ARGS, "v_stride_n (%lld) is smaller than a row of v (%d elements): its rows would overlap", a.v_stride_n, 64);
  if (a.v_stride_b % 8 || a.v_stride_h % 8 || a.v_stride_n % 8) return fail(ATTNC_ERR_ARGS, "v strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 0 && a.block_table == NULL) return fail(ATTNC_ERR_ARGS, "block_table is NULL (a paged cache reads its keys through it)");
  if (a.Nk > 0 && (a.max_pages < 1 || (long long)a.max_pages * 16 < a.Nk)) return fail(ATTNC_ERR_ARGS, "the block table's max_pages = %d pages of 16 rows hold fewer than Nk = %d keys", a.max_pages, a.Nk);
  if ((uintptr_t)a.block_table % 4 != 0) return fail(ATTNC_ERR_ARGS, "block_table must be 4-byte aligned (got %p)", (const void*)a.block_table);
  if (a.q_stride_b < 0 || a.q_stride_h < 0 || a.q_stride_n < 0) return fail(ATTNC_ERR_ARGS, "q strides must be >= 0 (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.q_stride_b % 8 || a.q_stride_h % 8 || a.q_stride_n % 8) return fail(ATTNC_ERR_ARGS, "q strides must be multiples of 8 elements, the kernel's vector loads (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.out_stride_b < 0 || a.out_stride_h < 0 || a.out_stride_n < 0) return fail(ATTNC_ERR_ARGS, "out strides must be >= 0 (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (!attnc_paged_decode::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, 64)) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, 64] = [%d, %d, %d, 64])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);
  if (a.out_stride_b % 8 || a.out_stride_h % 8 || a.out_stride_n % 8) return fail(ATTNC_ERR_ARGS, "out strides must be multiples of 8 elements, the kernel's vector loads (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (attnc_paged_decode::dec::wanted(a)) return attnc_paged_decode::dec::launch(a, stream);
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_paged_decode::LOG2E;
  const size_t smem = 82944;
  {
    const cudaError_t e = cudaFuncSetAttribute(attnc_paged_decode::attnc_paged_decode_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));
  }
  const dim3 grid((a.Nq + 127) / 128, a.H, a.B);
  attnc_paged_decode::attnc_paged_decode_attention<<<grid, 256, smem, stream>>>(a, qscale);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}
