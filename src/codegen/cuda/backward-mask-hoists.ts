// The dK/dV kernels' mask with its one-sided parts hoisted into shared memory (the forward's plan
// from pass fuse, restricted to the mask): per-key values once per CTA (its key tile is fixed), per-
// query values with each q-tile's lse and delta, by whoever loads those. An element then reads two
// shared words instead of evaluating, say, dilated's two floormods or neighbourhood's four
// divisions: per element those made the backwards of the masks that divide slower than their
// forwards by 20× (H100, round 16). Shared memory rather than registers: at D = 128 the dK and dV
// accumulators leave the consumers no room (register hoists tipped ptxas into serialising wgmmas).
import { toposort, type Node } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { usesVar } from '../../ir/passes/fuse.js';
import { linearize, type Renderer } from '../linearize.js';
import { reachedAvoiding, relink } from './exprs.js';
import { indent } from './indent.js';
import type { DkdvOrder } from './backward-residue.js';

/** One side's hoisted values: shared arrays and the statements filling index `hi` of them. */
export interface HoistSide {
  /** C storage type per array (bool is kept as int: 4-byte words keep the arrays aligned). */
  readonly types: readonly ('int' | 'float')[];
  /** Statements over the side's position (`kpos` or `qpos`), b, h and the params. */
  readonly stmts: readonly string[];
}

export interface HoistedMask {
  /** Per-element statements and the mask's text, reading `Hk<n>[kl]` and `Hq<n>[buf * BM + ql]`. */
  readonly stmts: readonly string[];
  readonly text: string;
  /** Per key of the CTA's tile: `Hk<n>[BN]`. */
  readonly key: HoistSide;
  /** Per query of a q-tile buffer: `Hq<n>[2][BM]`. */
  readonly query: HoistSide;
}

/** The mask's nodes that go to shared memory: per key and per query (fuse's plan, within the mask). */
function maskHoistNodes(kernel: AttentionKernel): { keyNodes: Node[]; rowNodes: Node[] } {
  const inMask = new Set(toposort([kernel.mask]).map((n) => n.id));
  // Per-key values are filled once per CTA, before the walk over the GQA group's heads: not h's.
  const keyNodes = kernel.hoists.key.filter((n) => inMask.has(n.id) && !usesVar(n, ['h']));
  // A per-query part that lives only inside a per-key one is computed there (a copy would be unread).
  const outsideKeys = reachedAvoiding([kernel.mask], keyNodes);
  const rowNodes = kernel.hoists.row.filter((n) => inMask.has(n.id) && outsideKeys.has(n.id));
  return { keyNodes, rowNodes };
}

/** The nodes a dK/dV kernel still evaluates per element: the mask's, less its hoisted parts. */
export function elementMaskNodes(kernel: AttentionKernel): Node[] {
  const { keyNodes, rowNodes } = maskHoistNodes(kernel);
  const hoisted = new Set([...keyNodes, ...rowNodes].map((n) => n.id));
  const reached = reachedAvoiding([kernel.mask], [...keyNodes, ...rowNodes]);
  return toposort([kernel.mask]).filter((n) => reached.has(n.id) && !hoisted.has(n.id));
}

/**
 * Word offsets from Ls (the lse array at the head of the row statistics) of hoisted array `i`:
 * after lse and delta ([2][BM] each) the per-query arrays ([2][BM] each), then the per-key ones
 * ([BN] each). Constant offsets from a pointer the tile already holds fold into the loads'
 * immediates: named pointers per array cost registers the consumers do not have (document's
 * dK/dV kernel spilled 120 bytes with them, H100 round 16).
 */
const queryWord = (i: number): string => `${4 + 2 * i} * BM`;
const keyWord = (nq: number, j: number): string => `${4 + 2 * nq} * BM${j ? ` + ${j} * BN` : ''}`;

/** The mask of `kernel` split by fuse's hoisting plan; `r` renders with the given variables. */
export function hoistMask(
  kernel: AttentionKernel,
  r: (vars: Record<string, string>) => Renderer,
): HoistedMask {
  const mask = kernel.mask;
  const { keyNodes, rowNodes } = maskHoistNodes(kernel);
  const replaced = new Map<number, string>();
  const word = (n: Node, at: string): { read: string; write: string } => {
    const f32 = n.dtype === 'f32';
    return {
      read: f32 ? `Ls[${at}]` : `__float_as_int(Ls[${at}])`,
      write: f32 ? `Ls[${at}]` : `reinterpret_cast<int*>(Ls)[${at}]`,
    };
  };
  const side = (
    nodes: readonly Node[],
    at: (i: number, index: string) => string,
    vars: Record<string, string>,
    prefix: string,
    index: string,
  ): HoistSide => {
    nodes.forEach((n, i) => replaced.set(n.id, word(n, at(i, index)).read));
    const t = linearize(nodes, r(vars), prefix);
    return {
      types: nodes.map((n) => (n.dtype === 'f32' ? 'float' : 'int')),
      stmts: [...t.stmts, ...nodes.map((n, i) => `${word(n, at(i, 'hi')).write} = ${t.roots[i]};`)],
    };
  };
  const nq = rowNodes.length;
  const query = side(
    rowNodes,
    (i, x) => `${queryWord(i)} + buf * BM + ${x}`,
    { b: 'b', h: 'h', q: 'qpos' },
    'hqt',
    'ql',
  );
  const key = side(keyNodes, (j, x) => `${keyWord(nq, j)} + ${x}`, { b: 'b', k: 'kpos' }, 'hkt', 'kl');
  const bound = Object.fromEntries([...replaced.values()].map((v) => [v, v]));
  const m = linearize(relink([mask], replaced), r({ b: 'b', h: 'h', q: 'qpos', k: 'kpos', ...bound }), 'mk');
  return { stmts: m.stmts, text: m.roots[0]!, key, query };
}

/** What a dK/dV kernel's shared-memory size depends on beyond the schedule. */
export interface SmemNeeds {
  /** Carried per-element slots (backward-mma-exprs.ts). */
  readonly slots: number;
  readonly dkdvMask: HoistedMask | null;
  /** The dK/dV order (backward-residue.ts): its position arrays. */
  readonly order: Pick<DkdvOrder, 'positionBytes'>;
}

/** How many arrays each side hoists (0 and 0 without a mask). */
export function hoistCounts(m: HoistedMask | null): { readonly key: number; readonly query: number } {
  return { key: m?.key.types.length ?? 0, query: m?.query.types.length ?? 0 };
}

/** Shared-memory bytes of the hoisted arrays for q-tiles of BM rows and key tiles of BN. */
export function hoistBytes(m: HoistedMask | null, BM: number, BN: number): number {
  const c = hoistCounts(m);
  return 4 * (2 * BM * c.query + BN * c.key);
}

/** The C text of the first float after the hoisted arrays, which start at `from` (= Ls + 4 · BM). */
export function hoistEnd(m: HoistedMask | null, from: string): string {
  const c = hoistCounts(m);
  if (!c.key && !c.query) return from;
  return `${from} + ${[c.query ? `${2 * c.query} * BM` : '', c.key ? `${c.key} * BN` : ''].filter(Boolean).join(' + ')}`;
}

/**
 * `const int <name> = <value>;` where the statements read it. A per-query part need not read q
 * (`b != h`, `w0 == 1`: fuse's row plan is everything the key does not vary), and nvcc's
 * warnings-as-errors build refuses an unread local.
 */
const position = (stmts: readonly string[], name: string, value: string): string[] =>
  stmts.some((s) => new RegExp(`\\b${name}\\b`).test(s)) ? [`    const int ${name} = ${value};`] : [];

/** Fills the per-key arrays for the CTA's key tile k0: thread `tid` of `count` (before a barrier). */
export function keyHoistFill(m: HoistedMask | null, count: string, o: DkdvOrder): string[] {
  if (!m?.key.stmts.length) return [];
  return [
    "  // The mask's per-key part of this key tile (read after the loop's first barrier).",
    `  for (int hi = tid; hi < BN; hi += ${count}) {`,
    ...position(m.key.stmts, 'kpos', o.kpos('k0 + hi')),
    ...indent(m.key.stmts, '    '),
    '  }',
  ];
}

/** Fills buffer `buf`'s per-query arrays for q-tile q0 of head h, thread `id` of `count`. */
export function queryHoistFill(m: HoistedMask | null, id: string, count: string, o: DkdvOrder): string[] {
  if (!m?.query.stmts.length) return [];
  return [
    `  for (int hi = ${id}; hi < BM; hi += ${count}) {`,
    ...position(m.query.stmts, 'qpos', o.qpos('q0 + hi')),
    ...indent(m.query.stmts, '    '),
    '  }',
  ];
}
