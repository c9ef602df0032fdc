// The mma.sync form of the token attention (token-attn.ts): m16n8k16 with 16-bit inputs and f32
// accumulators, runs on sm_80 and later (sm_90a included). A warp's 16 rows are the A operand:
// q from global memory once (fragments in registers, unscaled: qscale applies to the f32
// scores), then P from the score accumulators without a trip through shared memory (the C
// layout of two n-tiles is the A layout of one k-step). K and V tiles are staged by cp.async
// into the warp's own shared memory (V's copies still in flight while q·k and the softmax run),
// rows padded by 8 elements so fragment reads do not conflict;
// rows past Nk are zero (a masked key then adds 0 · 0, never 0 · NaN).
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { kvHeadPtrDecls } from './kv-rows.js';
import type { TokenFormParts } from './token-attn.js';
import type { TokenPlan } from './token-form.js';

/**
 * The warp's 16 query rows (row_h/row_i, rows gq and gq + 8 of this thread; row_ok false: zeros)
 * as the A fragments qa of S = Q·Kᵀ, one per 16-wide k-step.
 */
export const tokenQFragments: readonly string[] = [
  'unsigned qa[D / 16][4];',
  '{',
  '  const T* qr0 = q_row(a, b, row_h[0], row_i[0]);',
  '  const T* qr1 = q_row(a, b, row_h[1], row_i[1]);',
  '#pragma unroll',
  '  for (int kk = 0; kk < D / 16; ++kk) {',
  '    const int d = kk * 16 + 2 * t4;',
  '    qa[kk][0] = row_ok[0] ? tok_ld32(qr0 + d) : 0u;',
  '    qa[kk][1] = row_ok[1] ? tok_ld32(qr1 + d) : 0u;',
  '    qa[kk][2] = row_ok[0] ? tok_ld32(qr0 + d + 8) : 0u;',
  '    qa[kk][3] = row_ok[1] ? tok_ld32(qr1 + d + 8) : 0u;',
  '  }',
  '}',
];
/** The inline-PTX helpers (the CPU emulation in test/cuda replaces exactly these definitions). */
export function tokenMmaPtx(dtype: 'f16' | 'bf16'): string[] {
  return [
    '// c += a·b, m16n8k16, 16-bit inputs, f32 accumulators.',
    '__device__ __forceinline__ void tok_mma(float (&c)[4], const unsigned (&x)[4], const unsigned b0, const unsigned b1) {',
    `  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "`,
    '      "{%0, %1, %2, %3};\\n"',
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(x[0]), "r"(x[1]), "r"(x[2]), "r"(x[3]), "r"(b0), "r"(b1));',
    '}',
    '// 16 bytes global -> shared without passing through registers.',
    '__device__ __forceinline__ void tok_cp16(T* dst, const T* src) {',
    '  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);',
    '  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\\n" ::"r"(s), "l"(src) : "memory");',
    '}',
    '// Closes a group of copies; waits until at most N groups are still in flight.',
    '__device__ __forceinline__ void tok_cp_commit() { asm volatile("cp.async.commit_group;\\n" ::: "memory"); }',
    'template <int N> __device__ __forceinline__ void tok_cp_wait() {',
    '  asm volatile("cp.async.wait_group %0;\\n" ::"n"(N) : "memory");',
    '}',
    '// Four 8x8 16-bit matrices from shared memory, transposed: lane l gives the address of row l % 8',
    '// of matrix l / 8; register m of lane t holds column t / 4, rows 2 (t % 4) and 2 (t % 4) + 1.',
    '__device__ __forceinline__ void tok_ldsm_t(unsigned (&r)[4], const T* p) {',
    '  const unsigned s = (unsigned)__cvta_generic_to_shared(p);',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s) : "memory");',
    '}',
  ];
}

export function tokenMmaParts(k: AttentionKernel, _plan: TokenPlan): TokenFormParts {
  return {
    helpers: tokenMmaHelpers(sharedStorage(k.formats) as 'f16' | 'bf16'),
    smemPerWarp: 'sizeof(T) * TOK_BK * (TOK_KP + TOK_VP)',
    setup: warpSetup(k.formats.paged !== undefined),
    stage: STAGE_KV,
    scores: SCORES,
    rescale: RESCALE,
    accumulate: ACCUMULATE,
    store: STORE,
  };
}

/** The padded row sizes, the PTX wrappers and the fragment packing helpers. */
function tokenMmaHelpers(dtype: 'f16' | 'bf16'): string[] {
  return [
    'constexpr int TOK_KP = D + 8, TOK_VP = DV + 8; // padded rows of staged K and V (elements)',
    ...tokenMmaPtx(dtype),
    '// Two 16-bit values as one 32-bit fragment register (the first in the low half).',
    '__device__ __forceinline__ unsigned tok_pair(const T x0, const T x1) {',
    '  T t[2] = {x0, x1};',
    '  unsigned u;',
    '  memcpy(&u, t, 4);',
    '  return u;',
    '}',
    '__device__ __forceinline__ unsigned tok_pack(const float x0, const float x1) { return tok_pair(from_f32(x0), from_f32(x1)); }',
    '__device__ __forceinline__ unsigned tok_ld32(const T* p) { return *reinterpret_cast<const unsigned*>(p); }',
  ];
}

/** The warp's K/V staging buffers and head pointers, its q fragments, and o zeroed. */
function warpSetup(paged: boolean): string[] {
  return [
    'T* Ks = reinterpret_cast<T*>(tok_smem) + (size_t)warp * TOK_BK * (TOK_KP + TOK_VP);',
    'T* Vs = Ks + TOK_BK * TOK_KP;',
    ...kvHeadPtrDecls({ k: 'kg', v: 'vg' }, 'b', 'hkv', paged),
    "// The warp's 16 query rows as A fragments (rows gq and gq + 8 in this thread).",
    ...tokenQFragments,
    'float o[DV / 8][4];',
    '#pragma unroll',
    'for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
  ];
}

// K then V of the tile by cp.async (rows past Nk zeroed); V's copies overlap q·k.
const STAGE_KV = [
  '{',
  '  constexpr int KC = D / 8, VC = DV / 8; // 16-byte chunks per row',
  '  for (int c = lane; c < TOK_BK * KC; c += 32) {',
  '    const int kr = c / KC, d = (c % KC) * 8;',
  '    if (kbase + kr < a.Nk) tok_cp16(Ks + kr * TOK_KP + d, kg.row(kbase + kr) + d);',
  '    else memset(Ks + kr * TOK_KP + d, 0, 16);',
  '  }',
  '  tok_cp_commit();',
  '  for (int c = lane; c < TOK_BK * VC; c += 32) {',
  '    const int vr = c / VC, d = (c % VC) * 8;',
  '    if (kbase + vr < a.Nk) tok_cp16(Vs + vr * TOK_VP + d, vg.row(kbase + vr) + d);',
  '    else memset(Vs + vr * TOK_VP + d, 0, 16);',
  '  }',
  '  tok_cp_commit();',
  "  tok_cp_wait<1>(); // K has landed; V's copies overlap q·k and the softmax",
  '  __syncwarp();',
  '}',
];

// S = Q·Kᵀ for the warp's 16 rows and the tile's keys.
const SCORES = [
  '#pragma unroll',
  'for (int j = 0; j < TOK_BK / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
  '#pragma unroll',
  'for (int kk = 0; kk < D / 16; ++kk)',
  '#pragma unroll',
  '  for (int j = 0; j < TOK_BK / 8; ++j) {',
  '    const T* kr = Ks + (j * 8 + gq) * TOK_KP + kk * 16 + 2 * t4;',
  '    tok_mma(s[j], qa[kk], tok_ld32(kr), tok_ld32(kr + 8));',
  '  }',
];

// Row rr's o rescaled by alpha (its running max rose).
const RESCALE = [
  '#pragma unroll',
  'for (int n = 0; n < DV / 8; ++n) {',
  '  o[n][2 * rr] *= alpha;',
  '  o[n][2 * rr + 1] *= alpha;',
  '}',
];

// o += P·V, P from the score registers, V from the staged tile.
const ACCUMULATE = [
  '// P (16 x TOK_BK, from the score registers) times V (TOK_BK x DV, staged). One transposed',
  '// ldmatrix gives the B fragments of two n-tiles: matrices (keys +0/+8) x (columns +0/+8).',
  'tok_cp_wait<0>();',
  '__syncwarp();',
  'const int vm = lane / 8, vrow = (vm & 1) * 8 + lane % 8, vcol = (vm >> 1) * 8;',
  '#pragma unroll',
  'for (int kk = 0; kk < TOK_BK / 16; ++kk) {',
  '  const unsigned pa[4] = {tok_pack(s[2 * kk][0], s[2 * kk][1]), tok_pack(s[2 * kk][2], s[2 * kk][3]),',
  '                         tok_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), tok_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};',
  '  const T* vr = Vs + (kk * 16 + vrow) * TOK_VP + vcol;',
  '#pragma unroll',
  '  for (int n = 0; n < DV / 8; n += 2) {',
  '    unsigned vb[4];',
  '    tok_ldsm_t(vb, vr + n * 8);',
  '    tok_mma(o[n], pa, vb[0], vb[1]);',
  '    tok_mma(o[n + 1], pa, vb[2], vb[3]);',
  '  }',
  '}',
];

// Row rr's o / l into the output row.
const STORE = [
  '#pragma unroll',
  'for (int n = 0; n < DV / 8; ++n) {',
  '  const int c = n * 8 + 2 * t4;',
  '  orow[c] = from_f32(o[n][2 * rr] * inv);',
  '  orow[c + 1] = from_f32(o[n][2 * rr + 1] * inv);',
  '}',
];
