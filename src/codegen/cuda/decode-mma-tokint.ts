// Per-token int4 / int2 caches, the common sub-byte layouts of engines (LMDeploy / QServe-style KV4:
// one f16 scale a token row; HF's QuantizedCache: one a token and run of 64 channels), symmetric or
// with f16 zero points, an optional window of recent f16 tokens, packed or paged through a block
// table, in the key-major tensor-core decode kernel (decode-mma-km.ts). Before it they took the SIMT
// kernel (on KIVI caches about 2.5x slower than the tensor-core one). The codes enter the f16 MMA
// exactly (decode-mma-dq.ts's magic-number pairs; a symmetric code's sign bit flipped in the same
// lop3, so the pair is the signed code); scales and zero points are folded, never applied per element:
// - K (a scale s and zero z a token and run g of channels): q·k = 2^(e_q - 14) Σ_g s_g (q̂_g · code_g
//   − z_g · Σ q̂_g), each run's MMAs into their own accumulator, the sums over the row's f16 q̂ taken
//   once per split (q̂ = q · 2^(14 - e_q), as the int8 path); symmetric: no z.
// - V (a scale and zero a token and run of g channels): O_g += f16(p · s_t,g) · code, and
//   Σ_t f16(p_t · s_t,g) z_t,g by one more MMA a group, subtracted at the end (KIVI's V).
// Channel orders are KIVI's (decode-mma-kivi.ts) where a K scale covers the whole row (a lane's words
// contiguous: 16-byte reads); K runs of channels take the interleaved one (the lanes' words side by
// side: each k-step's channels in one run of 4·(32 / bits)); V's runs of g ≥ 32 channels are whole
// 32-channel blocks of O's m-tiles. Key-major only: at GQA 4 the query-major kernel pads 12 of 16
// rows, and KIVI ran 1.25x faster key-major (round 34).
import type { AttentionKernel } from '../../ir/kernel.js';
import type { QuantFormat } from '../../quant/format.js';
import type { UnsignedCodeBits } from './decode-mma-dq.js';
import { kiviHelpers } from './decode-mma-kivi.js';

/** One cache's codes: bits, whether it has a zero point (else symmetric signed codes), scales a token. */
export interface TokenIntSide {
  readonly bits: UnsignedCodeBits;
  readonly zero: boolean;
  readonly groups: number;
}

export interface MmaTokenInt {
  readonly k: TokenIntSide;
  readonly v: TokenIntSide;
  /** Recent f16 tokens (the same window on K and V), 0 without one. */
  readonly recent: number;
  /** Code rows and scales in pools of pages (docs/LANGUAGE.md "Paged quantized caches"). */
  readonly paged: boolean;
}

/**
 * A per-token int4 / int2 cache of `dim` channels whose scale groups (runs of channels) divide it
 * and are whole multiples of `quantum(bits)` channels.
 */
function tokenSide(q: QuantFormat, dim: number, quantum: (bits: 4 | 2) => number): TokenIntSide | undefined {
  if (q.kind !== 'int' || (q.elem !== 'int4' && q.elem !== 'int2')) return undefined;
  if (q.norm || q.salient || q.scale.dtype !== 'f16' || q.scale.per.kind !== 'token') return undefined;
  if (q.zero !== undefined && q.zero !== 'f16') return undefined;
  if (q.recent && q.recent.dtype !== 'f16') return undefined;
  const bits = q.elem === 'int4' ? 4 : 2;
  const g = q.scale.per.group ?? dim;
  if (dim % g !== 0 || (g !== dim && g % quantum(bits) !== 0)) return undefined;
  return { bits, zero: q.zero !== undefined, groups: dim / g };
}

/**
 * K groups: whole runs of 4·(32 / bits) channels (the interleaved order's k-steps stay in one:
 * int4 32, int2 64); V groups: whole 32-channel blocks of O's m-tiles.
 */
const kQuantum = (bits: 4 | 2): number => (4 * 32) / bits;
const vQuantum = (): number => 32;

/**
 * Per-token int4 / int2 K/V the key-major kernel takes (packed or paged caches, D and DV multiples of 64,
 * DV at most 256; scales one a token or one a run of channels, kQuantum / vQuantum), else undefined.
 */
export function mmaTokenIntOf(k: AttentionKernel): MmaTokenInt | undefined {
  const { k: kf, v: vf, paged } = k.formats;
  const s = k.schedule;
  if (kf.kind !== 'quant' || vf.kind !== 'quant') return undefined;
  if (s.headDim % 64 !== 0 || s.valueDim % 64 !== 0 || s.valueDim > 256) return undefined;
  const ks = tokenSide(kf.format, s.headDim, kQuantum);
  const vs = tokenSide(vf.format, s.valueDim, vQuantum);
  const recent = kf.format.recent?.tokens ?? 0;
  if (!ks || !vs || recent !== (vf.format.recent?.tokens ?? 0)) return undefined;
  return { k: ks, v: vs, recent, paged: paged !== undefined };
}

/** Stream bytes a key and stage: code rows and pitches, scales and zeros per group. */
export const tokenIntStreamBytesPerKey = (t: MmaTokenInt, D: number, DV: number): number =>
  (D * t.k.bits) / 8 + 16 + (DV * t.v.bits) / 8 + 16 + 4 * t.k.groups + 4 * t.v.groups;

/** Constants of the layout (bytes, words): KIVI's code rows; K and V scale (and zero) windows. */
export const tokenIntConstants = (t: MmaTokenInt): string[] => [
  `constexpr int KBITS = ${t.k.bits}, VBITS = ${t.v.bits}, RECENT = ${t.recent};`,
  'constexpr int KCPW = 32 / KBITS, KPPW = KCPW / 2, VCPW = 32 / VBITS; // codes / pairs a word',
  'constexpr int KB = D * KBITS / 8, VB = DV * VBITS / 8, KPB = KB + 16, VPB = VB + 16; // row bytes, pitches',
  'constexpr int KWL = D / (4 * KCPW); // K words a lane reads of a key row',
  `constexpr int VG = DV / 32, VS = ${t.v.groups}, VGS = VG / VS; // 32-channel blocks of V, scales a key, blocks a scale`,
  `constexpr int KS = ${t.k.groups}, KGS = D / 16 / KS; // K scales a key, k-steps a K scale`,
  'constexpr int KGW = MMA_TILE * KS / 2, VGW = MMA_TILE * VS / 2; // scale words a tile (zeros as many after)',
  'static_assert(KB % 16 == 0 && VB % 16 == 0 && D % (4 * KCPW) == 0 && DV % 64 == 0 && VG <= 8, "per-token int tiles");',
  'constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * (MMA_TILE * (KPB + VPB) + 4 * (2 * KGW + 2 * VGW));',
];

/** Device helpers (namespace dec): KIVI's, the pair readers of either kind of code, the paged fetches. */
export function tokenIntHelpers(t: MmaTokenInt): string[] {
  // Unsigned codes with a zero point, else signed (dmq_field's sgn, decode-mma-dq.ts).
  const sgn = (side: TokenIntSide): string => (side.zero ? 'false' : 'true');
  return [
    // K scales per run of channels take the interleaved K order (each k-step in one run).
    ...kiviHelpers({ kBits: t.k.bits, vBits: t.v.bits, recent: t.recent, paged: t.paged }, t.k.groups > 1),
    '// ---- per-token int4 / int2 K/V in the key-major kernel: codegen/cuda/decode-mma-tokint.ts ----',
    `__device__ __forceinline__ unsigned dt_kpair(unsigned w, int i) { return dmq_field(w, KBITS, KBITS * i, ${sgn(t.k)}); }`,
    `__device__ __forceinline__ unsigned dt_vcode(unsigned t, int nq) { return dmq_field(t, VBITS, VBITS * nq, ${sgn(t.v)}); }`,
  ];
}

/** Fetch lines of tile `it` (t0, t1 in scope; kv0 packed, kcp / vcp paged): code rows, scale (zero) windows. */
export function tokenIntFetch(t: MmaTokenInt, field: (key: string) => string): string[] {
  // One window of halves: K's (one a token) or V's (VS a token), scales then zeros.
  const window = (w: 'k' | 'v', part: 'scale' | 'zero'): string => {
    const [dst, words, per] = w === 'k' ? ['kd', 'KGW', 'KS'] : ['vd', 'VGW', 'VS'];
    const to = part === 'zero' ? `${dst} + ${words}` : dst;
    const src = `a.${field(`cache:${w}_${part}`)}`;
    return t.paged
      ? `        dm_fetch_halves_pages<${per}>(${src} + (long long)hk * PAGE * ${per}, ${to}, kcp.pages, (long long)a.Hkv * PAGE * ${per}, t0, t1 - t0, ${words});`
      : `        dk_fetch_halves(${src}, ${to}, (kv0 + t0) * ${per}, (t1 - t0) * ${per}, ${words});`;
  };
  const codes = t.paged
    ? [
        '      dm_fetch_code_pages<KB, KPB>(kcp, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);',
        '      dm_fetch_code_pages<VB, VPB>(vcp, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);',
      ]
    : [
        '      dm_fetch_codes<KB, KPB>(kc, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);',
        '      dm_fetch_codes<VB, VPB>(vc, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);',
      ];
  return [
    ...codes,
    '      {',
    '        unsigned* kd = skz + (it % MMA_STAGES) * 2 * KGW;',
    window('k', 'scale'),
    ...(t.k.zero ? [window('k', 'zero')] : []),
    '        unsigned* vd = svz + (it % MMA_STAGES) * 2 * VGW;',
    window('v', 'scale'),
    ...(t.v.zero ? [window('v', 'zero')] : []),
    '      }',
  ];
}
