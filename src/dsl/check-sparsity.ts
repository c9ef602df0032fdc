// Checks `route`, `select` and `emit` statements (docs/LANGUAGE.md, "Pooling, routing and
// selection"): which verb takes which unit, source and clauses; the types of their counts; the
// tensors they name. Counts are checked by the declaration checker in its 'uniform' context (a
// value fixed for the whole kernel: literals, scalar params, sizes like `Nk`).
import type { Span } from '../diagnostics.js';
import type { ConstValue, ValueType } from './builtins.js';
import type { DimRef, Expr, ParamDecl, SparsityStmt } from './ast.js';
import { overflowed } from './check-constants.js';
import { printType } from './print.js';
import { didYouMean } from './suggest.js';

/** What the statement checks need from the declaration checker. */
export interface SparsityCheckCtx {
  err(message: string, span: Span, hint?: string): void;
  /** Types `e` as a value fixed for the whole kernel; undefined if it is ill-typed (reported). */
  uniform(e: Expr): ValueType | undefined;
  /**
   * The value of a checked constant expression; undefined if it is not constant, `overflowed`
   * if its int arithmetic left the int range (already reported).
   */
  fold(e: Expr): ConstValue | typeof overflowed | undefined;
  readonly params: readonly ParamDecl[];
}

const q = (code: string): string => `\`${code}\``;
const onLine = (s: Span): string => `line ${s.line}`;
/** The name of the kernel output a selection is written to (`emit`, `emit indices`). */
export const indicesOutput = 'indices';

export function checkSparsity(stmts: readonly SparsityStmt[], ctx: SparsityCheckCtx): void {
  const first = stmts[0];
  for (const s of stmts.slice(1)) {
    const hint = first && `the first is on ${onLine(first.keywordSpan)}`;
    ctx.err('only one `route`, `select` or `emit` statement is allowed', s.keywordSpan, hint);
  }
  for (const s of stmts) new StmtChecker(s, ctx).run();
}

class StmtChecker {
  constructor(
    private readonly s: SparsityStmt,
    private readonly ctx: SparsityCheckCtx,
  ) {}

  run(): void {
    const { s, ctx } = this;
    this.unit();
    this.source();
    for (const f of s.force) this.count(f.count, `${f.kind}(…)`, 0);
    if (s.kind === 'emit' && s.emitIndices) {
      ctx.err('`emit` already writes the indices', s.emitIndices, 'drop `emit indices`');
    }
    const clash = ctx.params.find((p) => p.name === indicesOutput);
    if (clash && (s.kind === 'emit' || s.emitIndices)) {
      const hint = `the selection is written to the output ${q(indicesOutput)}; rename the parameter`;
      ctx.err(
        `parameter ${q(indicesOutput)} clashes with the output of this statement`,
        clash.nameSpan,
        hint,
      );
    }
  }

  /** An int fixed for the whole kernel, at least `min` when it is constant. */
  private count(e: Expr, what: string, min: number): ConstValue | undefined {
    const t = this.ctx.uniform(e);
    if (t === undefined) return undefined;
    if (t !== 'int') {
      this.ctx.err(`${q(what)} takes an int, found ${t}`, e.span);
      return undefined;
    }
    const v = this.ctx.fold(e);
    if (v === overflowed) return undefined;
    if (typeof v === 'number' && v < min) {
      this.ctx.err(`${q(what)} must be at least ${min}, found ${v}`, e.span);
      return undefined;
    }
    return v;
  }

  private unit(): void {
    const { s, ctx } = this;
    const u = s.unit;
    if (s.kind === 'route' && u === undefined) {
      const hint = 'to rank single keys, use `select topk(n) by q . k`';
      ctx.err('`route` needs a unit: `blocks(n)` or `chunks(ids)`', s.keywordSpan, hint);
    }
    if (s.kind === 'select' && u !== undefined) {
      const hint = `to rank ${u.kind}, use \`route ${u.kind}(…)\``;
      ctx.err('`select` ranks single keys and takes no unit', u.span, hint);
    }
    if (u?.kind === 'blocks') {
      const before = ctx.uniform(u.size);
      if (before === undefined) return;
      const v = ctx.fold(u.size);
      if (v === overflowed) return;
      if (before !== 'int' || typeof v !== 'number') {
        const hint = "it shapes the kernel's tiles; write a literal like `blocks(64)`";
        ctx.err('the block size must be a constant int', u.size.span, hint);
      } else if (v < 1) ctx.err(`the block size must be at least 1, found ${v}`, u.size.span);
    }
    if (u?.kind === 'chunks') {
      const p = this.tensor(u.tensor, u.tensorSpan);
      const t = p?.type;
      const ok = t?.kind === 'tensor' && t.elem === 'i32' && t.dims.length === 1 && isSize(t.dims[0], 'kv');
      if (p && !ok && !this.hasUnknownDim(p)) {
        const found = `${q(p.name)} is ${printType(p.type)}`;
        ctx.err(`\`chunks\` takes an \`i32[kv]\` tensor of chunk ids, but ${found}`, u.tensorSpan);
      }
    }
  }

  private source(): void {
    const { s, ctx } = this;
    const src = s.source;
    if (src.kind === 'topk') {
      this.count(src.count, 'topk', 0);
      const { q: qs, k: ks } = src.by;
      if (s.unit !== undefined && s.kind !== 'select' && ks.reducer === 'raw') {
        const hint = 'to rank single keys, use `select topk(n) by q . k`';
        ctx.err(
          `${q(s.kind)} ranks ${s.unit.kind}, so the key side must be pooled, like \`mean(k)\``,
          ks.span,
          hint,
        );
      }
      if (s.unit === undefined && s.kind !== 'route') {
        const pooled = qs.reducer !== 'raw' ? qs : ks.reducer !== 'raw' ? ks : undefined;
        const hint = 'to pool, use `route blocks(n) topk(…) by …`';
        if (pooled)
          ctx.err(`${q(s.kind)} ranks single keys by \`q . k\`; pooling needs a unit`, pooled.span, hint);
      }
      return;
    }
    if (s.kind === 'emit') {
      const hint = '`emit` computes a selection; to reuse one, use `select from …` or `route … from …`';
      ctx.err('`emit` cannot read a selection `from` a tensor', src.span, hint);
    }
    if (s.vote) {
      const hint = "the index tensor's second dimension says which heads share a selection";
      ctx.err('a selection read `from` a tensor was voted where it was computed', s.vote.span, hint);
    }
    if (s.emitIndices) {
      ctx.err('a selection read `from` a tensor is not emitted again', s.emitIndices, 'drop `emit indices`');
    }
    const p = this.tensor(src.tensor, src.tensorSpan);
    if (p && !isIndexLayout(p) && !this.hasUnknownDim(p)) {
      const want = '`i32[batch, G, queries, K]` with G one of `heads`, `kv_heads`, 1';
      ctx.err(
        `\`from\` takes an index tensor ${want}, but ${q(p.name)} is ${printType(p.type)}`,
        src.tensorSpan,
      );
    }
  }

  /** `i32[kvv]`: "unknown dimension" was said at the declaration; a mismatch here is its echo. */
  private hasUnknownDim(p: ParamDecl): boolean {
    const dims = p.type.kind === 'tensor' ? p.type.dims : [];
    return dims.some((d) => d.kind === 'param' && !this.ctx.params.some((x) => x.name === d.name));
  }

  /** The tensor param `name`, or undefined with an error (unless the name is a parse hole). */
  private tensor(name: string, span: Span): ParamDecl | undefined {
    if (name === '') return undefined;
    const p = this.ctx.params.find((x) => x.name === name);
    if (p?.type.kind === 'tensor') return p;
    if (p) {
      this.ctx.err(`${q(name)} is not a tensor`, span, 'declare it like `ids: i32[kv]`');
      return undefined;
    }
    const tensors = this.ctx.params.filter((x) => x.type.kind === 'tensor').map((x) => x.name);
    this.ctx.err(`unknown tensor ${q(name)}`, span, didYouMean(name, tensors));
    return undefined;
  }
}

function isSize(d: DimRef | undefined, name: string): boolean {
  return d?.kind === 'size' && d.name === name;
}

/** `i32[batch, heads | kv_heads | 1, queries, K]`, K a literal or an int param. */
function isIndexLayout(p: ParamDecl): boolean {
  const t = p.type;
  if (t.kind !== 'tensor' || t.elem !== 'i32' || t.dims.length !== 4) return false;
  const [b, g, n, k] = t.dims;
  const group = isSize(g, 'heads') || isSize(g, 'kv_heads') || (g?.kind === 'literal' && g.value === 1);
  return (
    isSize(b, 'batch') && group && isSize(n, 'queries') && (k?.kind === 'literal' || k?.kind === 'param')
  );
}
