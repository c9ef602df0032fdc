// The residue-class index mapping of the tensor-core cores (IR: passes/residue-classes.ts). For a
// mask `… && q % d == k % d`, a work unit is one q-tile of one residue class: its rows are
// row0, row0 + step, row0 + 2·step, … (step = |d|) and it visits only the keys of the same class,
// key0 + step·j, so no tile is half empty and the conjunct is never evaluated. Q and K/V loads
// become strided row gathers (still 16-byte cp.async vectors), outputs scatter to the real rows.
// The launcher's grid (cdiv(Nq, BQ) blocks) is unchanged: blocks loop over units, the most
// expensive (last q-tiles) first, so a few blocks take a second, cheapest unit when the classes'
// tiles outnumber the grid.
import type { AttentionKernel } from '../../ir/kernel.js';
import { cpAsyncLoader } from './kv-load-mma.js';

/** Engines whose cores implement the permuted mapping (the mma-body.ts family). */
const permutingEngines: ReadonlySet<string> = new Set(['mma', 'wgmma']);

export function residueActive(kernel: AttentionKernel): boolean {
  return kernel.residue !== undefined && permutingEngines.has(kernel.schedule.engine ?? 'simt');
}

/**
 * The unit arithmetic as host/device functions: the same text runs in the kernel and, with the
 * qualifiers defined away, in the CPU tests (test/cuda/residue.test.ts).
 */
export const residueUnitSource: readonly string[] = [
  '// Residue classes of q % d == k % d: under floor modulo, classes mod m = |d| (one class for',
  '// d = 0). Unit u is q-tile u / C of row class c = u % C (C = min(m, Nq) classes hold rows):',
  '// rows row0 + step·i for class-local i in [q0, min(q0 + BQ, nq)), keys key0 + step·j, j < nk.',
  'struct ResidueUnit {',
  '  int row0, step, q0, nq, key0, nk;',
  '};',
  '__host__ __device__ inline long long residue_modulus(int d) {',
  '  return d == 0 ? 1ll : d < 0 ? -(long long)d : (long long)d;',
  '}',
  '__host__ __device__ inline int residue_units(int d, int Nq, int BQ) {',
  '  if (Nq <= 0) return 0;',
  '  const long long m = residue_modulus(d), classes = m < Nq ? m : Nq, rows = (Nq + m - 1) / m;',
  '  return (int)(classes * ((rows + BQ - 1) / BQ));',
  '}',
  '__host__ __device__ inline ResidueUnit residue_unit(int unit, int d, int Nq, int Nk, int q_offset, int k_offset, int BQ) {',
  '  const long long m = residue_modulus(d), classes = m < Nq ? m : Nq;',
  '  const int c = (int)(unit % classes);',
  '  ResidueUnit u;',
  '  u.row0 = c;',
  '  u.q0 = (int)(unit / classes) * BQ;',
  '  u.nq = (int)((Nq - 1 - c) / m) + 1;',
  '  // Keys of the class: (k_offset + j) ≡ (q_offset + c) (mod m).',
  '  const long long r = ((long long)q_offset + c - k_offset) % m, key0 = r < 0 ? r + m : r;',
  '  u.key0 = (int)(key0 < Nk ? key0 : Nk);',
  '  u.nk = key0 < Nk ? (int)((Nk - 1 - key0) / m) + 1 : 0;',
  '  // A modulus above both lengths leaves at most one row and key per class: any step that large',
  '  // indexes the same elements, and this one keeps index arithmetic in int range.',
  '  const long long big = (long long)(Nq > Nk ? Nq : Nk) + 1;',
  '  u.step = (int)(m < big ? m : big);',
  '  return u;',
  '}',
];

/** `NAME_strided<W, ROWS>(dst, src, stride, valid_rows, tid)`: `loader` with rows `stride` apart. */
export function stridedLoader(loader: string, swizzle: string): string[] {
  return cpAsyncLoader({
    name: `${loader}_strided`,
    swizzle,
    strided: true,
    comment: [`// ${loader} over rows \`stride\` elements apart (a residue class's rows or keys).`],
  });
}

/** The helpers a permuted core adds after its device helpers. */
export function residueHelpers(kernel: AttentionKernel, loader: string, swizzle: string): string[] {
  return residueActive(kernel) ? ['', ...residueUnitSource, '', ...stridedLoader(loader, swizzle)] : [];
}

/** Per-unit code of the permuted mapping (used by mma-body.ts and mma-tiles.ts). */
export const perm = {
  /** Wraps a unit's body: every block loops over units, last (largest) q-tiles first. */
  unitLoop: (modulus: string, body: readonly string[]): string[] => [
    `const int RD = ${modulus}; // the dilation d (residue classes mod |d|)`,
    'const int units = residue_units(RD, a.Nq, BQ);',
    'for (int iu = blockIdx.x; iu < units; iu += gridDim.x) {',
    '  const ResidueUnit ru = residue_unit(units - 1 - iu, RD, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ);',
    '  if (ru.q0 >= ru.nq) continue; // a class with a tile fewer (uniform over the block)',
    ...body.map((l) => (l && !l.startsWith('#') ? '  ' + l : l)),
    '  __syncthreads(); // shared memory is reused by the next unit',
    '}',
  ],
  q0: 'const int q0 = ru.q0; // class-local index of the first row',
  nkt: 'const int nkt = (ru.nk + BK - 1) / BK;',
  qBounds: [
    'const int q_lo = a.q_offset + ru.row0 + ru.step * q0;',
    'const int q_hi = a.q_offset + ru.row0 + ru.step * (min(q0 + BQ, ru.nq) - 1);',
  ],
  qLoad: (loader: string): string =>
    `${loader}_strided<D, BQ>(Qs, q_row(a, b, h, ru.row0 + (long long)ru.step * q0), (size_t)ru.step * a.q_stride_n, ru.nq - q0, tid);`,
  rows: [
    'const int li_r[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8}; // class-local',
    'const int row_r[2] = {li_r[0] < ru.nq ? ru.row0 + ru.step * li_r[0] : a.Nq,',
    '                      li_r[1] < ru.nq ? ru.row0 + ru.step * li_r[1] : a.Nq};',
  ],
  /** Absolute key position of class-local key index `j`. */
  kpos: (j: string): string => `a.k_offset + ru.key0 + ru.step * (${j})`,
  keyCount: 'ru.nk',
  kBounds: [
    'const int k_lo = a.k_offset + ru.key0 + ru.step * (kt * BK);',
    'const int k_hi = a.k_offset + ru.key0 + ru.step * (min((kt + 1) * BK, ru.nk) - 1);',
  ],
};
