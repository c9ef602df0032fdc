// The dK/dV kernels' row order (backward-mma-kernels.ts, backward-wgmma-kernel.ts,
// backward-wgmma-ws.ts): the plain one (a CTA's key tile k0.. and q-tiles of consecutive rows) or,
// for a mask `… && q % d == k % d` (IR: passes/residue-classes.ts), residue classes as the forward
// runs them (residue.ts), from the key side: a work unit is a key tile of ONE class, keys
// key0 + step·j (j class-local), and it walks the q-tiles of the same class, rows row0 + step·i. The
// dilation conjunct is never evaluated, tiles are classified by the reduced mask's classifier on the
// class tiles' bounding position intervals, and half-empty tiles of the plain order (every tile of a
// dilated causal triangle ran the masked path, d−1 of d scores thrown away) become class-local
// full or masked tiles of live scores only. The grid is (units, Hkv, B) (dkdv_units): block x runs
// unit x, key tile x / C of class x % C (C classes), so every class's first tiles (under a causal
// mask: the most q-tiles) start first. DkdvOrder is also the 2-D patch order of neighbourhood
// masks (backward-patch.ts).
// bwd_pre and bwd_dq_out are elementwise; the deterministic bwd_dq (backward-mma-dq.ts) runs the
// query side's residue units (backward-dq-order.ts), and with the patch order the plain rows.
// Every text of the plain order is the one the kernels emitted before this order existed.
import { cpAsyncLoader } from './kv-load-mma.js';
import { hoistCounts } from './backward-mask-hoists.js';
import type { HoistedMask } from './backward-mask-hoists.js';
import { residueUnitSource } from './residue.js';

/** Where the dK/dV kernel's walk and tile indices (class-local, patch-local) land: the plain order is the identity. */
export interface DkdvOrder {
  /** Rows of the q-tile walk and keys of the key tiles (bounds of class-local indices). */
  readonly nq: string;
  readonly nk: string;
  /** Query row (from qrow0, the head's first row of the walk) of walk index `i`. */
  readonly qrow: (i: string) => string;
  /** Key row (from krow0, the unit's first key row) of tile index `j`. */
  readonly krow: (j: string) => string;
  /** Absolute positions of walk index `i` / key index `j` (`k0 + kl`: the key tile's index). */
  readonly qpos: (i: string) => string;
  readonly kpos: (j: string) => string;
  /** `loader`'s statement filling a [BM][w] panel (`dst`) with the walk's rows q0.. of `base` (thread `tid`). */
  readonly queryLoad: (loader: string, w: string, dst: string, base: string, tid: string) => string;
  /** The same for the block's key tile (a [BN][w] panel of `base`'s key rows). */
  readonly keyLoad: (loader: string, w: string, dst: string, base: string, tid: string) => string;
  /** The element step's key and query positions (key kl of the tile, row ql of buffer buf). */
  readonly elemKpos: string;
  readonly elemQpos: string;
  /** Statements storing the positions the element step reads: the key tile's (thread tid of `count`). */
  readonly keyPositions: (count: string) => string[];
  /** The same for row q0 + i of buffer buf (in the lse/delta loop). */
  readonly rowPositions: readonly string[];
  /** The block's key-tile coordinates (absent: keyTileCoords, the plain order's). */
  readonly keyTile?: readonly string[];
  /**
   * Shared-memory bytes of the order's position arrays and its static __shared__ unit (0: none),
   * counted so that the engines' shared-memory refusals see them.
   */
  readonly positionBytes: (BM: number, BN: number) => number;
  /** The first float after the position arrays, `from` being the one after the mask's hoisted arrays. */
  readonly afterPositions: (from: string) => string;
}

/** `loader<W, ROWS>(dst, src…, valid, tid)` of rows src, src + rowStride·W, … (valid ones at most). */
type RowLoad = (
  loader: string,
  w: string,
  rows: string,
  dst: string,
  src: string,
  valid: string,
  tid: string,
) => string;

/** queryLoad and keyLoad of an order whose walk rows and key rows are runs of `load`'s rows. */
const runLoads = (
  load: RowLoad,
  o: Pick<DkdvOrder, 'nq' | 'nk' | 'qrow'>,
): Pick<DkdvOrder, 'queryLoad' | 'keyLoad'> => ({
  queryLoad: (loader, w, dst, base, tid) =>
    load(loader, w, 'BM', dst, `${base} + (${o.qrow('q0')}) * ${w}`, `${o.nq} - q0`, tid),
  keyLoad: (loader, w, dst, base, tid) =>
    load(loader, w, 'BN', dst, `${base} + krow0 * ${w}`, `${o.nk} - k0`, tid),
});

/**
 * The element step's positions from shared memory, words `base` on from Ls ([2][BM] per row, then
 * [BN] per key), stored by the key setup (key j's `kpos`) and the lse/delta loop (row i's `qpos`).
 */
export const storedPositions = (
  base: string,
  qpos: (i: string) => string,
  kpos: (j: string) => string,
): Pick<DkdvOrder, 'elemKpos' | 'elemQpos' | 'keyPositions' | 'rowPositions'> => ({
  elemKpos: `__float_as_int(Ls[${base} + 2 * BM + kl])`,
  elemQpos: `__float_as_int(Ls[${base} + buf * BM + ql])`,
  keyPositions: (count) => [
    `  for (int hi = tid; hi < BN; hi += ${count}) // key positions of the tile (the element step's kpos)`,
    `    reinterpret_cast<int*>(Ls)[${base} + 2 * BM + hi] = ${kpos('k0 + hi')};`,
  ],
  rowPositions: [`    reinterpret_cast<int*>(Ls)[${base} + buf * BM + i] = ${qpos('q0 + i')};`],
});

export const plainOrder: DkdvOrder = {
  nq: 'a.Nq',
  nk: 'a.Nk',
  qrow: (i) => `qrow0 + ${i}`,
  krow: (j) => `krow0 + ${j}`,
  qpos: (i) => `a.q_offset + ${i}`,
  kpos: (j) => `a.k_offset + ${j}`,
  ...runLoads(
    (loader, w, rows, dst, src, valid, tid) => `${loader}<${w}, ${rows}>(${dst}, ${src}, ${valid}, ${tid});`,
    {
      nq: 'a.Nq',
      nk: 'a.Nk',
      qrow: (i) => `qrow0 + ${i}`,
    },
  ),
  elemKpos: 'a.k_offset + k0 + kl',
  elemQpos: 'a.q_offset + q0 + ql',
  keyPositions: () => [],
  rowPositions: [],
  positionBytes: () => 0,
  afterPositions: (from) => from,
};

/**
 * The residue order (`modulus`: the C text of d); the element step reads its positions from shared
 * memory, words `base` on from Ls: per element, `row0 + step·i` arithmetic kept the unit's fields
 * live through the tile and spilled (bwd_dkdv, D = 128, sm_90a: mma 28 bytes, wgmma 52).
 */
/**
 * Absolute positions of class-local row `i` / key `j` of a residue unit `ru` (the query-side
 * ResidueUnit and the key-side ResidueKeyUnit name the fields alike): bwd_dkdv's order here and
 * the deterministic bwd_dq's (backward-dq-order.ts).
 */
export const residueQpos = (i: string): string => `a.q_offset + ru.row0 + ru.step * (${i})`;
export const residueKpos = (j: string): string => `a.k_offset + ru.key0 + ru.step * (${j})`;

function residueOrder(base: string, modulus: string): DkdvOrder {
  const indices = {
    nq: 'ru.nq',
    nk: 'ru.nk',
    qrow: (i: string) => `qrow0 + (size_t)ru.step * (${i})`,
  };
  const qpos = residueQpos;
  const kpos = residueKpos;
  return {
    ...indices,
    krow: (j) => `krow0 + (size_t)ru.step * (${j})`,
    qpos,
    kpos,
    // Rows `step` apart: the strided loader (a row is still whole 16-byte vectors).
    ...runLoads(
      (loader, w, rows, dst, src, valid, tid) =>
        `${loader}_strided<${w}, ${rows}>(${dst}, ${src}, (size_t)ru.step * ${w}, ${valid}, ${tid});`,
      indices,
    ),
    ...storedPositions(base, qpos, kpos),
    keyTile: residueKeyTileCoords(modulus),
    // 32 for the block's unit (a static __shared__ beside the dynamic SMEM; 32 dynamic bytes go unused).
    positionBytes: (BM, BN) => 4 * (2 * BM + BN) + 32,
    afterPositions: (from) => `${from} + 2 * BM + BN`,
  };
}

/** The word after Ls's lse, delta and hoisted arrays (`m`): where an order's position arrays start. */
export function positionBase(m: HoistedMask | null): string {
  const c = hoistCounts(m);
  return `${4 + 2 * c.query} * BM${c.key ? ` + ${c.key} * BN` : ''}`;
}

/** The dK/dV order of a kernel with (or without) residue classes, its mask hoisting `m`. */
export function orderOf(residue: { readonly modulus: string } | null, m: HoistedMask | null): DkdvOrder {
  if (!residue) return plainOrder;
  return residueOrder(positionBase(m), residue.modulus);
}

/**
 * The block's unit and key tile, as keyTileCoords (backward-dkdv-parts.ts) for the plain order.
 * A block per unit (dkdv_units): a loop over units kept their state live across the dK/dV
 * accumulators (ptxas spilled 212 bytes in the ping-pong producer kernel at D = 128, nvcc 13,
 * against 32 without the residue order). The unit lives in a static __shared__ (an address the
 * loads take as an immediate) and its fields are read through a volatile reference, i.e. from
 * shared memory at each use, rather than held in registers beside the accumulators: that took
 * bwd_dkdv's spills (D = 128, sm_90a) from 48/58 bytes stored/loaded to 20/30 without the
 * producer warpgroup, 28/26 to 12/10 with it (in a dynamic shared-memory word, the producer's
 * address arithmetic spilled more). A unit past its class's keys (a class with a tile fewer)
 * leaves at once, the whole block alike; a class with no query rows still stores zero dK, dV.
 */
function residueKeyTileCoords(modulus: string): string[] {
  return [
    '  const int b = blockIdx.z, hkv = blockIdx.y, group = a.H / a.Hkv;',
    '  __shared__ ResidueKeyUnit ru_s;',
    `  if (threadIdx.x == 0) ru_s = residue_key_unit(blockIdx.x, ${modulus}, a.Nq, a.Nk, a.q_offset, a.k_offset, BN);`,
    '  __syncthreads();',
    '  const volatile ResidueKeyUnit& ru = ru_s;',
    '  if (ru.k0 >= ru.nk) return; // uniform over the block',
    "  const int k0 = ru.k0; // class-local index of the tile's first key",
    '  const size_t krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk + ru.key0 + (size_t)ru.step * k0;',
    '  const int nqt = (ru.nq + BM - 1) / BM;',
    '  const int k_lo = a.k_offset + ru.key0 + ru.step * k0;',
    '  const int k_hi = a.k_offset + ru.key0 + ru.step * (min(k0 + BN, (int)ru.nk) - 1); // (int): std::min in the CPU emulator',
    '  const bool k_tail = k0 + BN > ru.nk;',
    '  (void)k_lo; (void)k_hi;',
  ];
}

/**
 * The key-side unit: residue_unit (residue.ts) with the roles of queries and keys swapped, so the
 * same arithmetic (and its CPU test) covers both. Unit u is key tile u / C of key class
 * c = u % C (C = min(m, Nk)): keys key0 + step·j for class-local j in [k0, min(k0 + BN, nk)),
 * rows row0 + step·i, i < nq, those with (q_offset + row) ≡ (k_offset + key) (mod m).
 */
export const residueKeyUnitSource: readonly string[] = [
  'struct ResidueKeyUnit {',
  '  int key0, step, k0, nk, row0, nq;',
  '};',
  '__host__ __device__ inline ResidueKeyUnit residue_key_unit(int unit, int d, int Nq, int Nk, int q_offset, int k_offset, int BN) {',
  '  const ResidueUnit u = residue_unit(unit, d, Nk, Nq, k_offset, q_offset, BN);',
  '  ResidueKeyUnit r;',
  '  r.key0 = u.row0;',
  '  r.step = u.step;',
  '  r.k0 = u.q0;',
  '  r.nk = u.nq;',
  '  r.row0 = u.key0;',
  '  r.nq = u.nk;',
  '  return r;',
  '}',
];

/**
 * The device helpers of the residue order: unit arithmetic, `loader`'s strided twin and
 * dkdv_units (bwd_dkdv's grid: a block per unit; `modulus` is the C text of d over Args `a`).
 */
export function residueBackwardHelpers(loader: { name: string; swizzle: string }, modulus: string): string[] {
  return [
    '',
    ...residueUnitSource,
    ...residueKeyUnitSource,
    '// Blocks of bwd_dkdv along x: one per unit (a key tile of one class).',
    `__host__ __device__ inline int dkdv_units(const Args& a) { return residue_units(${modulus}, a.Nk, BN); }`,
    '',
    ...cpAsyncLoader({
      name: `${loader.name}_strided`,
      swizzle: loader.swizzle,
      strided: true,
      comment: [`// ${loader.name} over rows \`stride\` elements apart (a residue class's rows or keys).`],
    }),
  ];
}
