// attnc kernel "modality" for CUDA (sm_90a). Generated code: do not edit.
// source 7205de7aaa80b9fe, schedule deffd139be02e927
//   score: score
//   mask:  (or (ge q k) (and (eq (load:span q) (load:span k)) (gt (load:span q) 0)))
// schedule: blockQ=64 blockK=64 threads=128 D=64 Dv=64 bf16 summaryBlock=16
// mapping: core=simt rowsPerThread=4 threadsPerRow=8 smemVectorWidth=4 keysPerSoftmaxStep=8 globalVectorElems=8
// tiles:
//   dynamic, per (q-tile, k-tile), from inclusive position bounds q_lo..q_hi, k_lo..k_hi:
//     empty (skipped, nothing loaded) unless canBeTrue = (or (ge q_hi k_lo) (and (and (le (range_min:span q_lo q_hi) (range_max:span k_lo k_hi)) (le (range_min:span k_lo k_hi) (range_max:span q_lo q_hi))) (gt (range_max:span q_lo q_hi) 0)))
//     full (no predicate evaluated)   unless canBeFalse = (and (lt q_lo k_hi) (or (not (and (and (eq (range_min:span q_lo q_hi) (range_max:span q_lo q_hi)) (eq (range_min:span k_lo k_hi) (range_max:span k_lo k_hi))) (eq (range_min:span q_lo q_hi) (range_min:span k_lo k_hi)))) (le (range_min:span q_lo q_hi) 0)))
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

#ifndef ATTNC_MODALITY_H
#define ATTNC_MODALITY_H
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

/* Device pointers, contiguous row-major; q, k, v and out must be 16-byte aligned. */
typedef struct AttncArgs_modality {
  const void* q; /* [B, H, Nq, 64] bf16 */
  const void* k; /* [B, Hkv, Nk, 64] bf16 */
  const void* v; /* [B, Hkv, Nk, 64] bf16 */
  void* out; /* [B, H, Nq, 64] bf16, written */
  float* lse; /* [B, H, Nq] f32, natural log, written; may be NULL */
  const int* span; /* user tensor, row-major */
  int* span_summary; /* scratch: attnc_modality_summary_elems_span() elements */
  int B;
  int H;
  int Hkv;
  int Nq;
  int Nk;
  int q_offset; /* position of query row 0 (args_init: Nk - Nq) */
  int k_offset; /* position of key row 0 (args_init: 0) */
  float scale; /* scores are scale * <q, k> (args_init: 1/sqrt(64)) */
} AttncArgs_modality;

/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */
void attnc_modality_args_init(AttncArgs_modality* args, int B, int H, int Hkv, int Nq, int Nk);
/* Elements (span's type) of span's summary scratch. */
size_t attnc_modality_summary_elems_span(const AttncArgs_modality* args);
/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */
int attnc_modality_launch(const AttncArgs_modality* args, cudaStream_t stream);
/* The calling thread's last error message ("" after a successful launch). */
const char* attnc_modality_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_MODALITY_H */

namespace attnc_modality {
using Args = ::AttncArgs_modality;
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

// span: i32[Nk], row-major; indices out of range read 0.
__device__ __forceinline__ int load_span(const Args& a, int i0) {
  const int d0 = a.Nk;
  if (i0 < 0 || i0 >= d0) return 0;
  return __ldg(a.span + (long long)i0);
}

// min / max of span[lo..hi] from its per-block summary ([min, max] pairs, 16 positions a
// block). Whole blocks make the result possibly wider than exact: sound for tile classification.
// Positions outside [0, len) read 0; spans over 64 blocks give the full int range.
__device__ __forceinline__ int range_min_span(const Args& a, int lo, int hi) {
  const int len = a.Nk;
  if (hi < lo) return INT_MAX;
  int r = (lo < 0 || hi >= len) ? (int)0 : INT_MAX;
  const int first = max(lo, 0), last = min(hi, len - 1);
  if (first > last) return r;
  const int b0 = first / 16, b1 = last / 16;
  if (b1 - b0 >= 64) return INT_MIN;
  for (int blk = b0; blk <= b1; ++blk) r = min(r, __ldg(a.span_summary + 2 * blk + 0));
  return r;
}
__device__ __forceinline__ int range_max_span(const Args& a, int lo, int hi) {
  const int len = a.Nk;
  if (hi < lo) return INT_MIN;
  int r = (lo < 0 || hi >= len) ? (int)0 : INT_MIN;
  const int first = max(lo, 0), last = min(hi, len - 1);
  if (first > last) return r;
  const int b0 = first / 16, b1 = last / 16;
  if (b1 - b0 >= 64) return INT_MAX;
  for (int blk = b0; blk <= b1; ++blk) r = max(r, __ldg(a.span_summary + 2 * blk + 1));
  return r;
}

extern "C" __global__ void __launch_bounds__(256) attnc_modality_summary_span(const Args a) {
  const int len = a.Nk;
  const int blk = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (blk >= (len + 16 - 1) / 16) return; // a whole warp
  int mn = INT_MAX, mx = INT_MIN;
  const int end = min(len - blk * 16, 16);
  for (int i = lane; i < end; i += 32) {
    const int x = __ldg(a.span + (size_t)blk * 16 + i);
    mn = min(mn, x);
    mx = max(mx, x);
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, off));
    mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  }
  if (lane == 0) {
    a.span_summary[2 * blk] = mn;
    a.span_summary[2 * blk + 1] = mx;
  }
}

constexpr int BQ = 64, BK = 64, THREADS = 128;
constexpr int ROWS = 4, TPR = 8, VW = 4, KC = 8, GV = 8;
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
__device__ __forceinline__ void load_tile(float* dst, const T* src, int kt, int Nk, int tid) {
  constexpr int PER_ROW = W / GV, TOTAL = BK * PER_ROW, ITERS = (TOTAL + THREADS - 1) / THREADS;
  VecT<GV> x[ITERS];
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS, j = idx / PER_ROW, c = idx % PER_ROW, key = kt * BK + j;
    if (idx < TOTAL && key < Nk) x[it] = *reinterpret_cast<const VecT<GV>*>(src + (size_t)key * W + c * GV);
    else x[it] = VecT<GV>::zero();
  }
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    const int idx = tid + it * THREADS;
    if (idx < TOTAL) store_f32(dst + idx * GV, x[it]);
  }
}

extern "C" __global__ void __launch_bounds__(THREADS) attnc_modality_attention(const Args a, const float qscale) {
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4); // [BK][D]
  float* Vs = Ks + BK * D;                      // [BK][DV]
  int hq0[ROWS];
  bool hq1[ROWS];
  __shared__ int hk0[BK];
  const int tid = threadIdx.x, g = tid % TPR;
  const int row0 = blockIdx.x * BQ + (tid / TPR) * ROWS;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hkv = h / (a.H / a.Hkv);
  const T* kg = static_cast<const T*>(a.k) + (size_t)(b * a.Hkv + hkv) * a.Nk * D;
  const T* vg = static_cast<const T*>(a.v) + (size_t)(b * a.Hkv + hkv) * a.Nk * DV;
  (void)kg; (void)vg; (void)b; (void)h;

  // This lane's dims (chunks g, g+TPR, … of VW) of each of its rows: q pre-scaled, accumulators.
  float qr[ROWS][D / TPR], acc[ROWS][DV / TPR], m[ROWS], l[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int i = row0 + r;
    const T* qrow = static_cast<const T*>(a.q) + ((size_t)(b * a.H + h) * a.Nq + i) * D;
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
    {
      const int qpos = i + a.q_offset;
      (void)qpos;
      const int r0 = load_span(a, qpos);
      const bool r1 = r0 > 0;
      hq0[r] = r0;
      hq1[r] = r1;
    }
  }

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
          const float x = s[r][jj];
          const bool e0 = (qpos >= kpos) || ((hq0[r] == hk0[kk]) && hq1[r]);
          float y = x;
          if constexpr (TAIL) { if (kbase + kk >= a.Nk) y = -INFINITY; }
          /* predicate */
          if constexpr (MASKED) { if (!(e0)) y = -INFINITY; }
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
  for (int kt = 0; kt < nkt; ++kt) {
    const int k_lo = a.k_offset + kt * BK;
    const int k_hi = a.k_offset + min((kt + 1) * BK, a.Nk) - 1;
    const int c0 = range_min_span(a, q_lo, q_hi);
    const int c1 = range_max_span(a, k_lo, k_hi);
    const int c2 = range_min_span(a, k_lo, k_hi);
    const int c3 = range_max_span(a, q_lo, q_hi);
    const bool c4 = (q_hi >= k_lo) || (((c0 <= c1) && (c2 <= c3)) && (c3 > 0));
    const bool c5 = (q_lo < k_hi) && ((!(((c0 == c3) && (c2 == c1)) && (c0 == c2))) || (c0 <= 0));
    const bool can_true = c4;
    const bool can_false = c5;
    if (!can_true) continue; // empty tile: skipped, nothing loaded
    __syncthreads(); // the previous tile is no longer read
    load_tile<D>(Ks, kg, kt, a.Nk, tid);
    load_tile<DV>(Vs, vg, kt, a.Nk, tid);
    for (int kk = tid; kk < BK; kk += THREADS) {
      const int kpos = a.k_offset + kt * BK + kk;
      const int kh0 = load_span(a, kpos);
      hk0[kk] = kh0;
    }
    __syncthreads();
    const bool tail = (kt + 1) * BK > a.Nk;
    if (can_false) { if (tail) tile(Flag<true>{}, Flag<true>{}, kt); else tile(Flag<true>{}, Flag<false>{}, kt); } else { if (tail) tile(Flag<false>{}, Flag<true>{}, kt); else tile(Flag<false>{}, Flag<false>{}, kt); }
  }

  // out = acc / l (0 for a row with no allowed key), lse = ln(sum exp) (-inf for such a row).
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int i = row0 + r;
    if (i >= a.Nq) continue;
    const size_t row = (size_t)(b * a.H + h) * a.Nq + i;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    T* orow = static_cast<T*>(a.out) + row * DV;
#pragma unroll
    for (int t = 0; t < DV / (VW * TPR); ++t) {
      VecT<VW> o;
#pragma unroll
      for (int u = 0; u < VW; ++u) o.v[u] = from_f32(acc[r][t * VW + u] * inv);
      *reinterpret_cast<VecT<VW>*>(orow + VW * (g + TPR * t)) = o;
    }
    if (a.lse != nullptr && g == 0) a.lse[row] = l[r] > 0.f ? (m[r] + log2f(l[r])) * LN2 : -INFINITY;
  }
}
} // namespace attnc_modality

// ---- host code: argument checks and launches ----
namespace attnc_modality {
static thread_local char last_error[512] = "";
static int fail(int code, const char* fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "attnc_modality: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - n, fmt, ap);
  va_end(ap);
  return code;
}
static bool ptr_ok(const void* p, size_t align) { return p != NULL && (uintptr_t)p % align == 0; }
} // namespace attnc_modality

extern "C" const char* attnc_modality_last_error(void) { return attnc_modality::last_error; }

extern "C" void attnc_modality_args_init(AttncArgs_modality* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, sizeof *a);
  a->B = B; a->H = H; a->Hkv = Hkv; a->Nq = Nq; a->Nk = Nk;
  a->q_offset = Nk - Nq;
  a->k_offset = 0;
  a->scale = 1.0f / sqrtf(64.0f);
}

extern "C" size_t attnc_modality_summary_elems_span(const AttncArgs_modality* args) {
  const AttncArgs_modality& a = *args;
  const int len = a.Nk;
  return len > 0 ? 2 * (size_t)((len + 16 - 1) / 16) : 0;
}

extern "C" int attnc_modality_launch(const AttncArgs_modality* args, cudaStream_t stream) {
  using attnc_modality::fail;
  using attnc_modality::ptr_ok;
  attnc_modality::last_error[0] = '\0';
  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");
  const AttncArgs_modality& a = *args;
  if (a.B < 1 || a.H < 1 || a.Hkv < 1 || a.Nq < 0 || a.Nk < 0)
    return fail(ATTNC_ERR_ARGS, "need B, H, Hkv >= 1 and Nq, Nk >= 0 (got B=%d H=%d Hkv=%d Nq=%d Nk=%d)", a.B, a.H, a.Hkv, a.Nq, a.Nk);
  if (a.H % a.Hkv != 0) return fail(ATTNC_ERR_ARGS, "H (%d) must be a multiple of Hkv (%d)", a.H, a.Hkv);
  if (a.H > 65535 || a.B > 65535) return fail(ATTNC_ERR_ARGS, "H (%d) and B (%d) must be at most 65535", a.H, a.B);
  if (a.Nq == 0) return ATTNC_OK;
  if (!ptr_ok(a.q, 16) || !ptr_ok(a.out, 16) || (a.Nk > 0 && (!ptr_ok(a.k, 16) || !ptr_ok(a.v, 16))))
    return fail(ATTNC_ERR_ARGS, "q, k, v and out must be non-NULL and 16-byte aligned");
  if ((long long)a.Nk > 0 && a.span == NULL) return fail(ATTNC_ERR_ARGS, "tensor span is NULL");
  if (a.Nk > 0 && a.span_summary == NULL) return fail(ATTNC_ERR_ARGS, "summary scratch span_summary is NULL");
  {
    const int len = a.Nk;
    if (len > 0) {
      const int blocks = (len + 16 - 1) / 16;
      attnc_modality::attnc_modality_summary_span<<<(blocks + 7) / 8, 256, 0, stream>>>(a);
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "summary of span: %s", cudaGetErrorString(e));
    }
  }
  // log2(e) folds into the q scale: scores come out in base 2 for exp2f.
  const float qscale = a.scale * attnc_modality::LOG2E;
  const size_t smem = 32768;
  const dim3 grid((a.Nq + 63) / 64, a.H, a.B);
  attnc_modality::attnc_modality_attention<<<grid, 128, smem, stream>>>(a, qscale);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));
  return ATTNC_OK;
}
