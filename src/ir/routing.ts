// Block routing in the kernel IR (docs/LANGUAGE.md, "Pooling, routing and selection"): the
// `route blocks(n) topk(k) by P(q) . P(k) [force first(f) local(l)]` statement becomes a
// RoutingPlan that the backend expands into a pipeline pool(k) → pool(q) → affinity + top-k →
// sparse attention. The selection is an [B, H, Nq, K] index output (K = k + f + l): O(N·k)
// memory, never an N×N mask. Constructs the backends do not implement yet are named by
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
}

/** The selection groups G of the `indices` output [B, G, Nq, K], as a shape symbol. */
export function routingGroups(r: RoutingPlan): 'H' | 'Hkv' | '1' {
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
  if (target !== 'wgsl')
    return { message: 'routing/selection is not yet supported by the CUDA backend', span: s.span };
  if (s.kind !== 'route') return no(`\`${s.kind}\``, s.keywordSpan);
  if (s.unit?.kind !== 'blocks') return no('`route chunks(…)`', s.unit?.span ?? s.span);
  if (s.source.kind !== 'topk') return no('`route … from`', s.source.span);
  if (s.source.by.k.reducer === 'raw') return no('a raw key side', s.source.by.k.span);
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
  return parts.every((p) => p !== undefined) ? parts.join(' + ') : undefined;
}

/** Structural checks of a plan (ir/verify.ts calls this). */
export function verifyRouting(r: RoutingPlan, paramDtype: (name: string) => string | undefined): string[] {
  const errs: string[] = [];
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
  return [
    `routing: blocks(${r.blockSize}) topk(${show(r.topk)}) by ${side(r.q, 'q')} . ${side(r.k, 'k')}` +
      `${r.vote ? ` vote ${r.vote}` : ''} force first(${show(r.first)}) local(${show(r.local)})`,
    `  pipeline: pool_k${r.q === 'raw' ? '' : ' → pool_q'} → route_topk → attention (selected blocks only)`,
    `  indices: i32[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r) ?? '?'}] (ascending block ids, −1 padded)`,
  ];
}

/** The AST pieces lowering needs; lowering turns each count into a graph node. */
export function routingSource(decl: AttentionDecl):
  | {
      readonly size: Expr;
      readonly q: PoolReducer | 'raw';
      readonly k: PoolReducer;
      readonly topk: Expr;
      readonly first?: Expr;
      readonly local?: Expr;
      readonly vote?: 'heads' | 'groups';
    }
  | undefined {
  const s = decl.sparsity?.[0];
  if (!s || s.kind !== 'route' || s.unit?.kind !== 'blocks' || s.source.kind !== 'topk') return undefined;
  const k = s.source.by.k.reducer;
  if (k === 'raw') return undefined;
  const first = s.force.find((f) => f.kind === 'first')?.count;
  const local = s.force.find((f) => f.kind === 'local')?.count;
  return {
    size: s.unit.size,
    q: s.source.by.q.reducer,
    k,
    topk: s.source.count,
    ...(first ? { first } : {}),
    ...(local ? { local } : {}),
    ...(s.vote ? { vote: s.vote.over } : {}),
  };
}
