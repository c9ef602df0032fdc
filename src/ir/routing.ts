// Routing and selection in the kernel IR (docs/LANGUAGE.md, "Pooling, routing and selection"):
// a `route blocks(n)|chunks(t) …`, `select …` or `emit …` statement becomes a RoutingPlan that
// the backend expands into passes before the attention — pool(k) → pool(q) → affinity + top-k
// for blocks and chunks, a parallel radix select for tokens, a sort of the given rows for
// `from` (docs/DESIGN-NOTES.md). The selection is an [B, G, Nq, K] index output (K = k + f + l):
// O(N·k) memory, never an N×N mask. Constructs a backend does not implement yet are named by
// `unsupportedRouting` so compile() can reject them with a positioned error.
import type { AttentionDecl, Expr, PoolReducer, SparsityStmt } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';
import { show, toposort, type Node } from './graph.js';
import { Op } from './ops.js';

export type { PoolReducer } from '../dsl/ast.js';

export interface RoutingPlan {
  /** Key position p (and query position q) belongs to block floor(p / blockSize). */
  readonly blockSize: number;
  /** Query side of the affinity: pooled per query block (one selection per block) or raw rows. */
  readonly q: PoolReducer | 'raw';
  /** Key side: always pooled per key block. */
  readonly k: PoolReducer;
  /** i32 expressions of params and sizes only: the top-k count and the forced counts. */
  readonly topk: Node;
  readonly first: Node;
  readonly local: Node;
  /**
   * Soft voting (TokenSelect): one selection per kv head's group of query heads (`groups`) or for
   * all heads (`heads`), ranked by the sum over voters of each head's softmax of affinities.
   */
  readonly vote?: 'heads' | 'groups';
  /**
   * `select` (token-level): an id is a key position. The plan then reads as blocks(1) by q .
   * first(k) (a one-key block pools to the key itself), so a backend without a token path may
   * run it as block routing; the WGSL backend ranks with a parallel radix select instead
   * (codegen/wgsl/routing-select.ts).
   */
  readonly unit?: 'tokens';
  /**
   * `… from t`: the selection is read from the index tensor `t` ([B, groups, Nq, capacity]),
   * not ranked (`topk` is then t's capacity, the ids a row reads); `force` adds to it.
   */
  readonly from?: RoutingFrom;
  /**
   * `chunks(t)`: the id of position p is t[p] (an `i32[kv]` tensor, non-decreasing, >= 0);
   * `blockSize` is then 1 and meaningless.
   */
  readonly chunks?: string;
  /** `emit`: the selection is written to `indices`, the attention is the static mask alone. */
  readonly restrict?: false;
}

export interface RoutingFrom {
  readonly tensor: string;
  /** The selection groups of the tensor's dim 1 (heads, kv_heads or 1). */
  readonly groups: 'H' | 'Hkv' | '1';
  /** The tensor's dim 3 as a shape expression (a literal or an int param). */
  readonly capacity: string;
}

/** The selection groups G of the `indices` output [B, G, Nq, K], as a shape symbol. */
export function routingGroups(r: RoutingPlan): 'H' | 'Hkv' | '1' {
  if (r.from) return r.from.groups;
  return r.vote === 'heads' ? '1' : r.vote === 'groups' ? 'Hkv' : 'H';
}

/** Vars a routing count may read: sizes only (no b h q k), as LANGUAGE.md's COUNT allows. */
export const routingCountVars: ReadonlySet<string> = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);

/**
 * Why `decl`'s sparsity statement cannot be compiled for `target` yet, with where to point; or
 * undefined when it can (or has none).
 */
export function unsupportedRouting(
  decl: AttentionDecl,
  target: string,
): { message: string; span: Span } | undefined {
  const s: SparsityStmt | undefined = decl.sparsity?.[0];
  if (s === undefined) return undefined;
  const no = (what: string, span: Span): { message: string; span: Span } => ({
    message: `${what} is not yet supported by the code generators (it checks and runs in the reference)`,
    span,
  });
  if (target === 'cuda') {
    // CUDA: ranked block routing (codegen/cuda/routing*.ts); tokens, emit, from and chunks
    // (codegen/cuda/select*.ts). Every key side is pooled (a token is a one-key block).
    if (s.unit && s.source.kind === 'topk' && s.source.by.k.reducer === 'raw')
      return {
        message: 'a raw key side is not yet supported by the CUDA backend (it runs in the reference)',
        span: s.source.by.k.span,
      };
    return undefined;
  }
  if (target !== 'wgsl')
    return { message: `routing/selection is not yet supported by the ${target} backend`, span: s.span };
  // WGSL: everything the checker accepts (blocks, chunks and tokens; ranked or `from`).
  if (s.unit && s.source.kind === 'topk' && s.source.by.k.reducer === 'raw')
    return no('a raw key side', s.source.by.k.span);
  return undefined;
}

/**
 * A shape expression (codegen/artifact.ts ShapeExpr) of an i32 count, or undefined when the
 * count uses an op the shape grammar lacks (division, min, …).
 */
export function countShapeExpr(n: Node): string | undefined {
  if (n.op === Op.CONST && typeof n.arg === 'number') return String(n.arg);
  if (n.op === Op.PARAM) return String(n.arg);
  if (n.op === Op.VAR && routingCountVars.has(String(n.arg))) return String(n.arg);
  const sym = n.op === Op.ADD ? '+' : n.op === Op.SUB ? '-' : n.op === Op.MUL ? '*' : undefined;
  if (sym === undefined || n.src.length !== 2) return undefined;
  const [a, b] = [countShapeExpr(n.src[0]!), countShapeExpr(n.src[1]!)];
  return a === undefined || b === undefined ? undefined : `(${a} ${sym} ${b})`;
}

/** K of the index output, `k + first + local`, as a shape expression (undefined: see above). */
export function capacityShapeExpr(r: RoutingPlan): string | undefined {
  const parts = [r.topk, r.first, r.local].map(countShapeExpr);
  if (r.from) parts[0] = r.from.capacity;
  return parts.every((p) => p !== undefined) ? parts.join(' + ') : undefined;
}

/** Structural checks of a plan (ir/verify.ts calls this). */
export function verifyRouting(
  r: RoutingPlan,
  paramDtype: (name: string) => string | undefined,
  tensor?: (name: string) => { readonly dtype: string; readonly dims: readonly unknown[] } | undefined,
): string[] {
  const errs: string[] = [];
  // The tensors a plan reads: chunk ids are i32[kv], a reused selection i32[batch, G, queries, K].
  const expect = [
    ...(r.chunks ? [[r.chunks, 1, 'chunks'] as const] : []),
    ...(r.from ? [[r.from.tensor, 4, 'from'] as const] : []),
  ];
  for (const [name, rank, what] of tensor ? expect : []) {
    const t = tensor!(name);
    if (!t || t.dtype !== 'i32' || t.dims.length !== rank)
      errs.push(`routing.${what}: "${name}" is not a declared i32 tensor of rank ${rank}`);
  }
  if (!Number.isInteger(r.blockSize) || r.blockSize < 1)
    errs.push(`routing: block size ${r.blockSize} is not an integer >= 1`);
  if (r.k === ('raw' as string)) errs.push('routing: the key side must be pooled');
  for (const [name, root] of [
    ['topk', r.topk],
    ['first', r.first],
    ['local', r.local],
  ] as const) {
    if (root.dtype !== 'i32') errs.push(`routing.${name} is not i32: ${show(root)}`);
    for (const n of toposort([root])) {
      const where = `routing.${name}: ${show(n)}`;
      if (n.op === Op.VAR && !routingCountVars.has(String(n.arg)))
        errs.push(`${where} reads ${String(n.arg)}, not a size`);
      else if (n.op === Op.LOAD || n.op === Op.RANGE_MIN || n.op === Op.RANGE_MAX)
        errs.push(`${where} reads a tensor`);
      else if (n.op === Op.PARAM && paramDtype(String(n.arg)) !== n.dtype)
        errs.push(`${where}: undeclared or mistyped param`);
    }
  }
  if (capacityShapeExpr(r) === undefined)
    errs.push('routing: the index capacity k + first + local is not a shape expression');
  return errs;
}

/** Human-readable lines for --dump-ir. */
export function dumpRouting(r: RoutingPlan): string[] {
  const side = (x: string, t: string): string => (x === 'raw' ? t : `${x}(${t})`);
  const unit = r.unit === 'tokens' ? 'tokens' : r.chunks ? `chunks(${r.chunks})` : `blocks(${r.blockSize})`;
  const source = r.from
    ? `from ${r.from.tensor}`
    : `topk(${show(r.topk)}) by ${side(r.q, 'q')} . ${r.unit === 'tokens' ? 'k' : side(r.k, 'k')}`;
  const passes = r.from
    ? 'route_from (sort, dedupe, forced)'
    : r.unit === 'tokens'
      ? `${r.vote ? 'sel_vote_max → sel_vote_sum → ' : ''}8 × (sel_hist → sel_pick) → sel_write → sel_sort`
      : `pool_k${r.q === 'raw' ? '' : ' → pool_q'} → route_topk`;
  const attention = r.restrict === false ? 'attention (static mask only)' : 'attention (selected ids only)';
  return [
    `routing: ${r.restrict === false ? 'emit ' : ''}${unit} ${source}` +
      `${r.vote ? ` vote ${r.vote}` : ''} force first(${show(r.first)}) local(${show(r.local)})`,
    `  pipeline: ${passes} → ${attention}`,
    `  indices: i32[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r) ?? '?'}] (ascending ids, −1 padded)`,
  ];
}

/** The AST pieces lowering needs; lowering turns each count into a graph node. */
export function routingSource(decl: AttentionDecl):
  | {
      /** Absent for token-level `select`/`emit` (one-key blocks) and chunks. */
      readonly size?: Expr;
      /** `chunks(t)`: the chunk-id tensor. */
      readonly chunks?: string;
      readonly q: PoolReducer | 'raw';
      readonly k: PoolReducer;
      /** Absent for `from`. */
      readonly topk?: Expr;
      /** `from t`: the index tensor's name. */
      readonly from?: string;
      readonly first?: Expr;
      readonly local?: Expr;
      readonly vote?: 'heads' | 'groups';
      readonly restrict?: false;
    }
  | undefined {
  const s = decl.sparsity?.[0];
  if (!s) return undefined;
  const src = s.source;
  // A token is a one-key block: its `first` pooling is the key itself.
  const k = src.kind === 'topk' && s.unit ? src.by.k.reducer : 'first';
  if (k === 'raw') return undefined;
  const first = s.force.find((f) => f.kind === 'first')?.count;
  const local = s.force.find((f) => f.kind === 'local')?.count;
  return {
    ...(s.unit?.kind === 'blocks' ? { size: s.unit.size } : {}),
    ...(s.unit?.kind === 'chunks' ? { chunks: s.unit.tensor } : {}),
    q: src.kind === 'topk' ? src.by.q.reducer : 'raw',
    k,
    ...(src.kind === 'topk' ? { topk: src.count } : { from: src.tensor }),
    ...(first ? { first } : {}),
    ...(local ? { local } : {}),
    ...(s.vote ? { vote: s.vote.over } : {}),
    ...(s.kind === 'emit' ? { restrict: false as const } : {}),
  };
}
