// attnc kernel "cca" for CUDA (sm_90a). Generated code: do not edit.
// build: nvcc -arch=sm_90a -std=c++17 --shared -Xcompiler -fPIC cca.cu -o libcca.so
// source b1dc341f77aa67c8, schedule ea44b26ca921b928
//   score: score
//   mask:  (ge q k)
// schedule: blockQ=64 blockK=64 threads=128 D=64 Dv=64 f32 summaryBlock=16
// mapping: core=simt rowsPerThread=4 threadsPerRow=8 smemVectorWidth=4 keysPerSoftmaxStep=8 globalVectorElems=4
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

#ifndef ATTNC_CCA_H
#define ATTNC_CCA_H
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
typedef struct AttncArgs_cca {
  const void* q; /* [B, H, Nq, 64] f32 at q_stride_* (args_init: packed; any layout with a contiguous last dim) */
  const void* k; /* [B, Hkv, Nk, 64] f32 as args_init's strides say (any layout the strides describe) */
  const void* v; /* [B, Hkv, Nk, 64] f32 as args_init's strides say (any layout the strides describe) */
  void* out; /* [B, H, Nq, 64] f32, written at out_stride_* (args_init: packed) */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  int* indices; /* int[B, H, Nq, top + 0 + 2], written: selected block ids (ascending, -1 padded) */
  float* route_scratch; /* scratch: attnc_cca_route_scratch_elems() floats (pooled blocks) */
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
  int top; /* param i32, default 16 */
} AttncArgs_cca;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_cca_args_init(AttncArgs_cca* args, int B, int H, int Hkv, int Nq, int Nk);
/* Floats of the route_scratch buffer (pooled keys and queries) for these sizes. */
size_t attnc_cca_route_scratch_elems(const AttncArgs_cca* args);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_cca_launch(const AttncArgs_cca* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_cca_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_CCA_H */

namespace attnc_cca {
using Args = ::AttncArgs_cca;
typedef float T; // storage type of q, k, v, out (f32); all arithmetic is f32
constexpr int D = 64, DV = 64;
constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;
__device__ __forceinline__ float to_f32(T x) { return x; }
__device__ __forceinline__ T from_f32(float x) { return x; }

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
constexpr int RB = 32; // routing block size: key position p is in block floor(p / RB)
constexpr int ROUTE_UT = 16; // query units per top-k block
constexpr bool ROUTE_POOLED_Q = false;
__host__ __device__ __forceinline__ int route_floor_div(int x, int y) {
  const int t = x / y;
  return (t * y != x && ((x < 0) != (y < 0))) ? t - 1 : t;
}
// The counts k, first, local (64-bit: the launcher checks they are in [0, INT_MAX)).
__host__ __device__ __forceinline__ long long route_count(const Args& a, const int which) {
  return which == 0 ? (long long)a.top : which == 1 ? 0LL : 2LL;
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
  return route_q_base(a);
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
  const bool c0 = q_hi >= k_lo;
  const bool c1 = q_lo < k_hi;
  if (!(c0)) return false;
  if (!(c1)) return true;
  // Partial: look for one allowed pair.
  for (int q = q_lo; q <= q_hi; ++q)
    for (int kp = k_lo; kp <= k_hi; ++kp) {
      const bool m0 = q >= kp;
      if (m0) return true;
    }
  return false;
}

// Pools the keys of block id0 + blockIdx.x (its rows present in the call), per head.
extern "C" __global__ void __launch_bounds__(128) attnc_cca_route_pool_k(const Args a) {
  const int id = route_floor_div(a.k_offset, RB) + (int)blockIdx.x;
  const int p_lo = max(id * RB, a.k_offset), p_hi = min(id * RB + RB, a.k_offset + a.Nk);
  const int len = p_hi - p_lo;
  if (len <= 0) return;
  const size_t bh = (size_t)blockIdx.z * a.Hkv + blockIdx.y;
  const T* rows = static_cast<const T*>(a.k) + (bh * a.Nk + (p_lo - a.k_offset)) * D;
  const long long rs = D;
  float* dst = a.route_scratch + 0 + (bh * route_nk_stride(a) + blockIdx.x) * D;
  for (int d = threadIdx.x; d < D; d += 128) {
    float acc = -INFINITY;
    for (int p = 0; p < len; ++p) {
      const float x = to_f32(rows[p * rs + d]);
      acc = fmaxf(acc, x);
    }
    dst[d] = acc;
  }
}

// One block per (ROUTE_UT query units, selection group g, batch b); 128 threads.
extern "C" __global__ void __launch_bounds__(128) attnc_cca_route_topk(const Args a) {
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
        const auto* src = q_row(a, b, h, r_lo[u]);
        x = to_f32(src[d]);
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
constexpr unsigned ROUTE_SMEM_OFF = 32768;

// ---- token-granular routed attention, simt form (token-attn.ts) ----
constexpr int TOK_WARPS = 1; // warps per block, each on its own 16 rows
constexpr int TOK_BK = 16; // keys per staged tile
constexpr int TOK_THREADS = 32 * TOK_WARPS;
// Key index (0 .. Nk-1) of the last key of block id in the call (may be < 0: before the call).
__device__ __forceinline__ long long tok_last_key(const Args& a, const int id) {
  return min((long long)id * RB + RB, (long long)a.k_offset + a.Nk) - a.k_offset - 1;
}
// The first tile at or after kt holding a key of block id (INT_MAX: no id).
__device__ __forceinline__ int tok_tile_of(const Args& a, const int id, const int kt) {
  if (id == INT_MAX) return INT_MAX;
  const long long lo = max((long long)id * RB, (long long)a.k_offset) - a.k_offset;
  return (int)max((long long)kt, min(lo / TOK_BK, (long long)INT_MAX));
}
__device__ __forceinline__ int tok_warp_min(int v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
// Floats of one warp: q rows [16][D], K [TOK_BK][D], V [TOK_BK][DV], P [16][TOK_BK].
constexpr int TOK_WARP_FLOATS = 16 * D + TOK_BK * (D + DV) + 16 * TOK_BK;
constexpr int TOK_OC = (DV + 3) / 4; // output columns per thread: t4 + 4u
__host__ __device__ __forceinline__ size_t tok_smem_bytes() {
  return (size_t)TOK_WARPS * (sizeof(float) * TOK_WARP_FLOATS);
}

extern "C" __global__ void __launch_bounds__(TOK_THREADS) attnc_cca_token_attn(const Args a, const float qscale) {
  extern __shared__ __align__(16) unsigned char tok_smem[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, gq = lane / 4, t4 = lane % 4;
  const int hkv = blockIdx.y, b = blockIdx.z;
  // This thread's two rows: query position, head, selection row and cursor.
  const int cap = route_cap(a), G = a.H / a.Hkv;
  const long long rows_all = (long long)a.Nq * G;
  int row_i[2], row_q[2], row_h[2], tok_p[2], tok_id[2];
  bool row_ok[2];
  const int* tok_row[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const long long R = ((long long)blockIdx.x * TOK_WARPS + warp) * 16 + gq + 8 * rr;
    row_ok[rr] = R < rows_all;
    row_i[rr] = row_ok[rr] ? (int)(R / G) : 0;
    row_h[rr] = hkv * G + (row_ok[rr] ? (int)(R % G) : 0);
    row_q[rr] = row_i[rr] + a.q_offset;
    tok_row[rr] = row_ok[rr] && cap > 0
        ? a.indices + ((size_t)(b * route_groups(a) + route_group(a, row_h[rr])) * a.Nq + row_i[rr]) * cap
        : nullptr;
    tok_p[rr] = 0;
    tok_id[rr] = route_sel(tok_row[rr], 0, cap);
  }
  float* Qs = reinterpret_cast<float*>(tok_smem) + (size_t)warp * TOK_WARP_FLOATS;
  float* Ks = Qs + 16 * D;
  float* Vs = Ks + TOK_BK * D;
  float* Ps = Vs + TOK_BK * DV;
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)b * a.k_stride_b + (long long)hkv * a.k_stride_h, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)b * a.v_stride_b + (long long)hkv * a.v_stride_h, a.v_stride_n};
  for (int c = lane; c < 16 * D; c += 32) {
    const long long R = ((long long)blockIdx.x * TOK_WARPS + warp) * 16 + c / D;
    const int i = R < rows_all ? (int)(R / G) : 0, h = hkv * G + (R < rows_all ? (int)(R % G) : 0);
    const T* qrow = q_row(a, b, h, i);
    Qs[c] = R < rows_all ? to_f32(qrow[c % D]) : 0.f;
  }
  float o[2][TOK_OC];
#pragma unroll
  for (int u = 0; u < TOK_OC; ++u) o[0][u] = o[1][u] = 0.f;
  __syncwarp();
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int nkt = (a.Nk + TOK_BK - 1) / TOK_BK;
  int kt = tok_warp_min(min(tok_tile_of(a, tok_id[0], 0), tok_tile_of(a, tok_id[1], 0)));
#pragma unroll 1
  while (kt < nkt) {
    const int kbase = kt * TOK_BK;
    for (int c = lane; c < TOK_BK * D; c += 32)
      Ks[c] = kbase + c / D < a.Nk ? to_f32(kg.row(kbase + c / D)[c % D]) : 0.f;
    for (int c = lane; c < TOK_BK * DV; c += 32)
      Vs[c] = kbase + c / DV < a.Nk ? to_f32(vg.row(kbase + c / DV)[c % DV]) : 0.f;
    __syncwarp();
    // Each row's selected blocks among the tile's (bit i: block kid0 + i; at most 32, token-form.ts).
    const int kid0 = (a.k_offset + kbase) / RB, kid1 = (a.k_offset + min(kbase + TOK_BK, a.Nk) - 1) / RB;
    unsigned tok_bits[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      while (tok_id[rr] < kid0) tok_id[rr] = route_sel(tok_row[rr], ++tok_p[rr], cap);
      unsigned bits = 0u;
      for (int pp = tok_p[rr], id = tok_id[rr]; id <= kid1; id = route_sel(tok_row[rr], ++pp, cap))
        bits |= 1u << (id - kid0);
      tok_bits[rr] = bits;
    }
    float s[TOK_BK / 8][4];
#pragma unroll
    for (int j = 0; j < TOK_BK / 8; ++j)
#pragma unroll
      for (int ee = 0; ee < 4; ++ee) {
        const float* qv = Qs + (gq + 8 * (ee >> 1)) * D;
        const float* kv = Ks + (j * 8 + 2 * t4 + (ee & 1)) * D;
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc = fmaf(qv[d], kv[d], acc);
        s[j][ee] = acc;
      }
#pragma unroll
    for (int j = 0; j < TOK_BK / 8; ++j)
#pragma unroll
      for (int ee = 0; ee < 4; ++ee) {
        const int r = ee >> 1, kidx = kbase + j * 8 + 2 * t4 + (ee & 1);
        const int kpos = a.k_offset + kidx, qpos = row_q[r], h = row_h[r];
        (void)qpos; (void)h; (void)r;
        const float x = s[j][ee] * qscale;
        const bool e0 = qpos >= kpos;
        float y = x;
        if (kidx >= a.Nk || !route_hit(tok_bits[r], kid0, kpos) || !(e0)) y = -INFINITY;
        s[j][ee] = y;
      }
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float mx = m[rr];
#pragma unroll
      for (int j = 0; j < TOK_BK / 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // A row with nothing allowed yet keeps m = -inf; `base` keeps exp2 away from inf - inf.
      const float base = mx == -INFINITY ? 0.f : mx;
      const float alpha = exp2f(m[rr] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < TOK_BK / 8; ++j)
#pragma unroll
        for (int e1 = 0; e1 < 2; ++e1) {
          s[j][2 * rr + e1] = exp2f(s[j][2 * rr + e1] - base);
          sum += s[j][2 * rr + e1];
        }
      m[rr] = mx;
      l[rr] = l[rr] * alpha + sum; // this thread's columns; the quad sums at the end
#pragma unroll
      for (int u = 0; u < TOK_OC; ++u) o[rr][u] *= alpha;
    }
#pragma unroll
    for (int j = 0; j < TOK_BK / 8; ++j)
#pragma unroll
      for (int ee = 0; ee < 4; ++ee) Ps[(gq + 8 * (ee >> 1)) * TOK_BK + j * 8 + 2 * t4 + (ee & 1)] = s[j][ee];
    __syncwarp();
#pragma unroll
    for (int rr = 0; rr < 2; ++rr)
#pragma unroll
      for (int u = 0; u < TOK_OC; ++u) {
        const int c = t4 + 4 * u;
        if (c >= DV) continue;
        const float* p = Ps + (gq + 8 * rr) * TOK_BK;
        float acc = o[rr][u];
        for (int key = 0; key < TOK_BK; ++key) acc = fmaf(p[key], Vs[key * DV + c], acc);
        o[rr][u] = acc;
      }
    // Past the blocks that end in this tile; the next tile is the first one a row still needs.
    int next = INT_MAX;
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      while (tok_id[rr] != INT_MAX && tok_last_key(a, tok_id[rr]) < kbase + TOK_BK)
        tok_id[rr] = route_sel(tok_row[rr], ++tok_p[rr], cap);
      next = min(next, tok_tile_of(a, tok_id[rr], kt + 1));
    }
    kt = tok_warp_min(next);
    __syncwarp(); // the staged tile is no longer read
  }

  // out = o / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf); NaN stays NaN.
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
    if (!row_ok[rr]) continue;
    const size_t row = (size_t)(b * a.H + row_h[rr]) * a.Nq + row_i[rr]; // lse stays packed
    const float inv = l[rr] == 0.f ? 0.f : 1.f / l[rr];
    T* orow = out_row(a, b, row_h[rr], row_i[rr]);
#pragma unroll
    for (int u = 0; u < TOK_OC; ++u)
      if (t4 + 4 * u < DV) orow[t4 + 4 * u] = from_f32(o[rr][u] * inv);
    if (a.lse != nullptr && t4 == 0) a.lse[row] = l[rr] == 0.f ? -INFINITY : (m[rr] + log2f(l[rr])) * LN2;
  }
}
// ---- end of the token-granular attention ----

constexpr int BQ = 64, BK = 64, THREADS = 128;
constexpr int ROWS = 4, TPR = 8, VW = 4, KC = 8, GV = 4;
constexpr unsigned LANES = THREADS >= 32 ? 0xffffffffu : ((1u << THREADS) - 1u);
static_assert(BQ == ROWS * (THREADS / TPR), "rows x groups must cover the q tile");

template <int N>
__device__ __forceinline__ void ld_smem(float (&dst)[N], const float* src) {
  if constexpr (N == 4) {
    const float4 t = *reinterpret_cast<const float4*>(src);
    dst[0] = t.x; dst[1] = t.y; dst[2] = t.z; dst[3] = t.w;
  } else if constexpr (N == 2) {
    const float2 t = *reinterpret_cast<const float2*>(src);
    dst[0] = t.x; dst[1] = t.y;
  } else {
    dst[0] = src[0];
  }
}

// Stages rows [kt*BK, kt*BK + BK) of a [Nk, W] matrix as f32; rows past Nk read 0. Fully
// unrolled so every thread has all its loads in flight before the first store.
template <int W>
__device__ __forceinline__ void load_tile(float* dst, const KvRows& src, int kt, int Nk, int tid) {
  constexpr int PER_ROW = W / GV, TOTAL = BK * PER_ROW, ITERS = (TOTAL + THREADS - 1) / THREADS;
  VecT<GV> x[ITERS];
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, j = idx / PER_ROW, c = idx % PER_ROW, key = kt * BK + j;
    if (idx < TOTAL && key < Nk) x[it] = *reinterpret_cast<const VecT<GV>*>(src.row(key) + c * GV);
    else x[it] = VecT<GV>::zero();
  }
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS;
    if (idx < TOTAL) store_f32(dst + idx * GV, x[it]);
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) attnc_cca_attention(const Args a, const float qscale) {
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4); // [BK][D]
  float* Vs = Ks + BK * D;                      // [BK][DV]
  const int tid = threadIdx.x, g = tid % TPR;
  const int row0 = blockIdx.x * BQ + (tid / TPR) * ROWS;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hkv = h / (a.H / a.Hkv);
  const KvRows kg = KvRows{static_cast<const T*>(a.k) + (long long)b * a.k_stride_b + (long long)hkv * a.k_stride_h, a.k_stride_n};
  const KvRows vg = KvRows{static_cast<const T*>(a.v) + (long long)b * a.v_stride_b + (long long)hkv * a.v_stride_h, a.v_stride_n};
  (void)kg; (void)vg; (void)b; (void)h;

  // This lane's dims (chunks g, g+TPR, … of VW) of each of its rows: q pre-scaled, accumulators.
  float qr[ROWS][D / TPR], acc[ROWS][DV / TPR], m[ROWS], l[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int i = row0 + r;
    const T* qrow = q_row(a, b, h, i);
#pragma unroll
    for (int t = 0; t < D / (VW * TPR); ++t) {
      const VecT<VW> x = i < a.Nq ? *reinterpret_cast<const VecT<VW>*>(qrow + VW * (g + TPR * t)) : VecT<VW>::zero();
#pragma unroll
      for (int u = 0; u < VW; ++u) qr[r][t * VW + u] = to_f32(x.v[u]) * qscale;
    }
#pragma unroll
    for (int d = 0; d < DV / TPR; ++d) acc[r][d] = 0.f;
    m[r] = -INFINITY;
    l[r] = 0.f;
  }

  // Block routing: each row's selection (ascending block ids), walked as the k-tiles ascend.
  const int route_cap_ = route_cap(a);
  const int* route_row[ROWS];
  int route_p[ROWS], route_id[ROWS];
  unsigned route_bits[ROWS];
  int route_kid0 = 0;
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int i = row0 + r;
    route_row[r] = i < a.Nq && route_cap_ > 0
        ? a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + i) * route_cap_
        : nullptr;
    route_p[r] = 0;
    route_id[r] = route_sel(route_row[r], 0, route_cap_);
    route_bits[r] = 0u;
  }
  (void)route_bits; (void)route_kid0;
  // One K/V tile in shared memory: scores, modifier, mask, online softmax, P·V. Only MASKED
  // tiles test the mask per element; TAIL tiles drop keys past Nk.
  auto tile = [&](auto masked, auto tail_flag, const int kt) {
    constexpr bool MASKED = decltype(masked)::value;
    constexpr bool TAIL = decltype(tail_flag)::value;
    (void)MASKED;
    const int kbase = kt * BK;
#pragma unroll 1
    for (int c0 = 0; c0 < BK; c0 += KC) {
      float s[ROWS][KC];
#pragma unroll
      for (int jj = 0; jj < KC; ++jj) {
        const float* krow = Ks + (c0 + jj) * D;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) s[r][jj] = 0.f;
#pragma unroll
        for (int t = 0; t < D / (VW * TPR); ++t) {
          float kv[VW];
          ld_smem<VW>(kv, krow + VW * (g + TPR * t));
#pragma unroll
          for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int u = 0; u < VW; ++u) s[r][jj] = fmaf(qr[r][t * VW + u], kv[u], s[r][jj]);
        }
      }
      // Each lane holds a partial dot over its dims; the xor butterfly leaves the sum in all lanes.
#pragma unroll
      for (int off = TPR / 2; off > 0; off >>= 1)
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
          for (int jj = 0; jj < KC; ++jj) s[r][jj] += __shfl_xor_sync(LANES, s[r][jj], off);
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const int qpos = row0 + r + a.q_offset;
        (void)qpos;
#pragma unroll
        for (int jj = 0; jj < KC; ++jj) {
          const int kk = c0 + jj;
          const int kpos = a.k_offset + kbase + kk;
          (void)kpos; // a mask that never reads k
          const float x = s[r][jj];
          const bool e0 = qpos >= kpos;
          float y = x;
          if constexpr (TAIL) { if (kbase + kk >= a.Nk) y = -INFINITY; }
          /* predicate */
          if constexpr (MASKED) { if (!(route_hit(route_bits[r], route_kid0, kpos) && (e0))) y = -INFINITY; }
          s[r][jj] = y;
        }
        // Online softmax over this chunk (base 2). A row with nothing allowed yet keeps m = -inf;
        // `base` keeps exp2 away from inf - inf.
        float mx = m[r];
#pragma unroll
        for (int jj = 0; jj < KC; ++jj) mx = fmaxf(mx, s[r][jj]);
        const float base = mx == -INFINITY ? 0.f : mx;
        const float alpha = exp2f(m[r] - base);
        float sum = 0.f;
#pragma unroll
        for (int jj = 0; jj < KC; ++jj) {
          s[r][jj] = exp2f(s[r][jj] - base);
          sum += s[r][jj];
        }
        m[r] = mx;
        l[r] = l[r] * alpha + sum;
#pragma unroll
        for (int d = 0; d < DV / TPR; ++d) acc[r][d] *= alpha;
      }
#pragma unroll
      for (int jj = 0; jj < KC; ++jj) {
        const float* vrow = Vs + (c0 + jj) * DV;
#pragma unroll
        for (int t = 0; t < DV / (VW * TPR); ++t) {
          float vv[VW];
          ld_smem<VW>(vv, vrow + VW * (g + TPR * t));
#pragma unroll
          for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int u = 0; u < VW; ++u) acc[r][t * VW + u] = fmaf(s[r][jj], vv[u], acc[r][t * VW + u]);
        }
      }
    }
  };

  const int nkt = (a.Nk + BK - 1) / BK;
  const int q_lo = a.q_offset + blockIdx.x * BQ;
  const int q_hi = a.q_offset + min((int)(blockIdx.x + 1) * BQ, a.Nq) - 1;
  // Block routing: the k-tiles some row of this q-tile selected, one bit each in shared memory.
  extern __shared__ __align__(16) unsigned char route_dyn[];
  unsigned* route_tiles = reinterpret_cast<unsigned*>(route_dyn + ROUTE_SMEM_OFF);
  const int route_words = (nkt + 31) >> 5;
  for (int w = tid; w < route_words; w += THREADS) route_tiles[w] = 0u;
  __syncthreads();
  {
    const int rq0 = (int)(blockIdx.x * BQ), cap = route_cap(a), rows = min(BQ, a.Nq - rq0);
    const int* sel = a.indices + ((size_t)(b * route_groups(a) + route_group(a, h)) * a.Nq + rq0) * cap;
    for (int i = tid; i < rows * cap; i += THREADS) {
      const int id = __ldg(sel + i);
      if (id < 0) continue;
      const int lo = max(id * RB, a.k_offset) - a.k_offset, hi = min(id * RB + RB, a.k_offset + a.Nk) - a.k_offset - 1;
      if (lo > hi) continue;
      for (int t = lo / BK; t <= hi / BK; ++t) atomicOr(&route_tiles[t >> 5], 1u << (t & 31));
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
  auto classify = [&](const int kt, bool& sfull) -> bool {
    const int k_lo = a.k_offset + kt * BK;
    const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;
    const bool c0 = q_hi >= k_lo;
    const bool c1 = q_lo < k_hi;
    const bool can_true = c0;
    const bool can_false = c1;
    sfull = !can_false;
    return can_true;
  };
  // Selected tiles only; a tile the static mask empties is skipped too. Full (no predicate) only
  // for a uniform q-tile, a tile with no selection gap, and a tile the static mask makes full.
  auto next_tile = [&](int kt, bool& full) -> int {
    full = false;
    for (kt = route_next(kt); kt < nkt; kt = route_next(kt + 1)) {
      bool sfull = false;
      if (!classify(kt, sfull)) continue;
      (void)sfull;
      return kt;
    }
    return nkt;
  };
  bool route_full;
  for (int kt = next_tile(0, route_full); kt < nkt; kt = next_tile(kt + 1, route_full)) {
    __syncthreads(); // the previous tile is no longer read
    load_tile<D>(Ks, kg, kt, a.Nk, tid);
    load_tile<DV>(Vs, vg, kt, a.Nk, tid);
    __syncthreads();
    const bool tail = (kt + 1) * BK > a.Nk;
    route_kid0 = (a.k_offset + kt * BK) / RB;
    {
      const int kid1 = (a.k_offset + min((kt + 1) * BK, a.Nk) - 1) / RB;
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        while (route_id[r] < route_kid0) route_id[r] = route_sel(route_row[r], ++route_p[r], route_cap_);
        unsigned bits = 0u;
        for (int p = route_p[r], id = route_id[r]; id <= kid1; id = route_sel(route_row[r], ++p, route_cap_))
          bits |= 1u << (id - route_kid0);
        route_bits[r] = bits;
      }
    }
    if (!route_full) { if (tail) tile(Flag<true>{}, Flag<true>{}, kt); else tile(Flag<true>{}, Flag<false>{}, kt); }
    else if (tail) tile(Flag<false>{}, Flag<true>{}, kt); else tile(Flag<false>{}, Flag<false>{}, kt);
  }

  // out = acc / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf). A NaN or +inf
  // score reaches l through exp2 (NaN - base, inf - inf), so l is NaN and so are out and lse.
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int i = row0 + r;
    if (i >= a.Nq) continue;
    const size_t row = (size_t)(b * a.H + h) * a.Nq + i; // lse stays packed
    const float inv = l[r] == 0.f ? 0.f : 1.f / l[r];
    T* orow = out_row(a, b, h, i);
#pragma unroll
    for (int t = 0; t < DV / (VW * TPR); ++t) {
      VecT<VW> o;
#pragma unroll
      for (int u = 0; u < VW; ++u) o.v[u] = from_f32(acc[r][t * VW + u] * inv);
      *reinterpret_cast<VecT<VW>*>(orow + VW * (g + TPR * t)) = o;
    }
    if (a.lse != nullptr && g == 0) a.lse[row] = l[r] == 0.f ? -INFINITY : (m[r] + log2f(l[r])) * LN2;
  }
}
} // namespace attnc_cca

// ---- host code: argument checks and launches ----
namespace attnc_cca {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_cca: ");
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
} // namespace attnc_cca

extern "C" const char* attnc_cca_last_error(void) { return attnc_cca::last_error; }

extern "C" void attnc_cca_args_init(AttncArgs_cca* a, int B, int H, int Hkv, int Nq, int Nk) {
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
  a->top = 16;
}

extern "C" size_t attnc_cca_route_scratch_elems(const AttncArgs_cca* args) {
  return attnc_cca::route_scratch_size(*args);
}

extern "C" int attnc_cca_launch(const AttncArgs_cca* args, cudaStream_t stream) {
  using attnc_cca::fail;
  using attnc_cca::ptr_ok;
  attnc_cca::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_cca& a = *args;
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
  if (a.k_stride_b % 4 || a.k_stride_h % 4 || a.k_stride_n % 4) return fail(ATTNC_ERR_ARGS, "k strides must be multiples of 4 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.k_stride_b, a.k_stride_h, a.k_stride_n);
  if (a.Nk > 0 && !(a.k_stride_n == 64 && a.k_stride_h == (long long)a.Nk * 64 && a.k_stride_b == (long long)a.Hkv * a.Nk * 64)) return fail(ATTNC_ERR_ARGS, "this kernel needs k packed [B, Hkv, Nk, %d] (its routing pass reads keys by their packed rows); pass args_init's strides", 64);
  if (a.v_stride_b < 0 || a.v_stride_h < 0 || a.v_stride_n < 0) return fail(ATTNC_ERR_ARGS, "v strides must be >= 0 (got v_stride_b = %lld, v_stride_h = %lld, v_stride_n = %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 1 && a.v_stride_n < 64) return fail(ATTNC_ERR_ARGS, "v_stride_n (%lld) is smaller than a row of v (%d elements): its rows would overlap", a.v_stride_n, 64);
  if (a.v_stride_b % 4 || a.v_stride_h % 4 || a.v_stride_n % 4) return fail(ATTNC_ERR_ARGS, "v strides must be multiples of 4 elements, the kernel's vector loads (got %lld, %lld, %lld)", a.v_stride_b, a.v_stride_h, a.v_stride_n);
  if (a.Nk > 0 && !(a.v_stride_n == 64 && a.v_stride_h == (long long)a.Nk * 64 && a.v_stride_b == (long long)a.Hkv * a.Nk * 64)) return fail(ATTNC_ERR_ARGS, "this kernel needs v packed [B, Hkv, Nk, %d] (its routing pass reads keys by their packed rows); pass args_init's strides", 64);
  if (a.q_stride_b < 0 || a.q_stride_h < 0 || a.q_stride_n < 0) return fail(ATTNC_ERR_ARGS, "q strides must be >= 0 (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.q_stride_b % 4 || a.q_stride_h % 4 || a.q_stride_n % 4) return fail(ATTNC_ERR_ARGS, "q strides must be multiples of 4 elements, the kernel's vector loads (got q_stride_b = %lld, q_stride_h = %lld, q_stride_n = %lld)", a.q_stride_b, a.q_stride_h, a.q_stride_n);
  if (a.out_stride_b < 0 || a.out_stride_h < 0 || a.out_stride_n < 0) return fail(ATTNC_ERR_ARGS, "out strides must be >= 0 (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  if (!attnc_cca::rows_disjoint(a.out_stride_b, a.B, a.out_stride_h, a.H, a.out_stride_n, a.Nq, 64)) return fail(ATTNC_ERR_ARGS, "out strides make rows of out overlap (out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld for [B, H, Nq, 64] = [%d, %d, %d, 64])", a.out_stride_b, a.out_stride_h, a.out_stride_n, a.B, a.H, a.Nq);
  if (a.out_stride_b % 4 || a.out_stride_h % 4 || a.out_stride_n % 4) return fail(ATTNC_ERR_ARGS, "out strides must be multiples of 4 elements, the kernel's vector loads (got out_stride_b = %lld, out_stride_h = %lld, out_stride_n = %lld)", a.out_stride_b, a.out_stride_h, a.out_stride_n);
  for (int c = 0; c < 3; ++c) {
    const long long n = attnc_cca::route_count(a, c);
    if (n < 0 || n > (1 << 20)) return fail(ATTNC_ERR_ARGS, "routing count %s is %lld, must be in [0, 2^20]", c == 0 ? "topk" : c == 1 ? "first" : "local", n);
  }
  if (a.k_offset < 0) return fail(ATTNC_ERR_ARGS, "routing needs key positions >= 0 (k_offset = %d)", a.k_offset);
  if ((long long)a.B * attnc_cca::route_groups(a) * a.Nq * attnc_cca::route_cap(a) > 0 && a.indices == NULL) return fail(ATTNC_ERR_ARGS, "indices is NULL (int[B, H, Nq, top + 0 + 2])");
  if (a.Nk > 0 && a.route_scratch == NULL) return fail(ATTNC_ERR_ARGS, "route_scratch is NULL (attnc_cca_route_scratch_elems() floats)");
  // Block routing: pool, then rank (indices), then the attention reads the selection.
  if (a.Nk > 0) {
    const int nb = attnc_cca::route_floor_div(a.k_offset + a.Nk - 1, attnc_cca::RB) - attnc_cca::route_floor_div(a.k_offset, attnc_cca::RB) + 1;
    attnc_cca::attnc_cca_route_pool_k<<<dim3(nb, a.Hkv, a.B), 128, 0, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_pool_k: %s", cudaGetErrorString(e));
  }
  if (attnc_cca::route_units(a) > 0 && attnc_cca::route_cap(a) > 0) {
    const size_t rsmem = attnc_cca::route_topk_smem(a);
    if (rsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: %d key blocks need %zu bytes of top-k shared memory, the limit is 232448", attnc_cca::route_nkb(a), rsmem);
    if (rsmem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(attnc_cca::attnc_cca_route_topk, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem);
      if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: cannot reserve %zu bytes of shared memory: %s", rsmem, cudaGetErrorString(e));
    }
    const dim3 rgrid((attnc_cca::route_units(a) + attnc_cca::ROUTE_UT - 1) / attnc_cca::ROUTE_UT, attnc_cca::route_groups(a), a.B);
    attnc_cca::attnc_cca_route_topk<<<rgrid, 128, rsmem, stream>>>(a);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: %s", cudaGetErrorString(e));
  }
  // Raw-query routing: the token-granular attention (simt form) instead of the core's q-tiles.
  {
    const float tok_qscale = a.scale * attnc_cca::LOG2E;
    const size_t tsmem = attnc_cca::tok_smem_bytes();
    if (tsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "token attention: %zu bytes of shared memory, the limit is 232448", tsmem);
    if (tsmem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(attnc_cca::attnc_cca_token_attn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)tsmem);
      if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "token attention: cannot reserve %zu bytes of shared memory: %s", tsmem, cudaGetErrorString(e));
    }
    const long long rows = (long long)a.Nq * (a.H / a.Hkv), per = 16LL * attnc_cca::TOK_WARPS;
    const dim3 tgrid((unsigned)((rows + per - 1) / per), a.Hkv, a.B);
    attnc_cca::attnc_cca_token_attn<<<tgrid, attnc_cca::TOK_THREADS, tsmem, stream>>>(a, tok_qscale);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "token attention: %s", cudaGetErrorString(e));
    return ATTNC_OK;
  }
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_cca::LOG2E;
  const size_t smem = attnc_cca::ROUTE_SMEM_OFF + 8 * (size_t)(((a.Nk + 63) / 64 + 31) / 32);
  if (smem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: Nk = %d needs %zu bytes of attention shared memory, the limit is 232448", a.Nk, smem);
  if (smem > 44 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(attnc_cca::attnc_cca_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));
  }
  const dim3 grid((a.Nq + 63) / 64, a.H, a.B);
  attnc_cca::attnc_cca_attention<<<grid, 128, smem, stream>>>(a, qscale);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}
