// Schedule.patchTweaks: opt-in refinements of the 2-D patch layout (patch.ts) on the mma and
// wgmma cores, each its own switch so that one device call can time them one by one (issue 13
// item 4: the neighbourhood kernel was latency-bound — 12.5% achieved occupancy, no eligible warp
// 60% of cycles — with most of a tile's issue slots outside the matrix products). Off, the
// emitted code is the default's, byte for byte.
//
// - 'unitRegs': every thread computes its unit (patch_unit) from the block index and the
//   arguments, into registers, instead of thread 0 into shared memory. Values from shared memory
//   are not provably uniform, so ptxas saw the tile loop's trip count and the classifier as
//   divergent and serialized every wgmma (C7520, "WG.AR in divergent path"); computed from uniform
//   inputs they are, and the two barriers per unit go too (230 registers at D = 128, no spills).
// - 'rowTable': a K/V tile's key rows are computed once, one patch_key (a division) per key, into
//   a shared table that the K and the V gathers both read — instead of one patch_key per 16-byte
//   chunk, K and V each (16 divisions per key at D = 128). One
//   barrier more per tile.
// - 'visitAll': a patch unit's tiles are not classified. The box is the patch's neighbourhood, so
//   a tile is almost never empty, and for radii small beside the patch never full; the classifier
//   (a dozen divisions per tile, every thread, and two ballot scans per unit) only cost time.
//   Every tile of the box runs masked; a plain fallback unit still classifies.
// - 'blocks2' | 'blocks3' | 'blocks4': `__launch_bounds__(THREADS, N)`, so that ptxas keeps the
//   registers N blocks per SM need (65536 / (N · THREADS)): more warps in flight to hide the
//   latency, when shared memory lets N blocks in (q64 tiles, one stage or 64-key tiles).
import type { AttentionKernel, PatchTweak, Schedule } from '../../ir/kernel.js';
import type { Candidate } from '../../ir/passes/schedule.js';
import { boxMaskApplies } from './patch-box.js';

/** A neighbourhood default: tiles and patch tweaks (a bench/cuda/nbhd-list.mjs candidate's schedule). */
export type NeighbourhoodPick = Candidate & Pick<Schedule, 'patchTweaks'>;

/**
 * The default schedules of kernels with neighbourhood patches, by head dim (D = Dv), which
 * schedule-preferred.ts tries first where the engine runs and the user set no tiles. Empty keeps the
 * generic candidates, whose first that fits is wgmma q128 k128, two stages, no tweaks. Set from
 * bench/cuda/neighbourhood.sh's winner (regenerate the neighbourhood goldens, D = 64, after a change).
 * At D = 64, boxMask is serialized by ptxas (C7520) where unitRegs alone is not: a non-box pick.
 */
const neighbourhoodDefaults: ReadonlyMap<number, NeighbourhoodPick> = new Map([
  // H200, bf16, B 2, H 16, 15 × 15 on a 128-wide image, S 16384 (bench/cuda/neighbourhood.sh):
  // round 10 took 64-query patches with the box mask and two blocks an SM (0.783 ms against the old
  // default's 1.795); round 26 (call 41), once the box unit's tile bounds stopped serializing the
  // wgmmas (everyTile), 64-key tiles at three blocks an SM: 0.729 ms against 0.772–0.777 (3.08× Flex).
  // ptxas keeps 168 registers for three blocks and spills 12 bytes — timed with the spill.
  // 'backward' too: patchTweaks named here replace the default's, which has it (backward-patch.ts).
  [
    128,
    {
      engine: 'wgmma',
      blockQ: 64,
      blockK: 64,
      threads: 128,
      stages: 1,
      patchTweaks: ['boxMask', 'visitAll', 'blocks3', 'backward'],
    },
  ],
  // D = 64: boxMask is serialized there (C7520); the per-thread unit, row table and no classifier
  // (1.369 ms at D = 128 against 1.795; checked on the device at D = 64).
  [
    64,
    {
      engine: 'wgmma',
      blockQ: 128,
      blockK: 128,
      threads: 256,
      stages: 2,
      patchTweaks: ['unitRegs', 'rowTable', 'visitAll', 'backward'],
    },
  ],
]);

export function neighbourhoodDefault(headDim: number, valueDim: number): NeighbourhoodPick | undefined {
  return headDim === valueDim ? neighbourhoodDefaults.get(headDim) : undefined;
}

/** The tweaks in effect: boxMask brings unitRegs and rowTable, and only where it applies. */
export function patchTweaksOf(kernel: AttentionKernel): ReadonlySet<PatchTweak> {
  const asked = new Set(kernel.schedule.patchTweaks ?? []);
  if (!asked.has('boxMask')) return asked;
  if (!boxMaskApplies(kernel)) asked.delete('boxMask');
  else ['unitRegs', 'rowTable'].forEach((t) => asked.add(t as PatchTweak));
  return asked;
}

/** The launch bound's blocks per SM (1 unless a blocksN tweak asks for more). */
export function patchMinBlocks(tweaks: ReadonlySet<PatchTweak>): number {
  const n = ([4, 3, 2] as const).find((k) => tweaks.has(`blocks${k}`));
  return n ?? 1;
}

/** `NAME_gather_tab<W, ROWS>(dst, base, rows, tid)`: row r of the tile is row rows[r] of base (< 0: zeros). */
export function gatherTableLoader(loader: string, swizzle: string): string[] {
  return [
    `// ${loader} over rows read from a table (patchTweaks rowTable): no arithmetic per chunk.`,
    'template <int W, int ROWS, class Src>',
    `__device__ __forceinline__ void ${loader}_gather_tab(T* dst, const Src& base, const int* rows, int tid) {`,
    '  constexpr int CH = W / 8, TOTAL = ROWS * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;',
    '  // Not unrolled: unrolled, the 64-bit row addresses of every step stay live in registers the',
    '  // score tile needs (255 registers and spills at D = 128).',
    '#pragma unroll 1',
    '  for (int it = 0; it < ITERS; ++it) {',
    '    const int idx = tid + it * THREADS, r = idx / CH, c = idx % CH;',
    '    if (TOTAL % THREADS == 0 || idx < TOTAL) {',
    '      const int src = rows[r];',
    '      const bool ok = src >= 0;',
    `      cp_async16(dst + ${swizzle}, row_addr(base, ok ? src : 0, W) + c * 8, ok);`, // kv-rows.ts
    '    }',
    '  }',
    '}',
  ];
}

/** Shared state the tweaks add before the unit loop. */
export function tweakDecls(tweaks: ReadonlySet<PatchTweak>): string[] {
  return [
    ...(tweaks.has('rowTable')
      ? ['__shared__ int pk_s[2][BK]; // rowTable: key rows of the tiles in flight']
      : []),
    ...(tweaks.has('boxMask') ? ["__shared__ unsigned pkb_s[2][BK]; // boxMask: the keys' patch bits"] : []),
  ];
}

/** unitRegs: the unit loop's head, the unit a per-thread value computed from uniform inputs. */
export const unitInRegisters = (box: boolean): string[] => [
  box
    ? 'const PatchGrid pgrid = patch_grid_box(patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x), PW_, BQ, gridDim.x);'
    : 'const PatchGrid pgrid = patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x);',
  'const int units = patch_units(pgrid, a.Nq, BQ);',
  'for (int iu = blockIdx.x; iu < units; iu += gridDim.x) {',
  '  // unitRegs: uniform over the block by construction, so ptxas keeps the wgmma loop convergent.',
  '  const PatchUnit pu = patch_unit(pgrid, iu, PW_, PRY, PRX, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ);',
];

/** rowTable's K/V tile load: the key rows once, then both gathers from the table. */
export function rowTableLoad(loader: string, box: boolean): string[] {
  return [
    '  // The table of a stage is rewritten only after the barrier that ends the tile which read it.',
    '  for (int r = tid; r < BK; r += THREADS) {',
    '    const int j = kt * BK + r;',
    '    pk_s[buf][r] = j < pu.nk ? patch_key(pu, j) : -1;',
    ...(box ? ['    pkb_s[buf][r] = PBOX ? patch_key_bits(pu, j, PRY, PRX) : 0u;'] : []),
    '  }',
    '  __syncthreads(); // the table before the gathers (load_kv is called by the whole block)',
    `  ${loader}_gather_tab<D, BK>(Ks + buf * (BK * D), kg, pk_s[buf], tid);`,
    `  ${loader}_gather_tab<DV, BK>(Vs + buf * (BK * DV), vg, pk_s[buf], tid);`,
  ];
}

/** visitAll: the classifier's first statement, so a patch unit's tiles are all visited, masked. */
export const visitAllGuard =
  'if (!pu.plain) { full = false; return true; } // visitAll: the box, every tile masked';
