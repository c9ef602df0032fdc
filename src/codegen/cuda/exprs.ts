// The kernel's expressions rendered to CUDA C statements for an attention core: the tile
// classifier, and the per-element score and mask with loop-invariant parts hoisted (per row into
// registers, per key into shared memory). The core defines the names these statements use; this
// file and the cores agree on them through `CoreExprs`.
import { Graph, rewrite, toposort, type Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { classMode, type TileMode } from '../../ir/tile-mode.js';
import { Op, type DType } from '../../ir/ops.js';
import { linearize } from '../linearize.js';
import { cudaRenderer, cudaSizeVars, cudaType, type CudaContext, type ScoreMath } from './rules.js';
import { residueActive } from './residue.js';
import { patchActive, type PatchTexts } from './patch.js';
import { patchTweaksOf } from './patch-tweaks.js';
import { withBoxMask } from './patch-box.js';

/** How tiles are classified, after resolving static classifiers at codegen time. */
export type ClassMode = TileMode;

export interface Hoist {
  /** Array name: `hq<n>` (registers, indexed by row r) or `hk<n>` (shared memory, by key kk). */
  readonly name: string;
  readonly type: string;
}

export interface CoreExprs {
  readonly mode: ClassMode;
  /** Statements defining `can_true` / `can_false` (dynamic mode) from q_lo q_hi k_lo k_hi b h. */
  readonly classify: readonly string[];
  /** Per-row values: statements over `qpos` `b` `h` that assign `hq<n>[r]`. */
  readonly rowHoists: readonly Hoist[];
  readonly rowStmts: readonly string[];
  /** Per-key values of a tile: statements over `kpos` `b` `h` that assign `hk<n>[kk]`. */
  readonly keyHoists: readonly Hoist[];
  readonly keyStmts: readonly string[];
  /** Per element, over `qpos` `kpos` `x` (the natural-units score) and the hoists. */
  readonly elemStmts: readonly string[];
  /** The modified score (natural units), or null when the score is unmodified. */
  readonly score: string | null;
  /** The mask (a bool), or null when no tile ever evaluates it. */
  readonly mask: string | null;
  /**
   * Residue-class mapping (residue.ts): the C text of the dilation d, or null for the plain row
   * order. When set, `classify`, `mask` and the hoists are those of the per-class mask.
   */
  readonly residue: { readonly modulus: string } | null;
  /** 2-D patch mapping (patch.ts): the C text of W and the radii, or null for the plain row order. */
  readonly patch: PatchTexts | null;
  /** Whether the score modifier reads per-key hoists (then full tiles need them too). */
  readonly scoreUsesKeyHoists: boolean;
}

export { classMode };

/** Copies `roots` into a scratch graph with each replaced node turned into a named VAR leaf. */
export function relink(roots: readonly Node[], replaced: ReadonlyMap<number, string>): Node[] {
  const g = new Graph();
  return roots.map((root) =>
    rewrite(root, (n, src) => {
      const name = replaced.get(n.id);
      return name !== undefined
        ? g.node(Op.VAR, n.dtype, [], name)
        : g.node(n.op, n.dtype, src, n.arg, n.span);
    }),
  );
}

/** Ids of the nodes `roots` reach without entering a node of `cut` (the cut nodes themselves too). */
export function reachedAvoiding(roots: readonly Node[], cut: readonly Node[]): Set<number> {
  const stop = new Set(cut.map((n) => n.id));
  const seen = new Set<number>();
  const stack = [...roots];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    if (!stop.has(n.id)) stack.push(...n.src);
  }
  return seen;
}

/**
 * 'fast' score math (rules.ts: tanh.approx.f32, reciprocals of per-row divisors) on the tensor-core
 * engines, where a per-element tanhf or IEEE division would cost more than the softmax around it.
 * The SIMT engine, which the CPU emulator runs, stays precise. So does any kernel whose mask or
 * tile classifier reads tanh or f32 division: the classifier bounds the mask from tile corners,
 * which is sound only if both use the same monotone arithmetic, and tanh.approx is not known to be
 * monotone.
 */
export function scoreMathOf(kernel: AttentionKernel): ScoreMath {
  if ((kernel.schedule.engine ?? 'simt') === 'simt') return 'precise';
  const t = kernel.tiles;
  const guards = [kernel.mask, ...(t.kind === 'dynamic' ? [t.canBeTrue, t.canBeFalse] : [])];
  const approximated = toposort(guards).some(
    (n) => n.op === Op.TANH || (n.op === Op.DIV && n.dtype === 'f32'),
  );
  return approximated ? 'precise' : 'fast';
}

export function coreExprs(full: AttentionKernel, cx: Omit<CudaContext, 'vars'>): CoreExprs {
  // Inside a residue class the dilation conjunct is true: render the per-class mask and classifier.
  const residue = residueActive(full) ? full.residue! : undefined;
  const kernel = residue ? { ...full, mask: residue.mask, tiles: residue.tiles } : full;
  const mode = classMode(kernel);
  // Only the per-element statements take the fast score math: hoisted values run once per row or key.
  const render = (roots: readonly Node[], vars: Record<string, string>, prefix: string, math?: ScoreMath) =>
    linearize(roots, cudaRenderer({ ...cx, scoreMath: math, vars: { ...cudaSizeVars, ...vars } }), prefix);
  let modulus: string | null = null;
  if (residue) {
    const m = render([residue.modulus], {}, 'rm');
    if (m.stmts.length) throw new Error('internal: a residue modulus is a literal or a param');
    modulus = m.roots[0]!;
  }
  let patch: PatchTexts | null = null;
  if (patchActive(full)) {
    const n = full.neighbourhood!;
    const t = render([n.width, n.rowRadius, n.colRadius], {}, 'pn');
    if (t.stmts.length) throw new Error('internal: a neighbourhood width or radius is a literal or a param');
    const tweaks = patchTweaksOf(full);
    patch = { width: t.roots[0]!, rowRadius: t.roots[1]!, colRadius: t.roots[2]!, tweaks };
  }

  let classify: string[] = [];
  if (kernel.tiles.kind === 'dynamic') {
    const tileVars = { b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
    const c = render([kernel.tiles.canBeTrue, kernel.tiles.canBeFalse], tileVars, 'c');
    classify = [...c.stmts, `const bool can_true = ${c.roots[0]};`, `const bool can_false = ${c.roots[1]};`];
    // A mask that never reads k (or q) leaves its tile bounds unused: -Werror would refuse that.
    const text = classify.join('\n');
    const unused = ['q_lo', 'q_hi', 'k_lo', 'k_hi'].filter((v) => !new RegExp(`\\b${v}\\b`).test(text));
    if (unused.length) classify.push(unused.map((v) => `(void)${v};`).join(' '));
  }

  const scoreRoot = kernel.score.op === Op.VAR && kernel.score.arg === 'score' ? null : kernel.score;
  const maskRoot = mode === 'dynamic' || mode === 'partial' ? kernel.mask : null;
  const roots = mode === 'empty' ? [] : [scoreRoot, maskRoot].filter((n): n is Node => n !== null);

  // The hoisting plan fuse made of these expressions (of the per-class mask inside a class).
  const plan = residue ? residue.hoists : full.hoists;
  if (!plan) throw new Error('internal: the residue classes have no hoisting plan');
  const keyNodes = [...plan.key];
  // A row-invariant part that lives only inside key-invariant ones (`-c0` in a per-key
  // `min(-c0, f(k))`) is computed there: a per-row copy would be set and never read (nvcc #550).
  // WGSL hoists no keys, so fuse's plan keeps it for WGSL's sake.
  const outsideKeys = reachedAvoiding(roots, keyNodes);
  const rowNodes = plan.row.filter((n) => outsideKeys.has(n.id));
  const replaced = new Map<number, string>();
  const hoists = (nodes: Node[], prefix: string, index: string): Hoist[] =>
    nodes.map((n, i) => {
      replaced.set(n.id, `${prefix}${i}[${index}]`);
      return { name: `${prefix}${i}`, type: cudaType[n.dtype as DType] };
    });
  const rowHoists = hoists(rowNodes, 'hq', 'r');
  const keyHoists = hoists(keyNodes, 'hk', 'kk');

  const rows = render(rowNodes, { b: 'b', h: 'h', q: 'qpos' }, 'r');
  const keys = render(keyNodes, { b: 'b', h: 'h', k: 'kpos' }, 'kh');
  const hoistVars = Object.fromEntries([...replaced.values()].map((v) => [v, v]));
  const elem = render(
    relink(roots, replaced),
    { b: 'b', h: 'h', q: 'qpos', k: 'kpos', score: 'x', ...hoistVars },
    'e',
    scoreMathOf(kernel),
  );
  const elemRoot = (n: Node | null): string | null => (n === null ? null : elem.roots[roots.indexOf(n)]!);
  const exprs: CoreExprs = {
    mode,
    classify,
    rowHoists,
    rowStmts: [...rows.stmts, ...rowHoists.map((h, i) => `${h.name}[r] = ${rows.roots[i]};`)],
    keyHoists,
    keyStmts: [...keys.stmts, ...keyHoists.map((h, i) => `${h.name}[kk] = ${keys.roots[i]};`)],
    elemStmts: elem.stmts,
    score: elemRoot(scoreRoot),
    mask: elemRoot(maskRoot),
    residue: modulus === null ? null : { modulus },
    patch,
    scoreUsesKeyHoists:
      scoreRoot !== null && toposort([scoreRoot]).some((n) => keyNodes.some((h) => h.id === n.id)),
  };
  return patch?.tweaks.has('boxMask') ? withBoxMask(exprs) : exprs;
}
