// attnc kernel "biformer" for CUDA (sm_90a). Generated code: do not edit.
// build: nvcc -arch=sm_90a -std=c++17 --shared -Xcompiler -fPIC biformer.cu -o libbiformer.so
// source e7687482a2186fe7, schedule 9a3da93f5a5881f8
//   score: score
//   mask:  true
// schedule: blockQ=64 blockK=64 threads=128 D=64 Dv=64 bf16 summaryBlock=16 engine=wgmma stages=2
// mapping: core=wgmma instruction=wgmma.mma_async.m64nNk16.bf16 warpgroups=1 rowsPerWarpgroup=64 stages=2 swizzle=128B (64-wide panels) globalVectorElems=8
// tiles:
//   static: every tile is full
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

#ifndef ATTNC_BIFORMER_H
#define ATTNC_BIFORMER_H
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
 *   q, k, v, out 16-byte aligned; lse, indices 4-byte; route_scratch 16-byte (when not NULL).
 * Element offsets are 64-bit. */
typedef struct AttncArgs_biformer {
  const void* q; /* [B, H, Nq, 64] bf16 at q_stride_* (args_init: packed; any layout with a contiguous last dim) */
  const void* k; /* [B, Hkv, Nk, 64] bf16 as args_init's strides say (any layout the strides describe) */
  const void* v; /* [B, Hkv, Nk, 64] bf16 as args_init's strides say (any layout the strides describe) */
  void* out; /* [B, H, Nq, 64] bf16, written at out_stride_* (args_init: packed) */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  int* indices; /* int[B, H, Nq, top + 0 + 0], written: selected block ids (ascending, -1 padded) */
  float* route_scratch; /* scratch: attnc_biformer_route_scratch_elems() floats (pooled blocks) */
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
  int top; /* param i32, default 8 */
} AttncArgs_biformer;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_biformer_args_init(AttncArgs_biformer* args, int B, int H, int Hkv, int Nq, int Nk);
/* Floats of the route_scratch buffer (pooled keys and queries) for these sizes. */
size_t attnc_biformer_route_scratch_elems(const AttncArgs_biformer* args);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_biformer_launch(const AttncArgs_biformer* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_biformer_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_BIFORMER_H */

namespace attnc_biformer {
using Args = ::AttncArgs_biformer;
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

// ---- block routing: pool keys (and queries), rank, write `indices` ----
constexpr int RB = 64; // routing block size: key position p is in block floor(p / RB)
constexpr int ROUTE_UT = 4; // query units per top-k block
constexpr bool ROUTE_POOLED_Q = true;
__host__ __device__ __forceinline__ int route_floor_div(int x, int y) {
  const int t = x / y;
  return (t * y != x && ((x < 0) != (y < 0))) ? t - 1 : t;
}
// The counts k, first, local (64-bit: the launcher checks they are in [0, INT_MAX)).
__host__ __device__ __forceinline__ long long route_count(const Args& a, const int which) {
  return which == 0 ? (long long)a.top : which == 1 ? 0LL : 0LL;
}
__host__ __device__ __forceinline__ int route_cap(const Args& a) { return (int)(route_count(a, 0) + route_count(a, 1) + route_count(a, 2)); }
// G of indices [B, G, Nq, K], and the selection group a query head reads.
__host__ __device__ __forceinline__ int route_groups(const Args& a) { (void)a; return a.H; }
__host__ __device__ __forceinline__ int route_group(const Args& a, const int h) { (void)a; (void)h; return h; }
// Scratch strides: cdiv(N, RB) + 1 bounds the blocks a call of N positions touches.
__host__ __device__ __forceinline__ int route_nk_stride(const Args& a) { return (a.Nk + RB - 1) / RB + 1; }
__host__ __device__ __forceinline__ int route_nq_stride(const Args& a) { return (a.Nq + RB - 1) / RB + 1; }
__host__ __device__ __forceinline__ size_t route_q_base(const Args& a) { return (size_t)a.B * a.Hkv * route_nk_stride(a) * D; }
__host__ __device__ __forceinline__ size_t route_scratch_size(const Args& a) {
  return route_q_base(a) + (size_t)a.B * a.H * route_nq_stride(a) * D;
}
// Key blocks of the call: kb0 .. kb0 + nkb - 1; query units: blocks (pooled) or rows (raw).
__host__ __device__ __forceinline__ int route_kb0(const Args& a) { return route_floor_div(a.k_offset, RB); }
__host__ __device__ __forceinline__ int route_nkb(const Args& a) { return a.Nk > 0 ? route_floor_div(a.k_offset + a.Nk - 1, RB) - route_kb0(a) + 1 : 0; }
__host__ __device__ __forceinline__ int route_units(const Args& a) {
  if (!ROUTE_POOLED_Q) return a.Nq;
  return a.Nq > 0 ? route_floor_div(a.q_offset + a.Nq - 1, RB) - route_floor_div(a.q_offset, RB) + 1 : 0;
}
__host__ __device__ __forceinline__ size_t route_topk_smem(const Args& a) {
  return sizeof(float) * ((size_t)ROUTE_UT * D + (size_t)ROUTE_UT * route_nkb(a) * 1 + 2 * ROUTE_UT);
}

__device__ bool route_candidate(const Args& a, const int b, const int h, const int q_lo, const int q_hi, const int id) {
  const int k_lo = max(id * RB, a.k_offset), k_hi = min(id * RB + RB, a.k_offset + a.Nk) - 1;
  if (k_lo > k_hi) return false;
  (void)b; (void)h;
  return true;
}

// Pools the keys of block id0 + blockIdx.x (its rows present in the call), per head.
extern "C" __global__ void __launch_bounds__(128) attnc_biformer_route_pool_k(const Args a) {
  const int id = route_floor_div(a.k_offset, RB) + (int)blockIdx.x;
  const int p_lo = max(id * RB, a.k_offset), p_hi = min(id * RB + RB, a.k_offset + a.Nk);
  const int len = p_hi - p_lo;
  if (len <= 0) return;
  const size_t bh = (size_t)blockIdx.z * a.Hkv + blockIdx.y;
  const T* rows = static_cast<const T*>(a.k) + (bh * a.Nk + (p_lo - a.k_offset)) * D;
  const long long rs = D;
  float* dst = a.route_scratch + 0 + (bh * route_nk_stride(a) + blockIdx.x) * D;
  for (int d = threadIdx.x; d < D; d += 128) {
    float acc = 0.f;
    for (int p = 0; p < len; ++p) {
      const float x = to_f32(rows[p * rs + d]);
      acc += x;
    }
    dst[d] = acc / (float)len;
  }
}

// Pools the queries of block id0 + blockIdx.x (its rows present in the call), per head.
extern "C" __global__ void __launch_bounds__(128) attnc_biformer_route_pool_q(const Args a) {
  const int id = route_floor_div(a.q_offset, RB) + (int)blockIdx.x;
  const int p_lo = max(id * RB, a.q_offset), p_hi = min(id * RB + RB, a.q_offset + a.Nq);
  const int len = p_hi - p_lo;
  if (len <= 0) return;
  const size_t bh = (size_t)blockIdx.z * a.H + blockIdx.y;
  const T* rows = q_row(a, blockIdx.z, blockIdx.y, p_lo - a.q_offset);
  const long long rs = a.q_stride_n;
  float* dst = a.route_scratch + route_q_base(a) + (bh * route_nq_stride(a) + blockIdx.x) * D;
  for (int d = threadIdx.x; d < D; d += 128) {
    float acc = 0.f;
    for (int p = 0; p < len; ++p) {
      const float x = to_f32(rows[p * rs + d]);
      acc += x;
    }
    dst[d] = acc / (float)len;
  }
}

// One block per (ROUTE_UT query units, selection group g, batch b); 128 threads.
extern "C" __global__ void __launch_bounds__(128) attnc_biformer_route_topk(const Args a) {
  extern __shared__ float4 route_smem4[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
  const int g = blockIdx.y, b = blockIdx.z;
  const int U0 = blockIdx.x * ROUTE_UT, nu = min(ROUTE_UT, route_units(a) - U0);
  const int kb0 = route_kb0(a), nkb = route_nkb(a), cap = route_cap(a);
  float* qs = reinterpret_cast<float*>(route_smem4); // [ROUTE_UT][D] the units' query side, one voter
  float* met = qs + ROUTE_UT * D;                   // [ROUTE_UT][nkb] ranking metric, NaN = no candidate
  // Rows [r_lo, r_hi) of each unit, its positions q_lo..q_hi and its own block.
  int r_lo[ROUTE_UT], r_hi[ROUTE_UT], q_lo[ROUTE_UT], q_hi[ROUTE_UT], own[ROUTE_UT];
#pragma unroll
  for (int u = 0; u < ROUTE_UT; ++u) {
    if (ROUTE_POOLED_Q) {
      const int id = route_floor_div(a.q_offset, RB) + U0 + u;
      r_lo[u] = max(id * RB, a.q_offset) - a.q_offset;
      r_hi[u] = min(id * RB + RB, a.q_offset + a.Nq) - a.q_offset;
      own[u] = id;
    } else {
      r_lo[u] = U0 + u;
      r_hi[u] = U0 + u + 1;
      own[u] = route_floor_div(U0 + u + a.q_offset, RB);
    }
    q_lo[u] = r_lo[u] + a.q_offset;
    q_hi[u] = r_hi[u] - 1 + a.q_offset;
  }
  {
    const int h = g;
    __syncthreads(); // qs and the previous voter's arrays are free
    for (int i = tid; i < ROUTE_UT * D; i += blockDim.x) {
      const int u = i / D, d = i % D;
      float x = 0.f;
      if (u < nu) {
        const auto* src = a.route_scratch + route_q_base(a) + ((size_t)(b * a.H + h) * route_nq_stride(a) + (U0 + u)) * D;
        x = src[d];
      }
      qs[i] = x;
    }
    __syncthreads();
    for (int j = tid; j < nkb; j += blockDim.x) {
      const int id = kb0 + j;
      const float4* pk = reinterpret_cast<const float4*>(a.route_scratch + ((size_t)(b * a.Hkv + h / (a.H / a.Hkv)) * route_nk_stride(a) + j) * D);
      float dot[ROUTE_UT];
  #pragma unroll
      for (int u = 0; u < ROUTE_UT; ++u) dot[u] = 0.f;
  #pragma unroll 4
      for (int d4 = 0; d4 < D / 4; ++d4) {
        const float4 kv = pk[d4];
  #pragma unroll
        for (int u = 0; u < ROUTE_UT; ++u) {
          const float4 qv = reinterpret_cast<const float4*>(qs + u * D)[d4];
          dot[u] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, dot[u]))));
        }
      }
  #pragma unroll
      for (int u = 0; u < ROUTE_UT; ++u) {
        if (u >= nu) break;
        float m = a.scale * dot[u];
        if (isnan(m)) m = -INFINITY; // NaN ranks as -inf
        met[u * nkb + j] = route_candidate(a, b, h, q_lo[u], q_hi[u], id) ? m : NAN;
      }
    }
    __syncthreads();
  }
  __syncthreads();
  const long long c_first = route_count(a, 1), c_local = route_count(a, 2);
  int c_top = (int)route_count(a, 0);
  for (int u = warp; u < nu; u += nwarps) {
    float* mu = met + u * nkb;
    int* out = a.indices + ((size_t)(b * route_groups(a) + g) * a.Nq + r_lo[u]) * cap;
    int n = 0;
    // Forced blocks that are candidates, ascending; then out of the ranking.
    for (int j0 = 0; j0 < nkb; j0 += 32) {
      const int j = j0 + lane, id = kb0 + j;
      const bool forced = j < nkb && (id < c_first || (id > own[u] - c_local && id <= own[u]));
      const bool take = forced && !isnan(mu[j]);
      const unsigned bits = __ballot_sync(0xffffffffu, take);
      if (take) out[n + __popc(bits & ((1u << lane) - 1u))] = id;
      if (forced) mu[j] = NAN;
      n += __popc(bits);
    }
    __syncwarp();
    // Ranked blocks: k rounds of argmax in the order (metric desc, id asc).
    for (int round = 0; round < c_top; ++round) {
      float bm = 0.f;
      int bj = -1;
      for (int j = lane; j < nkb; j += 32) {
        const float x = mu[j];
        if (isnan(x)) continue;
        if (bj < 0 || x > bm) { bm = x; bj = j; } // j ascends: a tie keeps the lower id
      }
      for (int o = 16; o > 0; o >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, bm, o);
        const int oj = __shfl_xor_sync(0xffffffffu, bj, o);
        if (oj >= 0 && (bj < 0 || om > bm || (om == bm && oj < bj))) { bm = om; bj = oj; }
      }
      if (bj < 0) break; // no candidate left
      // Lane j % 32 alone reads mu[j]: it clears the taken entry, so no lane writes shared memory
      // another lane reads (racecheck's 280 hazards: lane 0 cleared it, ordered only by shuffles).
      if (lane == 0) out[n] = kb0 + bj;
      if (lane == (bj & 31)) mu[bj] = NAN;
      ++n;
      __syncwarp();
    }
    // Ascending order (insertion sort of at most cap ids), then -1 padding.
    if (lane == 0) {
      for (int i = 1; i < n; ++i) {
        const int x = out[i];
        int j = i;
        for (; j > 0 && out[j - 1] > x; --j) out[j] = out[j - 1];
        out[j] = x;
      }
    }
    __syncwarp();
    for (int i = n + lane; i < cap; i += 32) out[i] = -1;
    __syncwarp();
    // The other rows of the unit share the selection.
    for (int i = lane; i < (r_hi[u] - r_lo[u] - 1) * cap; i += 32) out[cap + i] = out[i % cap];
  }
}

// Id p of a row's selection (ascending, -1 padded), or INT_MAX past its end.
__device__ __forceinline__ int route_sel(const int* row, const int p, const int cap) {
  if (row == nullptr || p >= cap) return INT_MAX;
  const int v = __ldg(row + p);
  return v < 0 ? INT_MAX : v;
}
// Whether key position kpos (>= 0) lies in a block of `bits` (bit i: block kid0 + i).
__device__ __forceinline__ bool route_hit(const unsigned bits, const int kid0, const int kpos) {
  return (bits >> ((kpos / RB - kid0) & 31)) & 1u;
}
// The attention keeps its tile list after the core's own dynamic shared memory.
constexpr unsigned ROUTE_SMEM_OFF = 41984;

constexpr int BQ = 64, BK = 64, WARPS = 4, THREADS = WARPS * 32;
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

__device__ __forceinline__ void wg_qk(float (&d)[8][4], uint64_t a, uint64_t db) {
#if ATTNC_SM90A
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      :
        "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
        "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
        "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
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

extern "C" __global__ void __launch_bounds__(THREADS, 1) attnc_biformer_attention(const Args a, const float qscale) {
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
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)b * a.k_stride_b + (long long)hkv * a.k_stride_h, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)b * a.v_stride_b + (long long)hkv * a.v_stride_h, a.v_stride_n};
  const int nkt = (a.Nk + BK - 1) / BK;
  (void)kg; (void)vg; (void)b; (void)h; (void)g; (void)nkt;
  load_panel<D, BQ>(Qs, q_rows(a, b, h, q0), a.Nq - q0, tid);

  // This lane's rows: g and g + 8 of the warp's 16. Accumulators o[n] cover dv 8n..8n+7.
  const int row_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  const int qpos_r[2] = {row_r[0] + a.q_offset, row_r[1] + a.q_offset};
  (void)qpos_r;
  float o[DV / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;

  // Block routing: each row's selection (ascending block ids), walked as the k-tiles ascend.
  const int route_cap_ = route_cap(a);
  const int* route_row[2];
  int route_p[2], route_id[2];
  unsigned route_bits[2];
  int route_kid0 = 0;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = row_r[r];
    route_row[r] = i < a.Nq && route_cap_ > 0
        ? a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + i) * route_cap_
        : nullptr;
    route_p[r] = 0;
    route_id[r] = route_sel(route_row[r], 0, route_cap_);
    route_bits[r] = 0u;
  }
  (void)route_bits; (void)route_kid0;
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
        float y = x;
        if constexpr (MASKED) { if (kbase + kk >= a.Nk) y = -INFINITY; }
        /* predicate */
        if constexpr (MASKED) { if (!(route_hit(route_bits[r], route_kid0, kpos))) y = -INFINITY; }
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

  // Block routing: the k-tiles some row of this q-tile selected, one bit each in shared memory.
  extern __shared__ __align__(16) unsigned char route_dyn[];
  unsigned* route_tiles = reinterpret_cast<unsigned*>(route_dyn + ROUTE_SMEM_OFF);
  const int route_words = (nkt + 31) >> 5;
  unsigned* route_gaps = route_tiles + route_words;
  for (int w = tid; w < 2 * route_words; w += THREADS) route_tiles[w] = 0u;
  const int route_rows = min(BQ, a.Nq - (q0));
  // Uniform: every row of the q-tile is in one query unit, so all rows share one selection.
  const bool route_uni = route_rows > 0 && route_floor_div(q0 + a.q_offset, RB) == route_floor_div(q0 + route_rows - 1 + a.q_offset, RB);
  (void)route_uni;
  __syncthreads();
  {
    const int rq0 = q0, cap = route_cap(a), rows = min(BQ, a.Nq - rq0);
    const int* sel = a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + rq0) * cap;
    for (int i = tid; i < rows * cap; i += THREADS) {
      const int row = i / cap, p = i - row * cap;
      // Rows of one query unit share its selection: read the first row of each.
      if (row > 0 && route_floor_div(rq0 + row + a.q_offset, RB) == route_floor_div(rq0 + row - 1 + a.q_offset, RB)) continue;
      const int id = __ldg(sel + i);
      if (id < 0) continue;
      const int lo = max(id * RB, a.k_offset) - a.k_offset, hi = min(id * RB + RB, a.k_offset + a.Nk) - a.k_offset - 1;
      if (lo > hi) continue;
      for (int t = lo / BK; t <= hi / BK; ++t) atomicOr(&route_tiles[t >> 5], 1u << (t & 31));
      if (route_uni) {
        // The keys just outside the block: unselected unless the neighbouring block is (the
        // selection ascends, so that is the neighbouring entry). Their tiles are not covered.
        if (lo > 0 && (p == 0 || __ldg(sel + i - 1) != id - 1))
          atomicOr(&route_gaps[(lo - 1) / BK >> 5], 1u << ((lo - 1) / BK & 31));
        if (hi < a.Nk - 1 && (p + 1 == cap || __ldg(sel + i + 1) != id + 1))
          atomicOr(&route_gaps[(hi + 1) / BK >> 5], 1u << ((hi + 1) / BK & 31));
      }
    }
  }
  __syncthreads();
  // The first selected tile at or after kt (nkt if none).
  auto route_next = [&](const int kt) -> int {
    if (kt >= nkt) return nkt;
    int w = kt >> 5;
    unsigned bits = route_tiles[w] & (0xffffffffu << (kt & 31));
    while (bits == 0u) {
      if (++w >= route_words) return nkt;
      bits = route_tiles[w];
    }
    return min(nkt, (w << 5) + __ffs(bits) - 1);
  };
  // Selected tiles only; a tile the static mask empties is skipped too. Full (no predicate) only
  // for a uniform q-tile, a tile with no selection gap, and a tile the static mask makes full.
  auto next_tile = [&](int kt, bool& full) -> int {
    full = false;
    for (kt = route_next(kt); kt < nkt; kt = route_next(kt + 1)) {
      full = route_uni && true && !((route_gaps[kt >> 5] >> (kt & 31)) & 1u);
      return kt;
    }
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
    route_kid0 = (a.k_offset + kt * BK) / RB;
    {
      const int kid1 = (a.k_offset + min((kt + 1) * BK, a.Nk) - 1) / RB;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        while (route_id[r] < route_kid0) route_id[r] = route_sel(route_row[r], ++route_p[r], route_cap_);
        unsigned bits = 0u;
        for (int p = route_p[r], id = route_id[r]; id <= kid1; id = route_sel(route_row[r], ++p, route_cap_))
          bits |= 1u << (id - route_kid0);
        route_bits[r] = bits;
      }
    }
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
} // namespace attnc_biformer

// ---- host code: argument checks and launches ----
namespace attnc_biformer {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_biformer: ");
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
} // namespace attnc_biformer

extern "C" const char* attnc_biformer_last_error(void) { return attnc_biformer::last_error; }

extern "C" void attnc_biformer_args_init(AttncArgs_biformer* a, int B, int H, int Hkv, int Nq, int Nk) {
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
  a->top = 8;
}

extern "C" size_t attnc_biformer_route_scratch_elems(const AttncArgs_biformer* args) {
  return attnc_biformer::route_scratch_size(*args);
}

extern "C" int attnc_biformer_launch(const AttncArgs_biformer* args, cudaStream_t stream) {
  using attnc_biformer::fail;
  using attnc_biformer::ptr_ok;
  attnc_biformer::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_biformer& a = *args;
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
  if ((uintptr_t)a.indices % 4 != 0) return fail(ATTNC_ERR_ARGS, "indices must be 4-byte aligned (got %p)", (const void*)a.indices);
  if ((uintptr_t)a.route_scratch % 16 != 0) return fail(ATTNC_ERR_ARGS, "route_scratch must be 16-byte aligned (got %p)", (const void*)a.route_scratch);
  if (a.k_stride_b < 0 || a.k_stride_h < 0 || a.k_stride_n < 0) return fail(ATTNC_ERR_ARGS, "k strides must be >= 0 (got k_stride_b = %lld, k_stride_h = %lld, k_stride_n = %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.Nk > 1 && a.k_stride_n < 64) return fail(ATTNC_ERR_ARGS, "k_stride_n (%lld) is smaller than a row of k (%d elements): its rows would overlap", a.k_stride_n, 64);
  if (a.k_stride_b % 8 || a.k_stride_h % 8 || a.k_stride_n % 8) return fail(ATTNC_ERR_ARGS, "k strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.Nk > 0 && !(a.k_stride_n == 64 && a.k_stride_h == (long long)a.Nk * 64 && a.k_stride_b == (long long)a.Hkv * a.Nk * 64)) return fail(ATTNC_ERR_ARGS, "this kernel needs k packed [B, Hkv, Nk, %d] (its routing pass reads keys by their packed rows); pass args_init's strides", 64);
  if (a.v_stride_b < 0 || a.v_stride_h < 0 || a.v_stride_n < 0) return fail(ATTNC_ERR_ARGS, "v strides must be >= 0 (got v_stride_b = %lld, v_stride_h = %lld, v_stride_n = %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 1 && a.v_stride_n < 64) return fail(ATTNC_ERR_ARGS, "v_stride_n (%lld) is smaller than a row of v (%d elements): its rows would overlap", a.v_stride_n, 64);
  if (a.v_stride_b % 8 || a.v_stride_h % 8 || a.v_stride_n % 8) return fail(ATTNC_ERR_ARGS, "v strides must be multiples of 8 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 0 && !(a.v_stride_n == 64 && a.v_stride_h == (long long)a.Nk * 64 && a.v_stride_b == (long long)a.Hkv * a.Nk * 64)) return fail(ATTNC_ERR_ARGS, "this kernel needs v packed [B, Hkv, Nk, %d] (its routing pass reads keys by their packed rows); pass args_init's strides", 64);
  if (a.q_stride_b < 0 || a.q_stride_h < 0 || a.q_stride_n < 0) return fail(ATTNC_ERR_ARGS, "q strides must be >= 0 (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.q_stride_b % 8 || a.q_stride_h % 8 || a.q_stride_n % 8) return fail(ATTNC_ERR_ARGS, "q strides must be multiples of 8 elements, the kernel's vector loads (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.out_stride_b < 0 || a.out_stride_h < 0 || a.out_stride_n < 0) return fail(ATTNC_ERR_ARGS, "out strides must be >= 0 (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (!attnc_biformer::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, 64)) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, 64] = [%d, %d, %d, 64])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);
  if (a.out_stride_b % 8 || a.out_stride_h % 8 || a.out_stride_n % 8) return fail(ATTNC_ERR_ARGS, "out strides must be multiples of 8 elements, the kernel's vector loads (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  for (int c = 0; c < 3; ++c) {
    const long long n = attnc_biformer::route_count(a, c);
    if (n < 0 || n > (1 << 20)) return fail(ATTNC_ERR_ARGS, "routing count %s is %lld, must be in [0, 2^20]", c == 0 ? "topk" : c == 1 ? "first" : "local", n);
  }
  if (a.k_offset < 0) return fail(ATTNC_ERR_ARGS, "routing needs key positions >= 0 (k_offset = %d)", a.k_offset);
  if ((long long)a.B * attnc_biformer::route_groups(a) * a.Nq * attnc_biformer::route_cap(a) > 0 && a.indices == NULL) return fail(ATTNC_ERR_ARGS, "indices is NULL (int[B, H, Nq, top + 0 + 0])");
  if (a.Nk > 0 && a.route_scratch == NULL) return fail(ATTNC_ERR_ARGS, "route_scratch is NULL (attnc_biformer_route_scratch_elems() floats)");
  // Block routing: pool, then rank (indices), then the attention reads the selection.
  if (a.Nk > 0) {
    const int nb = attnc_biformer::route_floor_div(a.k_offset + a.Nk - 1, attnc_biformer::RB) - attnc_biformer::route_floor_div(a.k_offset, attnc_biformer::RB) + 1;
    attnc_biformer::attnc_biformer_route_pool_k<<<dim3(nb, a.Hkv, a.B), 128, 0, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_pool_k: %s", cudaGetErrorString(e));
  }
  if (a.Nq > 0) {
    const int nb = attnc_biformer::route_floor_div(a.q_offset + a.Nq - 1, attnc_biformer::RB) - attnc_biformer::route_floor_div(a.q_offset, attnc_biformer::RB) + 1;
    attnc_biformer::attnc_biformer_route_pool_q<<<dim3(nb, a.H, a.B), 128, 0, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_pool_q: %s", cudaGetErrorString(e));
  }
  if (attnc_biformer::route_units(a) > 0 && attnc_biformer::route_cap(a) > 0) {
    const size_t rsmem = attnc_biformer::route_topk_smem(a);
    if (rsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: %d key blocks need %zu bytes of top-k shared memory, the limit is 232448", attnc_biformer::route_nkb(a), rsmem);
    if (rsmem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(attnc_biformer::attnc_biformer_route_topk, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem);
      if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: cannot reserve %zu bytes of shared memory: %s", rsmem, cudaGetErrorString(e));
    }
    const dim3 rgrid((attnc_biformer::route_units(a) + attnc_biformer::ROUTE_UT - 1) / attnc_biformer::ROUTE_UT, attnc_biformer::route_groups(a), a.B);
    attnc_biformer::attnc_biformer_route_topk<<<rgrid, 128, rsmem, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: %s", cudaGetErrorString(e));
  }
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_biformer::LOG2E;
  const size_t smem = attnc_biformer::ROUTE_SMEM_OFF + 8 * (size_t)(((a.Nk + 63) / 64 + 31) / 32);
  if (smem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: Nk = %d needs %zu bytes of attention shared memory, the limit is 232448", a.Nk, smem);
  if (smem > 44 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(attnc_biformer::attnc_biformer_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));
  }
  const dim3 grid((a.Nq + 63) / 64, a.H, a.B);
  attnc_biformer::attnc_biformer_attention<<<grid, 128, smem, stream>>>(a, qscale);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}
