// The dK/dV kernels' 2-D patch order for neighbourhood masks (IR: passes/neighbourhood.ts), the
// dual of the forward's patch layout (patch.ts) as the residue order (backward-residue.ts) is the
// dual of residue.ts. A work unit is a PH×PW patch of KEY pixels (PH·PW = BN: the key tile, rows
// gathered) and it walks the patch's neighbourhood box of QUERY pixels — the same box formula with
// q and k swapped, since `abs(q / W - k / W) <= ry && abs(q % W - k % W) <= rx` is symmetric in the
// two differences — packed row after row, the valid middle run contiguous. The walk's q-tiles are
// BM-slot runs of the box, classified by the kernel's own classifier on their bounding positions
// (box positions increase with the slot), as the forward classifies its key tiles; the whole mask
// is still evaluated on masked tiles. Where the forward falls back to plain units (W < 1, positions
// near the int range, too many patches) a unit is the plain order's key tile over every query.
// Before: a key tile was one image row of 128 keys and walked every q-tile of the 2·ry + 1 image
// rows it sees, each partial (neighbourhood W 128, r 7: ~12% of each tile's scores live).
// bwd_pre and bwd_dq_out are elementwise; the deterministic bwd_dq (backward-mma-dq.ts) runs the
// forward's query patches over their boxes' keys (backward-dq-order.ts).
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { HoistedMask } from './backward-mask-hoists.js';
import { positionBase, storedPositions } from './backward-residue.js';
import type { DkdvOrder } from './backward-residue.js';
import { gatherLoader, patchUnitSource } from './patch.js';

/** C texts of W and the radii over Args `a` (literals or param fields). */
export interface DkdvPatch {
  readonly width: string;
  readonly rowRadius: string;
  readonly colRadius: string;
}

/**
 * The key-side unit: the forward's patch_grid / patch_unit (patchUnitSource) called with the roles
 * of queries and keys swapped, so the same arithmetic (and its host tests) covers both sides.
 */
export const patchKeyUnitSource: readonly string[] = [
  "// bwd_dkdv's key-side patch unit: patch_unit with queries and keys swapped (the mask's two",
  '// differences are symmetric). Unit u is a patch of KEY pixels. box: its neighbourhood box of query',
  "// pixels, query index patch_key(box, j) for j < box.nk (box.q_lo..q_hi: the keys' bounding",
  "// positions). keys: the patch's own pixels (a radius-0 box clipped to the keys), key index",
  '// patch_tile_key(u, c) for c < n, in increasing position. Plain units: key tile u over all queries.',
  'struct PatchKeyUnit {',
  '  PatchUnit box, keys;',
  '  int n;',
  '};',
  "// Plain (patch_grid) where the patches would outnumber 4x the plain order's key tiles plus 16.",
  '__host__ __device__ inline PatchGrid patch_key_grid(int W, int Nq, int Nk, int qo, int ko, int BN) {',
  '  return patch_grid(W, Nk, Nq, ko, qo, BN, (Nk + BN - 1) / BN);',
  '}',
  '__host__ __device__ inline PatchKeyUnit patch_key_unit(int unit, int W, int ry, int rx, int Nq, int Nk, int qo, int ko, int BN) {',
  '  const PatchGrid g = patch_key_grid(W, Nq, Nk, qo, ko, BN);',
  '  PatchKeyUnit u;',
  '  u.box = patch_unit(g, unit, W, ry, rx, Nk, Nq, ko, qo, BN);',
  '  u.keys = patch_unit(g, unit, W, 0, 0, Nk, Nk, ko, ko, BN);',
  '  const long long rest = (long long)Nk - u.keys.x0; // plain: keys x0.. of the tile',
  '  u.n = g.plain ? (int)(rest < BN ? rest : BN) : u.keys.nk;',
  '  return u;',
  '}',
  '__host__ __device__ inline int patch_tile_key(const PatchKeyUnit& u, int c) {',
  '  return u.keys.plain ? (int)u.keys.x0 + c : patch_key(u.keys, c);',
  '}',
];

/**
 * Bytes of the block's static unit (two PatchUnits of 72 bytes and the key count, 8-aligned),
 * counted with the position arrays so that the shared-memory refusals see it.
 */
const UNIT_BYTES = 152;

/**
 * The block's unit and key tile, as keyTileCoords (backward-dkdv-parts.ts) for the plain order:
 * a block per unit (dkdv_units), the unit in a static __shared__ as the residue order keeps its
 * own (a unit loop, or the unit in registers, spilled beside the dK/dV accumulators there).
 */
function patchKeyTileCoords(p: DkdvPatch): string[] {
  return [
    '  const int b = blockIdx.z, hkv = blockIdx.y, group = a.H / a.Hkv;',
    '  __shared__ PatchKeyUnit pk_s;',
    '  if (threadIdx.x == 0)',
    `    pk_s = patch_key_unit(blockIdx.x, ${p.width}, ${p.rowRadius}, ${p.colRadius}, a.Nq, a.Nk, a.q_offset, a.k_offset, BN);`,
    '  __syncthreads();',
    '  const PatchKeyUnit& pk = pk_s;',
    '  const PatchUnit& pb = pk.box; // the query box the patch walks',
    '  if (pk.n == 0) return; // no key in this patch (uniform over the block)',
    '  const int k0 = 0; // the tile is the patch: key kl is patch_tile_key(pk, kl), kl < pk.n',
    '  const size_t krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk;',
    '  const int nqt = (pb.nk + BM - 1) / BM;',
    '  const int k_lo = a.k_offset + patch_tile_key(pk, 0), k_hi = a.k_offset + patch_tile_key(pk, pk.n - 1);',
    '  const bool k_tail = pk.n < BN;',
    '  (void)k_lo; (void)k_hi;',
  ];
}

/** `loader`'s gathered twin over rows `rowOf` (-1: zeros) of `base`. */
const gather = (
  loader: string,
  w: string,
  rows: string,
  dst: string,
  base: string,
  rowOf: string,
  tid: string,
) => `${loader}_gather<${w}, ${rows}>(${dst}, ${base}, [&](const int r) { return ${rowOf}; }, ${tid});`;

/** The patch order, its position arrays at word `base` of Ls (as the residue order's). */
function patchOrder(base: string, p: DkdvPatch): DkdvOrder {
  const qpos = (i: string): string => `a.q_offset + patch_key(pb, ${i})`;
  const kpos = (j: string): string => `a.k_offset + patch_tile_key(pk, ${j})`;
  return {
    nq: 'pb.nk',
    nk: 'pk.n',
    qrow: (i) => `qrow0 + patch_key(pb, ${i})`,
    krow: (j) => `krow0 + patch_tile_key(pk, ${j})`,
    qpos,
    kpos,
    queryLoad: (loader, w, dst, src, tid) =>
      gather(
        loader,
        w,
        'BM',
        dst,
        `${src} + qrow0 * ${w}`,
        'q0 + r < pb.nk ? patch_key(pb, q0 + r) : -1',
        tid,
      ),
    keyLoad: (loader, w, dst, src, tid) =>
      gather(loader, w, 'BN', dst, `${src} + krow0 * ${w}`, 'r < pk.n ? patch_tile_key(pk, r) : -1', tid),
    ...storedPositions(base, qpos, kpos),
    keyTile: patchKeyTileCoords(p),
    positionBytes: (BM, BN) => 4 * (2 * BM + BN) + UNIT_BYTES,
    afterPositions: (from) => `${from} + 2 * BM + BN`,
  };
}

/** The dK/dV order of a kernel with a neighbourhood record `p`, its mask hoisting `m`. */
export const patchOrderOf = (p: DkdvPatch, m: HoistedMask | null): DkdvOrder =>
  patchOrder(positionBase(m), p);

/**
 * Whether the dK/dV kernel takes the patch order: a neighbourhood record, unless the schedule
 * names its patchTweaks without 'backward' (then the plain order with ping-pong dQ). The default
 * since round 19: device call 17 (H100, bench/cuda/backward.sh, neighbourhood 15 × 15 on a
 * 128-wide image, bf16 D = 128, gradients checked against FlexAttention's first) timed 0.635 /
 * 2.553 ms at 4K / 16K against 1.226 / 5.253 in the plain order (1.87× / 1.82× Flex against 0.97× /
 * 0.89×); deterministic 4.62 / 19.75 against 4.87 / 20.30. The backward compiles its forward with
 * the mma engine asked (backward.ts), so the forward's patch picks never reach it: no patchTweaks
 * there means the default.
 */
export const backwardPatchAsked = (kernel: AttentionKernel): boolean =>
  kernel.neighbourhood !== undefined && (kernel.schedule.patchTweaks ?? ['backward']).includes('backward');

/** The patch order's C texts of `kernel` (null without a neighbourhood record or unasked). */
export function dkdvPatchOf(
  kernel: AttentionKernel,
  render: (nodes: Node[]) => { readonly stmts: readonly string[]; readonly roots: readonly string[] },
): DkdvPatch | null {
  const n = kernel.neighbourhood;
  if (!n || !backwardPatchAsked(kernel)) return null;
  const t = render([n.width, n.rowRadius, n.colRadius]);
  if (t.stmts.length) throw new Error('internal: a neighbourhood width or radius is a literal or a param');
  return { width: t.roots[0]!, rowRadius: t.roots[1]!, colRadius: t.roots[2]! };
}

/** The device helpers of the patch order: unit arithmetic, `loader`'s gathered twin, dkdv_units. */
export function patchBackwardHelpers(loader: { name: string; swizzle: string }, p: DkdvPatch): string[] {
  return [
    '',
    ...patchUnitSource,
    ...patchKeyUnitSource,
    '// Blocks of bwd_dkdv along x: one per unit (a patch of keys, or a plain key tile).',
    '__host__ __device__ inline int dkdv_units(const Args& a) {',
    `  return patch_units(patch_key_grid(${p.width}, a.Nq, a.Nk, a.q_offset, a.k_offset, BN), a.Nk, BN);`,
    '}',
    '',
    ...gatherLoader(loader.name, loader.swizzle),
  ];
}
