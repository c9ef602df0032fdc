// Checks and dumps of a RoutingPlan (ir/routing.ts): the constructs a backend does not implement
// yet (positioned errors for compile()), the structural checks ir/verify.ts runs, and the
// --dump-ir lines.
import type { AttentionDecl, SparsityStmt } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';
import { show, toposort, type Node } from './graph.js';
import { Op } from './ops.js';
import {
  capacityShapeExpr,
  chunkTensor,
  routingCountVars,
  routingFrom,
  routingGroups,
  routingPasses,
  routingVote,
  type RoutingPlan,
} from './routing.js';

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

/** Structural checks of a plan (ir/verify.ts calls this). */
export function verifyRouting(
  r: RoutingPlan,
  paramDtype: (name: string) => string | undefined,
  tensor?: (name: string) => { readonly dtype: string; readonly dims: readonly unknown[] } | undefined,
): string[] {
  const errs: string[] = [];
  // The tensors a plan reads: chunk ids are i32[kv], a reused selection i32[batch, G, queries, K].
  const chunks = chunkTensor(r);
  const from = routingFrom(r);
  const expect = [
    ...(chunks ? [[chunks, 1, 'chunks'] as const] : []),
    ...(from ? [[from.tensor, 4, 'from'] as const] : []),
  ];
  for (const [name, rank, what] of tensor ? expect : []) {
    const t = tensor!(name);
    if (!t || t.dtype !== 'i32' || t.dims.length !== rank)
      errs.push(`routing.${what}: "${name}" is not a declared i32 tensor of rank ${rank}`);
  }
  if (r.unit.kind === 'blocks' && (!Number.isInteger(r.unit.size) || r.unit.size < 1))
    errs.push(`routing: block size ${r.unit.size} is not an integer >= 1`);
  if (r.source.kind === 'topk' && r.source.k === ('raw' as string))
    errs.push('routing: the key side must be pooled');
  for (const [name, root] of [
    ['topk', r.source.count],
    ['first', r.first],
    ['local', r.local],
  ] as const)
    errs.push(...verifyCount(name, root, paramDtype));
  if (capacityShapeExpr(r) === undefined)
    errs.push('routing: the index capacity k + first + local is not a shape expression');
  return errs;
}

/** A count reads sizes and declared params only, and is i32. */
function verifyCount(name: string, root: Node, paramDtype: (name: string) => string | undefined): string[] {
  const errs: string[] = [];
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
  return errs;
}

/** Human-readable lines for --dump-ir. */
export function dumpRouting(r: RoutingPlan): string[] {
  const side = (x: string, t: string): string => (x === 'raw' ? t : `${x}(${t})`);
  const u = r.unit;
  const unit =
    u.kind === 'tokens' ? 'tokens' : u.kind === 'chunks' ? `chunks(${u.tensor})` : `blocks(${u.size})`;
  const src = r.source;
  const source =
    src.kind === 'from'
      ? `from ${src.tensor}`
      : `topk(${show(src.count)}) by ${side(src.q, 'q')} . ${u.kind === 'tokens' ? 'k' : side(src.k, 'k')}`;
  const vote = routingVote(r);
  const passes = {
    'read-from': 'route_from (sort, dedupe, forced)',
    'token-select': `${vote ? 'sel_vote_max → sel_vote_sum → ' : ''}8 × (sel_hist → sel_pick) → sel_write → sel_sort`,
    'pool-rank': `pool_k${src.kind === 'topk' && src.q !== 'raw' ? ' → pool_q' : ''} → route_topk`,
  }[routingPasses(r)];
  const emit = r.attention === 'static-mask';
  const attention = emit ? 'attention (static mask only)' : 'attention (selected ids only)';
  return [
    `routing: ${emit ? 'emit ' : ''}${unit} ${source}` +
      `${vote ? ` vote ${vote}` : ''} force first(${show(r.first)}) local(${show(r.local)})`,
    `  pipeline: ${passes} → ${attention}`,
    `  indices: i32[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r) ?? '?'}] (ascending ids, −1 padded)`,
  ];
}
