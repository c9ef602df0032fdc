// attnc kernel "kivi" for CUDA (sm_90a). Generated code: do not edit.
// build: nvcc -arch=sm_90a -std=c++17 --shared -Xcompiler -fPIC kivi.cu -o libkivi.so
// source e156899bbd1610c0, schedule 318f56d51a726150
//   score: score
//   mask:  (ge q k)
// schedule: blockQ=128 blockK=128 threads=384 D=64 Dv=64 bf16 summaryBlock=16 engine=wgmma-ws stages=2
// mapping: core=wgmma-ws instruction=wgmma.mma_async.m64nNk16.bf16 consumerWarpgroups=2 producerWarpgroups=1 rowsPerWarpgroup=64 stages=2 overlap=none pingpong=none loads=TMA (cp.async.bulk.tensor.3d) on mbarriers; the launcher builds the q/k/v tensor maps registers=setmaxnreg 40/232 swizzle=128B (64-wide panels) globalVectorElems=8
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

#ifndef ATTNC_KIVI_H
#define ATTNC_KIVI_H
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

/* Device pointers; q and out addressed by their *_stride_* fields (args_init: packed); quantized K/V packed as their fields say; q, k, v and out must be 32-byte aligned. */
/* Limits the launcher checks (ATTNC_ERR_ARGS past them), so that no 32-bit index overflows:
 *   1 <= B, H <= 65535, B * H <= 2^31 - 1, Hkv >= 1, H % Hkv == 0;
 *   0 <= Nq, Nk <= 2146435072 (2^31 - 2^20), and so are params that size a tensor;
 *   positions fit an int with 1024 to spare (the kernels compute positions of a tile's
 *   padding rows): q_offset + Nq - 1 and k_offset + Nk - 1 <= 2^31 - 1 - 1024;
 *   every q - k fits an int (masks compute it);
 *   scale and f32 params are finite;
 *   q, k, v, out 32-byte aligned; k_scale, k_zero, k_recent, v_scale, v_zero, v_recent 2-byte; lse 4-byte (when not NULL).
 * Element offsets are 64-bit. */
typedef struct AttncArgs_kivi {
  const void* q; /* [B, H, Nq, 64] bf16 at q_stride_* (args_init: packed; any layout with a contiguous last dim) */
  const void* k; /* [B, Hkv, Nk, 4] u32: int2 codes of a quantized cache */
  const void* v; /* [B, Hkv, Nk, 4] u32: int2 codes of a quantized cache */
  void* out; /* [B, H, Nq, 64] bf16, written at out_stride_* (args_init: packed) */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  const unsigned short* k_scale; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
  const unsigned short* k_zero; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
  const unsigned short* k_recent; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
  const unsigned short* v_scale; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
  const unsigned short* v_zero; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
  const unsigned short* v_recent; /* quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout) */
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
  int q_offset; /* position of query row 0 (args_init: Nk - Nq) */
  int k_offset; /* position of key row 0 (args_init: 0) */
  float scale; /* scores are scale * <q, k> (args_init: 1/sqrt(64)) */
} AttncArgs_kivi;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_kivi_args_init(AttncArgs_kivi* args, int B, int H, int Hkv, int Nq, int Nk);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_kivi_launch(const AttncArgs_kivi* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_kivi_last_error(void);
/* Staged prefill (quantPrefill staged): bytes of the workspace launch_staged needs for these sizes
 * (the dequantized K/V rows, [B, Hkv, Nk, W] of the storage type; 0 if args is NULL). */
size_t attnc_kivi_workspace_bytes(const AttncArgs_kivi* args);
/* As launch, with K/V dequantized once into `workspace` (16-byte aligned, at least
 * workspace_bytes(args) bytes, not read after the launch completes) before the attention.
 * Launches of at most one query tile run the fused path and do not touch the workspace. */
int attnc_kivi_launch_staged(const AttncArgs_kivi* args, void* workspace, size_t workspace_bytes, cudaStream_t stream);
/* The staged launch's first pass alone: the quantized K (then V) rows of args, dequantized into
 * workspace as [B, Hkv, Nk, W] of the storage type (a float K or V takes no room). */
int attnc_kivi_dequantize_kv(const AttncArgs_kivi* args, void* workspace, size_t workspace_bytes, cudaStream_t stream);

/* Fills the quantized key cache from bf16 rows (docs/LANGUAGE.md,
 * "Quantization"; which rows and scale groups a range rewrites: "Quantizing a range of rows").
 * Device pointers; the launcher sets its message in last_error on failure. */
typedef struct AttncQuantizeArgs_kivi_k {
  const void* x; /* bf16 [B, Hkv, Nk, 64]: the source rows (those the call reads) */
  unsigned int* codes; /* u32 [B, Hkv, Nk, 4] */
  void* scale; /* f16 docs/LANGUAGE.md, Layout */
  void* zero; /* f16 as scale */
  void* recent; /* f16 [B, Hkv, 128, 64] */
  int B, Hkv, Nk;
  int start, n; /* quantize the token rows [start, start + n) */
} AttncQuantizeArgs_kivi_k;
int attnc_kivi_quantize_k(const AttncQuantizeArgs_kivi_k* args, cudaStream_t stream);

/* Fills the quantized value cache from bf16 rows (docs/LANGUAGE.md,
 * "Quantization"; which rows and scale groups a range rewrites: "Quantizing a range of rows").
 * Device pointers; the launcher sets its message in last_error on failure. */
typedef struct AttncQuantizeArgs_kivi_v {
  const void* x; /* bf16 [B, Hkv, Nk, 64]: the source rows (those the call reads) */
  unsigned int* codes; /* u32 [B, Hkv, Nk, 4] */
  void* scale; /* f16 docs/LANGUAGE.md, Layout */
  void* zero; /* f16 as scale */
  void* recent; /* f16 [B, Hkv, 128, 64] */
  int B, Hkv, Nk;
  int start, n; /* quantize the token rows [start, start + n) */
} AttncQuantizeArgs_kivi_v;
int attnc_kivi_quantize_v(const AttncQuantizeArgs_kivi_v* args, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_KIVI_H */

namespace attnc_kivi {
using Args = ::AttncArgs_kivi;
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

// K/V rows of one (batch, kv head): rows rs elements apart (kv-rows.ts).
struct KvRows {
  const T* p;
  long long rs;
  __device__ __forceinline__ const T* row(long long j) const { return p + j * rs; }
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

constexpr int BQ = 128, BK = 128, STAGES = 2;
constexpr int CWARPS = 8, CTHREADS = CWARPS * 32, THREADS = CTHREADS + 128;
constexpr int NT = BK / 8; // key n-tiles of a warp's score block
static_assert(BQ == 16 * CWARPS && BQ % 64 == 0 && BK % 16 == 0 && BK <= 256, "wgmma-ws tiling");
static_assert((D == 64 || D == 128) && (DV == 64 || DV == 128), "wgmma-ws head dims");

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

// A CUtensorMap (cuda.h), by layout: 128 opaque bytes, 128-byte aligned.
struct alignas(128) TmaMap {
  unsigned long long w[16];
};

// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of slice c2 → dst, 128B-swizzled
// (the hardware's pattern is pswz's); rows past the tensor's end arrive as zeros. Completes on
// `bar` as transaction bytes (the whole box, zero-filled rows included).
__device__ __forceinline__ void tma_load(T* dst, const TmaMap& map, int c0, int c1, int c2, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
      : "memory");
}

// A [ROWS][W] tile as W/64 panels of [ROWS][64] (the layout desc128 addresses).
template <int W, int ROWS>
__device__ __forceinline__ void tma_panels(T* dst, const TmaMap& map, int row, int slice, uint64_t* bar) {
#pragma unroll
  for (int p = 0; p < W / 64; ++p) tma_load(dst + p * (ROWS * 64), map, p * 64, row, slice, bar);
}

// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of kv head c2 of batch c3 → dst
// (the K/V maps are 4-D: kv-load-tma.ts); completes on `bar` like tma_load.
__device__ __forceinline__ void tma_load4(T* dst, const TmaMap& map, int c0, int c1, int c2, int c3, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(bar))
      : "memory");
}

// A [ROWS][W] K/V tile (rows row.., kv head hkv, batch b) as W/64 panels of [ROWS][64].
template <int W, int ROWS>
__device__ __forceinline__ void tma_kv_panels(T* dst, const TmaMap& map, int row, int hkv, int b, uint64_t* bar) {
#pragma unroll
  for (int p = 0; p < W / 64; ++p) tma_load4(dst + p * (ROWS * 64), map, p * 64, row, hkv, b, bar);
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
// The producer arrives once per stage and announces the bytes its copies will complete.
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Waits until the barrier's phase of this parity has completed. The spin stays inside one asm
// block: a C++ loop around try_wait (e.g. with a timeout) kept ptxas from giving the consumers
// the registers setmaxnreg grants them (measured: 412 bytes of spills at 168 registers).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred p;\nWAIT_%=:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT_%=;\n}\n"
      ::"r"(smem_addr(bar)), "r"(parity)
      : "memory");
}
// Waits until at most N committed wgmma groups of this warpgroup are still running.
template <int N>
__device__ __forceinline__ void wg_wait() {
#if ATTNC_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Barrier 1 among the consumer threads alone (0 is __syncthreads, which the producer has left).
__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\n" ::"n"(CTHREADS) : "memory"); }

// Register reallocation between warpgroups (sm_90a; every warp of a warpgroup runs the same one).
template <int N>
__device__ __forceinline__ void regs_dec() {
#if ATTNC_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void regs_inc() {
#if ATTNC_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ float dq_bits(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
__device__ __forceinline__ float dq_half(const unsigned short* p, size_t i) {
  const unsigned b = p[i], s = (b & 0x8000u) << 16, e = (b >> 10) & 31u, m = b & 1023u;
  if (e == 0u) return (s ? -1.f : 1.f) * ((float)m * (1.f / 16777216.f)); // m · 2^-24, exact
  if (e == 31u) return dq_bits(s | 0x7f800000u | (m << 13));
  return dq_bits(s | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ float dq_bf16(const unsigned short* p, size_t i) { return dq_bits((unsigned)p[i] << 16); }
__device__ __forceinline__ float k_dequant(const Args& a, size_t row, int t, int c, size_t bh) {
  const int first = a.Nk - min(128, a.Nk); // the recent window's first token
  if (t >= first) return dq_half(a.k_recent, (bh * 128 + (t - first)) * D + c);
  float v;
  {
    const unsigned word = static_cast<const unsigned*>(a.k)[row * ((D + 15) / 16) + c / 16];
    const unsigned raw = (word >> ((c % 16) * 2)) & 3u;
    v = (float)raw;
  }
  const size_t g = (bh * (size_t)((a.Nk + 31) / 32) + t / 32) * D + c;
  v = v - dq_half(a.k_zero, g);
  v = v * dq_half(a.k_scale, g);
  return v;
}
__device__ __forceinline__ float v_dequant(const Args& a, size_t row, int t, int c, size_t bh) {
  const int first = a.Nk - min(128, a.Nk); // the recent window's first token
  if (t >= first) return dq_half(a.v_recent, (bh * 128 + (t - first)) * DV + c);
  float v;
  {
    const unsigned word = static_cast<const unsigned*>(a.v)[row * ((DV + 15) / 16) + c / 16];
    const unsigned raw = (word >> ((c % 16) * 2)) & 3u;
    v = (float)raw;
  }
  const size_t g = row * ((DV + 31) / 32) + c / 32;
  v = v - dq_half(a.v_zero, g);
  v = v * dq_half(a.v_scale, g);
  return v;
}
__device__ __forceinline__ void k_chunk8(const Args& a, const unsigned* wrow, size_t row, int t, int c0, size_t bh, float (&out)[8]) {
  if (t >= a.Nk - min(128, a.Nk)) { // recent or salient: element by element
  #pragma unroll
    for (int u = 0; u < 8; ++u) out[u] = k_dequant(a, row, t, c0 + u, bh);
    return;
  }
  const unsigned* wp = wrow + c0 / 16;
  unsigned w[1];
  #pragma unroll
  for (int i = 0; i < 1; ++i) w[i] = wp[i];
  w[0] >>= (c0 % 16) * 2;
  #pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = c0 + u;
    (void)c;
    const unsigned raw = (w[(u * 2) / 32] >> ((u * 2) % 32)) & 3u;
    float v;
    v = (float)raw;
    const size_t g = (bh * (size_t)((a.Nk + 31) / 32) + t / 32) * D + c;
    v = v - dq_half(a.k_zero, g);
    v = v * dq_half(a.k_scale, g);
    out[u] = v;
  }
}
__device__ __forceinline__ void v_chunk8(const Args& a, const unsigned* wrow, size_t row, int t, int c0, size_t bh, float (&out)[8]) {
  if (t >= a.Nk - min(128, a.Nk)) { // recent or salient: element by element
  #pragma unroll
    for (int u = 0; u < 8; ++u) out[u] = v_dequant(a, row, t, c0 + u, bh);
    return;
  }
  const unsigned* wp = wrow + c0 / 16;
  unsigned w[1];
  #pragma unroll
  for (int i = 0; i < 1; ++i) w[i] = wp[i];
  w[0] >>= (c0 % 16) * 2;
  #pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = c0 + u;
    (void)c;
    const unsigned raw = (w[(u * 2) / 32] >> ((u * 2) % 32)) & 3u;
    float v;
    v = (float)raw;
    const size_t g = row * ((DV + 31) / 32) + c / 32;
    v = v - dq_half(a.v_zero, g);
    v = v * dq_half(a.v_scale, g);
    out[u] = v;
  }
}
// Keys of one kv head of the quantized k cache, offset in elements as a `const T*` is.
struct DqRowsK {
  const Args* a;
  size_t bh;  // b * Hkv + hkv
  size_t off; // elements past key 0 of the head (token off / W, channel off % W)
  static constexpr int WPR = (D + 15) / 16; // code words per token
  __device__ __forceinline__ DqRowsK operator+(size_t n) const { return {a, bh, off + n}; }
  // Token t's code words in the cache.
  __device__ __forceinline__ const unsigned* codes_row(int t) const {
    return static_cast<const unsigned*>(a->k) + (bh * (size_t)a->Nk + t) * WPR;
  }
  // Channels c0 .. c0 + 7 of token t of the head, dequantized to f32; its code words at wrow.
  __device__ __forceinline__ void chunk8(int t, int c0, float (&v)[8], const unsigned* wrow) const {
    k_chunk8(*a, wrow, bh * (size_t)a->Nk + t, t, c0, bh, v);
  }
};
// Keys of one kv head of the quantized v cache, offset in elements as a `const T*` is.
struct DqRowsV {
  const Args* a;
  size_t bh;  // b * Hkv + hkv
  size_t off; // elements past key 0 of the head (token off / W, channel off % W)
  static constexpr int WPR = (DV + 15) / 16; // code words per token
  __device__ __forceinline__ DqRowsV operator+(size_t n) const { return {a, bh, off + n}; }
  // Token t's code words in the cache.
  __device__ __forceinline__ const unsigned* codes_row(int t) const {
    return static_cast<const unsigned*>(a->v) + (bh * (size_t)a->Nk + t) * WPR;
  }
  // Channels c0 .. c0 + 7 of token t of the head, dequantized to f32; its code words at wrow.
  __device__ __forceinline__ void chunk8(int t, int c0, float (&v)[8], const unsigned* wrow) const {
    v_chunk8(*a, wrow, bh * (size_t)a->Nk + t, t, c0, bh, v);
  }
};
// 8 dequantized values narrowed to T at dst: one 16-byte shared-memory store for 16-bit T.
__device__ __forceinline__ void dq_store8(T* dst, const float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    alignas(16) T x[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) x[u] = from_f32(v[u]);
    *reinterpret_cast<float4*>(dst) = *reinterpret_cast<const float4*>(x);
  } else {
#pragma unroll
    for (int u = 0; u < 8; ++u) dst[u] = from_f32(v[u]);
  }
}
// Rows of a quantized K/V head into load_panel's tile layout, dequantized and narrowed to T.
template <int W, int ROWS, int NTHR, class H>
__device__ __forceinline__ void load_panel_dq(T* dst, const H& src, size_t stride, int valid_rows, int tid, const unsigned* staged = nullptr) {
  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + NTHR - 1) / NTHR;
  // Two chunks in flight per thread: a full unroll would inline the dequantizer ITERS·8 times.
#pragma unroll 2
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * NTHR, r = idx / CH, c = idx % CH;
    if (TOTAL % NTHR == 0 || idx < TOTAL) {
      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (r < valid_rows) {
        const int t = (int)((src.off + (size_t)r * stride) / W);
        src.chunk8(t, c * 8, v, staged ? staged + (size_t)r * H::WPR : src.codes_row(t));
      }
      dq_store8(dst + pswz<ROWS>(r, c * 8), v);
    }
  }
}
// Rows first + step·r of a quantized head (kv_from, kv-rows.ts): the converter's element offsets.
struct DqRowsKFrom {
  DqRowsK h;
  long long first, step;
};
__device__ __forceinline__ DqRowsKFrom kv_from(const DqRowsK& h, long long first, long long step) { return DqRowsKFrom{h, first, step}; }
template <int W, int ROWS>
__device__ __forceinline__ void load_panel(T* dst, const DqRowsKFrom& src, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src.h + (size_t)src.first * W, (size_t)src.step * W, valid_rows, tid);
}
template <int W, int ROWS>
__device__ __forceinline__ void load_panel(T* dst, const DqRowsK& src, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src, W, valid_rows, tid);
}
template <int W, int ROWS>
__device__ __forceinline__ void load_panel_strided(T* dst, const DqRowsK& src, size_t stride, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src, stride, valid_rows, tid);
}
// Gathered rows: row r of the tile is key row_of(r) of the head (< 0: zeros).
template <int W, int ROWS, class RowOf>
__device__ __forceinline__ void load_panel_gather(T* dst, const DqRowsK& base, const RowOf& row_of, int tid) {
  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll 1
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;
    if (TOTAL % THREADS == 0 || idx < TOTAL) {
      const int key = row_of(r);
      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (key >= 0) base.chunk8(key, c * 8, v, base.codes_row(key));
      dq_store8(dst + pswz<ROWS>(r, c * 8), v);
    }
  }
}
// Rows first + step·r of a quantized head (kv_from, kv-rows.ts): the converter's element offsets.
struct DqRowsVFrom {
  DqRowsV h;
  long long first, step;
};
__device__ __forceinline__ DqRowsVFrom kv_from(const DqRowsV& h, long long first, long long step) { return DqRowsVFrom{h, first, step}; }
template <int W, int ROWS>
__device__ __forceinline__ void load_panel(T* dst, const DqRowsVFrom& src, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src.h + (size_t)src.first * W, (size_t)src.step * W, valid_rows, tid);
}
template <int W, int ROWS>
__device__ __forceinline__ void load_panel(T* dst, const DqRowsV& src, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src, W, valid_rows, tid);
}
template <int W, int ROWS>
__device__ __forceinline__ void load_panel_strided(T* dst, const DqRowsV& src, size_t stride, int valid_rows, int tid) {
  load_panel_dq<W, ROWS, THREADS>(dst, src, stride, valid_rows, tid);
}
// Gathered rows: row r of the tile is key row_of(r) of the head (< 0: zeros).
template <int W, int ROWS, class RowOf>
__device__ __forceinline__ void load_panel_gather(T* dst, const DqRowsV& base, const RowOf& row_of, int tid) {
  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll 1
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;
    if (TOTAL % THREADS == 0 || idx < TOTAL) {
      const int key = row_of(r);
      float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (key >= 0) base.chunk8(key, c * 8, v, base.codes_row(key));
      dq_store8(dst + pswz<ROWS>(r, c * 8), v);
    }
  }
}
// `rows` tokens' code words (WPR each, contiguous in the cache) → dst by the 128 producer threads.
template <int WPR>
__device__ __forceinline__ void stage_codes(unsigned* dst, const unsigned* src, int rows, int tid) {
  static_assert(WPR % 4 == 0, "a token's code words are whole 16-byte copies");
  for (int i = tid; i < rows * (WPR / 4); i += 128) cp_async16(dst + 4 * i, src + 4 * i, true);
}

// cuTensorMapEncodeTiled by its C ABI (cuda.h enums are ints); CUresult 0 is success.
typedef int (*EncodeTiledFn)(TmaMap*, int, unsigned, void*, const unsigned long long*, const unsigned long long*,
                             const unsigned*, const unsigned*, int, int, int, int);

[[maybe_unused]] static int encode_kv_panels(EncodeTiledFn fn, TmaMap* map, const void* base, int width, int rows, int heads,
                            int batches, long long sn, long long sh, long long sb, int box_rows) {
  const unsigned long long dims[4] = {(unsigned long long)width, (unsigned long long)rows, (unsigned long long)heads,
                                      (unsigned long long)batches};
  const unsigned long long strides[3] = {(unsigned long long)sn * sizeof(T), (unsigned long long)sh * sizeof(T),
                                         (unsigned long long)sb * sizeof(T)};
  const unsigned box[4] = {64u, (unsigned)box_rows, 1u, 1u};
  const unsigned elem_strides[4] = {1u, 1u, 1u, 1u};
  return fn(map, 9, 4, const_cast<void*>(base), dims, strides, box, elem_strides, 0,
            3 /* 128B swizzle */, 3 /* L2 256B promotion */, 0 /* zero fill */);
}

// maps[0..2] = Q, K, V. With Nk = 0 no K/V tile is ever loaded, so their maps stay zero.
static const char* make_tma_maps(const Args& a, TmaMap* maps) {
  static EncodeTiledFn encode = nullptr;
  if (encode == nullptr) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr)
      return "the driver has no cuTensorMapEncodeTiled (TMA needs CUDA 12 and sm_90)";
    encode = reinterpret_cast<EncodeTiledFn>(fn);
  }
  memset(maps, 0, 3 * sizeof(TmaMap));
  if (encode_kv_panels(encode, &maps[0], a.q, D, a.Nq, a.H, a.B, a.q_stride_n, a.q_stride_h, a.q_stride_b, BQ) != 0) return "cannot describe q to the TMA unit (its strides must be multiples of 16 bytes)";
  if (a.Nk == 0) return nullptr;
  return nullptr;
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attnc_kivi_attention(const Args a, const float qscale,
    const __grid_constant__ TmaMap tmq, const __grid_constant__ TmaMap tmk, const __grid_constant__ TmaMap tmv) {
#if !ATTNC_SM90A
  __trap(); // the compute_90 PTX image: no wgmma there
#endif
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // TMA writes and wgmma reads 128B-swizzled tiles: each starts on a 1024-byte boundary.
  T* Qs = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));
  T* Ks = Qs + BQ * D;              // [STAGES][BK][D], 64-wide panels
  T* Vs = Ks + STAGES * BK * D;     // [STAGES][BK][DV], 64-wide panels
  uint64_t* full_bar = reinterpret_cast<uint64_t*>(Vs + STAGES * BK * DV); // tile landed
  uint64_t* empty_bar = full_bar + STAGES; // every consumer warp is done with the buffer
  uint64_t* qbar = empty_bar + STAGES;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);
  // Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start
  // early and the short ones fill the tail of the grid.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;
  const int nkt = (a.Nk + BK - 1) / BK;
  (void)Qs; (void)Ks; (void)Vs; (void)lane; (void)g; (void)t4; (void)hkv; (void)nkt; (void)tmq; (void)tmk; (void)tmv;
  const int q_lo = a.q_offset + q0;
  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;
  if (tid == 0) {
#pragma unroll
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(&full_bar[i], 1);
      mbar_init(&empty_bar[i], CWARPS);
    }
    mbar_init(qbar, 1);
    // Visible to the other threads (the barrier below) and to the TMA unit (async proxy).
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    proxy_fence();
  }
  __syncthreads(); // the last CTA-wide barrier: the roles part here
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
  if (warp >= CWARPS) {
    regs_dec<40>();
    const int ptid = tid - CTHREADS;
    const DqRowsK kq{&a, (size_t)(b * a.Hkv + hkv), 0};
    const DqRowsV vq{&a, (size_t)(b * a.Hkv + hkv), 0};
    constexpr int CSLOT = BK * (DqRowsK::WPR + DqRowsV::WPR); // words of a staging slot
    // Two staging slots after the mbarriers, 16-byte aligned, then the per-token scales (wsStagingBytes).
    unsigned* Cs = reinterpret_cast<unsigned*>((reinterpret_cast<size_t>(qbar + 1) + 15) & ~(size_t)15);
    constexpr int SCALE_REGS = (BK + 127) / 128;
    // Tile n's code words into slot `slot` (one cp.async group), its scales into registers.
    auto stage = [&](const int n, const int slot) {
      const int rows = min(BK, a.Nk - n * BK);
      stage_codes<DqRowsK::WPR>(Cs + slot * CSLOT + 0, kq.codes_row(n * BK), rows, ptid);
      stage_codes<DqRowsV::WPR>(Cs + slot * CSLOT + BK * DqRowsK::WPR, vq.codes_row(n * BK), rows, ptid);
      cp_commit();
    };
    auto put_scales = [&]() {
#pragma unroll
      for (int j = 0; j < SCALE_REGS; ++j) {
        const int r = ptid + 128 * j;
        if (r < BK) {
        }
      }
    };
    int st = 0, slot = 0;
    bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes
    unsigned ph = 0;
    if (ptid == 0) {
      mbar_expect_tx(qbar, BQ * D * (int)sizeof(T));
      tma_kv_panels<D, BQ>(Qs, tmq, q0, h, b, qbar);
    }
    bool kt_full, nx_full;
    int kt = next_tile(0, kt_full);
    if (kt < nkt) {
      stage(kt, 0);
      put_scales();
    }
    while (kt < nkt) {
      const int rows = min(BK, a.Nk - kt * BK);
      const int nx = next_tile(kt + 1, nx_full);
      // The next tile's codes in flight while this one converts.
      if (nx < nkt) {
        stage(nx, slot ^ 1);
        cp_wait<1>();
      } else {
        cp_wait<0>();
      }
      asm volatile("bar.sync 4, 128;\n" ::: "memory"); // tile kt's codes and scales are in shared memory
      if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);
      load_panel_dq<D, BK, 128>(Ks + st * (BK * D), kq + (size_t)kt * BK * D, D, rows, ptid, Cs + slot * CSLOT + 0);
      load_panel_dq<DV, BK, 128>(Vs + st * (BK * DV), vq + (size_t)kt * BK * DV, DV, rows, ptid, Cs + slot * CSLOT + BK * DqRowsK::WPR);
      // Generic-proxy stores, read by wgmma (async proxy): fence, then one arrival for all 128;
      // the barrier also ends every read of this slot and of the scales before they are rewritten.
      proxy_fence();
      asm volatile("bar.sync 4, 128;\n" ::: "memory");
      if (ptid == 0) {
        mbar_arrive(&full_bar[st]);
      }
      if (nx < nkt) put_scales();
      slot ^= 1;
      if (++st == STAGES) {
        st = 0;
        ph ^= 1u;
        wrapped = true;
      }
      kt = nx;
    }
    (void)kt_full;
    (void)nx_full;
  } else {
    regs_inc<232>();
    // This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.
    const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};
    (void)qpos_r;
    float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    // This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.
    const T* Qw = Qs + (warp / 4) * 64 * 64;
    // Only MASKED tiles (partial, or past Nk) test per element.
    auto tile = [&](auto masked, const int kt, const int st) {
      constexpr bool MASKED = decltype(masked)::value;
      const T* Kb = Ks + st * (BK * D);
      const T* Vb = Vs + st * (BK * DV);
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
      // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major.
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
    mbar_wait(qbar, 0);
    int st = 0;
    unsigned ph = 0;
    bool kt_full, nk_full;
    int kt = next_tile(0, kt_full);
    while (kt < nkt) {
      // Classify the next tile while this one is (or is still being) copied in.
      const int nk = next_tile(kt + 1, nk_full);
      mbar_wait(&full_bar[st], ph);
      const bool tail = (kt + 1) * BK > a.Nk;
      if (tail || !kt_full) tile(Flag<true>{}, kt, st);
      else tile(Flag<false>{}, kt, st); // full tile: no predicate
      // This warp's wgmmas have read the buffer (wait_group 0): hand it back to the producer.
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty_bar[st]);
      if (++st == STAGES) {
        st = 0;
        ph ^= 1u;
      }
      kt = nk;
      kt_full = nk_full;
    }
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
}
} // namespace attnc_kivi

// ---- host code: argument checks and launches ----
namespace attnc_kivi {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_kivi: ");
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
[[maybe_unused]] static bool kv_strides_ok(const Args& a, long long elems) { return a.q_stride_b % elems == 0 && a.q_stride_h % elems == 0 && a.q_stride_n % elems == 0 && a.out_stride_b % elems == 0 && a.out_stride_h % elems == 0 && a.out_stride_n % elems == 0; }
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
} // namespace attnc_kivi

namespace attnc_kivi {
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
#define ATTNC_DEC_STAGES 8
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
// Quantized K/V chunks (decode-quant.ts): VW channels of a row as f32, dequantized.
__device__ __forceinline__ float dq_bits(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
__device__ __forceinline__ float dq_half(const unsigned short* p, size_t i) {
  const unsigned b = p[i], s = (b & 0x8000u) << 16, e = (b >> 10) & 31u, m = b & 1023u;
  if (e == 0u) return (s ? -1.f : 1.f) * ((float)m * (1.f / 16777216.f)); // m · 2^-24, exact
  if (e == 31u) return dq_bits(s | 0x7f800000u | (m << 13));
  return dq_bits(s | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ float dq_bf16(const unsigned short* p, size_t i) { return dq_bits((unsigned)p[i] << 16); }
__device__ __forceinline__ float dec_half(const unsigned short* p, size_t i) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(__ldg(p + i)));
#else
  return dq_half(p, i);
#endif
}
// N (a multiple of 8) f16 side values from p + g0 (16-byte aligned) in 16-byte loads, as bits.
template <int N>
__device__ __forceinline__ void dec_halves(const unsigned short* p, size_t g0, unsigned short (&h)[N]) {
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
#ifdef __CUDA_ARCH__
    const uint4 w = __ldg(reinterpret_cast<const uint4*>(p + g0) + j);
    memcpy(&h[8 * j], &w, 16);
#else
    memcpy(&h[8 * j], p + g0 + 8 * j, 16);
#endif
  }
}
__device__ __forceinline__ float dec_half_bits(unsigned short h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  return dq_half(&h, 0);
#endif
}
struct FChunk { float v[VW]; };
template <int N> struct alignas(4 * N) Words { unsigned w[N]; };
__device__ __forceinline__ FChunk k_chunk(const Args& a, [[maybe_unused]] size_t row, [[maybe_unused]] int t, int col0, [[maybe_unused]] size_t bh, const unsigned* sw) {
  FChunk o;
  const int first = a.Nk - min(128, a.Nk); // the recent window's first token
  if (t >= first) {
  #pragma unroll
    for (int i = 0; i < VW; ++i) {
      const int c = col0 + i;
      o.v[i] = dec_half(a.k_recent, (bh * 128 + (t - first)) * D + c);
    }
    return o;
  }
  float code[VW]; // the codes as floats, before zero point and scale
  {
    const unsigned* wp = sw + col0 / 16;
    const Words<1> wd = *reinterpret_cast<const Words<1>*>(wp);
    const int s0 = col0 % 16;
  #pragma unroll
    for (int i = 0; i < VW; ++i) {
      const unsigned raw = (wd.w[i / 16] >> (((s0 + i) % 16) * 2)) & 3u;
      #ifdef __CUDA_ARCH__
      code[i] = __uint_as_float(0x4B000000u | raw) - 8388608.0f;
      #else
      code[i] = (float)raw;
      #endif
    }
  }
  if (ATTNC_DEC_VSIDES && (((size_t)a.k_scale | (size_t)a.k_zero) & 15u) == 0) {
    unsigned short sh[VW], zh[VW];
    {
      [[maybe_unused]] const int c = col0;
      const size_t g0 = (bh * (size_t)((a.Nk + 31) / 32) + t / 32) * D + c;
      dec_halves<VW>(a.k_scale, g0, sh);
      dec_halves<VW>(a.k_zero, g0, zh);
    }
    #pragma unroll
    for (int i = 0; i < VW; ++i) {
      [[maybe_unused]] const int c = col0 + i;
      float v = code[i];
      v = v - dec_half_bits(zh[i]);
      v = v * dec_half_bits(sh[i]);
      o.v[i] = v;
    }
    return o;
  }
  #pragma unroll
  for (int i = 0; i < VW; ++i) {
    [[maybe_unused]] const int c = col0 + i;
    float v = code[i];
    const size_t g = (bh * (size_t)((a.Nk + 31) / 32) + t / 32) * D + c;
    v = v - dec_half(a.k_zero, g);
    v = v * dec_half(a.k_scale, g);
    o.v[i] = v;
  }
  return o;
}
__device__ __forceinline__ FChunk v_chunk(const Args& a, [[maybe_unused]] size_t row, [[maybe_unused]] int t, int col0, [[maybe_unused]] size_t bh, const unsigned* sw) {
  FChunk o;
  const int first = a.Nk - min(128, a.Nk); // the recent window's first token
  if (t >= first) {
  #pragma unroll
    for (int i = 0; i < VW; ++i) {
      const int c = col0 + i;
      o.v[i] = dec_half(a.v_recent, (bh * 128 + (t - first)) * DV + c);
    }
    return o;
  }
  float code[VW]; // the codes as floats, before zero point and scale
  {
    const unsigned* wp = sw + col0 / 16;
    const Words<1> wd = *reinterpret_cast<const Words<1>*>(wp);
    const int s0 = col0 % 16;
  #pragma unroll
    for (int i = 0; i < VW; ++i) {
      const unsigned raw = (wd.w[i / 16] >> (((s0 + i) % 16) * 2)) & 3u;
      #ifdef __CUDA_ARCH__
      code[i] = __uint_as_float(0x4B000000u | raw) - 8388608.0f;
      #else
      code[i] = (float)raw;
      #endif
    }
  }
  #pragma unroll
  for (int i = 0; i < VW; ++i) {
    [[maybe_unused]] const int c = col0 + i;
    float v = code[i];
    const size_t g = row * ((DV + 31) / 32) + c / 32;
    v = v - dec_half(a.v_zero, g);
    v = v * dec_half(a.v_scale, g);
    o.v[i] = v;
  }
  return o;
}
constexpr int STAGES = ATTNC_DEC_STAGES;
constexpr int K_ROW = 16, V_ROW = 16; // stream bytes per key
constexpr size_t SPLIT_SMEM = (size_t)STAGES * TILE * (K_ROW + V_ROW); // dynamic, per block
// The combine's static arrays (decode.ts); a block may have 227 KiB at most (sm_90), fewer on
// smaller parts (the launcher checks the device and asks for the dynamic share).
constexpr size_t SPLIT_STATIC_SMEM = sizeof(float) * ((size_t)GROUPS * MT + 2 * MT + (size_t)MT * DV);
static_assert(SPLIT_SMEM + SPLIT_STATIC_SMEM <= 227 * 1024, "decode stream: ATTNC_DEC_STAGES x ATTNC_DEC_GROUPS x ATTNC_DEC_KPG keys need more than 227 KiB of shared memory per block: fewer stages or keys per tile");
// Packed code rows of one cache head, ROW bytes apart.
struct CodeRows {
  const unsigned char* p;
  long long rs;
  __device__ __forceinline__ const unsigned char* row(long long j) const { return p + j * rs; }
};
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
__device__ __forceinline__ void fetch_k(const CodeRows& kg, unsigned char* dst, int t0, int t1) {
  constexpr int U = 16, C = K_ROW / U;
#pragma unroll
  for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
    const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
    const bool ok = kj < t1;
    if (i < TILE * C) dec_cp<U>(dst + j * K_ROW + c * U, kg.row(ok ? kj : t0) + c * U, ok);
  }
}
__device__ __forceinline__ void fetch_v(const CodeRows& vg, unsigned char* dst, int t0, int t1) {
  constexpr int U = 16, C = V_ROW / U;
#pragma unroll
  for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
    const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
    const bool ok = kj < t1;
    if (i < TILE * C) dec_cp<U>(dst + j * V_ROW + c * U, vg.row(ok ? kj : t0) + c * U, ok);
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
  // A quantized cache addresses its codes by global row (packed layout: decode-quant.ts).
  const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk;
  [[maybe_unused]] const size_t bh = (size_t)b * a.Hkv + hk; // a cache head
  const CodeRows kg{static_cast<const unsigned char*>(a.k) + kv0 * K_ROW, K_ROW};
  const CodeRows vg{static_cast<const unsigned char*>(a.v) + kv0 * V_ROW, V_ROW};
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
#pragma unroll
    for (int i = 0; i < KPG; ++i) {
      const int kj = t0 + g + GROUPS * i;
      const bool valid = kj < t1;
      FChunk kx[CD];
#pragma unroll
      for (int c = 0; c < CD; ++c)
        kx[c] = valid ? k_chunk(a, kv0 + kj, kj, (lane + 8 * c) * VW, bh, reinterpret_cast<const unsigned*>(kt + (kj - t0) * K_ROW)) : FChunk{};
      [[maybe_unused]] const int kpos = kj + a.k_offset;
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        float dot = 0.f;
#pragma unroll
        for (int c = 0; c < CD; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) dot = fmaf(to_f32(qx[r][c].v[e]), kx[c].v[e], dot);
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
    FChunk vx[KPG][CV];
#pragma unroll
    for (int i = 0; i < KPG; ++i) {
      const int kj = t0 + g + GROUPS * i;
#pragma unroll
      for (int c = 0; c < CV; ++c)
        vx[i][c] = kj < t1 ? v_chunk(a, kv0 + kj, kj, (lane + 8 * c) * VW, bh, reinterpret_cast<const unsigned*>(vt + (kj - t0) * V_ROW)) : FChunk{};
#pragma unroll
      for (int r = 0; r < MT; ++r) {
        // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN (NaN - m, inf - inf), which
        // makes l NaN: the row comes out NaN (docs/LANGUAGE.md "Non-finite values").
        const float p = sc[i][r] == -INFINITY ? 0.f : exp2f(sc[i][r] - m[r]);
        l[r] += p;
#pragma unroll
        for (int c = 0; c < CV; ++c)
#pragma unroll
          for (int e = 0; e < VW; ++e) acc[r][c][e] = fmaf(p, vx[i][c].v[e], acc[r][c][e]);
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
#ifndef ATTNC_DEC_MMA_KM
#define ATTNC_DEC_MMA_KM 1 // 1: the key-major kernel, 0: the query-major one (decode-mma-km.ts)
#endif
#ifndef ATTNC_DEC_MMA_KIVI
#define ATTNC_DEC_MMA_KIVI 1 // 0: KIVI caches on the SIMT kernel (decode-mma-kivi.ts)
#endif
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
#ifndef ATTNC_DEC_MMA_QWARPS
#define ATTNC_DEC_MMA_QWARPS (ATTNC_DEC_MMA_KM ? 4 : ATTNC_DEC_MMA_WARPS)
#endif
#ifndef ATTNC_DEC_MMA_QKEYS
#define ATTNC_DEC_MMA_QKEYS 32
#endif
#ifndef ATTNC_DEC_MMA_QSTAGES
#define ATTNC_DEC_MMA_QSTAGES ATTNC_DEC_MMA_STAGES
#endif
#ifndef ATTNC_DEC_MMA_QMIN_BLOCKS
#define ATTNC_DEC_MMA_QMIN_BLOCKS (ATTNC_DEC_MMA_KM ? 3 : ATTNC_DEC_MMA_MIN_BLOCKS)
#endif
static_assert(ATTNC_DEC_MMA_QWARPS >= 1 && ATTNC_DEC_MMA_QWARPS <= 16 && ATTNC_DEC_MMA_QSTAGES >= 2, "ATTNC_DEC_MMA_QWARPS: 1..16; QSTAGES: 2 or more");
static_assert(ATTNC_DEC_MMA_QKEYS >= 16 && ATTNC_DEC_MMA_QKEYS % 16 == 0, "ATTNC_DEC_MMA_QKEYS: a multiple of 16");
static_assert(ATTNC_DEC_MMA_QMIN_BLOCKS >= 1, "ATTNC_DEC_MMA_QMIN_BLOCKS: 1 or more");
// 1: a thread copies its code rows from one pointer at constant offsets; 0: the general index
// form (decode-mma-qtile.ts quantFetch). H200 call 67: KIVI 18% faster with it (and 16-byte
// scale copies), int8 / e4m3 4-8% slower: 1 for sub-byte codes (KIVI, per-token int4 / int2) only.
#ifndef ATTNC_DEC_MMA_FETCH_RUNS
#define ATTNC_DEC_MMA_FETCH_RUNS 1
#endif
#ifndef ATTNC_DEC_MMA_LEAN
#define ATTNC_DEC_MMA_LEAN 3 // bits: 1 rescale on a max rise only, 2 skip padding rows 8..15 (decode-mma-lean.ts)
#endif
static_assert(ATTNC_DEC_MMA_LEAN >= 0 && ATTNC_DEC_MMA_LEAN <= 3, "ATTNC_DEC_MMA_LEAN: bits 1, 2");
constexpr int MMA_ROWS = (ATTNC_DEC_MMA_KM ? 8 : 16), MMA_WARPS = ATTNC_DEC_MMA_QWARPS, MMA_KEYS = ATTNC_DEC_MMA_QKEYS;
constexpr int MMA_THREADS = 32 * MMA_WARPS, MMA_TILE = MMA_WARPS * MMA_KEYS, MMA_STAGES = ATTNC_DEC_MMA_QSTAGES;
constexpr int KBITS = 2, VBITS = 2, RECENT = 128;
constexpr int KCPW = 32 / KBITS, KPPW = KCPW / 2, VCPW = 32 / VBITS; // codes / pairs a word
constexpr int KB = D * KBITS / 8, VB = DV * VBITS / 8, KPB = KB + 16, VPB = VB + 16; // row bytes, pitches
constexpr int KWL = D / (4 * KCPW); // K words a lane reads of a key row
constexpr int KG = (MMA_TILE + 30) / 32 + 1, KGW = KG * D / 2; // K groups a tile touches; their words
constexpr int VG = DV / 32, VGW = MMA_TILE * VG / 2; // V groups a key; words a tile
static_assert(KB % 16 == 0 && VB % 16 == 0 && D % (4 * KCPW) == 0 && DV % 64 == 0 && VG <= 8, "KIVI tiles");
constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * (MMA_TILE * (KPB + VPB) + 4 * (2 * KGW + 2 * VGW));
constexpr size_t MMA_COMBINE = sizeof(float) * (size_t)MMA_WARPS * MMA_ROWS * (DV + 2);
constexpr size_t MMA_SMEM = MMA_STREAM > MMA_COMBINE ? MMA_STREAM : MMA_COMBINE; // dynamic, per block
static_assert(MMA_SMEM <= 227 * 1024, "decode mma: ATTNC_DEC_MMA_STAGES x WARPS x KEYS keys need more than 227 KiB of shared memory per block");
#if defined(__CUDACC__) || defined(ATTNC_EMU_DECODE_MMA) // plain emulator builds skip it
// ---- KIVI K/V in the tensor-core kernel: codegen/cuda/decode-mma-kivi.ts ----
// Round to nearest even f32 pair → f16 pair (lo, hi).
__device__ __forceinline__ unsigned dm_h2(float lo, float hi) {
#ifdef __CUDA_ARCH__
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
#else
  auto h = [](float f) -> unsigned {
    unsigned u; memcpy(&u, &f, 4);
    const unsigned s = (u >> 16) & 0x8000u, e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
    if (e == 0xffu) return s | 0x7c00u | (m ? 0x200u : 0u);
    const int ex = (int)e - 127 + 15;
    if (ex >= 31) return s | 0x7c00u;
    if (ex <= 0) { // subnormal or zero: round m·2^(e) to a multiple of 2^-24
      if (ex < -10) return s;
      const unsigned mm = m | 0x800000u, sh = (unsigned)(14 - ex), r = mm >> sh, rem = mm & ((1u << sh) - 1u), half = 1u << (sh - 1);
      return s | (r + (rem > half || (rem == half && (r & 1u))));
    }
    const unsigned r = ((unsigned)ex << 10) | (m >> 13), rem = m & 0x1fffu;
    return s | (r + (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))); // a carry into the exponent is right
  };
  return h(lo) | (h(hi) << 16);
#endif
}
#ifndef __CUDA_ARCH__
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
  return r;
}
#endif
// f16 bits of an integer n < 2048, exactly (host build: no f16 arithmetic there).
__device__ __forceinline__ unsigned dmq_small_f16(unsigned n) {
  if (n == 0u) return 0u;
  unsigned e = 0u;
  while ((n >> (e + 1u)) != 0u) ++e;
  return ((e + 15u) << 10) | ((n << (10u - e)) & 0x3ffu);
}
// Halves of x, each 0x6400 | code, to the f16 pair (code lo, code hi).
__device__ __forceinline__ unsigned dmq_magic(unsigned x) {
#ifdef __CUDA_ARCH__
  const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&x), __halves2half2(__ushort_as_half(0x6400), __ushort_as_half(0x6400)));
  return *reinterpret_cast<const unsigned*>(&r);
#else
  return dmq_small_f16(x & 0x3ffu) | (dmq_small_f16((x >> 16) & 0x3ffu) << 16);
#endif
}
// The field of `bits` bits at bit o (o + bits <= 16) of both halves of w → f16 pair, exactly: masked
// in place at bit o % 8 (of w >> 8 from bit 8), then one hsub2 (see above). sgn: the field holds
// two's complement codes; its sign bit is flipped in the same lop3 (code + 2^(bits - 1), unsigned) and
// taken off with h: c = 2^(10 - r) + 2^(bits - 1). o, bits, sgn: constants after unrolling.
__device__ __forceinline__ unsigned dmq_field(unsigned w, int bits, int o, bool sgn = false) {
#ifdef __CUDA_ARCH__
  const int r = o & 7;
  const unsigned m = ((1u << bits) - 1u) << r, h = ((unsigned)(25 - r) << 10) * 0x10001u; // h: 2^(10 - r) a half
  const unsigned s = sgn ? ((1u << (bits - 1)) << r) * 0x10001u : 0u, c = h | s;
  const unsigned x = (((o >= 8 ? w >> 8 : w) & (m * 0x10001u)) ^ s) | h;
  const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&x), *reinterpret_cast<const __half2*>(&c));
  return *reinterpret_cast<const unsigned*>(&v);
#else
  auto f16 = [&](unsigned u) {
    const int v = sgn ? (int)(u << (32 - bits)) >> (32 - bits) : (int)u;
    return v < 0 ? 0x8000u | dmq_small_f16((unsigned)-v) : dmq_small_f16((unsigned)v);
  };
  const unsigned m = (1u << bits) - 1u;
  return f16((w >> o) & m) | (f16((w >> (16 + o)) & m) << 16);
#endif
}
// int2: K pair (i, i + 8) of a word; V code c of keys a, b.
__device__ __forceinline__ unsigned dmq_u2k(unsigned w, int i) { return dmq_field(w, 2, 2 * i); }
__device__ __forceinline__ unsigned dmq_u2v(unsigned wa, unsigned wb, int c) {
  const unsigned lo = (wa >> (2 * c)) & 3u, hi = (wb >> (2 * c)) & 3u;
  return dmq_magic(lo | (hi << 16) | 0x64006400u);
}
__device__ __forceinline__ unsigned dk_kpair(unsigned w, int i) { return dmq_u2k(w, i); }
// Code nq of both halves of t (two keys) → f16 pair (4 codes × VBITS ≤ 16 bits a half).
__device__ __forceinline__ unsigned dk_vcode(unsigned t, int nq) { return dmq_field(t, VBITS, VBITS * nq); }
// Channel of lane t's K pair (k-step ks, register h): the first of (c, c + KPPW).
__device__ __forceinline__ int dk_chan(int ks, int h) {
  const int p = 2 * ks + h;
  return KCPW * ((int)(threadIdx.x & 3) * KWL + p / KPPW) + p % KPPW;
}
// Key of S tile j, column parity e of the lane, among its warp's keys (as decode-mma-quant.ts).
__device__ __forceinline__ int dmq_key(int j, int e) { return 16 * (j >> 1) + (int)(threadIdx.x & 3) + 4 * (2 * (j & 1) + e); }
__device__ __forceinline__ float dk_lo(unsigned h) { return dec_half_bits((unsigned short)(h & 0xffffu)); }
__device__ __forceinline__ float dk_hi(unsigned h) { return dec_half_bits((unsigned short)(h >> 16)); }
// f16 pair product, rounded once (host: the exact f32 product of two f16, rounded to f16).
__device__ __forceinline__ unsigned dk_hmul2(unsigned a, unsigned b) {
#ifdef __CUDA_ARCH__
  const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const unsigned*>(&r);
#else
  return dm_h2(dk_lo(a) * dk_lo(b), dk_hi(a) * dk_hi(b));
#endif
}
// f16 bits of 2^a, -24 <= a <= 15.
__device__ __forceinline__ unsigned dk_pow2h(int a) { return a >= -14 ? (unsigned)(a + 15) << 10 : 1u << (a + 24); }
// Halves (c, c + KPPW) of pair p from the lane's words w of f16 per channel (dk_chan's order);
// w in registers, or volatile shared memory read at each use (decode-mma-kivi-km-step.ts).
template <class W>
__device__ __forceinline__ unsigned dk_pair(W* w, int p) {
  const int b = (KCPW / 2) * (p / KPPW) + (p % KPPW) / 2;
  return __byte_perm(w[b], w[b + KPPW / 2], (p & 1) ? 0x7632u : 0x5410u);
}
// Per 16-bit half unsigned max.
__device__ __forceinline__ unsigned dk_vmax2(unsigned a, unsigned b) {
#ifdef __CUDA_ARCH__
  return __vmaxu2(a, b);
#else
  const unsigned lo = (a & 0xffffu) > (b & 0xffffu) ? a & 0xffffu : b & 0xffffu;
  return lo | ((a >> 16) > (b >> 16) ? a >> 16 : b >> 16) << 16;
#endif
}
__device__ __forceinline__ void dm_mma_h(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#ifdef __CUDA_ARCH__
typedef uint4 DmW4; // 16-byte shared-memory reads
#else
struct alignas(16) DmW4 { unsigned x, y, z, w; };
#endif
template <int ROWB, int PITCH>
__device__ __forceinline__ void dm_fetch_codes(const unsigned char* src, unsigned char* dst, int t0, int t1) {
  constexpr int C = ROWB / 16, N = (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS;
  if constexpr (ATTNC_DEC_MMA_FETCH_RUNS && MMA_THREADS % C == 0) {
    constexpr int R = MMA_THREADS / C; // rows a pass
    const int j0 = threadIdx.x / C, c = threadIdx.x % C;
    const unsigned char* first = src + (size_t)t0 * ROWB + c * 16; // the tile's first row: rows past t1 name it
    const unsigned char* s = first + (size_t)j0 * ROWB;
    unsigned char* d = dst + j0 * PITCH + c * 16;
    const int left = t1 - t0 - j0; // valid rows from the thread’s first
#pragma unroll
    for (int n = 0; n < N; ++n)
      if (MMA_TILE % R == 0 || n * R + j0 < MMA_TILE) {
        const bool ok = n * R < left;
        dec_cp<16>(d + n * R * PITCH, ok ? s + (size_t)n * R * ROWB : first, ok);
      }
  } else {
#pragma unroll
    for (int n = 0; n < N; ++n) {
      const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;
      const bool ok = kj < t1;
      if (i < MMA_TILE * C) dec_cp<16>(dst + j * PITCH + c * 16, src + (size_t)(ok ? kj : t0) * ROWB + c * 16, ok);
    }
  }
}
// n (0..N) bytes global -> shared, the rest of the N zero (src read only when n > 0); N 4 or 16.
template <int N>
__device__ __forceinline__ void dm_cpn(unsigned* dst, const unsigned short* src, int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  if constexpr (N == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(n) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(N), "r"(n) : "memory");
#else
  memset(dst, 0, N);
  if (n) memcpy(dst, src, (size_t)n);
#endif
}
// f16 values src[first .. first + n) into W words of dst, zero past n, published by the barrier
// before the tile: 16-byte cp.async where src + first and dst are 16-byte aligned (the K windows
// always, the V windows from an even token: 4 a thread at most where 4-byte copies took 9),
// else 4-byte ones where 4-byte aligned, else plain copies. The tests are the same for the block.
__device__ __forceinline__ void dk_fetch_halves(const unsigned short* src, unsigned* dst, size_t first, int n, int W) {
  const unsigned short* s = src + first;
  if ((((size_t)s | (size_t)dst) & 15u) == 0 && W % 4 == 0) {
    for (int i = threadIdx.x; i < W / 4; i += MMA_THREADS) {
      const int nb = min(max(2 * (n - 8 * i), 0), 16);
      dm_cpn<16>(dst + 4 * i, nb ? s + 8 * i : s, nb);
    }
    return;
  }
  const bool aligned = ((size_t)s & 3u) == 0;
  for (int i = threadIdx.x; i < W; i += MMA_THREADS) {
    const int h = 2 * i, nb = h >= n ? 0 : h + 1 >= n ? 2 : 4;
    if (aligned) dm_cpn<4>(dst + i, s + (nb ? h : 0), nb);
    else dst[i] = (nb ? (unsigned)s[h] : 0u) | (nb == 4 ? (unsigned)s[h + 1] << 16 : 0u);
  }
}
template <int N> struct DmHalves { static constexpr int value = N; };
__device__ __forceinline__ bool dm_any(bool p) {
#ifdef __CUDACC__
  return __any_sync(0xffffffffu, p);
#else // the CPU emulator has shuffles, not votes
  int x = p;
  for (int d = 1; d < 32; d <<= 1) x |= __shfl_xor_sync(0xffffffffu, x, d);
  return x != 0;
#endif
}
#if ATTNC_DEC_MMA_KM
// The 8×8 16-bit matrix whose row r0, columns 2t, 2t + 1 lane 4 r0 + t holds, transposed: the lane
// gets row r0 of the transpose (elements (2t, r0), (2t + 1, r0) of the input).
__device__ __forceinline__ unsigned dm_movt(unsigned x) {
#ifdef __CUDA_ARCH__
  unsigned y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
#else
  const int l = (int)(threadIdx.x & 31), g = l >> 2, t = l & 3, sh = 16 * (g & 1);
  const unsigned lo = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + g / 2));
  const unsigned hi = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + 4 + g / 2));
  return ((lo >> sh) & 0xffffu) | ((hi >> sh) & 0xffffu) << 16;
#endif
}
__device__ __forceinline__ float dm_shfl_from(float v, int src) {
#ifdef __CUDA_ARCH__
  return __shfl_sync(0xffffffffu, v, src);
#else
  return __shfl_xor_sync(0xffffffffu, v, (int)(threadIdx.x & 31) ^ src);
#endif
}
// Under a register cap for two blocks an SM (QMIN_BLOCKS 2 or more) the K group's scale and zero
// words stay in shared memory, read at each use (volatile: nvcc would keep all 32 in registers;
// 128 registers then spill 8 bytes where holding them spilt 148); else they are held.
constexpr bool KM_HELD = ATTNC_DEC_MMA_QMIN_BLOCKS < 2; // dk_pair takes either
#endif

#if ATTNC_DEC_MMA_KM
__global__ void __launch_bounds__(MMA_THREADS, ATTNC_DEC_MMA_QMIN_BLOCKS) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  constexpr int KMT = MMA_KEYS / 16; // m-tiles of 16 keys a warp and tile
  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;
  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;
  // The key of A row r0 in an m-tile (+ 8 for row r0 + 8), and of k index 2t (+ 4 for 2t + 1): lanes
  // r0 and r0 + 1 read rows 4 apart, lanes t and t + 1 rows 1 apart, so their 16-byte reads of a
  // code row's pitch fall in distinct banks (the query-major kernel's key order, dmq_key).
  const int kr0 = (r0 >> 1) + 4 * (r0 & 1);
  unsigned qb[D / 16][2];
  float qinv[2];
  {
    constexpr int h8 = 0; // row r0 of the block: the query of the lane's B column
    const int p = rg * MMA_ROWS + r0 + 8 * h8;
    const bool ok = p < packed;
    const int pp = ok ? p : 0;
    const T* qs = q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq);
    float amax = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = dk_chan(ks, h);
        if (ok) amax = fmaxf(amax, fmaxf(fabsf(to_f32(qs[c])), fabsf(to_f32(qs[c + KPPW]))));
      }
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2)); // the quad holds the row
    int ex = 0; // 0 for a zero row and for inf / NaN (they stay inf / NaN in f16)
    if (amax > 0.f && amax <= 3.4e38f) frexpf(amax, &ex);
    ex = max(ex, -100);
    const float f = ldexpf(1.f, 14 - ex);
    qinv[h8] = ldexpf(1.f, ex - 14);
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = dk_chan(ks, h);
        qb[ks][h] = ok ? dm_h2(to_f32(qs[c]) * f, to_f32(qs[c + KPPW]) * f) : 0u;
      }
    const float qi = qinv[0];
#pragma unroll
    for (int c = 0; c < 2; ++c) qinv[c] = dm_shfl_from(qi, 4 * (2 * (lane & 3) + c)); // column 2t + c
  }
  [[maybe_unused]] int hr2[2], qp2[2];
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8) {
    const int p = rg * MMA_ROWS + 2 * (lane & 3) + h8, pp = p < packed ? p : 0; // padding rows: discarded
    hr2[h8] = hk * group + pp / a.Nq;
    qp2[h8] = pp % a.Nq + a.q_offset;
  }
  const int crow = rg * MMA_ROWS + (int)(threadIdx.x % MMA_ROWS); // the row this thread classifies
  const bool crow_ok = crow < packed;
  const int crow_h = hk * group + (crow_ok ? crow : 0) / a.Nq, crow_q = (crow_ok ? crow : 0) % a.Nq + a.q_offset;
  unsigned fetched = 0; // bit s: stage buffer s holds its tile
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 16][4];
#pragma unroll
  for (int n = 0; n < DV / 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float vz[VG][4]; // Σ p′ z of each V group (columns 2t, 2t + 1; rows alike)
#pragma unroll
  for (int g = 0; g < VG; ++g) vz[g][0] = vz[g][1] = vz[g][2] = vz[g][3] = 0.f;
  [[maybe_unused]] const float sl2 = a.scale * LOG2E; // identity scores: one multiply to base 2
  // The code tiles end where the recent window starts (qend); the window is a tail (k_all).
  const int k_begin = split * split_keys, k_all = min(a.Nk, k_begin + split_keys);
  const int qend = a.Nk - min(RECENT, a.Nk), k_end = max(k_begin, min(k_all, qend));
  const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk; // code rows packed [B, Hkv, Nk, bytes]
  const size_t n_groups = ((size_t)a.Nk + 31) / 32; // K scale / zero rows a head
  const unsigned char* kc = static_cast<const unsigned char*>(a.k) + kv0 * KB;
  const unsigned char* vc = static_cast<const unsigned char*>(a.v) + kv0 * VB;
  extern __shared__ float4 dm_smem[];
  unsigned char* ks = reinterpret_cast<unsigned char*>(dm_smem);
  unsigned char* vs = ks + MMA_STAGES * MMA_TILE * KPB;
  unsigned* skz = reinterpret_cast<unsigned*>(vs + MMA_STAGES * MMA_TILE * VPB); // K group windows
  unsigned* svz = skz + MMA_STAGES * 2 * KGW; // V scale windows
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;
  auto fetch = [&](int it) {
    const int f0 = k_begin + it * MMA_TILE, f1 = min(f0 + MMA_TILE, k_end);
    const bool any = __syncthreads_or(it < n_tiles && crow_ok && tile_class(a, b, crow_h, crow_q, crow_q, f0 + a.k_offset, f1 - 1 + a.k_offset) != 0);
    fetched = any ? fetched | (1u << (it % MMA_STAGES)) : fetched & ~(1u << (it % MMA_STAGES));
    if (any) {
      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);
      dm_fetch_codes<KB, KPB>(kc, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);
      dm_fetch_codes<VB, VPB>(vc, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);
      {
        const size_t g0 = ((size_t)b * a.Hkv + hk) * n_groups + t0 / 32;
        const int gn = ((t1 - 1) / 32 - t0 / 32 + 1) * D;
        unsigned* kd = skz + (it % MMA_STAGES) * 2 * KGW;
        dk_fetch_halves(a.k_scale, kd, g0 * D, gn, KGW);
        dk_fetch_halves(a.k_zero, kd + KGW, g0 * D, gn, KGW);
        unsigned* vd = svz + (it % MMA_STAGES) * 2 * VGW;
        dk_fetch_halves(a.v_scale, vd, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);
        dk_fetch_halves(a.v_zero, vd + VGW, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);
      }
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
      const unsigned char* kt = ks + (it % MMA_STAGES) * MMA_TILE * KPB + warp * MMA_KEYS * KPB;
      const unsigned char* vt = vs + (it % MMA_STAGES) * MMA_TILE * VPB + warp * MMA_KEYS * VPB;
      float s[KMT][4];
#pragma unroll
      for (int mt = 0; mt < KMT; ++mt) s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;
      const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);
      const int kwe = min(kw + MMA_KEYS, t1);
      for (int g = kw / 32; g <= (kwe - 1) / 32; ++g) { // one group when the split is 32-aligned
        const unsigned short* gs = kzs + (g - t0 / 32) * D; // scales; zeros 2 KGW halves on
        // The largest |s| of the lane's D / 4 channels (contiguous), then of the row: f16 bits order as values.
        // sw / zw: the lane's scale / zero words (16-byte reads); a pair (c, c + KPPW) is dk_pair's.
        unsigned sw[D / 8], zw[D / 8], mb = 0u;
#pragma unroll
        for (int m = 0; m < D / 32; ++m) {
          const DmW4 x = reinterpret_cast<const DmW4*>(gs + (lane & 3) * (D / 4))[m];
          const DmW4 y = reinterpret_cast<const DmW4*>(gs + 2 * KGW + (lane & 3) * (D / 4))[m];
          sw[4 * m] = x.x, sw[4 * m + 1] = x.y, sw[4 * m + 2] = x.z, sw[4 * m + 3] = x.w;
          zw[4 * m] = y.x, zw[4 * m + 1] = y.y, zw[4 * m + 2] = y.z, zw[4 * m + 3] = y.w;
          mb = dk_vmax2(mb, dk_vmax2(dk_vmax2(x.x & 0x7fff7fffu, x.y & 0x7fff7fffu), dk_vmax2(x.z & 0x7fff7fffu, x.w & 0x7fff7fffu)));
        }
        mb = max(mb & 0xffffu, mb >> 16);
        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 1));
        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 2));
        // e: the exponent of the largest scale (0 for zeros, inf or NaN: they stay what they are).
        int es = 1;
        if (mb != 0u && mb < 0x7c00u) frexpf(dec_half_bits((unsigned short)mb), &es); // max in [2^(es-1), 2^es)
        es -= 1;
        // s′ = s · 2^-(es+1) by two exact f16 factors (2^-(es+1) reaches 2^23 for tiny scales).
        const int fa = min(-es - 1, 15), fb = -es - 1 - fa;
        const unsigned f2a = dk_pow2h(fa) * 0x10001u, f2b = dk_pow2h(fb) * 0x10001u;
        const float kinv[2] = {qinv[0] * ldexpf(1.f, es + 1), qinv[1] * ldexpf(1.f, es + 1)};
        // Capped for two blocks an SM, the lane's scale / zero words are read again at each use.
        const volatile unsigned* swv = reinterpret_cast<const volatile unsigned*>(gs + (lane & 3) * (D / 4));
        // Code words of rows r0 (v 0) and r0 + 8 (v 1) of each m-tile; another group's keys read 0.
        unsigned w[KMT][2][KWL];
#pragma unroll
        for (int mt = 0; mt < KMT; ++mt)
#pragma unroll
          for (int v = 0; v < 2; ++v) {
            const int kc = 16 * mt + kr0 + 8 * v;
            const bool in = (kw + kc) / 32 == g;
            const unsigned* kr = reinterpret_cast<const unsigned*>(kt + kc * KPB) + KWL * (lane & 3);
#pragma unroll
            for (int m = 0; m < KWL; ++m) w[mt][v][m] = in ? kr[m] : 0u;
          }
        float bz[4] = {0.f, 0.f, 0.f, 0.f}; // Σ q̂_g z of columns 2t, 2t + 1 (rows all alike)
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
          unsigned qk[2], zp[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const unsigned sp = dk_hmul2(dk_hmul2(KM_HELD ? dk_pair(sw, 2 * ks + h) : dk_pair(swv, 2 * ks + h), f2a), f2b);
            zp[h] = KM_HELD ? dk_pair(zw, 2 * ks + h) : dk_pair(swv + KGW, 2 * ks + h);
            qk[h] = dk_hmul2(qb[ks][h], sp);
          }
          const unsigned za[4] = {zp[0], zp[0], zp[1], zp[1]};
          dm_mma_h(bz, za, qk[0], qk[1]);
          const int w0 = (2 * ks) / KPPW, i0 = (2 * ks) % KPPW, w1 = (2 * ks + 1) / KPPW, i1 = (2 * ks + 1) % KPPW;
#pragma unroll
          for (int mt = 0; mt < KMT; ++mt) {
            const unsigned ka[4] = {dk_kpair(w[mt][0][w0], i0), dk_kpair(w[mt][1][w0], i0), dk_kpair(w[mt][0][w1], i1), dk_kpair(w[mt][1][w1], i1)};
            dm_mma_h(s[mt], ka, qk[0], qk[1]);
          }
        }
#pragma unroll
        for (int mt = 0; mt < KMT; ++mt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if ((kw + 16 * mt + kr0 + 8 * (e >> 1)) / 32 == g) s[mt][e] = (s[mt][e] - bz[e & 1]) * kinv[e & 1];
      }
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < KMT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int kj = kw + 16 * j + kr0 + 8 * (e >> 1);
          [[maybe_unused]] const int kpos = kj + a.k_offset;
          s[j][e] = kj < t1 && cls2[e & 1] != 0 && (cls2[e & 1] == 1 || elem_mask(a, b, hr2[e & 1], qp2[e & 1], kpos)) ? s[j][e] * sl2 : -INFINITY;
          mx[e & 1] = fmaxf(mx[e & 1], s[j][e]);
        }
#pragma unroll
      for (int c = 0; c < 2; ++c)
#pragma unroll
        for (int d = 4; d < 32; d <<= 1) mx[c] = fmaxf(mx[c], __shfl_xor_sync(0xffffffffu, mx[c], d));
      if (dm_any(mx[0] > m[0] || mx[1] > m[1])) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const bool up = mx[c] > -INFINITY;
          const float mn = up ? fmaxf(m[c], mx[c]) : m[c], corr = up ? exp2f(m[c] - mn) : 1.f;
          l[c] *= corr;
#pragma unroll
          for (int n = 0; n < DV / 16; ++n) o[n][c] *= corr, o[n][c + 2] *= corr;
#pragma unroll
          for (int g = 0; g < VG; ++g) vz[g][c] *= corr;
          m[c] = mn;
        }
      }
      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the column.
#pragma unroll
      for (int j = 0; j < KMT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e & 1]);
          l[e & 1] += s[j][e];
        }
      const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);
      const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8; // the byte of channel 32 g + 4 r0 in its word
      const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;
      const int vw = 4 * r0 * VBITS / 32; // its word in group 0
#pragma unroll
      for (int kk = 0; kk < KMT; ++kk) {
        const int kr = kw - t0 + 16 * kk; // tile row of the m-tile's first key
        const unsigned char* vr = vt + (16 * kk + (lane & 3)) * VPB; // k index 2t's code row (key t; 2t + 1: t + 4)
#pragma unroll
        for (int g = 0; g < VG; ++g) {
          const float sa = dec_half_bits(vzs[(kr + kr0) * VG + g]), sb = dec_half_bits(vzs[(kr + kr0 + 8) * VG + g]);
          const unsigned pb0 = dm_movt(dm_h2(s[kk][0] * sa, s[kk][1] * sa));
          const unsigned pb1 = dm_movt(dm_h2(s[kk][2] * sb, s[kk][3] * sb));
          auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr + (lane & 3) + i) * VG + g]; };
          const unsigned z0 = z(0) | z(4) << 16, z8 = z(8) | z(12) << 16; // k indices 2t.. / 2t + 8..
          const unsigned za[4] = {z0, z0, z8, z8};
          dm_mma_h(vz[g], za, pb0, pb1);
          auto word = [&](int i) { return reinterpret_cast<const unsigned*>(vr + i * VPB)[g * (32 / VCPW) + vw]; };
          const unsigned t01 = __byte_perm(word(0), word(4), vsel), t23 = __byte_perm(word(8), word(12), vsel);
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            const unsigned va[4] = {dk_vcode(t01, 2 * u), dk_vcode(t01, 2 * u + 1), dk_vcode(t23, 2 * u), dk_vcode(t23, 2 * u + 1)};
            dm_mma_h(o[2 * g + u], va, pb0, pb1);
          }
        }
      }
    }
  }
  { // recent f16 tokens: the window rows of the split
    const int r_begin = max(k_begin, qend);
    const unsigned short* rk = a.k_recent + ((size_t)b * a.Hkv + hk) * RECENT * D;
    const unsigned short* rv = a.v_recent + ((size_t)b * a.Hkv + hk) * RECENT * DV;
    for (int kw = r_begin + warp * MMA_KEYS; kw < k_all; kw += MMA_TILE) { // warp-uniform
      [[maybe_unused]] const int t0 = r_begin, t1 = k_all;
      int cls2[2];
  #pragma unroll
      for (int h8 = 0; h8 < 2; ++h8) cls2[h8] = tile_class(a, b, hr2[h8], qp2[h8], qp2[h8], t0 + a.k_offset, t1 - 1 + a.k_offset);
      float s[KMT][4];
#pragma unroll
      for (int mt = 0; mt < KMT; ++mt) {
        s[mt][0] = s[mt][1] = s[mt][2] = s[mt][3] = 0.f;
        const unsigned short* kr[2];
#pragma unroll
        for (int v = 0; v < 2; ++v) {
          const int key = kw + 16 * mt + kr0 + 8 * v;
          kr[v] = key < t1 ? rk + (size_t)(key - qend) * D : nullptr;
        }
        auto pair = [&](int v, int c) { return kr[v] ? (unsigned)kr[v][c] | ((unsigned)kr[v][c + KPPW] << 16) : 0u; };
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
          const int c0 = dk_chan(ks, 0), c1 = dk_chan(ks, 1);
          const unsigned ka[4] = {pair(0, c0), pair(1, c0), pair(0, c1), pair(1, c1)};
          dm_mma_h(s[mt], ka, qb[ks][0], qb[ks][1]);
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][e] *= qinv[e & 1];
      }
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < KMT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int kj = kw + 16 * j + kr0 + 8 * (e >> 1);
          [[maybe_unused]] const int kpos = kj + a.k_offset;
          s[j][e] = kj < t1 && cls2[e & 1] != 0 && (cls2[e & 1] == 1 || elem_mask(a, b, hr2[e & 1], qp2[e & 1], kpos)) ? s[j][e] * sl2 : -INFINITY;
          mx[e & 1] = fmaxf(mx[e & 1], s[j][e]);
        }
#pragma unroll
      for (int c = 0; c < 2; ++c)
#pragma unroll
        for (int d = 4; d < 32; d <<= 1) mx[c] = fmaxf(mx[c], __shfl_xor_sync(0xffffffffu, mx[c], d));
      if (dm_any(mx[0] > m[0] || mx[1] > m[1])) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const bool up = mx[c] > -INFINITY;
          const float mn = up ? fmaxf(m[c], mx[c]) : m[c], corr = up ? exp2f(m[c] - mn) : 1.f;
          l[c] *= corr;
#pragma unroll
          for (int n = 0; n < DV / 16; ++n) o[n][c] *= corr, o[n][c + 2] *= corr;
#pragma unroll
          for (int g = 0; g < VG; ++g) vz[g][c] *= corr;
          m[c] = mn;
        }
      }
      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the column.
#pragma unroll
      for (int j = 0; j < KMT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e & 1]);
          l[e & 1] += s[j][e];
        }
#pragma unroll
      for (int kk = 0; kk < KMT; ++kk) {
        const unsigned pb0 = dm_movt(dm_h2(s[kk][0], s[kk][1])), pb1 = dm_movt(dm_h2(s[kk][2], s[kk][3]));
        const unsigned short* vr[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int key = kw + 16 * kk + (lane & 3) + 4 * (i & 1) + 8 * (i >> 1);
          vr[i] = key < t1 ? rv + (size_t)(key - qend) * DV : nullptr;
        }
        auto h = [&](int i, int c) { return vr[i] ? (unsigned)vr[i][c] : 0u; };
#pragma unroll
        for (int n = 0; n < DV / 16; ++n) {
          const int c = 32 * (n >> 1) + 4 * r0 + 2 * (n & 1); // channel rows r0 (c), r0 + 8 (c + 1)
          const unsigned va[4] = {h(0, c) | h(1, c) << 16, h(0, c + 1) | h(1, c + 1) << 16, h(2, c) | h(3, c) << 16, h(2, c + 1) | h(3, c + 1) << 16};
          dm_mma_h(o[n], va, pb0, pb1);
        }
      }
    }
  }
#pragma unroll
  for (int n = 0; n < DV / 16; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] -= vz[n >> 1][e & 1];
#pragma unroll
  for (int c = 0; c < 2; ++c)
#pragma unroll
    for (int d = 4; d < 32; d <<= 1) l[c] += __shfl_xor_sync(0xffffffffu, l[c], d);
  dec_wait<0>();
  __syncthreads(); // the stream buffers are free: they hold the combine now
  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][ROWS] m, then l, then o [WARPS][ROWS][DV]
  float* cl = cm + MMA_WARPS * MMA_ROWS;
  float* co = cl + MMA_WARPS * MMA_ROWS;
#pragma unroll
  for (int c = 0; c < 2; ++c) {
    const int r = 2 * (lane & 3) + c;
    if (r0 == 0) {
      cm[warp * MMA_ROWS + r] = l[c] != 0.f ? m[c] : -INFINITY; // l NaN: poisoned, kept
      cl[warp * MMA_ROWS + r] = l[c];
    }
#pragma unroll
    for (int n = 0; n < DV / 16; ++n)
#pragma unroll
      for (int v = 0; v < 2; ++v) co[((size_t)warp * MMA_ROWS + r) * DV + 32 * (n >> 1) + 4 * r0 + 2 * (n & 1) + v] = o[n][c + 2 * v];
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
#else
__global__ void __launch_bounds__(MMA_THREADS, ATTNC_DEC_MMA_QMIN_BLOCKS) mma_split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  constexpr int NT = MMA_KEYS / 8; // key tiles of 8 per warp and tile
  const int group = a.H / a.Hkv, packed = group * a.Nq, row_groups = (packed + MMA_ROWS - 1) / MMA_ROWS;
  const int split = blockIdx.x / row_groups, rg = blockIdx.x % row_groups;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, r0 = lane >> 2;
  unsigned qf[D / 16][4];
  float qinv[2];
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8) {
    const int p = rg * MMA_ROWS + r0 + 8 * h8;
    const bool ok = p < packed;
    const int pp = ok ? p : 0;
    const T* qs = q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq);
    float amax = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = dk_chan(ks, h);
        if (ok) amax = fmaxf(amax, fmaxf(fabsf(to_f32(qs[c])), fabsf(to_f32(qs[c + KPPW]))));
      }
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2)); // the quad holds the row
    int ex = 0; // 0 for a zero row and for inf / NaN (they stay inf / NaN in f16)
    if (amax > 0.f && amax <= 3.4e38f) frexpf(amax, &ex);
    ex = max(ex, -100);
    const float f = ldexpf(1.f, 14 - ex);
    qinv[h8] = ldexpf(1.f, ex - 14);
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c = dk_chan(ks, h);
        qf[ks][h8 + 2 * h] = ok ? dm_h2(to_f32(qs[c]) * f, to_f32(qs[c + KPPW]) * f) : 0u;
      }
  }
  // Σ_t p′_t,g z_t,g of V group g in column g of one C fragment (rows r0, r0 + 8), rescaled with o.
  float vb[4] = {0.f, 0.f, 0.f, 0.f};
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
  // The code tiles end where the recent window starts (qend); the window is a tail (k_all).
  const int k_begin = split * split_keys, k_all = min(a.Nk, k_begin + split_keys);
  const int qend = a.Nk - min(RECENT, a.Nk), k_end = max(k_begin, min(k_all, qend));
  const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk; // code rows packed [B, Hkv, Nk, bytes]
  const size_t n_groups = ((size_t)a.Nk + 31) / 32; // K scale / zero rows a head
  const unsigned char* kc = static_cast<const unsigned char*>(a.k) + kv0 * KB;
  const unsigned char* vc = static_cast<const unsigned char*>(a.v) + kv0 * VB;
  extern __shared__ float4 dm_smem[];
  unsigned char* ks = reinterpret_cast<unsigned char*>(dm_smem);
  unsigned char* vs = ks + MMA_STAGES * MMA_TILE * KPB;
  unsigned* skz = reinterpret_cast<unsigned*>(vs + MMA_STAGES * MMA_TILE * VPB); // K group windows
  unsigned* svz = skz + MMA_STAGES * 2 * KGW; // V scale windows
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + MMA_TILE - 1) / MMA_TILE : 0;
  auto fetch = [&](int it) {
    const int f0 = k_begin + it * MMA_TILE, f1 = min(f0 + MMA_TILE, k_end);
    const bool any = __syncthreads_or(it < n_tiles && crow_ok && tile_class(a, b, crow_h, crow_q, crow_q, f0 + a.k_offset, f1 - 1 + a.k_offset) != 0);
    fetched = any ? fetched | (1u << (it % MMA_STAGES)) : fetched & ~(1u << (it % MMA_STAGES));
    if (any) {
      const int t0 = k_begin + it * MMA_TILE, t1 = min(t0 + MMA_TILE, k_end);
      dm_fetch_codes<KB, KPB>(kc, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);
      dm_fetch_codes<VB, VPB>(vc, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);
      {
        const size_t g0 = ((size_t)b * a.Hkv + hk) * n_groups + t0 / 32;
        const int gn = ((t1 - 1) / 32 - t0 / 32 + 1) * D;
        unsigned* kd = skz + (it % MMA_STAGES) * 2 * KGW;
        dk_fetch_halves(a.k_scale, kd, g0 * D, gn, KGW);
        dk_fetch_halves(a.k_zero, kd + KGW, g0 * D, gn, KGW);
        unsigned* vd = svz + (it % MMA_STAGES) * 2 * VGW;
        dk_fetch_halves(a.v_scale, vd, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);
        dk_fetch_halves(a.v_zero, vd + VGW, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);
      }
    }
    dec_commit(); // one group per tile, fetched or not
  };
  for (int st = 0; st < MMA_STAGES - 1; ++st) fetch(st);
  // LEAN bit 2: rows 8..15 of this block are padding (block-uniform), the loop takes one row half.
  const bool lo_only = (ATTNC_DEC_MMA_LEAN & 2) != 0 && rg * MMA_ROWS + 8 >= packed;
  auto stream = [&](auto halves) {
    constexpr int HALVES = decltype(halves)::value;
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
        const unsigned char* kt = ks + (it % MMA_STAGES) * MMA_TILE * KPB + warp * MMA_KEYS * KPB;
        const unsigned char* vt = vs + (it % MMA_STAGES) * MMA_TILE * VPB + warp * MMA_KEYS * VPB;
        float s[NT][4];
#pragma unroll
        for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
        const unsigned short* kzs = reinterpret_cast<const unsigned short*>(skz + (it % MMA_STAGES) * 2 * KGW);
        const int kwe = min(kw + MMA_KEYS, t1);
        for (int g = kw / 32; g <= (kwe - 1) / 32; ++g) { // one group when the split is 32-aligned
          const unsigned short* gs = kzs + (g - t0 / 32) * D; // scales; zeros 2 KGW halves on
          // The largest |s| of the lane's D / 4 channels (contiguous), then of the row: f16 bits order as values.
          // sw / zw: the lane's scale / zero words (16-byte reads); a pair (c, c + KPPW) is dk_pair's.
          unsigned sw[D / 8], zw[D / 8], mb = 0u;
#pragma unroll
          for (int m = 0; m < D / 32; ++m) {
            const DmW4 x = reinterpret_cast<const DmW4*>(gs + (lane & 3) * (D / 4))[m];
            const DmW4 y = reinterpret_cast<const DmW4*>(gs + 2 * KGW + (lane & 3) * (D / 4))[m];
            sw[4 * m] = x.x, sw[4 * m + 1] = x.y, sw[4 * m + 2] = x.z, sw[4 * m + 3] = x.w;
            zw[4 * m] = y.x, zw[4 * m + 1] = y.y, zw[4 * m + 2] = y.z, zw[4 * m + 3] = y.w;
            mb = dk_vmax2(mb, dk_vmax2(dk_vmax2(x.x & 0x7fff7fffu, x.y & 0x7fff7fffu), dk_vmax2(x.z & 0x7fff7fffu, x.w & 0x7fff7fffu)));
          }
          mb = max(mb & 0xffffu, mb >> 16);
          mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 1));
          mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, 2));
          // e: the exponent of the largest scale (0 for zeros, inf or NaN: they stay what they are).
          int es = 1;
          if (mb != 0u && mb < 0x7c00u) frexpf(dec_half_bits((unsigned short)mb), &es); // max in [2^(es-1), 2^es)
          es -= 1;
          // s′ = s · 2^-(es+1) by two exact f16 factors (2^-(es+1) reaches 2^23 for tiny scales).
          const int fa = min(-es - 1, 15), fb = -es - 1 - fa;
          const unsigned f2a = dk_pow2h(fa) * 0x10001u, f2b = dk_pow2h(fb) * 0x10001u;
          const float kinv[2] = {qinv[0] * ldexpf(1.f, es + 1), qinv[1] * ldexpf(1.f, es + 1)};
          // The code words of every tile j (column r0: the key dmq_key(j, ·) of lane 4 (r0 / 2) + ...);
          // a key of another group reads codes 0, so its S stays exactly as the other group's pass left it.
          unsigned w[NT][KWL];
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            const int kc = 16 * (j >> 1) + (r0 >> 1) + 4 * (2 * (j & 1) + (r0 & 1));
            const bool in = (kw + kc) / 32 == g;
            const unsigned* kr = reinterpret_cast<const unsigned*>(kt + kc * KPB) + KWL * (lane & 3);
#pragma unroll
            for (int m = 0; m < KWL; ++m) w[j][m] = in ? kr[m] : 0u;
          }
          float bz[4] = {0.f, 0.f, 0.f, 0.f}; // Σ q̂_g z: every column the same
          // k-step by k-step: the group's A fragment of q̂_g (one k-step live), then every tile's MMA.
#pragma unroll
          for (int ks = 0; ks < D / 16; ++ks) {
            unsigned qk[4], zp[2];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const unsigned sp = dk_hmul2(dk_hmul2(dk_pair(sw, 2 * ks + h), f2a), f2b);
              zp[h] = dk_pair(zw, 2 * ks + h);
              qk[2 * h] = dk_hmul2(qf[ks][2 * h], sp);
              qk[2 * h + 1] = HALVES > 1 ? dk_hmul2(qf[ks][2 * h + 1], sp) : 0u;
            }
            dm_mma_h(bz, qk, zp[0], zp[1]);
#pragma unroll
            for (int j = 0; j < NT; ++j)
              dm_mma_h(s[j], qk, dk_kpair(w[j][(2 * ks) / KPPW], (2 * ks) % KPPW), dk_kpair(w[j][(2 * ks + 1) / KPPW], (2 * ks + 1) % KPPW));
          }
#pragma unroll
          for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 2 * HALVES; ++e)
              if ((kw + dmq_key(j, e & 1)) / 32 == g) s[j][e] = (s[j][e] - bz[e & 2]) * kinv[e >> 1];
        }
        float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 2 * HALVES; ++e) {
            const int kj = kw + dmq_key(j, e & 1);
            [[maybe_unused]] const int kpos = kj + a.k_offset;
            s[j][e] = kj < t1 && cls2[e >> 1] != 0 && (cls2[e >> 1] == 1 || elem_mask(a, b, hr2[e >> 1], qp2[e >> 1], kpos)) ? s[j][e] * sl2 : -INFINITY;
            mt[e >> 1] = fmaxf(mt[e >> 1], s[j][e]);
          }
#pragma unroll
        for (int h8 = 0; h8 < HALVES; ++h8) {
          mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 1));
          mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 2));
        }
        // LEAN bit 1: only when some lane's row max rose; every other corr would be exactly 1.
        if ((ATTNC_DEC_MMA_LEAN & 1) == 0 || dm_any(mt[0] > m[0] || (HALVES > 1 && mt[1] > m[1]))) {
#pragma unroll
          for (int h8 = 0; h8 < HALVES; ++h8) {
            // Under the vote no divergent branch: a row without a finite max this step keeps m, corr 1.
            if ((ATTNC_DEC_MMA_LEAN & 1) != 0 || mt[h8] > -INFINITY) {
              const bool up = mt[h8] > -INFINITY;
              const float mn = up ? fmaxf(m[h8], mt[h8]) : m[h8], corr = up ? exp2f(m[h8] - mn) : 1.f;
              l[h8] *= corr;
#pragma unroll
              for (int n = 0; n < DV / 8; ++n) o[n][2 * h8] *= corr, o[n][2 * h8 + 1] *= corr;
              vb[2 * h8] *= corr, vb[2 * h8 + 1] *= corr;
              m[h8] = mn;
            }
          }
        }
        // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.
        // Padding rows of a one-half loop weigh 0 (their O rows are never read).
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (e >= 2 * HALVES) {
              s[j][e] = 0.f;
              continue;
            }
            s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e >> 1]);
            l[e >> 1] += s[j][e];
          }
        const unsigned short* vzs = reinterpret_cast<const unsigned short*>(svz + (it % MMA_STAGES) * 2 * VGW);
        // The lane's first V code in a word starts byte vb0 = VBITS ((4 r0) % VCPW) / 8; the byte_perm
        // selector puts bytes vb0, vb0 + 1 of key a's word in the low half and key b's in the high one
        // (int2's vb0 3 reads another byte above its 4 codes, and dk_vcode masks it off).
        const unsigned vb0 = VBITS * ((4 * r0) % VCPW) / 8;
        const unsigned vsel = vb0 | ((vb0 + 1) & 7) << 4 | (vb0 + 4) << 8 | ((vb0 + 5) & 7) << 12;
#pragma unroll
        for (int kk = 0; kk < NT / 2; ++kk) {
          const int kr0 = kw - t0 + 16 * kk + (lane & 3); // tile row of the lane's key 0; keys +4, +8, +12
          const float p[2][4] = {{s[2 * kk][0], s[2 * kk][1], s[2 * kk + 1][0], s[2 * kk + 1][1]},
                                 {s[2 * kk][2], s[2 * kk][3], s[2 * kk + 1][2], s[2 * kk + 1][3]}};
          unsigned zb[2] = {0u, 0u}; // z of group r0 at the lane's keys (t, t + 4), (t + 8, t + 12)
          if (r0 < VG) {
            auto z = [&](int i) { return (unsigned)vzs[2 * VGW + (kr0 + 4 * i) * VG + r0]; };
            zb[0] = z(0) | (z(1) << 16);
            zb[1] = z(2) | (z(3) << 16);
          }
#pragma unroll
          for (int g = 0; g < VG; ++g) {
            unsigned w[4];
            float sc[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              w[i] = reinterpret_cast<const unsigned*>(vt + (16 * kk + (lane & 3) + 4 * i) * VPB)[g * (32 / VCPW) + 4 * r0 / VCPW];
              const unsigned sw = reinterpret_cast<const unsigned*>(vzs + (kr0 + 4 * i) * VG)[g >> 1]; // VG even
              sc[i] = dec_half_bits((unsigned short)(g & 1 ? sw >> 16 : sw & 0xffffu));
            }
            unsigned pa[4];
#pragma unroll
            for (int h8 = 0; h8 < 2; ++h8) {
              pa[h8] = h8 < HALVES ? dm_h2(p[h8][0] * sc[0], p[h8][1] * sc[1]) : 0u;
              pa[h8 + 2] = h8 < HALVES ? dm_h2(p[h8][2] * sc[2], p[h8][3] * sc[3]) : 0u;
            }
            dm_mma_h(vb, pa, r0 == g ? zb[0] : 0u, r0 == g ? zb[1] : 0u);
            // Codes 4 r0 % VCPW + nq (channels 32 g + 4 r0 + nq) of keys (a, b) in a word's two halves.
            const unsigned t01 = __byte_perm(w[0], w[1], vsel);
            const unsigned t23 = __byte_perm(w[2], w[3], vsel);
#pragma unroll
            for (int nq = 0; nq < 4; ++nq) dm_mma_h(o[4 * g + nq], pa, dk_vcode(t01, nq), dk_vcode(t23, nq));
          }
        }
      }
    }
  };
  if (lo_only)
    stream(DmHalves<1>{});
  else
    stream(DmHalves<2>{});
  { // recent f16 tokens: the window rows of the split
    const int r_begin = max(k_begin, qend);
    const unsigned short* rk = a.k_recent + ((size_t)b * a.Hkv + hk) * RECENT * D;
    const unsigned short* rv = a.v_recent + ((size_t)b * a.Hkv + hk) * RECENT * DV;
    for (int kw = r_begin + warp * MMA_KEYS; kw < k_all; kw += MMA_TILE) { // warp-uniform
      const int t0 = r_begin, t1 = k_all;
      int cls2[2];
  #pragma unroll
      for (int h8 = 0; h8 < 2; ++h8) cls2[h8] = tile_class(a, b, hr2[h8], qp2[h8], qp2[h8], t0 + a.k_offset, t1 - 1 + a.k_offset);
      float s[NT][4];
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
        const int key = kw + 16 * (j >> 1) + (r0 >> 1) + 4 * (2 * (j & 1) + (r0 & 1));
        const bool ok = key < t1;
        const unsigned short* kr = rk + (size_t)(ok ? key - qend : 0) * D;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
          const int c0 = dk_chan(ks, 0), c1 = dk_chan(ks, 1);
          const unsigned b0 = ok ? (unsigned)kr[c0] | ((unsigned)kr[c0 + KPPW] << 16) : 0u;
          const unsigned b1 = ok ? (unsigned)kr[c1] | ((unsigned)kr[c1 + KPPW] << 16) : 0u;
          dm_mma_h(s[j], qf[ks], b0, b1);
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= qinv[e >> 1];
      }
      float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 2 * 2; ++e) {
          const int kj = kw + dmq_key(j, e & 1);
          [[maybe_unused]] const int kpos = kj + a.k_offset;
          s[j][e] = kj < t1 && cls2[e >> 1] != 0 && (cls2[e >> 1] == 1 || elem_mask(a, b, hr2[e >> 1], qp2[e >> 1], kpos)) ? s[j][e] * sl2 : -INFINITY;
          mt[e >> 1] = fmaxf(mt[e >> 1], s[j][e]);
        }
#pragma unroll
      for (int h8 = 0; h8 < 2; ++h8) {
        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 1));
        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 2));
      }
      // LEAN bit 1: only when some lane's row max rose; every other corr would be exactly 1.
      if ((ATTNC_DEC_MMA_LEAN & 1) == 0 || dm_any(mt[0] > m[0] || (2 > 1 && mt[1] > m[1]))) {
#pragma unroll
        for (int h8 = 0; h8 < 2; ++h8) {
          // Under the vote no divergent branch: a row without a finite max this step keeps m, corr 1.
          if ((ATTNC_DEC_MMA_LEAN & 1) != 0 || mt[h8] > -INFINITY) {
            const bool up = mt[h8] > -INFINITY;
            const float mn = up ? fmaxf(m[h8], mt[h8]) : m[h8], corr = up ? exp2f(m[h8] - mn) : 1.f;
            l[h8] *= corr;
#pragma unroll
            for (int n = 0; n < DV / 8; ++n) o[n][2 * h8] *= corr, o[n][2 * h8 + 1] *= corr;
            vb[2 * h8] *= corr, vb[2 * h8 + 1] *= corr;
            m[h8] = mn;
          }
        }
      }
      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.
      // Padding rows of a one-half loop weigh 0 (their O rows are never read).
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (e >= 2 * 2) {
            s[j][e] = 0.f;
            continue;
          }
          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e >> 1]);
          l[e >> 1] += s[j][e];
        }
#pragma unroll
      for (int kk = 0; kk < NT / 2; ++kk) {
        const unsigned pa[4] = {dm_h2(s[2 * kk][0], s[2 * kk][1]), dm_h2(s[2 * kk][2], s[2 * kk][3]),
                                dm_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]), dm_h2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        const unsigned short* vr[4];
        bool vok[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int key = kw + 16 * kk + (lane & 3) + 4 * i;
          vok[i] = key < t1;
          vr[i] = rv + (size_t)(vok[i] ? key - qend : 0) * DV;
        }
#pragma unroll
        for (int n = 0; n < DV / 8; ++n) {
          const int c = 32 * (n >> 2) + 4 * r0 + (n & 3);
          auto h = [&](int i) { return vok[i] ? (unsigned)vr[i][c] : 0u; };
          dm_mma_h(o[n], pa, h(0) | (h(1) << 16), h(2) | (h(3) << 16));
        }
      }
    }
  }
  float vq[4][4]; // vq[k][d]: vb[k] of quad lane (lane & 3) ^ d
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    vq[k][0] = vb[k];
#pragma unroll
    for (int d = 1; d < 4; ++d) vq[k][d] = __shfl_xor_sync(0xffffffffu, vb[k], d);
  }
#pragma unroll
  for (int h8 = 0; h8 < 2; ++h8)
#pragma unroll
    for (int g = 0; g < VG; ++g) {
      const int d = (lane & 3) ^ (g >> 1);
      const float x = d == 0 ? vq[2 * h8 + (g & 1)][0] : d == 1 ? vq[2 * h8 + (g & 1)][1] : d == 2 ? vq[2 * h8 + (g & 1)][2] : vq[2 * h8 + (g & 1)][3];
#pragma unroll
      for (int nq = 0; nq < 4; ++nq) o[4 * g + nq][2 * h8] -= x, o[4 * g + nq][2 * h8 + 1] -= x;
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
    for (int n = 0; n < DV / 8; ++n)
#pragma unroll
      for (int ee = 0; ee < 2; ++ee) co[((size_t)warp * MMA_ROWS + r) * DV + 32 * (n >> 2) + 4 * (2 * (lane & 3) + ee) + (n & 3)] = o[n][2 * h8 + ee];
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
#endif
#endif // __CUDACC__
} // namespace dec
} // namespace attnc_kivi
// ---- decode: host side ----
namespace attnc_kivi {
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
  if (!ptr_ok(a.q, VW * sizeof(T)) || !ptr_ok(a.k, 16) || !ptr_ok(a.v, 16)) return false;
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
  if (!(ATTNC_DEC_MMA && ATTNC_DEC_MMA_KIVI) || major < 8 || (e != NULL && e[0] == '0')) return state[dev] = -1;
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
} // namespace attnc_kivi

extern "C" const char* attnc_kivi_last_error(void) { return attnc_kivi::last_error; }

extern "C" void attnc_kivi_args_init(AttncArgs_kivi* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, sizeof *a);
  a->B = B; a->H = H; a->Hkv = Hkv; a->Nq = Nq; a->Nk = Nk;
  a->q_offset = Nk - Nq;
  a->k_offset = 0;
  a->scale = 1.0f / sqrtf(64.0f);
  a->q_stride_n = 64;
  a->q_stride_h = (long long)Nq * 64;
  a->q_stride_b = (long long)H * Nq * 64;
  a->out_stride_n = 64;
  a->out_stride_h = (long long)Nq * 64;
  a->out_stride_b = (long long)H * Nq * 64;
}

extern "C" int attnc_kivi_launch(const AttncArgs_kivi* args, cudaStream_t stream) {
  using attnc_kivi::fail;
  using attnc_kivi::ptr_ok;
  attnc_kivi::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_kivi& a = *args;
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
  if (!ptr_ok(a.q, 32) || !ptr_ok(a.out, 32) || (a.Nk > 0 && (!ptr_ok(a.k, 32) || !ptr_ok(a.v, 32))))
    return fail(ATTNC_ERR_ARGS, "q, k, v and out must be non-NULL and 32-byte aligned");
  if (a.Nk > 0 && a.k_scale == NULL) return fail(ATTNC_ERR_ARGS, "k_scale (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.k_zero == NULL) return fail(ATTNC_ERR_ARGS, "k_zero (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.k_recent == NULL) return fail(ATTNC_ERR_ARGS, "k_recent (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_scale == NULL) return fail(ATTNC_ERR_ARGS, "v_scale (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_zero == NULL) return fail(ATTNC_ERR_ARGS, "v_zero (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_recent == NULL) return fail(ATTNC_ERR_ARGS, "v_recent (a tensor of the quantized cache) must not be NULL");
  if ((uintptr_t)a.lse % 4 != 0) return fail(ATTNC_ERR_ARGS, "lse must be 4-byte aligned (got %p)", (const void*)a.lse);
  if ((uintptr_t)a.k_scale % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_scale must be 2-byte aligned (got %p)", (const void*)a.k_scale);
  if ((uintptr_t)a.k_zero % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_zero must be 2-byte aligned (got %p)", (const void*)a.k_zero);
  if ((uintptr_t)a.k_recent % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_recent must be 2-byte aligned (got %p)", (const void*)a.k_recent);
  if ((uintptr_t)a.v_scale % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_scale must be 2-byte aligned (got %p)", (const void*)a.v_scale);
  if ((uintptr_t)a.v_zero % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_zero must be 2-byte aligned (got %p)", (const void*)a.v_zero);
  if ((uintptr_t)a.v_recent % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_recent must be 2-byte aligned (got %p)", (const void*)a.v_recent);
  if (a.q_stride_b < 0 || a.q_stride_h < 0 || a.q_stride_n < 0) return fail(ATTNC_ERR_ARGS, "q strides must be >= 0 (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.q_stride_b % 8 || a.q_stride_h % 8 || a.q_stride_n % 8) return fail(ATTNC_ERR_ARGS, "q strides must be multiples of 8 elements, the kernel's vector loads (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.out_stride_b < 0 || a.out_stride_h < 0 || a.out_stride_n < 0) return fail(ATTNC_ERR_ARGS, "out strides must be >= 0 (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (!attnc_kivi::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, 64)) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, 64] = [%d, %d, %d, 64])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);
  if (a.out_stride_b % 8 || a.out_stride_h % 8 || a.out_stride_n % 8) return fail(ATTNC_ERR_ARGS, "out strides must be multiples of 8 elements, the kernel's vector loads (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (attnc_kivi::dec::wanted(a)) return attnc_kivi::dec::launch(a, stream);
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_kivi::LOG2E;
  const size_t smem = 91192;
  {
    const cudaError_t e = cudaFuncSetAttribute(attnc_kivi::attnc_kivi_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));
  }
  const dim3 grid((a.Nq + 127) / 128, a.H, a.B);
  attnc_kivi::TmaMap tma[3];
  if (const char* why = attnc_kivi::make_tma_maps(a, tma)) return fail(ATTNC_ERR_CUDA, "%s", why);
  attnc_kivi::attnc_kivi_attention<<<grid, 384, smem, stream>>>(a, qscale, tma[0], tma[1], tma[2]);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}

// ---- quantize: fills the quantized caches ----
namespace attnc_kivi_quantize_k_dev {
[[maybe_unused]] constexpr int D = 64;
// Scale granularity: 0 none, 1 tensor, 2 token, 3 channel; GROUP 0 = no group.
[[maybe_unused]] constexpr int GRAN = 3, GROUP = 32;
// The divisor where GROUP is 0 (no group): nvcc warns on a folded division by zero even when unreached.
[[maybe_unused]] constexpr int GDIV = GROUP > 0 ? GROUP : 1;
[[maybe_unused]] constexpr int BITS = 2, WORDS = 4;
[[maybe_unused]] constexpr float QMAX = 3.f;
[[maybe_unused]] constexpr int HI_WORDS = 0;
[[maybe_unused]] constexpr float HI_QMAX = 0.f;
[[maybe_unused]] constexpr int R = 128; // recent tokens kept in 16 bits
[[maybe_unused]] constexpr bool WHOLE = false; // any range rewrites the whole cache
[[maybe_unused]] constexpr int MAX_WORDS = WORDS > HI_WORDS ? WORDS : HI_WORDS;
using Args = ::AttncQuantizeArgs_kivi_k;

__device__ __forceinline__ float flush(float v) { return fabsf(v) < 1.17549435e-38f ? copysignf(0.f, v) : v; }
__device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, long i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, long i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, long i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, long i, float v) { p[i] = __float2bfloat16_rn(v); }
// Math.min / Math.max of the model: -0 orders below +0.
__device__ __forceinline__ float jsmin(float a, float b) { return a < b || (a == b && signbit(a)) ? a : b; }
__device__ __forceinline__ float jsmax(float a, float b) { return a > b || (a == b && !signbit(a)) ? a : b; }
// Rounded to nearest in the dtype of p, saturating at its largest finite value (roundNearestSat).
__device__ __forceinline__ float rn_sat(const float*, float v) { return v; }
__device__ __forceinline__ float rn_sat(const __half*, float v) {
  const float r = __half2float(__float2half_rn(v));
  return isinf(r) ? copysignf(65504.f, r) : r;
}
// The smallest value of the dtype of p that is >= v (v > 0), at least its smallest scale (roundUpTo).
__device__ __forceinline__ float up(const float*, float v) { return v < 1.17549435e-38f ? 1.17549435e-38f : v; }
__device__ __forceinline__ float up(const __half*, float v) {
  if (v < 5.9604645e-8f) return 5.9604645e-8f;
  unsigned short b = __half_as_ushort(__float2half_rn(v));
  if (__half2float(__ushort_as_half(b)) < v) ++b;
  return b >= 0x7c00 ? 65504.f : __half2float(__ushort_as_half(b));
}
__device__ __forceinline__ const __nv_bfloat16* px(const Args& a) { return static_cast<const __nv_bfloat16*>(a.x); }
typedef __half TS;
__device__ __forceinline__ TS* pscale(const Args& a) { return static_cast<TS*>(a.scale); }
typedef __half TZ;
__device__ __forceinline__ TZ* pzero(const Args& a) { return static_cast<TZ*>(a.zero); }
__device__ __forceinline__ __half* precent(const Args& a) { return static_cast<__half*>(a.recent); }

__device__ __forceinline__ int first_recent(const Args& a) { return a.Nk - (R < a.Nk ? R : a.Nk); }
// Whether token t of (b, h) = bh is stored with the wider salient codes (never a recent token).
__device__ __forceinline__ bool is_salient(const Args& a, int bh, int t) {
  return false;
}
// The token rows [first, end) whose codes and scale groups this call rewrites (rewrittenRows).
__device__ __forceinline__ void rewritten(const Args& a, int& first, int& end) {
  first = a.start; end = a.start + a.n;
  if (a.n == 0) return;
  if (WHOLE) { first = 0; end = a.Nk; return; }
  if (GRAN == 3 && GROUP) { first = first / GDIV * GROUP; end = min(a.Nk, (end + GROUP - 1) / GDIV * GROUP); }
}
// Scale groups along tokens and channels (scaleGroups).
__device__ __forceinline__ int token_groups(const Args& a) {
  return GRAN == 2 ? a.Nk : GRAN == 3 && GROUP ? (a.Nk + GROUP - 1) / GDIV : 1;
}
constexpr int CHANNEL_GROUPS = GRAN == 2 ? (GROUP ? (D + GROUP - 1) / GDIV : 1) : GRAN == 3 ? D : 1;
__device__ __forceinline__ long scale_index(const Args& a, int bh, int t, int c) {
  if (GRAN <= 1) return 0;
  const int tg = GRAN == 2 ? t : GROUP ? t / GDIV : 0;
  const int cg = GRAN == 3 ? c : GROUP ? c / GDIV : 0;
  return ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;
}
// The value the codes approximate: x over its channel's normalizer (f32 division).
__device__ __forceinline__ float y_at(const Args& a, int bh, int t, int c) {
  const float x = flush(ld(px(a), ((long)bh * a.Nk + t) * D + c));
  return x;
}

// groupScale: scale (and zero point) of one group from its extremes; {1, 0} when it has none.
__device__ __forceinline__ void group_params(float mn, float mx, int count, bool wide, float& scale, float& zero) {
  scale = 1.f; zero = 0.f;
  if (count == 0) return;
  const float lo = jsmin(mn, 0.f), range = __fsub_rn(jsmax(mx, 0.f), lo);
  if (range == 0.f) return;
  scale = up((const TS*)0, __fdiv_rn(range, wide ? HI_QMAX : QMAX));
  zero = rn_sat((const TZ*)0, __fdiv_rn(-lo, scale));
}
__global__ void __launch_bounds__(256) scale_pass(const Args a) {
  int first, end;
  rewritten(a, first, end);
  if (first >= end) return;
  const int fr = first_recent(a);
  // The token groups [tg0, tg1) holding the rewritten rows, over every (b, h) and channel group.
  const int tg0 = GRAN == 2 ? first : GRAN == 3 && GROUP ? first / GDIV : 0;
  const int tg1 = GRAN == 2 ? end : GRAN == 3 && GROUP ? (end + GROUP - 1) / GDIV : 1;
  const long per_bh = (long)(tg1 - tg0) * CHANNEL_GROUPS;
  const long total = GRAN == 1 ? 1 : (long)a.B * a.Hkv * per_bh;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = GRAN == 1 ? 0 : (int)(i / per_bh);
    const int tg = tg0 + (int)(i % per_bh / CHANNEL_GROUPS), cg = (int)(i % CHANNEL_GROUPS);
    // Members: tokens [t0, t1) (quantized ones only), channels [c0, c1), heads [h0, h1).
    const int t0 = GRAN == 2 ? tg : GRAN == 3 && GROUP ? tg * GROUP : 0;
    const int t1 = min(fr, GRAN == 2 ? tg + 1 : GRAN == 3 && GROUP ? tg * GROUP + GROUP : a.Nk);
    const int c0 = GRAN == 3 ? cg : GRAN == 2 && GROUP ? cg * GROUP : 0;
    const int c1 = GRAN == 3 ? cg + 1 : GRAN == 2 && GROUP ? min(D, cg * GROUP + GROUP) : D;
    const int h0 = GRAN == 1 ? 0 : bh, h1 = GRAN == 1 ? a.B * a.Hkv : bh + 1;
    float mn = INFINITY, mx = -INFINITY;
    int count = 0;
    bool wide = false;
    for (int hh = h0; hh < h1; ++hh)
      for (int t = t0; t < t1; ++t) {
        wide = wide || is_salient(a, hh, t);
        for (int c = c0; c < c1; ++c) {
          const float y = y_at(a, hh, t, c);
          mn = jsmin(mn, y);
          mx = jsmax(mx, y);
          ++count;
        }
      }
    float scale, zero;
    group_params(mn, mx, count, wide, scale, zero);
    const long g = GRAN == 1 ? 0 : ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;
    st(pscale(a), g, scale);
    st(pzero(a), g, zero);
  }
}

__device__ __forceinline__ unsigned encode(const Args& a, long g, float v, bool wide) {
  const float hi = wide ? HI_QMAX : QMAX, lo = 0.f;
  const float q = rintf(__fadd_rn(__fdiv_rn(v, ld(pscale(a), g)), ld(pzero(a), g)));
  return (unsigned)(int)fminf(hi, fmaxf(lo, q));
}

// The word w of a row, packed from bits-bit codes: lowest channel in the lowest bits.
__device__ __forceinline__ uint32_t pack_word(const Args& a, int bh, int t, int w, int bits, bool wide) {
  const int per = 32 / bits;
  uint32_t word = 0;
  for (int j = 0; j < per; ++j) {
    const int c = w * per + j;
    if (c >= D) break;
    const unsigned code = encode(a, scale_index(a, bh, t, c), y_at(a, bh, t, c), wide);
    word |= (code & ((1u << bits) - 1u)) << (j * bits);
  }
  return word;
}
__global__ void __launch_bounds__(256) code_pass(const Args a) {
  int first, end;
  rewritten(a, first, end);
  const int fr = first_recent(a);
  const long per_bh = (long)(end - first) * MAX_WORDS;
  const long total = (long)a.B * a.Hkv * per_bh;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / per_bh), t = first + (int)(i % per_bh / MAX_WORDS), w = (int)(i % MAX_WORDS);
    const bool recent = t >= fr, wide = is_salient(a, bh, t);
    const long row = (long)bh * a.Nk + t;
    if (w < WORDS) a.codes[row * WORDS + w] = recent || wide ? 0u : pack_word(a, bh, t, w, BITS, false);
    
  }
}

__global__ void __launch_bounds__(256) recent_pass(const Args a) {
  const long total = (long)a.B * a.Hkv * R * D;
  const int fr = first_recent(a), count = a.Nk - fr;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / ((long)R * D)), r = (int)(i / D % R), c = (int)(i % D);
    st(precent(a), i, r < count ? flush(ld(px(a), ((long)bh * a.Nk + fr + r) * D + c)) : 0.f);
  }
}
} // namespace attnc_kivi_quantize_k_dev

extern "C" int attnc_kivi_quantize_k(const AttncQuantizeArgs_kivi_k* args, cudaStream_t stream) {
  attnc_kivi::last_error[0] = '\0';
  if (args == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: args is NULL");
  const AttncQuantizeArgs_kivi_k& a = *args;
  if (a.B < 0 || a.Hkv < 0 || a.Nk < 0) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: negative size B=%d Hkv=%d Nk=%d", a.B, a.Hkv, a.Nk);
  if (a.start < 0 || a.n < 0 || a.start > a.Nk - a.n) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: rows [start=%d, start + n=%d) are not inside the cache's Nk=%d tokens", a.start, a.start + a.n, a.Nk);
  if ((long)a.B * a.Hkv == 0) return ATTNC_OK;
  if (a.Nk > 0 && a.x == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: x is NULL");
  if (a.Nk > 0 && a.codes == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: codes is NULL");
  if (a.Nk > 0 && a.scale == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: scale is NULL");
  if (a.Nk > 0 && a.zero == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: zero is NULL");
  if (a.recent == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize k: recent is NULL");
  // Grid-stride passes: enough blocks to fill the device, each pass over its own index space.
  const unsigned blocks = (unsigned)((long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 < 65535 ? (long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 : 65535);
  cudaError_t e;
  attnc_kivi_quantize_k_dev::scale_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize k (scales): %s", cudaGetErrorString(e));
  attnc_kivi_quantize_k_dev::code_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize k (codes): %s", cudaGetErrorString(e));
  attnc_kivi_quantize_k_dev::recent_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize k (recent window): %s", cudaGetErrorString(e));
  return ATTNC_OK;
}

namespace attnc_kivi_quantize_v_dev {
[[maybe_unused]] constexpr int D = 64;
// Scale granularity: 0 none, 1 tensor, 2 token, 3 channel; GROUP 0 = no group.
[[maybe_unused]] constexpr int GRAN = 2, GROUP = 32;
// The divisor where GROUP is 0 (no group): nvcc warns on a folded division by zero even when unreached.
[[maybe_unused]] constexpr int GDIV = GROUP > 0 ? GROUP : 1;
[[maybe_unused]] constexpr int BITS = 2, WORDS = 4;
[[maybe_unused]] constexpr float QMAX = 3.f;
[[maybe_unused]] constexpr int HI_WORDS = 0;
[[maybe_unused]] constexpr float HI_QMAX = 0.f;
[[maybe_unused]] constexpr int R = 128; // recent tokens kept in 16 bits
[[maybe_unused]] constexpr bool WHOLE = false; // any range rewrites the whole cache
[[maybe_unused]] constexpr int MAX_WORDS = WORDS > HI_WORDS ? WORDS : HI_WORDS;
using Args = ::AttncQuantizeArgs_kivi_v;

__device__ __forceinline__ float flush(float v) { return fabsf(v) < 1.17549435e-38f ? copysignf(0.f, v) : v; }
__device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, long i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, long i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, long i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, long i, float v) { p[i] = __float2bfloat16_rn(v); }
// Math.min / Math.max of the model: -0 orders below +0.
__device__ __forceinline__ float jsmin(float a, float b) { return a < b || (a == b && signbit(a)) ? a : b; }
__device__ __forceinline__ float jsmax(float a, float b) { return a > b || (a == b && !signbit(a)) ? a : b; }
// Rounded to nearest in the dtype of p, saturating at its largest finite value (roundNearestSat).
__device__ __forceinline__ float rn_sat(const float*, float v) { return v; }
__device__ __forceinline__ float rn_sat(const __half*, float v) {
  const float r = __half2float(__float2half_rn(v));
  return isinf(r) ? copysignf(65504.f, r) : r;
}
// The smallest value of the dtype of p that is >= v (v > 0), at least its smallest scale (roundUpTo).
__device__ __forceinline__ float up(const float*, float v) { return v < 1.17549435e-38f ? 1.17549435e-38f : v; }
__device__ __forceinline__ float up(const __half*, float v) {
  if (v < 5.9604645e-8f) return 5.9604645e-8f;
  unsigned short b = __half_as_ushort(__float2half_rn(v));
  if (__half2float(__ushort_as_half(b)) < v) ++b;
  return b >= 0x7c00 ? 65504.f : __half2float(__ushort_as_half(b));
}
__device__ __forceinline__ const __nv_bfloat16* px(const Args& a) { return static_cast<const __nv_bfloat16*>(a.x); }
typedef __half TS;
__device__ __forceinline__ TS* pscale(const Args& a) { return static_cast<TS*>(a.scale); }
typedef __half TZ;
__device__ __forceinline__ TZ* pzero(const Args& a) { return static_cast<TZ*>(a.zero); }
__device__ __forceinline__ __half* precent(const Args& a) { return static_cast<__half*>(a.recent); }

__device__ __forceinline__ int first_recent(const Args& a) { return a.Nk - (R < a.Nk ? R : a.Nk); }
// Whether token t of (b, h) = bh is stored with the wider salient codes (never a recent token).
__device__ __forceinline__ bool is_salient(const Args& a, int bh, int t) {
  return false;
}
// The token rows [first, end) whose codes and scale groups this call rewrites (rewrittenRows).
__device__ __forceinline__ void rewritten(const Args& a, int& first, int& end) {
  first = a.start; end = a.start + a.n;
  if (a.n == 0) return;
  if (WHOLE) { first = 0; end = a.Nk; return; }
  if (GRAN == 3 && GROUP) { first = first / GDIV * GROUP; end = min(a.Nk, (end + GROUP - 1) / GDIV * GROUP); }
}
// Scale groups along tokens and channels (scaleGroups).
__device__ __forceinline__ int token_groups(const Args& a) {
  return GRAN == 2 ? a.Nk : GRAN == 3 && GROUP ? (a.Nk + GROUP - 1) / GDIV : 1;
}
constexpr int CHANNEL_GROUPS = GRAN == 2 ? (GROUP ? (D + GROUP - 1) / GDIV : 1) : GRAN == 3 ? D : 1;
__device__ __forceinline__ long scale_index(const Args& a, int bh, int t, int c) {
  if (GRAN <= 1) return 0;
  const int tg = GRAN == 2 ? t : GROUP ? t / GDIV : 0;
  const int cg = GRAN == 3 ? c : GROUP ? c / GDIV : 0;
  return ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;
}
// The value the codes approximate: x over its channel's normalizer (f32 division).
__device__ __forceinline__ float y_at(const Args& a, int bh, int t, int c) {
  const float x = flush(ld(px(a), ((long)bh * a.Nk + t) * D + c));
  return x;
}

// groupScale: scale (and zero point) of one group from its extremes; {1, 0} when it has none.
__device__ __forceinline__ void group_params(float mn, float mx, int count, bool wide, float& scale, float& zero) {
  scale = 1.f; zero = 0.f;
  if (count == 0) return;
  const float lo = jsmin(mn, 0.f), range = __fsub_rn(jsmax(mx, 0.f), lo);
  if (range == 0.f) return;
  scale = up((const TS*)0, __fdiv_rn(range, wide ? HI_QMAX : QMAX));
  zero = rn_sat((const TZ*)0, __fdiv_rn(-lo, scale));
}
__global__ void __launch_bounds__(256) scale_pass(const Args a) {
  int first, end;
  rewritten(a, first, end);
  if (first >= end) return;
  const int fr = first_recent(a);
  // The token groups [tg0, tg1) holding the rewritten rows, over every (b, h) and channel group.
  const int tg0 = GRAN == 2 ? first : GRAN == 3 && GROUP ? first / GDIV : 0;
  const int tg1 = GRAN == 2 ? end : GRAN == 3 && GROUP ? (end + GROUP - 1) / GDIV : 1;
  const long per_bh = (long)(tg1 - tg0) * CHANNEL_GROUPS;
  const long total = GRAN == 1 ? 1 : (long)a.B * a.Hkv * per_bh;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = GRAN == 1 ? 0 : (int)(i / per_bh);
    const int tg = tg0 + (int)(i % per_bh / CHANNEL_GROUPS), cg = (int)(i % CHANNEL_GROUPS);
    // Members: tokens [t0, t1) (quantized ones only), channels [c0, c1), heads [h0, h1).
    const int t0 = GRAN == 2 ? tg : GRAN == 3 && GROUP ? tg * GROUP : 0;
    const int t1 = min(fr, GRAN == 2 ? tg + 1 : GRAN == 3 && GROUP ? tg * GROUP + GROUP : a.Nk);
    const int c0 = GRAN == 3 ? cg : GRAN == 2 && GROUP ? cg * GROUP : 0;
    const int c1 = GRAN == 3 ? cg + 1 : GRAN == 2 && GROUP ? min(D, cg * GROUP + GROUP) : D;
    const int h0 = GRAN == 1 ? 0 : bh, h1 = GRAN == 1 ? a.B * a.Hkv : bh + 1;
    float mn = INFINITY, mx = -INFINITY;
    int count = 0;
    bool wide = false;
    for (int hh = h0; hh < h1; ++hh)
      for (int t = t0; t < t1; ++t) {
        wide = wide || is_salient(a, hh, t);
        for (int c = c0; c < c1; ++c) {
          const float y = y_at(a, hh, t, c);
          mn = jsmin(mn, y);
          mx = jsmax(mx, y);
          ++count;
        }
      }
    float scale, zero;
    group_params(mn, mx, count, wide, scale, zero);
    const long g = GRAN == 1 ? 0 : ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;
    st(pscale(a), g, scale);
    st(pzero(a), g, zero);
  }
}

__device__ __forceinline__ unsigned encode(const Args& a, long g, float v, bool wide) {
  const float hi = wide ? HI_QMAX : QMAX, lo = 0.f;
  const float q = rintf(__fadd_rn(__fdiv_rn(v, ld(pscale(a), g)), ld(pzero(a), g)));
  return (unsigned)(int)fminf(hi, fmaxf(lo, q));
}

// The word w of a row, packed from bits-bit codes: lowest channel in the lowest bits.
__device__ __forceinline__ uint32_t pack_word(const Args& a, int bh, int t, int w, int bits, bool wide) {
  const int per = 32 / bits;
  uint32_t word = 0;
  for (int j = 0; j < per; ++j) {
    const int c = w * per + j;
    if (c >= D) break;
    const unsigned code = encode(a, scale_index(a, bh, t, c), y_at(a, bh, t, c), wide);
    word |= (code & ((1u << bits) - 1u)) << (j * bits);
  }
  return word;
}
__global__ void __launch_bounds__(256) code_pass(const Args a) {
  int first, end;
  rewritten(a, first, end);
  const int fr = first_recent(a);
  const long per_bh = (long)(end - first) * MAX_WORDS;
  const long total = (long)a.B * a.Hkv * per_bh;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / per_bh), t = first + (int)(i % per_bh / MAX_WORDS), w = (int)(i % MAX_WORDS);
    const bool recent = t >= fr, wide = is_salient(a, bh, t);
    const long row = (long)bh * a.Nk + t;
    if (w < WORDS) a.codes[row * WORDS + w] = recent || wide ? 0u : pack_word(a, bh, t, w, BITS, false);
    
  }
}

__global__ void __launch_bounds__(256) recent_pass(const Args a) {
  const long total = (long)a.B * a.Hkv * R * D;
  const int fr = first_recent(a), count = a.Nk - fr;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / ((long)R * D)), r = (int)(i / D % R), c = (int)(i % D);
    st(precent(a), i, r < count ? flush(ld(px(a), ((long)bh * a.Nk + fr + r) * D + c)) : 0.f);
  }
}
} // namespace attnc_kivi_quantize_v_dev

extern "C" int attnc_kivi_quantize_v(const AttncQuantizeArgs_kivi_v* args, cudaStream_t stream) {
  attnc_kivi::last_error[0] = '\0';
  if (args == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: args is NULL");
  const AttncQuantizeArgs_kivi_v& a = *args;
  if (a.B < 0 || a.Hkv < 0 || a.Nk < 0) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: negative size B=%d Hkv=%d Nk=%d", a.B, a.Hkv, a.Nk);
  if (a.start < 0 || a.n < 0 || a.start > a.Nk - a.n) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: rows [start=%d, start + n=%d) are not inside the cache's Nk=%d tokens", a.start, a.start + a.n, a.Nk);
  if ((long)a.B * a.Hkv == 0) return ATTNC_OK;
  if (a.Nk > 0 && a.x == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: x is NULL");
  if (a.Nk > 0 && a.codes == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: codes is NULL");
  if (a.Nk > 0 && a.scale == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: scale is NULL");
  if (a.Nk > 0 && a.zero == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: zero is NULL");
  if (a.recent == NULL) return attnc_kivi::fail(ATTNC_ERR_ARGS, "quantize v: recent is NULL");
  // Grid-stride passes: enough blocks to fill the device, each pass over its own index space.
  const unsigned blocks = (unsigned)((long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 < 65535 ? (long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 : 65535);
  cudaError_t e;
  attnc_kivi_quantize_v_dev::scale_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize v (scales): %s", cudaGetErrorString(e));
  attnc_kivi_quantize_v_dev::code_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize v (codes): %s", cudaGetErrorString(e));
  attnc_kivi_quantize_v_dev::recent_pass<<<blocks, 256, 0, stream>>>(a);
  if ((e = cudaGetLastError()) != cudaSuccess) return attnc_kivi::fail(ATTNC_ERR_CUDA, "quantize v (recent window): %s", cudaGetErrorString(e));
  return ATTNC_OK;
}

// ---- staged prefill: the float twin that attends over the dequantized workspace ----
// attnc kernel "kivi__staged" for CUDA (sm_90a). Generated code: do not edit.
// build: nvcc -arch=sm_90a -std=c++17 --shared -Xcompiler -fPIC kivi__staged.cu -o libkivi__staged.so
// source e156899bbd1610c0, schedule 318f56d51a726150
//   score: score
//   mask:  (ge q k)
// schedule: blockQ=128 blockK=128 threads=384 D=64 Dv=64 bf16 summaryBlock=16 engine=wgmma-ws stages=2
// mapping: core=wgmma-ws instruction=wgmma.mma_async.m64nNk16.bf16 consumerWarpgroups=2 producerWarpgroups=1 rowsPerWarpgroup=64 stages=2 overlap=none pingpong=none loads=TMA (cp.async.bulk.tensor.3d) on mbarriers; the launcher builds the q/k/v tensor maps registers=setmaxnreg 40/232 swizzle=128B (64-wide panels) globalVectorElems=8
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

#ifndef ATTNC_KIVI__STAGED_H
#define ATTNC_KIVI__STAGED_H
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
 *   q, k, v, out 16-byte aligned; lse 4-byte (when not NULL).
 * Element offsets are 64-bit. */
typedef struct AttncArgs_kivi__staged {
  const void* q; /* [B, H, Nq, 64] bf16 at q_stride_* (args_init: packed; any layout with a contiguous last dim) */
  const void* k; /* [B, Hkv, Nk, 64] bf16 as args_init's strides say (any layout the strides describe) */
  const void* v; /* [B, Hkv, Nk, 64] bf16 as args_init's strides say (any layout the strides describe) */
  void* out; /* [B, H, Nq, 64] bf16, written at out_stride_* (args_init: packed) */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  long long k_stride_b; /* elements between batches (args_init: Hkv * Nk * W, W the row width) */
  long long k_stride_h; /* elements between kv heads (args_init: Nk * W, W the row width) */
  long long k_stride_n; /* elements between rows (keys) (args_init: W, W the row width) */
  long long v_stride_b; /* elements between batches (args_init: Hkv * Nk * W, W the row width) */
  long long v_stride_h; /* elements between kv heads (args_init: Nk * W, W the row width) */
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
  int q_offset; /* position of query row 0 (args_init: Nk - Nq) */
  int k_offset; /* position of key row 0 (args_init: 0) */
  float scale; /* scores are scale * <q, k> (args_init: 1/sqrt(64)) */
} AttncArgs_kivi__staged;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_kivi__staged_args_init(AttncArgs_kivi__staged* args, int B, int H, int Hkv, int Nq, int Nk);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_kivi__staged_launch(const AttncArgs_kivi__staged* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_kivi__staged_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_KIVI__STAGED_H */

namespace attnc_kivi__staged {
using Args = ::AttncArgs_kivi__staged;
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

// K/V rows of one (batch, kv head): rows rs elements apart (kv-rows.ts).
struct KvRows {
  const T* p;
  long long rs;
  __device__ __forceinline__ const T* row(long long j) const { return p + j * rs; }
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

constexpr int BQ = 128, BK = 128, STAGES = 2;
constexpr int CWARPS = 8, CTHREADS = CWARPS * 32, THREADS = CTHREADS + 128;
constexpr int NT = BK / 8; // key n-tiles of a warp's score block
static_assert(BQ == 16 * CWARPS && BQ % 64 == 0 && BK % 16 == 0 && BK <= 256, "wgmma-ws tiling");
static_assert((D == 64 || D == 128) && (DV == 64 || DV == 128), "wgmma-ws head dims");

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

// A CUtensorMap (cuda.h), by layout: 128 opaque bytes, 128-byte aligned.
struct alignas(128) TmaMap {
  unsigned long long w[16];
};

// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of slice c2 → dst, 128B-swizzled
// (the hardware's pattern is pswz's); rows past the tensor's end arrive as zeros. Completes on
// `bar` as transaction bytes (the whole box, zero-filled rows included).
__device__ __forceinline__ void tma_load(T* dst, const TmaMap& map, int c0, int c1, int c2, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
      : "memory");
}

// A [ROWS][W] tile as W/64 panels of [ROWS][64] (the layout desc128 addresses).
template <int W, int ROWS>
__device__ __forceinline__ void tma_panels(T* dst, const TmaMap& map, int row, int slice, uint64_t* bar) {
#pragma unroll
  for (int p = 0; p < W / 64; ++p) tma_load(dst + p * (ROWS * 64), map, p * 64, row, slice, bar);
}

// Rows [c1, c1 + box rows) of a 64-column panel at column c0 of kv head c2 of batch c3 → dst
// (the K/V maps are 4-D: kv-load-tma.ts); completes on `bar` like tma_load.
__device__ __forceinline__ void tma_load4(T* dst, const TmaMap& map, int c0, int c1, int c2, int c3, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
      ::"r"(smem_addr(dst)), "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(bar))
      : "memory");
}

// A [ROWS][W] K/V tile (rows row.., kv head hkv, batch b) as W/64 panels of [ROWS][64].
template <int W, int ROWS>
__device__ __forceinline__ void tma_kv_panels(T* dst, const TmaMap& map, int row, int hkv, int b, uint64_t* bar) {
#pragma unroll
  for (int p = 0; p < W / 64; ++p) tma_load4(dst + p * (ROWS * 64), map, p * 64, row, hkv, b, bar);
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
// The producer arrives once per stage and announces the bytes its copies will complete.
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Waits until the barrier's phase of this parity has completed. The spin stays inside one asm
// block: a C++ loop around try_wait (e.g. with a timeout) kept ptxas from giving the consumers
// the registers setmaxnreg grants them (measured: 412 bytes of spills at 168 registers).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred p;\nWAIT_%=:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra WAIT_%=;\n}\n"
      ::"r"(smem_addr(bar)), "r"(parity)
      : "memory");
}
// Waits until at most N committed wgmma groups of this warpgroup are still running.
template <int N>
__device__ __forceinline__ void wg_wait() {
#if ATTNC_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Barrier 1 among the consumer threads alone (0 is __syncthreads, which the producer has left).
__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\n" ::"n"(CTHREADS) : "memory"); }

// Register reallocation between warpgroups (sm_90a; every warp of a warpgroup runs the same one).
template <int N>
__device__ __forceinline__ void regs_dec() {
#if ATTNC_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void regs_inc() {
#if ATTNC_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// cuTensorMapEncodeTiled by its C ABI (cuda.h enums are ints); CUresult 0 is success.
typedef int (*EncodeTiledFn)(TmaMap*, int, unsigned, void*, const unsigned long long*, const unsigned long long*,
                             const unsigned*, const unsigned*, int, int, int, int);

[[maybe_unused]] static int encode_kv_panels(EncodeTiledFn fn, TmaMap* map, const void* base, int width, int rows, int heads,
                            int batches, long long sn, long long sh, long long sb, int box_rows) {
  const unsigned long long dims[4] = {(unsigned long long)width, (unsigned long long)rows, (unsigned long long)heads,
                                      (unsigned long long)batches};
  const unsigned long long strides[3] = {(unsigned long long)sn * sizeof(T), (unsigned long long)sh * sizeof(T),
                                         (unsigned long long)sb * sizeof(T)};
  const unsigned box[4] = {64u, (unsigned)box_rows, 1u, 1u};
  const unsigned elem_strides[4] = {1u, 1u, 1u, 1u};
  return fn(map, 9, 4, const_cast<void*>(base), dims, strides, box, elem_strides, 0,
            3 /* 128B swizzle */, 3 /* L2 256B promotion */, 0 /* zero fill */);
}

// maps[0..2] = Q, K, V. With Nk = 0 no K/V tile is ever loaded, so their maps stay zero.
static const char* make_tma_maps(const Args& a, TmaMap* maps) {
  static EncodeTiledFn encode = nullptr;
  if (encode == nullptr) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr)
      return "the driver has no cuTensorMapEncodeTiled (TMA needs CUDA 12 and sm_90)";
    encode = reinterpret_cast<EncodeTiledFn>(fn);
  }
  memset(maps, 0, 3 * sizeof(TmaMap));
  if (encode_kv_panels(encode, &maps[0], a.q, D, a.Nq, a.H, a.B, a.q_stride_n, a.q_stride_h, a.q_stride_b, BQ) != 0) return "cannot describe q to the TMA unit (its strides must be multiples of 16 bytes)";
  if (a.Nk == 0) return nullptr;
  if (encode_kv_panels(encode, &maps[1], a.k, D, a.Nk, a.Hkv, a.B, a.k_stride_n, a.k_stride_h, a.k_stride_b, BK) != 0) return "cannot describe k to the TMA unit (its strides must be multiples of 16 bytes)";
  if (encode_kv_panels(encode, &maps[2], a.v, DV, a.Nk, a.Hkv, a.B, a.v_stride_n, a.v_stride_h, a.v_stride_b, BK) != 0) return "cannot describe v to the TMA unit (its strides must be multiples of 16 bytes)";
  return nullptr;
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) attnc_kivi__staged_attention(const Args a, const float qscale,
    const __grid_constant__ TmaMap tmq, const __grid_constant__ TmaMap tmk, const __grid_constant__ TmaMap tmv) {
#if !ATTNC_SM90A
  __trap(); // the compute_90 PTX image: no wgmma there
#endif
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // TMA writes and wgmma reads 128B-swizzled tiles: each starts on a 1024-byte boundary.
  T* Qs = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));
  T* Ks = Qs + BQ * D;              // [STAGES][BK][D], 64-wide panels
  T* Vs = Ks + STAGES * BK * D;     // [STAGES][BK][DV], 64-wide panels
  uint64_t* full_bar = reinterpret_cast<uint64_t*>(Vs + STAGES * BK * DV); // tile landed
  uint64_t* empty_bar = full_bar + STAGES; // every consumer warp is done with the buffer
  uint64_t* qbar = empty_bar + STAGES;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const int h = blockIdx.y, b = blockIdx.z, hkv = h / (a.H / a.Hkv);
  // Last q-tile first: under causal-like masks it has the most tiles, so the long blocks start
  // early and the short ones fill the tail of the grid.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;
  const int nkt = (a.Nk + BK - 1) / BK;
  (void)Qs; (void)Ks; (void)Vs; (void)lane; (void)g; (void)t4; (void)hkv; (void)nkt; (void)tmq; (void)tmk; (void)tmv;
  const int q_lo = a.q_offset + q0;
  const int q_hi = a.q_offset + min(q0 + BQ, a.Nq) - 1;
  if (tid == 0) {
#pragma unroll
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(&full_bar[i], 1);
      mbar_init(&empty_bar[i], CWARPS);
    }
    mbar_init(qbar, 1);
    // Visible to the other threads (the barrier below) and to the TMA unit (async proxy).
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    proxy_fence();
  }
  __syncthreads(); // the last CTA-wide barrier: the roles part here
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
  if (warp >= CWARPS) {
    regs_dec<40>();
    if (warp == CWARPS) {
      int st = 0;
      bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes
      unsigned ph = 0;
      if (lane == 0) {
        mbar_expect_tx(qbar, BQ * D * (int)sizeof(T));
        tma_kv_panels<D, BQ>(Qs, tmq, q0, h, b, qbar);
      }
      bool kt_full;
      for (int kt = next_tile(0, kt_full); kt < nkt; kt = next_tile(kt + 1, kt_full)) {
        if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);
        if (lane == 0) {
          mbar_expect_tx(&full_bar[st], BK * (D + DV) * (int)sizeof(T));
          tma_kv_panels<D, BK>(Ks + st * (BK * D), tmk, kt * BK, hkv, b, &full_bar[st]);
          tma_kv_panels<DV, BK>(Vs + st * (BK * DV), tmv, kt * BK, hkv, b, &full_bar[st]);
        }
        __syncwarp();
        if (++st == STAGES) {
          st = 0;
          ph ^= 1u;
          wrapped = true;
        }
      }
      (void)kt_full;
    }
  } else {
    regs_inc<232>();
    // This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.
    const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};
    (void)qpos_r;
    float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    // This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.
    const T* Qw = Qs + (warp / 4) * 64 * 64;
    // Only MASKED tiles (partial, or past Nk) test per element.
    auto tile = [&](auto masked, const int kt, const int st) {
      constexpr bool MASKED = decltype(masked)::value;
      const T* Kb = Ks + st * (BK * D);
      const T* Vb = Vs + st * (BK * DV);
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
      // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major.
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
    mbar_wait(qbar, 0);
    int st = 0;
    unsigned ph = 0;
    bool kt_full, nk_full;
    int kt = next_tile(0, kt_full);
    while (kt < nkt) {
      // Classify the next tile while this one is (or is still being) copied in.
      const int nk = next_tile(kt + 1, nk_full);
      mbar_wait(&full_bar[st], ph);
      const bool tail = (kt + 1) * BK > a.Nk;
      if (tail || !kt_full) tile(Flag<true>{}, kt, st);
      else tile(Flag<false>{}, kt, st); // full tile: no predicate
      // This warp's wgmmas have read the buffer (wait_group 0): hand it back to the producer.
      __syncwarp();
      if (lane == 0) mbar_arrive(&empty_bar[st]);
      if (++st == STAGES) {
        st = 0;
        ph ^= 1u;
      }
      kt = nk;
      kt_full = nk_full;
    }
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
}
} // namespace attnc_kivi__staged

// ---- host code: argument checks and launches ----
namespace attnc_kivi__staged {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_kivi__staged: ");
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
} // namespace attnc_kivi__staged

namespace attnc_kivi__staged {
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
#pragma unroll
  for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
    const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
    const bool ok = kj < t1;
    if (i < TILE * C) dec_cp<U>(dst + j * K_ROW + c * U, kg.row((ok ? kj : t0)) + c * (U / sizeof(T)), ok);
  }
}
__device__ __forceinline__ void fetch_v(const KvRows& vg, unsigned char* dst, int t0, int t1) {
  constexpr int U = 16, C = V_ROW / U;
#pragma unroll
  for (int n = 0; n < (TILE * C + THREADS - 1) / THREADS; ++n) {
    const int i = threadIdx.x + n * THREADS, j = i / C, c = i % C, kj = t0 + j;
    const bool ok = kj < t1;
    if (i < TILE * C) dec_cp<U>(dst + j * V_ROW + c * U, vg.row((ok ? kj : t0)) + c * (U / sizeof(T)), ok);
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
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)b * a.k_stride_b + (long long)hk * a.k_stride_h, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)b * a.v_stride_b + (long long)hk * a.v_stride_h, a.v_stride_n};
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
#pragma unroll
  for (int n = 0; n < (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS; ++n) {
    const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;
    const bool ok = kj < t1;
    if (i < MMA_TILE * C) dec_cp<16>(dst + j * PITCH + c * E, g.row((ok ? kj : t0)) + c * E, ok);
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
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)b * a.k_stride_b + (long long)hk * a.k_stride_h, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)b * a.v_stride_b + (long long)hk * a.v_stride_h, a.v_stride_n};
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
      dm_fetch<D, KP>(kg, ks + (it % MMA_STAGES) * MMA_TILE * KP, t0, t1);
      dm_fetch<DV, VP>(vg, vs + (it % MMA_STAGES) * MMA_TILE * VP, t0, t1);
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
} // namespace attnc_kivi__staged
// ---- decode: host side ----
namespace attnc_kivi__staged {
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
} // namespace attnc_kivi__staged

extern "C" const char* attnc_kivi__staged_last_error(void) { return attnc_kivi__staged::last_error; }

extern "C" void attnc_kivi__staged_args_init(AttncArgs_kivi__staged* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, sizeof *a);
  a->B = B; a->H = H; a->Hkv = Hkv; a->Nq = Nq; a->Nk = Nk;
  a->q_offset = Nk - Nq;
  a->k_offset = 0;
  a->scale = 1.0f / sqrtf(64.0f);
  a->k_stride_n = 64;
  a->k_stride_h = (long long)Nk * 64;
  a->k_stride_b = (long long)Hkv * (long long)Nk * 64;
  a->v_stride_n = 64;
  a->v_stride_h = (long long)Nk * 64;
  a->v_stride_b = (long long)Hkv * (long long)Nk * 64;
  a->q_stride_n = 64;
  a->q_stride_h = (long long)Nq * 64;
  a->q_stride_b = (long long)H * Nq * 64;
  a->out_stride_n = 64;
  a->out_stride_h = (long long)Nq * 64;
  a->out_stride_b = (long long)H * Nq * 64;
}

extern "C" int attnc_kivi__staged_launch(const AttncArgs_kivi__staged* args, cudaStream_t stream) {
  using attnc_kivi__staged::fail;
  using attnc_kivi__staged::ptr_ok;
  attnc_kivi__staged::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_kivi__staged& a = *args;
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
  if (a.k_stride_b < 0 || a.k_stride_h < 0 || a.k_stride_n < 0) return fail(ATTNC_ERR_ARGS, "k strides must be >= 0 (got k_stride_b = %lld, k_stride_h = %lld, k_stride_n = %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.Nk > 1 && a.k_stride_n < 64) return fail(ATTNC_ERR_ARGS, "k_stride_n (%lld) is smaller than a row of k (%d elements): its rows would overlap", a.k_stride_n, 64);
  if (a.k_stride_b % 8 || a.k_stride_h % 8 || a.k_stride_n % 8) return fail(ATTNC_ERR_ARGS, "k strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.v_stride_b < 0 || a.v_stride_h < 0 || a.v_stride_n < 0) return fail(ATTNC_ERR_ARGS, "v strides must be >= 0 (got v_stride_b = %lld, v_stride_h = %lld, v_stride_n = %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 1 && a.v_stride_n < 64) return fail(ATTNC_ERR_ARGS, "v_stride_n (%lld) is smaller than a row of v (%d elements): its rows would overlap", a.v_stride_n, 64);
  if (a.v_stride_b % 8 || a.v_stride_h % 8 || a.v_stride_n % 8) return fail(ATTNC_ERR_ARGS, "v strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.q_stride_b < 0 || a.q_stride_h < 0 || a.q_stride_n < 0) return fail(ATTNC_ERR_ARGS, "q strides must be >= 0 (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.q_stride_b % 8 || a.q_stride_h % 8 || a.q_stride_n % 8) return fail(ATTNC_ERR_ARGS, "q strides must be multiples of 8 elements, the kernel's vector loads (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.out_stride_b < 0 || a.out_stride_h < 0 || a.out_stride_n < 0) return fail(ATTNC_ERR_ARGS, "out strides must be >= 0 (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (!attnc_kivi__staged::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, 64)) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, 64] = [%d, %d, %d, 64])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);
  if (a.out_stride_b % 8 || a.out_stride_h % 8 || a.out_stride_n % 8) return fail(ATTNC_ERR_ARGS, "out strides must be multiples of 8 elements, the kernel's vector loads (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (attnc_kivi__staged::dec::wanted(a)) return attnc_kivi__staged::dec::launch(a, stream);
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_kivi__staged::LOG2E;
  const size_t smem = 82984;
  {
    const cudaError_t e = cudaFuncSetAttribute(attnc_kivi__staged::attnc_kivi__staged_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));
  }
  const dim3 grid((a.Nq + 127) / 128, a.H, a.B);
  attnc_kivi__staged::TmaMap tma[3];
  if (const char* why = attnc_kivi__staged::make_tma_maps(a, tma)) return fail(ATTNC_ERR_CUDA, "%s", why);
  attnc_kivi__staged::attnc_kivi__staged_attention<<<grid, 384, smem, stream>>>(a, qscale, tma[0], tma[1], tma[2]);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}

// ---- staged prefill: the dequant pass and its launcher (quant-stage.ts) ----
namespace attnc_kivi {
constexpr int STAGE_KCH = D / 8, STAGE_VCH = DV / 8;
constexpr int STAGE_CH = STAGE_KCH + STAGE_VCH;
constexpr int STAGE_RPB = STAGE_CH >= 256 ? 1 : 256 / STAGE_CH; // keys per block
// K and V rows of the launch, dequantized and narrowed to T, into the workspace (quant-stage.ts).
extern "C" __global__ void __launch_bounds__(STAGE_RPB * STAGE_CH) attnc_kivi_stage_kv(const Args a, T* kw, T* vw) {
  const int t = blockIdx.x * STAGE_RPB + threadIdx.x / STAGE_CH, c = threadIdx.x % STAGE_CH;
  if (t >= a.Nk) return;
  // (b, kv head) on grid z and y: B * Hkv may pass gridDim.y's 65535.
  const size_t bh = (size_t)blockIdx.z * a.Hkv + blockIdx.y, row = bh * (size_t)a.Nk + t;
  float v[8];
  if (c < STAGE_KCH) {
    const unsigned* wrow = static_cast<const unsigned*>(a.k) + row * ((D + 15) / 16);
    k_chunk8(a, wrow, row, t, c * 8, bh, v);
    dq_store8(kw + row * D + c * 8, v);
  }
  else {
    const int cv = c - STAGE_KCH;
    const unsigned* wrow = static_cast<const unsigned*>(a.v) + row * ((DV + 15) / 16);
    v_chunk8(a, wrow, row, t, cv * 8, bh, v);
    dq_store8(vw + row * DV + cv * 8, v);
  }
}
} // namespace attnc_kivi

extern "C" size_t attnc_kivi_workspace_bytes(const AttncArgs_kivi* args) {
  if (args == NULL) return 0;
  using attnc_kivi::D;
  using attnc_kivi::DV;
  const size_t rows = (size_t)args->B * (size_t)args->Hkv * (size_t)(args->Nk > 0 ? args->Nk : 0);
  return rows * (size_t)(D + DV) * sizeof(attnc_kivi::T);
}

extern "C" int attnc_kivi_dequantize_kv(const AttncArgs_kivi* args, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  using attnc_kivi::fail;
  using attnc_kivi::ptr_ok;
  using T = attnc_kivi::T;
  using attnc_kivi::D;
  using attnc_kivi::DV;
  attnc_kivi::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_kivi& a = *args;
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
  if (a.Nk == 0) return ATTNC_OK;
  if (!ptr_ok(a.q, 32) || !ptr_ok(a.out, 32) || (a.Nk > 0 && (!ptr_ok(a.k, 32) || !ptr_ok(a.v, 32))))
    return fail(ATTNC_ERR_ARGS, "q, k, v and out must be non-NULL and 32-byte aligned");
  if (a.Nk > 0 && a.k_scale == NULL) return fail(ATTNC_ERR_ARGS, "k_scale (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.k_zero == NULL) return fail(ATTNC_ERR_ARGS, "k_zero (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.k_recent == NULL) return fail(ATTNC_ERR_ARGS, "k_recent (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_scale == NULL) return fail(ATTNC_ERR_ARGS, "v_scale (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_zero == NULL) return fail(ATTNC_ERR_ARGS, "v_zero (a tensor of the quantized cache) must not be NULL");
  if (a.Nk > 0 && a.v_recent == NULL) return fail(ATTNC_ERR_ARGS, "v_recent (a tensor of the quantized cache) must not be NULL");
  if ((uintptr_t)a.lse % 4 != 0) return fail(ATTNC_ERR_ARGS, "lse must be 4-byte aligned (got %p)", (const void*)a.lse);
  if ((uintptr_t)a.k_scale % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_scale must be 2-byte aligned (got %p)", (const void*)a.k_scale);
  if ((uintptr_t)a.k_zero % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_zero must be 2-byte aligned (got %p)", (const void*)a.k_zero);
  if ((uintptr_t)a.k_recent % 2 != 0) return fail(ATTNC_ERR_ARGS, "k_recent must be 2-byte aligned (got %p)", (const void*)a.k_recent);
  if ((uintptr_t)a.v_scale % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_scale must be 2-byte aligned (got %p)", (const void*)a.v_scale);
  if ((uintptr_t)a.v_zero % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_zero must be 2-byte aligned (got %p)", (const void*)a.v_zero);
  if ((uintptr_t)a.v_recent % 2 != 0) return fail(ATTNC_ERR_ARGS, "v_recent must be 2-byte aligned (got %p)", (const void*)a.v_recent);
  const size_t need = attnc_kivi_workspace_bytes(args);
  if (workspace == NULL) return fail(ATTNC_ERR_ARGS, "workspace is NULL (this launch needs attnc_kivi_workspace_bytes(args) = %zu bytes)", need);
  if ((uintptr_t)workspace % 16 != 0) return fail(ATTNC_ERR_ARGS, "workspace must be 16-byte aligned (got %p)", workspace);
  if (workspace_bytes < need) return fail(ATTNC_ERR_ARGS, "workspace_bytes (%zu) is less than the %zu bytes this launch needs", workspace_bytes, need);
  T* kw = static_cast<T*>(workspace);
  T* vw = kw + (size_t)a.B * a.Hkv * a.Nk * D;
  const dim3 grid((a.Nk + attnc_kivi::STAGE_RPB - 1) / attnc_kivi::STAGE_RPB, a.Hkv, a.B);
  attnc_kivi::attnc_kivi_stage_kv<<<grid, attnc_kivi::STAGE_RPB * attnc_kivi::STAGE_CH, 0, stream>>>(a, kw, vw);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "dequant pass: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}

extern "C" int attnc_kivi_launch_staged(const AttncArgs_kivi* args, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  using attnc_kivi::fail;
  using T = attnc_kivi::T;
  using attnc_kivi::D;
  using attnc_kivi::DV;
  attnc_kivi::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_kivi& a = *args;
  // One query tile or less (decode, short chunks): the fused path reads each K/V tile about
  // once anyway, and validates everything itself.
  if (a.Nq <= 128 || a.Nk <= 0) return attnc_kivi_launch(args, stream);
  const int dq = attnc_kivi_dequantize_kv(args, workspace, workspace_bytes, stream);
  if (dq != ATTNC_OK) return dq;
  T* kw = static_cast<T*>(workspace);
  T* vw = kw + (size_t)a.B * a.Hkv * a.Nk * D;
  (void)vw;
  AttncArgs_kivi__staged t;
  attnc_kivi__staged_args_init(&t, a.B, a.H, a.Hkv, a.Nq, a.Nk); // packed strides for the workspace rows
  t.q = a.q;
  t.out = a.out;
  t.lse = a.lse;
  t.q_stride_b = a.q_stride_b;
  t.q_stride_h = a.q_stride_h;
  t.q_stride_n = a.q_stride_n;
  t.out_stride_b = a.out_stride_b;
  t.out_stride_h = a.out_stride_h;
  t.out_stride_n = a.out_stride_n;
  t.B = a.B;
  t.H = a.H;
  t.Hkv = a.Hkv;
  t.Nq = a.Nq;
  t.Nk = a.Nk;
  t.q_offset = a.q_offset;
  t.k_offset = a.k_offset;
  t.scale = a.scale;
  t.k = kw;
  t.v = vw;
  const int rc = attnc_kivi__staged_launch(&t, stream);
  return rc == ATTNC_OK ? ATTNC_OK : fail(rc, "%s", attnc_kivi__staged_last_error());
}
