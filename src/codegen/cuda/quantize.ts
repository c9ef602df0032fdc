// The CUDA `quantize` kernels of a quantized K or V cache (docs/LANGUAGE.md, "Quantization" and
// "Quantizing a range of rows"): they fill the cache's tensors from f32/f16/bf16 rows, bit for bit
// as src/quant's `quantize` does. Four passes, each a grid-stride loop, launched in order by the
// host launcher (quantize-host.ts): the per-channel normalizer, the scale groups the call touches,
// the code words of the rewritten rows, and the recent window. Every division and square root is
// correctly rounded (__fdiv_rn, __fsqrt_rn) and the one addition is __fadd_rn, so nothing contracts.
import { codesPerWord, elemBits, floatLayout, floatMax, intCodeRange } from '../../quant/elem.js';
import { scaleGranularityCode, type Fp8Elem, type QuantFormat } from '../../quant/format.js';
import { quantizesWhole } from '../../quant/range.js';
import type { StorageDType } from '../../ir/kernel.js';
import { pagedRows } from './quantize-paged.js';
import { codePass, encoder, normPass, recentPass, scalePass } from './quantize-passes.js';

/** What one cache's quantize kernels are generated from. */
export interface QuantizeSpec {
  /** The attention kernel's name (C identifiers are derived from it). */
  readonly kernel: string;
  readonly cache: 'k' | 'v';
  readonly format: QuantFormat;
  /** Channels per token row (the head dim of keys, the value dim of values). */
  readonly dim: number;
  /** The element type of the source rows. */
  readonly input: StorageDType;
  /**
   * A paged cache (`cache paged P`): the row-indexed tensors are pools of pages addressed through
   * a block table (quant/paged-layout.ts); the source rows stay logical [B, Hkv, Nk, D].
   */
  readonly paged?: { readonly pageSize: number };
}

export const quantizeNamespace = (s: QuantizeSpec): string => `attnc_${s.kernel}_quantize_${s.cache}_dev`;
export const quantizeStruct = (s: QuantizeSpec): string => `AttncQuantizeArgs_${s.kernel}_${s.cache}`;

const ctype = { f32: 'float', f16: '__half', bf16: '__nv_bfloat16' } as const;

/** The args struct's fields (C declarations, header-friendly), in order: pointers, then sizes. */
export function quantizeFields(s: QuantizeSpec): string[] {
  const f = s.format;
  const salient = f.kind === 'int' ? f.salient : undefined;
  const doc = (dtype: string, shape: string) => ` /* ${dtype} ${shape} */`;
  const P = s.paged?.pageSize;
  // A row-indexed tensor's shape: [B, Hkv, Nk, w] rows, or a pool of pages of them.
  const rows = (w: number) => (P ? `[pages, Hkv, ${P}, ${w}] pool` : `[B, Hkv, Nk, ${w}]`);
  return [
    `const void* x;${doc(s.input, `[B, Hkv, Nk, ${s.dim}]: the source rows (those the call reads)`)}`,
    ...(P ? [`const int* block_table;${doc('i32', '[B, max_pages]: page ids of each sequence')}`] : []),
    ...(salient
      ? [
          `const int* salient;${doc('i32', salient.by === 'flags' ? '[B, Hkv, Nk]: non-zero = salient' : '[B, Hkv, salient_n]: token indices')}`,
        ]
      : []),
    `unsigned int* codes;${doc('u32', rows(Math.ceil(s.dim / codesPerWord(f.elem))))}`,
    ...(salient
      ? [`unsigned int* codes_hi;${doc('u32', rows(Math.ceil(s.dim / codesPerWord(salient.elem))))}`]
      : []),
    ...(f.scale
      ? [`void* scale;${doc(f.scale.dtype, `docs/LANGUAGE.md, ${P ? 'Paged quantized caches' : 'Layout'}`)}`]
      : []),
    ...(f.kind === 'int' && f.zero ? [`void* zero;${doc(f.zero, 'as scale')}`] : []),
    ...(f.norm ? [`void* norm;${doc(f.norm, `[B, Hkv, ${s.dim}]`)}`] : []),
    ...(f.recent ? [`void* recent;${doc(f.recent.dtype, `[B, Hkv, ${f.recent.tokens}, ${s.dim}]`)}`] : []),
    'int B, Hkv, Nk;',
    'int start, n; /* quantize the token rows [start, start + n) */',
    ...(P ? ['int max_pages, pages; /* block table columns; pages in the pools */'] : []),
    ...(salient?.by === 'index' ? ['int salient_n;'] : []),
  ];
}

/** Typed views of the struct's untyped pointers. */
function views(s: QuantizeSpec): string[] {
  const f = s.format;
  const view = (name: string, field: string, t: string) =>
    `__device__ __forceinline__ ${t}* ${name}(const Args& a) { return static_cast<${t}*>(a.${field}); }`;
  return [
    view('px', 'x', `const ${ctype[s.input]}`),
    ...(f.scale ? [`typedef ${ctype[f.scale.dtype]} TS;`, view('pscale', 'scale', 'TS')] : []),
    ...(f.kind === 'int' && f.zero ? [`typedef ${ctype[f.zero]} TZ;`, view('pzero', 'zero', 'TZ')] : []),
    ...(f.norm ? [view('pnorm', 'norm', ctype[f.norm])] : []),
    ...(f.recent ? [view('precent', 'recent', ctype[f.recent.dtype])] : []),
  ];
}

/** Constants describing the format, for the device code. */
function constants(s: QuantizeSpec): string[] {
  const f = s.format;
  const { gran, group } = scaleGranularityCode(f.scale?.per);
  const hi = f.kind === 'int' ? f.salient?.elem : undefined;
  const qmax = (e: typeof f.elem) =>
    f.kind === 'fp8' ? floatMax(f.elem) : intCodeRange(elemBits(e), !!f.zero).hi;
  return [
    `[[maybe_unused]] constexpr int D = ${s.dim};`,
    '// Scale granularity: 0 none, 1 tensor, 2 token, 3 channel; GROUP 0 = no group.',
    `[[maybe_unused]] constexpr int GRAN = ${gran}, GROUP = ${group};`,
    '// The divisor where GROUP is 0 (no group): nvcc warns on a folded division by zero even when unreached.',
    '[[maybe_unused]] constexpr int GDIV = GROUP > 0 ? GROUP : 1;',
    `[[maybe_unused]] constexpr int BITS = ${elemBits(f.elem)}, WORDS = ${Math.ceil(s.dim / codesPerWord(f.elem))};`,
    `[[maybe_unused]] constexpr float QMAX = ${qmax(f.elem)}.f;`,
    ...(hi ? [`[[maybe_unused]] constexpr int HI_BITS = ${elemBits(hi)};`] : []),
    `[[maybe_unused]] constexpr int HI_WORDS = ${hi ? Math.ceil(s.dim / codesPerWord(hi)) : 0};`,
    `[[maybe_unused]] constexpr float HI_QMAX = ${hi ? qmax(hi) : 0}.f;`,
    `[[maybe_unused]] constexpr int R = ${f.recent?.tokens ?? 0}; // recent tokens kept in 16 bits`,
    `[[maybe_unused]] constexpr bool WHOLE = ${quantizesWhole(f)}; // any range rewrites the whole cache`,
    `[[maybe_unused]] constexpr int MAX_WORDS = WORDS > HI_WORDS ? WORDS : HI_WORDS;`,
    ...(s.paged ? [`[[maybe_unused]] constexpr int PAGE = ${s.paged.pageSize}; // rows per page`] : []),
    `using Args = ::${quantizeStruct(s)};`,
  ];
}

/** Float helpers: loads, stores and the roundings of src/quant/floats.ts. */
const floatHelpers = String.raw`
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
}`;

/** The fp8 encoder of src/quant/floats.ts (fp8Encode), for an fp8 format. */
function fp8Encoder(elem: Fp8Elem): string {
  const { mant, bias, maxCode } = floatLayout(elem);
  return String.raw`
// The ${elem} code nearest to x, ties to even, saturating; NaN gives 0x7f; -0 keeps its sign.
__device__ __forceinline__ unsigned fp8_encode(float x) {
  const unsigned bits = __float_as_uint(x);
  const unsigned sign = (bits >> 24) & 0x80u, exp = (bits >> 23) & 0xffu, m23 = bits & 0x7fffffu;
  if (exp == 0xffu) return m23 ? 0x7fu : sign | ${maxCode}u;
  if (exp == 0u) return sign;
  const int e = (int)exp - 127 + ${bias};
  const unsigned full = m23 | 0x800000u;
  const int shift = e >= 1 ? ${23 - mant} : ${23 - mant + 1} - e;
  if (shift > 24) return sign;
  unsigned q = e >= 1 ? ((unsigned)e << ${mant}) | (m23 >> shift) : full >> shift;
  const unsigned rem = (e >= 1 ? m23 : full) & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | (q < ${maxCode}u ? q : ${maxCode}u);
}`;
}

/** An unpaged cache's scale groups (docs/LANGUAGE.md, Layout); its code rows are bh·Nk + t. */
const unpagedRows = String.raw`__device__ __forceinline__ long scale_index(const Args& a, int bh, int t, int c) {
  if (GRAN <= 1) return 0;
  const int tg = GRAN == 2 ? t : GROUP ? t / GDIV : 0;
  const int cg = GRAN == 3 ? c : GROUP ? c / GDIV : 0;
  return ((long)bh * token_groups(a) + tg) * CHANNEL_GROUPS + cg;
}`;

/** Row structure: which rows are recent, salient, rewritten; scale-group indexing. */
function rowHelpers(s: QuantizeSpec): string {
  const f = s.format;
  const salient = f.kind === 'int' ? f.salient : undefined;
  const salientTest = !salient
    ? 'return false;'
    : salient.by === 'flags'
      ? 'return t < first_recent(a) && a.salient[(long)bh * a.Nk + t] != 0;'
      : [
          'if (t >= first_recent(a)) return false;',
          '  for (int i = 0; i < a.salient_n; ++i) if (a.salient[(long)bh * a.salient_n + i] == t) return true;',
          '  return false;',
        ].join('\n');
  return String.raw`
__device__ __forceinline__ int first_recent(const Args& a) { return a.Nk - (R < a.Nk ? R : a.Nk); }
// Whether token t of (b, h) = bh is stored with the wider salient codes (never a recent token).
__device__ __forceinline__ bool is_salient(const Args& a, int bh, int t) {
  ${salientTest}
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
${s.paged ? pagedRows : unpagedRows}
// The value the codes approximate: x over its channel's normalizer (f32 division).
__device__ __forceinline__ float y_at(const Args& a, int bh, int t, int c) {
  const float x = flush(ld(px(a), ((long)bh * a.Nk + t) * D + c));
  ${f.norm ? 'return __fdiv_rn(x, ld(pnorm(a), (long)bh * D + c));' : 'return x;'}
}`;
}

/** The device code of one cache's quantize kernels: a namespace after the attention's. */
export function quantizeDevice(s: QuantizeSpec): string {
  const f = s.format;
  return [
    `namespace ${quantizeNamespace(s)} {`,
    ...constants(s),
    floatHelpers,
    ...views(s),
    ...(f.kind === 'fp8' ? [fp8Encoder(f.elem)] : []),
    rowHelpers(s),
    normPass(s),
    scalePass(s),
    encoder(s),
    codePass(s),
    recentPass(s),
    `} // namespace ${quantizeNamespace(s)}`,
  ]
    .filter((x) => x !== '')
    .join('\n');
}
