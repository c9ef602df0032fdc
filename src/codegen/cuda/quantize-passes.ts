// The four grid-stride passes of a CUDA `quantize` kernel set (quantize.ts holds the namespace
// around them: constants, float helpers, typed views and row helpers they call): the per-channel
// normalizer, the scale groups the call touches, the code words of the rewritten rows (with the
// encoder of one code), and the recent window.
import type { QuantizeSpec } from './quantize.js';

/** Pass 1: the normalizer, per (b, h, c), from every quantized token. */
export function normPass(s: QuantizeSpec): string {
  if (!s.format.norm) return '';
  return String.raw`
__global__ void __launch_bounds__(256) norm_pass(const Args a) {
  const long total = (long)a.B * a.Hkv * D;
  const int fr = first_recent(a);
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / D), c = (int)(i % D);
    float m = 0.f;
    for (int t = 0; t < fr; ++t) m = jsmax(m, fabsf(flush(ld(px(a), ((long)bh * a.Nk + t) * D + c))));
    const float r = rn_sat(pnorm(a), __fsqrt_rn(m));
    st(pnorm(a), i, r == 0.f ? 1.f : r);
  }
}`;
}

/** Pass 2: each scale group the call touches, from its quantized members' extremes. */
export function scalePass(s: QuantizeSpec): string {
  const f = s.format;
  if (!f.scale) return '';
  const zero = f.kind === 'int' && f.zero;
  const params =
    f.kind === 'fp8'
      ? [
          'const float am = jsmax(-mn, mx);',
          'if (am == 0.f) return;',
          'scale = up((const TS*)0, __fdiv_rn(am, QMAX));',
        ]
      : zero
        ? [
            'const float lo = jsmin(mn, 0.f), range = __fsub_rn(jsmax(mx, 0.f), lo);',
            'if (range == 0.f) return;',
            'scale = up((const TS*)0, __fdiv_rn(range, wide ? HI_QMAX : QMAX));',
            'zero = rn_sat((const TZ*)0, __fdiv_rn(-lo, scale));',
          ]
        : [
            'const float am = jsmax(-mn, mx);',
            'if (am == 0.f) return;',
            'scale = up((const TS*)0, __fdiv_rn(am, wide ? HI_QMAX : QMAX));',
          ];
  return String.raw`
// groupScale: scale (and zero point) of one group from its extremes; {1, 0} when it has none.
__device__ __forceinline__ void group_params(float mn, float mx, int count, bool wide, float& scale, float& zero) {
  scale = 1.f; zero = 0.f;
  if (count == 0) return;
  ${params.join('\n  ')}
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
    ${s.paged ? 'const long g = scale_index(a, bh, t0, c0);\n    if (g < 0) continue; // a page outside the pools' : 'const long g = GRAN == 1 ? 0 : ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;'}
    st(pscale(a), g, scale);
    ${zero ? 'st(pzero(a), g, zero);' : '(void)zero;'}
  }
}`;
}

/** One code: round half to even and clamp (int), or the fp8 encoding (src/quant's encode). */
export function encoder(s: QuantizeSpec): string {
  const f = s.format;
  const scaleOf = f.scale ? 'ld(pscale(a), g)' : '1.f';
  if (f.kind === 'fp8')
    return String.raw`
__device__ __forceinline__ unsigned encode(const Args& a, long g, float v, bool) {
  return fp8_encode(${f.scale ? `__fdiv_rn(v, ${scaleOf})` : 'v'});
}`;
  const asym = !!f.zero;
  return String.raw`
__device__ __forceinline__ unsigned encode(const Args& a, long g, float v, bool wide) {
  const float hi = wide ? HI_QMAX : QMAX, lo = ${asym ? '0.f' : '-hi'};
  const float q = ${asym ? `rintf(__fadd_rn(__fdiv_rn(v, ${scaleOf}), ld(pzero(a), g)))` : `rintf(__fdiv_rn(v, ${scaleOf}))`};
  return (unsigned)(int)fminf(hi, fmaxf(lo, q));
}`;
}

/** Pass 3: every code word of the rewritten rows (codes, and codes_hi for salient formats). */
export function codePass(s: QuantizeSpec): string {
  const hi = s.format.kind === 'int' && s.format.salient;
  return String.raw`
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
    ${s.paged ? 'const long row = code_row(a, bh, t);\n    if (row < 0) continue; // a page outside the pools' : 'const long row = (long)bh * a.Nk + t;'}
    if (w < WORDS) a.codes[row * WORDS + w] = recent || wide ? 0u : pack_word(a, bh, t, w, BITS, false);
    ${hi ? 'if (w < HI_WORDS) a.codes_hi[row * HI_WORDS + w] = wide ? pack_word(a, bh, t, w, HI_BITS, true) : 0u;' : ''}
  }
}`;
}

/** Pass 4: the recent window, rewritten whole: row i is token Nk - min(R, Nk) + i; rows past it 0. */
export function recentPass(s: QuantizeSpec): string {
  if (!s.format.recent) return '';
  return String.raw`
__global__ void __launch_bounds__(256) recent_pass(const Args a) {
  const long total = (long)a.B * a.Hkv * R * D;
  const int fr = first_recent(a), count = a.Nk - fr;
  for (long i = (long)blockIdx.x * 256 + threadIdx.x; i < total; i += (long)gridDim.x * 256) {
    const int bh = (int)(i / ((long)R * D)), r = (int)(i / D % R), c = (int)(i % D);
    st(precent(a), i, r < count ? flush(ld(px(a), ((long)bh * a.Nk + fr + r) * D + c)) : 0.f);
  }
}`;
}
