// The tuning knobs of CUDA decode mode (decode.ts), emitted as preprocessor defaults so that one
// artifact can be rebuilt with `nvcc -DATTNC_DEC_<KNOB>=n` for a sweep on the GPU (bench/cuda/
// decode-emit.mjs and quant-decode-emit.mjs list the variants; the .py scripts build and time each)
// without a compiler change per point. The emitted defaults are what the compiler picks:
//   GROUPS      lane groups of 8 per block (threads = 8 · GROUPS)             16
//   KPG         keys per group per tile (a tile is GROUPS · KPG keys)         2
//   STAGES      shared-memory tile buffers of the cp.async stream            fits STAGE_BUDGET, 2..4 (quantized 2..8)
//   MIN_BLOCKS  __launch_bounds__ minimum blocks per SM (a register cap)     3 without a score modifier
//               or element mask (H200 sweep, such kernels: fastest for every format at 32K and 128K
//               keys, bf16 x0.57 -> x0.65 of SDPA, int8 x0.34 -> x0.48, small spills included);
//               1 otherwise (unmeasured; at 170 registers those spill up to ~500 bytes)
//   SPLITS      KV splits per (batch, kv head, row tile); 0 = the host picks  0
//   VSIDES      per-channel f16 scales/zeros in 16-byte loads (decode-quant.ts) 1
// The tensor-core kernel's knobs (ATTNC_DEC_MMA_*) are listed at MMA_KNOB_NAMES.
import { elementBytes, hasQuantizedKv, type TensorFormat } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { codesPerWord } from '../../quant/elem.js';

/** Default tile of the decode stream: GROUPS · KPG keys. */
export const DEFAULT_GROUPS = 16;
export const DEFAULT_KPG = 2;
/** 170 registers a thread at 128 threads: measured fastest on the H200 for every format (notes above). */
export const LIGHT_MIN_BLOCKS = 3;
const DEFAULT_TILE = DEFAULT_GROUPS * DEFAULT_KPG;
/** Shared memory one block's stages may take by default: 3 blocks (MIN_BLOCKS) of 64 KiB + the static arrays fit an H100/H200 SM (228 KiB). */
const STAGE_BUDGET = 64 * 1024;
/** Most buffers: float caches 4 (as measured so far), quantized 8 (their packed rows are short). */
const maxStages = (k: AttentionKernel): number => (hasQuantizedKv(k.formats) ? 8 : 4);

/** Bytes one key row of K or V takes in the stream: its elements, or a quantized cache's code words. */
export function streamRowBytes(f: TensorFormat, width: number, floatBytes: number): number {
  if (f.kind !== 'quant') return width * floatBytes;
  return Math.ceil(width / codesPerWord(f.format.elem)) * 4;
}

/** Bytes one default tile of K and V takes in shared memory. */
function tileBytes(k: AttentionKernel): number {
  const s = k.schedule;
  const t = elementBytes(k.formats.k);
  return (
    DEFAULT_TILE * (streamRowBytes(k.formats.k, s.headDim, t) + streamRowBytes(k.formats.v, s.valueDim, t))
  );
}

/** Default number of buffers: as many as fit the budget, 2 to maxStages. */
export function decodeStages(k: AttentionKernel): number {
  return Math.max(2, Math.min(maxStages(k), Math.floor(STAGE_BUDGET / tileBytes(k))));
}

/** The knobs, each emitted as the macro ATTNC_DEC_<name>. */
export const DECODE_KNOB_NAMES = ['GROUPS', 'KPG', 'STAGES', 'MIN_BLOCKS', 'SPLITS', 'VSIDES'] as const;
type KnobName = (typeof DECODE_KNOB_NAMES)[number];
/**
 * The tensor-core kernel's knobs (decode-mma.ts): MMA on (1) / off (0), WARPS a block, KEYS each
 * warp takes of a tile (a tile is WARPS · KEYS keys), STAGES buffers, MIN_BLOCKS (register cap).
 */
export const MMA_KNOB_NAMES = [
  'MMA',
  'MMA_WARPS',
  'MMA_KEYS',
  'MMA_STAGES',
  'MMA_MIN_BLOCKS',
  // Quantized caches only (decode-mma-quant.ts's quantTileKnobs): their WARPS, KEYS and STAGES.
  'MMA_QWARPS',
  'MMA_QKEYS',
  'MMA_QSTAGES',
  // Their register cap (__launch_bounds__ minimum blocks an SM; default ATTNC_DEC_MMA_MIN_BLOCKS).
  'MMA_QMIN_BLOCKS',
  // KIVI int4 / int2 caches on the tensor-core kernel (decode-mma-kivi.ts): 1 (default) on, 0 SIMT.
  'MMA_KIVI',
  // Quantized code rows copied from one pointer a thread (1: KIVI's default) or by the general index
  // form (0: int8 / fp8's default; decode-mma-quant.ts quantTileKnobs).
  'MMA_FETCH_RUNS',
  // Lean per-step code, bits 1 (rescale on a max rise) and 2 (one row half): decode-mma-lean.ts.
  // Emitted only where the artifact was compiled with Schedule.decodeLean 'knob' (the bench's) or 'on'.
  'MMA_LEAN',
  // KIVI and packed int8 / fp8 caches: 1 the key-major kernel (the default for KIVI and fp8 since
  // round 34), 0 the query-major one (int8's default; decode-mma-km.ts KmKind.byDefault).
  'MMA_KM',
] as const;
type AnyKnobName = KnobName | (typeof MMA_KNOB_NAMES)[number];
/** Every knob macro suffix (ATTNC_DEC_<name>), SIMT and tensor-core. */
export const ALL_KNOB_NAMES: readonly AnyKnobName[] = [...DECODE_KNOB_NAMES, ...MMA_KNOB_NAMES];

/**
 * `#ifndef` defaults of the knobs (before the constants that use them). `light`: no score modifier
 * and no per-element mask (the register cap of MIN_BLOCKS 3 measured faster there).
 */
export function decodeKnobs(k: AttentionKernel, light: boolean): string[] {
  const defaults: Record<KnobName, number> = {
    GROUPS: DEFAULT_GROUPS,
    KPG: DEFAULT_KPG,
    STAGES: decodeStages(k),
    MIN_BLOCKS: light ? LIGHT_MIN_BLOCKS : 1,
    SPLITS: 0,
    VSIDES: 1,
  };
  const knobs = DECODE_KNOB_NAMES.map((n) => [n, defaults[n]] as const);
  return [
    '// Tuning knobs (decode-knobs.ts): rebuild with -DATTNC_DEC_<KNOB>=n to override.',
    ...knobs.flatMap(([n, v]) => [`#ifndef ATTNC_DEC_${n}`, `#define ATTNC_DEC_${n} ${v}`, '#endif']),
    'static_assert(ATTNC_DEC_GROUPS >= 4 && ATTNC_DEC_GROUPS <= 128 && ATTNC_DEC_GROUPS % 4 == 0, "ATTNC_DEC_GROUPS: 4..128, whole warps");',
    'static_assert(ATTNC_DEC_KPG >= 1 && ATTNC_DEC_STAGES >= 2 && ATTNC_DEC_MIN_BLOCKS >= 1 && ATTNC_DEC_SPLITS >= 0, "decode knobs");',
  ];
}

/** A point of the knob sweep: name → overrides (knob name without the ATTNC_DEC_ prefix). */
export interface DecodeKnobVariant {
  readonly name: string;
  readonly knobs: Readonly<Partial<Record<AnyKnobName, number>>>;
  /** The bench formats it changes anything for (absent: all); the sweep builds only those. */
  readonly formats?: readonly string[];
}

/**
 * The sweep bench/cuda/quant-decode.py builds every format with (nvcc -D...), checks and times;
 * test/cuda/decode-quant-nvcc.test.ts builds each. Keep it short: one nvcc build per format each.
 */
export const DECODE_KNOB_VARIANTS: readonly DecodeKnobVariant[] = [
  { name: 'default', knobs: {} },
  { name: 'minblocks1', knobs: { MIN_BLOCKS: 1 } }, // no register cap (quantized: no spills)
  { name: 'minblocks4', knobs: { MIN_BLOCKS: 4 } },
  { name: 'kpg1', knobs: { KPG: 1 } },
  { name: 'kpg4', knobs: { KPG: 4 } },
  { name: 'stages3', knobs: { STAGES: 3 } },
  { name: 'stages6', knobs: { STAGES: 6 } },
  { name: 'vsides0', knobs: { VSIDES: 0 } }, // KIVI's K scales/zeros one f16 load each
  // The tensor-core kernel (16-bit float caches and int8 / fp8 per token: bench formats bf16, int8,
  // e4m3); 'default' is WARPS 8, KEYS 16, STAGES 2, MIN_BLOCKS 1 there (the H200 sweep's best: 0.95x
  // SDPA at 128K), 'simt' the SIMT kernel it replaced, 'mma_w4s3' the previous default (0.92x).
  // bf16 at D 128 takes 544 bytes a key and stage: WARPS x KEYS x STAGES ≤ 416 keys (227 KiB).
  ...(
    [
      ['simt', { MMA: 0 }],
      ['mma_w4s3', { MMA_WARPS: 4, MMA_STAGES: 3, MMA_MIN_BLOCKS: 2 }],
      ['mma_w4s2', { MMA_WARPS: 4, MMA_STAGES: 2, MMA_MIN_BLOCKS: 2 }],
      ['mma_s3', { MMA_STAGES: 3 }],
      ['mma_w4k32', { MMA_WARPS: 4, MMA_KEYS: 32 }],
      ['mma_w4s6', { MMA_WARPS: 4, MMA_STAGES: 6 }],
      // Fixed split counts (the host's pick: ~9 at B 4, Hkv 8 on 132 SMs, 2 blocks an SM).
      ['mma_sp16', { SPLITS: 16 }],
      ['mma_sp32', { SPLITS: 32 }],
    ] as const
  ).map(([name, knobs]) => ({ name, knobs, formats: ['bf16', 'int8', 'e4m3'] })),
  // More bytes in flight for int8 / fp8 tiles. Round 6 read 2.1 TB/s (1.05x SDPA at 128K): the
  // int8 kernel takes 157 registers (sm_90a), so one 8-warp block an SM, with one 128-key tile of
  // ~39 KiB in flight while it computes the other (bf16's tile: ~68 KiB, 3.9 TB/s). A key and stage
  // takes 312 bytes at D 128 (codes, pitches, scales): QWARPS x QKEYS x QSTAGES ≤ 744 keys. A
  // register cap of 128 for two 8-warp blocks an SM (MIN_BLOCKS 2) spills; 4 warps fit 3 an SM by
  // registers (2 by shared memory at 4 stages).
  ...(
    [
      // The default is QKEYS 32 since the 2026-12-04 sweep; q_k16 is the tile it replaced.
      ['q_k16', { MMA_QKEYS: 16 }],
      ['q_s3', { MMA_QKEYS: 16, MMA_QSTAGES: 3 }],
      ['q_s4', { MMA_QKEYS: 16, MMA_QSTAGES: 4 }],
      ['q_w4s4', { MMA_QWARPS: 4, MMA_QKEYS: 16, MMA_QSTAGES: 4 }],
      ['q_w4s6', { MMA_QWARPS: 4, MMA_QKEYS: 16, MMA_QSTAGES: 6 }],
      ['q_w4k32s3', { MMA_QWARPS: 4, MMA_QKEYS: 32, MMA_QSTAGES: 3 }],
      // (Round 23's occupancy variants — 4-warp blocks capped for 3 an SM, 2-warp blocks for 6, by
      // MMA_QMIN_BLOCKS — were slower than the default and left this list to keep the nvcc tests'
      // builds down: bench/device-calls/c32-decode-occupancy.sh has their knobs.)
    ] as const
  ).map(([name, knobs]) => ({ name, knobs, formats: ['int8', 'e4m3'] })),
  // KIVI int4 / int2 (per-channel K groups, per-token V groups, recent f16 window): 'default' is
  // the tensor-core kernel since 2026-12-04 (decode-mma-kivi.ts); kivi_simt the SIMT one it
  // replaced; kivi_mma_s3: 3 stages; kivi_mma_w4s4: 4 warps x 4 stages (two blocks an SM).
  ...(
    [
      ['kivi_simt', { MMA_KIVI: 0 }],
      ['kivi_mma_s3', { MMA_KIVI: 1, MMA_QSTAGES: 3 }],
      ['kivi_mma_w4s4', { MMA_KIVI: 1, MMA_QWARPS: 4, MMA_QSTAGES: 4 }],
    ] as const
  ).map(([name, knobs]) => ({ name, knobs, formats: ['int4', 'int2'] })),
  // Lean per-step code on every tensor-core kernel (decode-mma-lean.ts; the artifacts must be
  // emitted with Schedule.decodeLean 'knob', as quant-decode-emit.mjs does): lean1 rescales O only when
  // a row max rose, lean2 skips padding rows 8..15 (GQA 4: 12 of 16 rows), lean3 both.
  ...(
    [
      ['lean1', { MMA_LEAN: 1 }],
      ['lean2', { MMA_LEAN: 2 }],
      ['lean3', { MMA_LEAN: 3 }],
    ] as const
  ).map(([name, knobs]) => ({ name, knobs, formats: ['bf16', 'int8', 'e4m3', 'int4', 'int2'] })),
  // The key-major kernel (decode-mma-km.ts; the default for KIVI and fp8 since round 34, with
  // KIVI's 4-warp blocks capped for three an SM) forced on at LEAN 3 (KIVI: those default tiles),
  // and capped for two blocks an SM (128 registers a thread; int8 / e4m3 with 16-key warps so that two
  // blocks' streams fit: 108 registers, no spill).
  { name: 'lean3_km', knobs: { MMA_LEAN: 3, MMA_KM: 1 }, formats: ['int8', 'e4m3', 'int4', 'int2'] },
  {
    name: 'lean3_km_b2',
    knobs: { MMA_LEAN: 3, MMA_KM: 1, MMA_QMIN_BLOCKS: 2 },
    formats: ['int4', 'int2'],
  },
  {
    name: 'lean3_km_k16b2',
    knobs: { MMA_LEAN: 3, MMA_KM: 1, MMA_QMIN_BLOCKS: 2, MMA_QKEYS: 16 },
    formats: ['int8', 'e4m3'],
  },
  // The key-major int8 / fp8 kernel at four 4-warp blocks an SM (16 warps, 128 registers, no spill
  // at sm_90a; 16-key warps so that four blocks' streams fit): round 34 timed it at one 8-warp block.
  {
    name: 'km_w4k16b4',
    knobs: { MMA_KM: 1, MMA_QWARPS: 4, MMA_QKEYS: 16, MMA_QMIN_BLOCKS: 4 },
    formats: ['int8', 'e4m3'],
  },
  // The query-major kernel where the key-major one is the default (KIVI, fp8), at LEAN 3.
  { name: 'lean3_qm', knobs: { MMA_LEAN: 3, MMA_KM: 0 }, formats: ['e4m3', 'int4', 'int2'] },
  // Per-token int4 / int2 (decode-mma-tokint.ts, key-major only; default 4-warp blocks capped for
  // four an SM, KM_TOKEN_INT_TILES): KIVI's three an SM, 8-warp blocks for two, three stages.
  ...(
    [
      ['tok_b3', { MMA_QMIN_BLOCKS: 3 }],
      ['tok_w8b2', { MMA_QWARPS: 8, MMA_QMIN_BLOCKS: 2 }],
      ['tok_s3', { MMA_QSTAGES: 3 }],
    ] as const
  ).map(([name, knobs]) => ({ name, knobs, formats: ['int4t', 'int4tz', 'int4g64z', 'int2tz'] })),
  // Round 32's code-row fetch off (the general index form), at the quantized caches' LEAN 3.
  {
    name: 'lean3_fetch0',
    knobs: { MMA_LEAN: 3, MMA_FETCH_RUNS: 0 },
    formats: ['int8', 'e4m3', 'int4', 'int2'],
  },
];

/** `#define` lines of a variant's overrides (for a translation unit that holds several artifacts). */
export const knobDefines = (v: DecodeKnobVariant): string[] =>
  Object.entries(v.knobs).map(([n, x]) => `#define ATTNC_DEC_${n} ${x}`);
