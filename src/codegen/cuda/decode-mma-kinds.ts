// The cache kinds of the tensor-core decode kernel (decode-mma.ts assembles it): a 16-bit float
// cache, an int8 / fp8 cache with per-token f16 scales (packed, or paged: decode-mma-paged.ts), and
// a KIVI int4 / int2 cache (decode-mma-kivi.ts). The kernel's frame is the same for all three; each
// kind gives its own lines at the points where they differ, so the kind is decided once.
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { mmaFetch, mmaPtx } from './decode-mma-device.js';
import {
  kiviConstants,
  kiviFetch,
  kiviHelpers,
  kiviLoadQ,
  kiviOutColumn,
  mmaKiviOf,
  type MmaKivi,
} from './decode-mma-kivi.js';
import { pagedCodeHandles, pagedQuantFetch, pagedQuantFetchLines } from './decode-mma-paged.js';
import { quantConstants, quantFetch, quantLoadQ, quantOutColumn } from './decode-mma-qtile.js';
import { mmaQuantHelpers, mmaQuantOf, type MmaQuant } from './decode-mma-quant.js';
import { scaleFetchHelpers, scaleFetchLines } from './decode-mma-scales.js';
import { denseLoadQ } from './decode-mma-step.js';
import {
  mmaTokenIntOf,
  tokenIntConstants,
  tokenIntFetch,
  tokenIntHelpers,
  type MmaTokenInt,
} from './decode-mma-tokint.js';
import { codePages, kvHead, K_ROWS, V_ROWS } from './kv-rows.js';

/** A cache kind's lines at each point of the kernel where the kinds differ. */
export interface MmaCacheLines {
  /** Row pitches and MMA_STREAM, the stage buffers' bytes. */
  readonly constants: readonly string[];
  /** Device helpers before the kernel: PTX wrappers, tile fetches, dequantization. */
  readonly helpers: readonly string[];
  /** Q's A fragments, loaded once per split. */
  readonly loadQ: readonly string[];
  /** The split's key range [k_begin, k_end) and the cache's row handles. */
  readonly keys: readonly string[];
  /** The stage buffers (and scale windows) in dm_smem. */
  readonly smem: readonly string[];
  /** One tile's fetch into stage `it % MMA_STAGES` (t0, t1 in scope). */
  readonly fetch: readonly string[];
  /** The output column of C fragment element (n, ee) where the kind permutes V's columns. */
  readonly outColumn: string | undefined;
}

const splitKeyRange = '  const int k_begin = split * split_keys, k_end = min(a.Nk, k_begin + split_keys);';

/**
 * The tensor-core decode's cache kind, decided once per kernel from its formats (the format records
 * are disjoint): KIVI, per-token int4 / int2, int8 / fp8 per token, else 16-bit floats (or none:
 * hasMmaDecode checks those).
 */
export type MmaCache =
  | { readonly kind: 'kivi'; readonly kivi: MmaKivi }
  | { readonly kind: 'tokint'; readonly tok: MmaTokenInt }
  | { readonly kind: 'quant'; readonly quant: MmaQuant }
  | { readonly kind: 'dense' };

export function mmaCacheOf(k: AttentionKernel): MmaCache {
  const kivi = mmaKiviOf(k);
  if (kivi) return { kind: 'kivi', kivi };
  const tok = mmaTokenIntOf(k);
  if (tok) return { kind: 'tokint', tok };
  const quant = mmaQuantOf(k);
  return quant ? { kind: 'quant', quant } : { kind: 'dense' };
}

/** The lines of `k`'s cache kind (hasMmaDecode says the kernel has the tensor-core path). */
export function mmaCacheLines(
  k: AttentionKernel,
  cache: MmaCache,
  field: (key: string) => string,
): MmaCacheLines {
  const paged = k.formats.paged !== undefined;
  switch (cache.kind) {
    case 'kivi':
      return kiviLines(cache.kivi, field);
    case 'tokint':
      return tokenIntLines(cache.tok, field);
    case 'quant':
      return quantLines(cache.quant, paged, field);
    case 'dense':
      return denseLines(sharedStorage(k.formats) as 'f16' | 'bf16', paged);
  }
}

/** 16-bit float K/V: padded rows in shared memory, ldmatrix straight from them. */
function denseLines(dtype: 'f16' | 'bf16', paged: boolean): MmaCacheLines {
  return {
    constants: [
      'constexpr int KP = D + 8, VP = DV + 8; // padded row pitches (elements): conflict-free ldmatrix',
      'constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * MMA_TILE * (KP + VP) * sizeof(T);',
    ],
    helpers: [...mmaPtx(dtype), ...mmaFetch(paged)],
    loadQ: denseLoadQ,
    keys: [
      splitKeyRange,
      `  const KvRows kg = ${kvHead(K_ROWS, 'b', 'hk', paged)};`,
      `  const KvRows vg = ${kvHead(V_ROWS, 'b', 'hk', paged)};`,
    ],
    smem: ['  T* ks = reinterpret_cast<T*>(dm_smem);', '  T* vs = ks + MMA_STAGES * MMA_TILE * KP;'],
    fetch: paged
      ? [
          '      dm_fetch_kv_pages<D, KP, DV, VP>(kg, vg, ks + (it % MMA_STAGES) * MMA_TILE * KP, vs + (it % MMA_STAGES) * MMA_TILE * VP, t0, t1);',
        ]
      : [
          '      dm_fetch<D, KP>(kg, ks + (it % MMA_STAGES) * MMA_TILE * KP, t0, t1);',
          '      dm_fetch<DV, VP>(vg, vs + (it % MMA_STAGES) * MMA_TILE * VP, t0, t1);',
        ],
    outColumn: undefined,
  };
}

/** int8 / fp8 codes with per-token f16 scales (decode-mma-quant.ts), packed or paged. */
function quantLines(quant: MmaQuant, paged: boolean, field: (key: string) => string): MmaCacheLines {
  return {
    constants: quantConstants,
    helpers: [
      ...mmaQuantHelpers(quant),
      ...quantFetch,
      ...scaleFetchHelpers,
      ...(paged ? pagedQuantFetch : []),
    ],
    loadQ: quantLoadQ(quant),
    keys: [
      splitKeyRange,
      ...(paged
        ? pagedCodeHandles
        : [
            '  // Code rows packed [B, Hkv, Nk, bytes] (decode-quant.ts); scales by global row kv0 + key.',
            '  const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk;',
            '  const unsigned char* kc = static_cast<const unsigned char*>(a.k) + kv0 * D;',
            '  const unsigned char* vc = static_cast<const unsigned char*>(a.v) + kv0 * DV;',
          ]),
    ],
    smem: [
      '  unsigned char* ks = reinterpret_cast<unsigned char*>(dm_smem);',
      '  unsigned char* vs = ks + MMA_STAGES * MMA_TILE * KPB;',
      '  [[maybe_unused]] unsigned* sck = reinterpret_cast<unsigned*>(vs + MMA_STAGES * MMA_TILE * VPB); // scale windows',
      '  [[maybe_unused]] unsigned* scv = sck + MMA_STAGES * SCW;',
    ],
    fetch: paged
      ? pagedQuantFetchLines(quant, field)
      : [
          '      dm_fetch_codes<D, KPB>(kc, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);',
          '      dm_fetch_codes<DV, VPB>(vc, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);',
          ...scaleFetchLines(quant, field),
        ],
    outColumn: quantOutColumn,
  };
}

/**
 * The split's keys of a sub-byte cache with a recent window: the code tiles end where it starts.
 * `paged`: a paged cache's code row handles (else packed rows from kv0).
 */
const subByteKeys = (kScales: readonly string[], paged?: readonly string[]): string[] => [
  '  // The code tiles end where the recent window starts (qend); the window is a tail (k_all).',
  '  const int k_begin = split * split_keys, k_all = min(a.Nk, k_begin + split_keys);',
  '  const int qend = a.Nk - min(RECENT, a.Nk), k_end = max(k_begin, min(k_all, qend));',
  ...(paged ?? [
    '  const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk; // code rows packed [B, Hkv, Nk, bytes]',
    ...kScales,
    '  const unsigned char* kc = static_cast<const unsigned char*>(a.k) + kv0 * KB;',
    '  const unsigned char* vc = static_cast<const unsigned char*>(a.v) + kv0 * VB;',
  ]),
];

/** A paged sub-byte cache's code row handles (kv-rows.ts CodePages); its scale windows go by token. */
const pagedCodeRows: readonly string[] = [
  '  // Code rows through the block table (kv-rows.ts CodePages); scales and zeros by token.',
  `  const CodePages kcp = ${codePages('k', 'b', 'hk', 'KB')};`,
  `  const CodePages vcp = ${codePages('v', 'b', 'hk', 'VB')};`,
];

/** Code rows, then K's and V's scale windows (`what`: the K windows' kind). */
const subByteSmem = (what: string): string[] => [
  '  unsigned char* ks = reinterpret_cast<unsigned char*>(dm_smem);',
  '  unsigned char* vs = ks + MMA_STAGES * MMA_TILE * KPB;',
  `  unsigned* skz = reinterpret_cast<unsigned*>(vs + MMA_STAGES * MMA_TILE * VPB); // ${what}`,
  '  unsigned* svz = skz + MMA_STAGES * 2 * KGW; // V scale windows',
];

/** KIVI int4 / int2 codes (decode-mma-kivi.ts), packed or paged: the code tiles end where the recent window starts. */
function kiviLines(kivi: MmaKivi, field: (key: string) => string): MmaCacheLines {
  return {
    constants: kiviConstants(kivi),
    helpers: kiviHelpers(kivi),
    loadQ: kiviLoadQ,
    keys: subByteKeys(
      ['  const size_t n_groups = ((size_t)a.Nk + 31) / 32; // K scale / zero rows a head'],
      kivi.paged ? pagedCodeRows : undefined,
    ),
    smem: subByteSmem('K group windows'),
    fetch: kiviFetch(field, kivi.paged),
    outColumn: kiviOutColumn,
  };
}

/**
 * Per-token int4 / int2 codes (decode-mma-tokint.ts): KIVI's rows and windows; the key-major
 * kernel only, so no query-major Q or output permutation.
 */
function tokenIntLines(t: MmaTokenInt, field: (key: string) => string): MmaCacheLines {
  return {
    constants: tokenIntConstants(t),
    helpers: tokenIntHelpers(t),
    loadQ: [],
    keys: subByteKeys([], t.paged ? pagedCodeRows : undefined),
    smem: subByteSmem('K scale windows'),
    fetch: tokenIntFetch(t, field),
    outColumn: undefined,
  };
}
