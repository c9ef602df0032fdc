// The expressions of the tensor-core CUDA backward (backward-mma.ts), rendered to C for one
// accumulator element of the transposed score block Sᵀ (a key row, a query column): the modified
// score, ∂score′/∂score and the param/tensor derivatives (derive.ts), the mask, and the tile
// classifier over a (q-tile, k-tile) pair. Values the dS step needs after the element step (the
// non-constant derivatives and the lookups' indices) go to per-thread shared-memory slots rather
// than registers: at D = 128 the dK and dV accumulators already hold 128 registers a thread.
import { deriveScore, gradientRoots, type ScoreGradient } from '../../ir/derive.js';
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { backwardTileMode } from '../../ir/tile-mode.js';
import { Op } from '../../ir/ops.js';
import { kernelSlots } from '../common.js';
import { linearize } from '../linearize.js';
import { field, tensorSlots, type Mode } from './backward-passes.js';
import { scoreMathOf } from './exprs.js';
import { hoistMask, type HoistedMask } from './backward-mask-hoists.js';
import { cudaRenderer, cudaSizeVars, dimText, exactMulOf, type CudaContext } from './rules.js';
import { orderOf } from './backward-residue.js';
import type { DkdvOrder } from './backward-residue.js';
import { dkdvPatchOf, patchOrderOf } from './backward-patch.js';
import type { DkdvPatch } from './backward-patch.js';

/** One value carried from the element step to the dS step: a literal, or a shared-memory slot. */
export interface Carried {
  /** C text at the element step. */
  readonly text: string;
  /** Shared-memory slot index, or undefined when `text` is a literal (nothing stored). */
  readonly slot: number | undefined;
  readonly int: boolean;
}

export interface BackwardMmaExprs {
  readonly mode: Mode;
  readonly grad: ScoreGradient;
  /** Statements over qpos, kpos, x, b, h; then the modified score's text. */
  readonly elemStmts: readonly string[];
  readonly score: string;
  /** The mask's statements and text (evaluated only on masked tiles); null when never needed. */
  readonly mask: { readonly stmts: readonly string[]; readonly text: string } | null;
  /** The same mask with its one-sided parts in shared memory, for the dK/dV kernels. */
  readonly dkdvMask: HoistedMask | null;
  readonly dScore: Carried;
  readonly dParams: readonly Carried[];
  /** Per f32 lookup: its derivative, its indices, the gradient slot offset and the bounds. */
  readonly loads: readonly {
    readonly d: Carried;
    readonly index: readonly Carried[];
    readonly offset: string;
    readonly dims: readonly string[];
  }[];
  /** Shared-memory slots used (32-bit words per element). */
  readonly slots: number;
  /** Statements over b, h, q_lo, q_hi, k_lo, k_hi defining can_true / can_false (dynamic mode). */
  readonly classify: readonly string[];
  readonly gradTensors: readonly string[];
  readonly context: CudaContext;
  /**
   * The dK/dV kernels' residue-class order (backward-residue.ts), where the mask has a dilation
   * conjunct: its modulus's C text and the reduced mask's tile walk (dkdvMask is the reduced mask
   * then). null: the plain order.
   */
  readonly residue: DkdvResidue | null;
  /**
   * The dK/dV kernels' 2-D patch order (backward-patch.ts), where the mask is a neighbourhood: W
   * and the radii. null: another order.
   */
  readonly patch: DkdvPatch | null;
  /** The index mapping of the dK/dV kernels (plainOrder without residue classes or patches). */
  readonly order: DkdvOrder;
}

/** The tile walk of a dK/dV kernel: its mode and (dynamic) classifier statements. */
export interface TileWalk {
  readonly mode: Mode;
  readonly classify: readonly string[];
}

export interface DkdvResidue extends TileWalk {
  readonly modulus: string;
  /**
   * The reduced mask at the element (statements and text over qpos, kpos), unhoisted, for the
   * deterministic bwd_dq's residue order (backward-dq-order.ts); null when no tile is partial.
   */
  readonly elementMask: { readonly stmts: readonly string[]; readonly text: string } | null;
}

const isLiteral = (n: Node): boolean => n.op === Op.CONST;

export function backwardMmaExprs(kernel: AttentionKernel): BackwardMmaExprs {
  const grad = deriveScore(kernel.graph, kernel.score, kernel.params);
  const gradTensors = [...new Set(grad.loads.map((l) => l.tensor))].sort();
  const used = new Set<string>();
  const cx = (vars: Record<string, string>, fast: boolean): CudaContext => ({
    vars: { ...cudaSizeVars, ...vars },
    ...kernelSlots(kernel),
    field,
    used,
    // The forward's lse came from the tensor-core engines' score math: P matches it only if the
    // backward recomputes the score the same way.
    scoreMath: fast ? scoreMathOf({ ...kernel, schedule: { ...kernel.schedule, engine: 'mma' } }) : 'precise',
    exactMul: exactMulOf(kernel),
  });
  const mode = backwardTileMode(kernel);
  const elemVars = { b: 'b', h: 'h', q: 'qpos', k: 'kpos', score: 'x' };
  const roots = gradientRoots(kernel.score, grad);
  const e = linearize(roots, cudaRenderer(cx(elemVars, true)), 'e');
  let slots = 0;
  const carried = (at: number): Carried => {
    const n = roots[at]!;
    const int = n.dtype !== 'f32';
    return isLiteral(n)
      ? { text: e.roots[at]!, slot: undefined, int }
      : { text: e.roots[at]!, slot: slots++, int };
  };
  const np = grad.params.length;
  const dScore = carried(1);
  const dParams = grad.params.map((_, i) => carried(2 + i));
  const offsets = tensorSlots(kernel, grad, gradTensors);
  let at = 2 + np + grad.loads.length;
  const loads = grad.loads.map((l, n) => {
    const d = carried(2 + np + n);
    const index = l.load.src.map(() => carried(at++));
    const t = kernel.tensors.find((x) => x.name === l.tensor)!;
    return { d, index, offset: offsets.get(l.tensor)!, dims: t.dims.map((dim) => dimText(dim, field)) };
  });
  const render: Render = (vars) => cudaRenderer(cx(vars, false));
  let mask: BackwardMmaExprs['mask'] = null;
  if (mode === 'partial' || mode === 'dynamic') {
    const m = linearize([kernel.mask], render(elemVars), 'mk');
    mask = { stmts: m.stmts, text: m.roots[0]! };
  }
  const { dkdvMask, residue } = dkdvMaskOf(kernel, mode, render, elemVars);
  const walk = tileWalk(kernel, mode, render);
  const patch = dkdvPatchOf(kernel, (nodes) => linearize(nodes, render({}), 'pn'));
  return {
    mode,
    grad,
    elemStmts: e.stmts,
    score: e.roots[0]!,
    mask,
    dkdvMask,
    dScore,
    dParams,
    loads,
    slots,
    classify: walk.classify,
    gradTensors,
    context: cx(elemVars, false),
    residue,
    patch,
    order: patch ? patchOrderOf(patch, dkdvMask) : orderOf(residue, dkdvMask),
  };
}

type Render = (vars: Record<string, string>) => ReturnType<typeof cudaRenderer>;

/**
 * The dK/dV kernels' mask (split by fuse's hoisting plan) and, where the mask has a dilation
 * conjunct, their residue-class order: inside a class the conjunct is true, so they evaluate the
 * reduced mask with its own hoisting plan and walk tiles by its classifier.
 */
function dkdvMaskOf(
  kernel: AttentionKernel,
  mode: Mode,
  render: Render,
  elemVars: Record<string, string>,
): { dkdvMask: HoistedMask | null; residue: DkdvResidue | null } {
  const r = kernel.residue?.hoists ? kernel.residue : undefined;
  const reduced = r ? { ...kernel, mask: r.mask, tiles: r.tiles, hoists: r.hoists! } : kernel;
  const dkdvMode = r ? backwardTileMode(reduced) : mode;
  const dkdvMask = dkdvMode === 'partial' || dkdvMode === 'dynamic' ? hoistMask(reduced, render) : null;
  if (!r) return { dkdvMask, residue: null };
  const m = linearize([r.modulus], render({}), 'rm');
  if (m.stmts.length) throw new Error('internal: a residue modulus is a literal or a param');
  const partial = dkdvMode === 'partial' || dkdvMode === 'dynamic';
  const e = partial ? linearize([r.mask], render(elemVars), 'mk') : null;
  const elementMask = e ? { stmts: e.stmts, text: e.roots[0]! } : null;
  return { dkdvMask, residue: { modulus: m.roots[0]!, elementMask, ...tileWalk(reduced, dkdvMode, render) } };
}

/** The classifier statements (dynamic mode) of `kernel`'s tiles over q_lo q_hi k_lo k_hi. */
function tileWalk(kernel: AttentionKernel, mode: Mode, render: Render): TileWalk {
  if (mode !== 'dynamic' || kernel.tiles.kind !== 'dynamic') return { mode, classify: [] };
  const tileVars = { b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
  const c = linearize([kernel.tiles.canBeTrue, kernel.tiles.canBeFalse], render(tileVars), 'c');
  return {
    mode,
    classify: [...c.stmts, `const bool can_true = ${c.roots[0]!};`, `const bool can_false = ${c.roots[1]!};`],
  };
}

/** The gradient slot count (params, then each tensor's elements) as C text over the args. */
export function slotCountText(kernel: AttentionKernel, x: BackwardMmaExprs): string {
  const last = x.gradTensors.at(-1);
  if (last === undefined) return String(x.grad.params.length);
  const t = kernel.tensors.find((y) => y.name === last)!;
  const offset = x.loads.find((_, i) => x.grad.loads[i]!.tensor === last)!.offset;
  return `${offset} + ${t.dims.map((d) => `(${dimText(d, field)})`).join(' * ')}`;
}
