// The row order of the deterministic mode's bwd_dq (backward-mma-dq.ts): the plain one (a CTA per
// q-tile of consecutive rows, over the head's key tiles) or, for a mask `… && q % d == k % d`,
// residue classes as the forward and bwd_dkdv run them (residue.ts, backward-residue.ts): a work
// unit is a q-tile of ONE class, rows row0 + step·i, and it visits only the key tiles of that class,
// keys key0 + step·j. The dilation conjunct is never evaluated, tiles are classified by the reduced
// mask's classifier on the class tiles' bounding position intervals, and the plain order's
// half-empty tiles (every tile of a dilated causal triangle ran the masked path, d − 1 of d scores
// thrown away) become class-local full or masked tiles of live scores only. The grid stays
// cdiv(Nq, BQ) (so `partials`, sized by it, keeps its layout): blocks loop over units, the largest
// first, and each block sums its units' param gradients into its one slice.
// Every text of the plain order is the one bwd_dq emitted before this order existed.
import type { BackwardMmaExprs, TileWalk } from './backward-mma-exprs.js';

type Mask = BackwardMmaExprs['mask'];

/** Where bwd_dq's rows, keys and positions land; the plain order is the identity. */
export interface DqOrder {
  /** Class-local row and key counts (the plain order: a.Nq, a.Nk). */
  readonly nq: string;
  readonly nk: string;
  /** Offset from qrow0 / krow0 of class-local row `i` / key `j`. */
  readonly qrow: (i: string) => string;
  readonly krow: (j: string) => string;
  /** Absolute positions of class-local row `i` / key `j`. */
  readonly qpos: (i: string) => string;
  readonly kpos: (j: string) => string;
  /** `load_rows` of `rows` rows (`w` wide) of `base` from row `row` (qrow0 + qrow(…) or krow0 + krow(…)) on. */
  readonly load: (w: string, rows: string, dst: string, base: string, row: string, valid: string) => string;
  /** The element mask (null: none needed) and the tile walk's mode and classifier. */
  readonly mask: Mask;
  readonly walk: TileWalk;
  /** Lines defining q0 before the head's row bases (the plain order's CTA q-tile), or none. */
  readonly head: readonly string[];
  /**
   * Lines opening a unit after the row bases (q0 in scope after them; the unit's lines are
   * indented one more level) and closing it; none in the plain order (one q-tile a CTA, no loop).
   */
  readonly open: readonly string[];
  readonly close: readonly string[];
}

export function dqOrderOf(x: BackwardMmaExprs): DqOrder {
  return x.residue ? residueDqOrder(x.residue) : plainDqOrder(x);
}

function plainDqOrder(x: BackwardMmaExprs): DqOrder {
  return {
    nq: 'a.Nq',
    nk: 'a.Nk',
    qrow: (i) => i,
    krow: (j) => j,
    qpos: (i) => `a.q_offset + ${i}`,
    kpos: (j) => `a.k_offset + ${j}`,
    load: (w, rows, dst, base, row, valid) =>
      `load_rows<${w}, ${rows}>(${dst}, ${base} + (${row}) * ${w}, ${valid}, tid);`,
    mask: x.mask,
    walk: x,
    head: [
      '  // Last q-tile first: under causal-like masks it has the most key tiles.',
      '  const int q0 = (gridDim.x - 1 - blockIdx.x) * BQ;',
    ],
    open: [],
    close: [],
  };
}

function residueDqOrder(r: NonNullable<BackwardMmaExprs['residue']>): DqOrder {
  const qrow = (i: string): string => `ru.row0 + (size_t)ru.step * (${i})`;
  const krow = (j: string): string => `ru.key0 + (size_t)ru.step * (${j})`;
  return {
    nq: 'ru.nq',
    nk: 'ru.nk',
    qrow,
    krow,
    qpos: (i) => `a.q_offset + ru.row0 + ru.step * (${i})`,
    kpos: (j) => `a.k_offset + ru.key0 + ru.step * (${j})`,
    // Rows `step` apart: the strided loader (a row is still whole 16-byte vectors).
    load: (w, rows, dst, base, row, valid) =>
      `load_rows_strided<${w}, ${rows}>(${dst}, ${base} + (${row}) * ${w}, (size_t)ru.step * ${w}, ${valid}, tid);`,
    mask: r.elementMask,
    walk: r,
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
  };
}
