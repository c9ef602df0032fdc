// The row order of the deterministic mode's bwd_dq (backward-mma-dq.ts), the query-side dual of
// bwd_dkdv's orders (backward-residue.ts, backward-patch.ts) and the forward's own (residue.ts,
// patch.ts):
// - plain: a CTA per q-tile of consecutive rows, over the head's key tiles;
// - residue classes (a mask `… && q % d == k % d`): a unit is a q-tile of ONE class, rows
//   row0 + step·i, over the key tiles of that class only (keys key0 + step·j); the dilation conjunct
//   is never evaluated, tiles are classified by the reduced mask's classifier on the class tiles'
//   bounding position intervals, and the plain order's half-empty tiles (every tile of a dilated
//   causal triangle ran the masked path, d − 1 of d scores thrown away) become class-local full or
//   masked tiles of live scores only;
// - 2-D patches (neighbourhood masks): a unit is a patch of query pixels (patch_unit, gathered
//   rows), over BK-slot runs of its neighbourhood box of keys (patch_key); the whole mask is
//   evaluated on every tile, its positions read from shared memory (patch_key divides).
// The grid stays cdiv(Nq, BQ) blocks (so `partials`, sized by it, keeps its layout): in the permuted
// orders blocks loop over units and each sums its units' param gradients into its one slice.
// Every text of the plain order is the one bwd_dq emitted before the other orders existed.
import type { BackwardMmaExprs, TileWalk } from './backward-mma-exprs.js';
import type { DkdvPatch } from './backward-patch.js';
import { residueKpos, residueQpos } from './backward-residue.js';
import { keyRow, queryRow } from './patch.js';

type Mask = BackwardMmaExprs['mask'];

/** Where bwd_dq's rows, keys and positions land; the plain order is the identity. */
export interface DqOrder {
  /** Lines defining q0 before the head's row bases (the plain order's CTA q-tile), or none. */
  readonly head: readonly string[];
  /**
   * Lines opening a unit after the row bases (q0 in scope after them; the unit's lines are
   * indented one more level) and closing it; none in the plain order (one q-tile a CTA, no loop).
   */
  readonly open: readonly string[];
  readonly close: readonly string[];
  readonly rows: {
    /** `load_rows` (or a twin) of the unit's BQ rows of `base`, `w` wide, into `dst`. */
    readonly load: (w: string, dst: string, base: string) => string;
    /** Whether unit-local row `i` is a query row / is not; its row index from qrow0. */
    readonly in: (i: string) => string;
    readonly past: (i: string) => string;
    readonly index: (i: string) => string;
    /** The rows' bounding positions, and whether some row of the unit is not a query. */
    readonly lo: string;
    readonly hi: string;
    readonly tail: string;
  };
  readonly keys: {
    /** Keys of the unit (key tiles cover 0 .. count). */
    readonly count: string;
    /** The load of key tile kt's rows of `base` (`w` wide) into `dst`. */
    readonly load: (w: string, dst: string, base: string) => string;
    /** More lines of load_kv(kt, buf) (the patch order's key positions). */
    readonly fill: readonly string[];
    /** Position of unit-local key `j` (tile bounds). */
    readonly pos: (j: string) => string;
  };
  /** The element step's bounds test (rows ql, keys kl of tile k0, buffer buf) and positions. */
  readonly elem: { readonly ok: string; readonly qpos: string; readonly kpos: string };
  /** The element mask (null: none needed) and the tile walk's mode and classifier. */
  readonly mask: Mask;
  readonly walk: TileWalk;
}

export function dqOrderOf(x: BackwardMmaExprs): DqOrder {
  if (x.patch) return patchDqOrder(x, x.patch);
  return x.residue ? residueDqOrder(x.residue) : plainDqOrder(x);
}

function plainDqOrder(x: BackwardMmaExprs): DqOrder {
  return {
    head: [
      '  // Last q-tile first: under causal-like masks it has the most key tiles.',
      '  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
    ],
    open: [],
    close: [],
    rows: {
      load: (w, dst, base) => `load_rows<${w}, BQ>(${dst}, ${base} + (qrow0 + q0) * ${w}, a.Nq - q0, tid);`,
      in: (i) => `${i} < a.Nq`,
      past: (i) => `${i} >= a.Nq`,
      index: (i) => i,
      lo: 'a.q_offset + q0',
      hi: 'a.q_offset + min(q0 + BQ, a.Nq) - 1',
      tail: 'q0 + BQ > a.Nq',
    },
    keys: {
      count: 'a.Nk',
      load: (w, dst, base) =>
        `load_rows<${w}, BK>(${dst}, ${base} + (krow0 + (size_t)kt * BK) * ${w}, a.Nk - kt * BK, tid);`,
      fill: [],
      pos: (j) => `a.k_offset + ${j}`,
    },
    elem: {
      ok: 'q0 + ql < a.Nq && k0 + kl < a.Nk',
      qpos: 'a.q_offset + q0 + ql',
      kpos: 'a.k_offset + k0 + kl',
    },
    mask: x.mask,
    walk: x,
  };
}

function residueDqOrder(r: NonNullable<BackwardMmaExprs['residue']>): DqOrder {
  const qpos = residueQpos;
  const kpos = residueKpos;
  // Rows `step` apart: the strided loader (a row is still whole 16-byte vectors).
  const strided = (w: string, rows: string, dst: string, src: string, valid: string): string =>
    `load_rows_strided<${w}, ${rows}>(${dst}, ${src}, (size_t)ru.step * ${w}, ${valid}, tid);`;
  return {
    head: [],
    open: [
      `  const int RD = ${r.modulus}; // the dilation d (residue classes mod |d|)`,
      '  const int units = residue_units(RD, a.Nq, BQ);',
      '  // Largest units first: under causal-like masks the last q-tiles of a class have the most key tiles.',
      '  for (int iu = blockIdx.x; iu < units; iu += gridDim.x) {',
      '    const ResidueUnit ru = residue_unit(units - 1 - iu, RD, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ);',
      '    if (ru.q0 >= ru.nq) continue; // a class with a tile fewer (uniform over the block)',
      "    const int q0 = ru.q0; // class-local index of the unit's first row",
    ],
    close: [
      '    __syncthreads(); // every warp is done with Qs and Os before the next unit refills them',
      '  }',
    ],
    rows: {
      load: (w, dst, base) =>
        strided(w, 'BQ', dst, `${base} + (qrow0 + ru.row0 + (size_t)ru.step * q0) * ${w}`, 'ru.nq - q0'),
      in: (i) => `${i} < ru.nq`,
      past: (i) => `${i} >= ru.nq`,
      index: (i) => `ru.row0 + (size_t)ru.step * ${i}`,
      lo: qpos('q0'),
      hi: qpos('min(q0 + BQ, ru.nq) - 1'),
      tail: 'q0 + BQ > ru.nq',
    },
    keys: {
      count: 'ru.nk',
      load: (w, dst, base) =>
        strided(
          w,
          'BK',
          dst,
          `${base} + (krow0 + ru.key0 + (size_t)ru.step * kt * BK) * ${w}`,
          'ru.nk - kt * BK',
        ),
      fill: [],
      pos: kpos,
    },
    elem: { ok: 'q0 + ql < ru.nq && k0 + kl < ru.nk', qpos: qpos('q0 + ql'), kpos: kpos('k0 + kl') },
    mask: r.elementMask,
    walk: r,
  };
}

const PATCH_GRID = 'patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x)';

function patchDqOrder(x: BackwardMmaExprs, p: DkdvPatch): DqOrder {
  return {
    head: [],
    // The unit and the row / key indices live in shared memory: the tile loop reads them per
    // element, and the dq, score and dP accumulators need the registers.
    open: [
      `  const int PW_ = ${p.width}, PRY = ${p.rowRadius}, PRX = ${p.colRadius}; // image width, radii`,
      '  __shared__ PatchUnit pu_s;',
      '  __shared__ int qrow_s[BQ], krow_s[2][BK]; // row / key indices of the unit and its two key buffers',
      '  const PatchUnit& pu = pu_s;',
      `  const int units = patch_units(${PATCH_GRID}, a.Nq, BQ);`,
      '  for (int iu = blockIdx.x; iu < units; iu += gridDim.x) {',
      '    __syncthreads(); // every thread is done with the previous unit',
      '    if (tid == 0)',
      `      pu_s = patch_unit(${PATCH_GRID}, iu, PW_, PRY, PRX, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ);`,
      '    __syncthreads();',
      '    if (pu.q_lo > pu.q_hi) continue; // no query in this patch (uniform over the block)',
      '    for (int i = tid; i < BQ; i += THREADS) qrow_s[i] = patch_row(pu, i); // Nq: not a query',
      '    const int q0 = 0; // rows are gathered by patch_row',
    ],
    close: ['  }'],
    rows: {
      load: (w, dst, base) => `load_rows_gather<${w}, BQ>(${dst}, ${base} + qrow0 * ${w}, ${queryRow}, tid);`,
      in: (i) => `patch_row(pu, ${i}) < a.Nq`,
      past: (i) => `patch_row(pu, ${i}) >= a.Nq`,
      index: (i) => `patch_row(pu, ${i})`,
      lo: 'pu.q_lo',
      hi: 'pu.q_hi',
      // Pixels outside the image or the queries sit anywhere in a patch (and the bounding-interval
      // classifier hardly ever proves a neighbourhood tile full): every tile takes the masked path.
      tail: 'true',
    },
    keys: {
      count: 'pu.nk',
      load: (w, dst, base) =>
        `load_rows_gather<${w}, BK>(${dst}, ${base} + krow0 * ${w}, ${keyRow('kt')}, tid);`,
      fill: [
        '    for (int r = tid; r < BK; r += THREADS)',
        '      krow_s[buf][r] = kt * BK + r < pu.nk ? patch_key(pu, kt * BK + r) : 0;',
      ],
      pos: (j) => `a.k_offset + patch_key(pu, ${j})`,
    },
    elem: {
      ok: 'qrow_s[ql] < a.Nq && k0 + kl < pu.nk',
      qpos: 'a.q_offset + qrow_s[ql]',
      kpos: 'a.k_offset + krow_s[buf][kl]',
    },
    mask: x.mask,
    walk: x,
  };
}
