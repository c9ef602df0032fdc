// Checks `store` and `importance` statements (docs/LANGUAGE.md, "K/V storage formats"): which
// clauses each element type needs or refuses, group sizes (constants that keep a 32-bit word of
// codes inside one scale group), and the tensor that marks salient tokens.
import type { Span } from '../diagnostics.js';
import { codesPerWord, elemBits } from '../quant/elem.js';
import { isIntElem, type ImportanceRequest, type StorageDecl } from './ast-storage.js';
import type { DimRef, Expr, ParamDecl } from './ast.js';
import { overflowed } from './check-constants.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import { printType } from './print.js';
import { didYouMean } from './suggest.js';

const q = (code: string): string => `\`${code}\``;
/** The name of the kernel output an `importance` statement requests. */
export const importanceOutput = 'importance';
const onLine = (s: Span): string => `line ${s.line}`;

export function checkStorage(
  stores: readonly StorageDecl[],
  importance: readonly ImportanceRequest[],
  ctx: SparsityCheckCtx,
): void {
  const seen = new Map<'k' | 'v', Span>();
  for (const s of stores) {
    for (const t of s.target === 'kv' ? (['k', 'v'] as const) : [s.target]) {
      const first = seen.get(t);
      if (first)
        ctx.err(`the storage of ${q(t)} is given twice`, s.targetSpan, `the first is on ${onLine(first)}`);
      else seen.set(t, s.targetSpan);
    }
    new StoreChecker(s, ctx).run();
  }
  const first = importance[0];
  for (const s of importance.slice(1)) {
    const hint = first && `the first is on ${onLine(first.keywordSpan)}`;
    ctx.err('only one `importance` statement is allowed', s.keywordSpan, hint);
  }
  const clash = ctx.params.find((p) => p.name === importanceOutput);
  if (first && clash) {
    const hint = `the kernel writes the output ${q(importanceOutput)}; rename the parameter`;
    ctx.err(
      `parameter ${q(importanceOutput)} clashes with the output of \`importance\``,
      clash.nameSpan,
      hint,
    );
  }
}

class StoreChecker {
  constructor(
    private readonly s: StorageDecl,
    private readonly ctx: SparsityCheckCtx,
  ) {}

  run(): void {
    const { s, ctx } = this;
    const int = isIntElem(s.elem);
    if (int && !s.scale)
      ctx.err(`${q(s.elem)} codes need a \`scale\` clause`, s.elemSpan, 'add one like `scale f16 per token`');
    if (!int && s.zero) {
      const hint = 'fp8 codes are symmetric; drop `zero` or use an int element type';
      ctx.err(`${q(s.elem)} codes take no zero point`, s.zero.span, hint);
    }
    const per = s.scale?.per;
    if (per && per.kind !== 'tensor' && per.group) this.group(per.group, per.kind);
    if (s.norm && per?.kind !== 'token') {
      const hint =
        'the normalizer scales channels; each token needs its own scale, like `scale f16 per token`';
      ctx.err('a normalizer needs per-token scales', s.norm.span, hint);
    }
    if (s.recent) this.constant(s.recent.count, 'the number of recent tokens', 1);
    if (s.salient) this.salient(s.salient);
  }

  /** A constant int ≥ min; its value, or undefined (reported). */
  private constant(e: Expr, what: string, min: number): number | undefined {
    const t = this.ctx.uniform(e);
    if (t === undefined) return undefined;
    const v = this.ctx.fold(e);
    if (v === overflowed) return undefined;
    if (t !== 'int' || typeof v !== 'number') {
      const hint = 'it shapes the cache; write a literal like `32`';
      this.ctx.err(`${what} must be a constant int`, e.span, hint);
      return undefined;
    }
    if (v < min) {
      this.ctx.err(`${what} must be at least ${min}, found ${v}`, e.span);
      return undefined;
    }
    return v;
  }

  /** `per token group g` groups channels (codes of one word must share a scale); `per channel group g` tokens. */
  private group(e: Expr, per: 'token' | 'channel'): void {
    const g = this.constant(e, 'a group size', 1);
    if (g === undefined || per === 'channel') return;
    const elems = [this.s.elem, ...(this.s.salient ? [this.s.salient.elem] : [])];
    for (const elem of elems) {
      const n = codesPerWord(elem);
      if (g % n === 0) continue;
      const hint = `use a multiple of ${n}, so that each word's codes share one scale`;
      this.ctx.err(
        `a group of ${g} channels splits the 32-bit words of ${q(elem)} codes (${n} per word)`,
        e.span,
        hint,
      );
      return;
    }
  }

  private salient(c: NonNullable<StorageDecl['salient']>): void {
    const { s, ctx } = this;
    if (!isIntElem(s.elem) || !isIntElem(c.elem)) {
      const hint = 'salient tokens widen int codes, like `store k int2 … salient int4 from t`';
      ctx.err('salient tokens need int codes for both the tensor and the salient tokens', c.elemSpan, hint);
    } else if (elemBits(c.elem) <= elemBits(s.elem)) {
      const hint = `the other tokens are ${q(s.elem)}`;
      ctx.err(`salient tokens must be stored wider than the others, found ${q(c.elem)}`, c.elemSpan, hint);
    }
    if (s.scale && s.scale.per.kind !== 'token') {
      const hint = 'each token is quantized at its own width, so it needs its own scale: `per token`';
      ctx.err('salient tokens need per-token scales', s.scale.per.span, hint);
    }
    const p = this.tensor(c.tensor, c.tensorSpan);
    if (p && !isSalientLayout(p)) {
      const want = '`i32[batch, kv_heads, kv]` (flags) or `i32[batch, kv_heads, N]` (token indices)';
      ctx.err(`\`salient … from\` takes ${want}, but ${q(p.name)} is ${printType(p.type)}`, c.tensorSpan);
    }
  }

  private tensor(name: string, span: Span): ParamDecl | undefined {
    const p = this.ctx.params.find((x) => x.name === name);
    if (p?.type.kind === 'tensor') return p;
    if (p) {
      this.ctx.err(`${q(name)} is not a tensor`, span, 'declare it like `sal: i32[batch, kv_heads, kv]`');
      return undefined;
    }
    const tensors = this.ctx.params.filter((x) => x.type.kind === 'tensor').map((x) => x.name);
    this.ctx.err(`unknown tensor ${q(name)}`, span, didYouMean(name, tensors));
    return undefined;
  }
}

const isSize = (d: DimRef | undefined, name: string): boolean => d?.kind === 'size' && d.name === name;

/** `i32[batch, kv_heads, kv]` or `i32[batch, kv_heads, N]` (N a literal or an int param). */
function isSalientLayout(p: ParamDecl): boolean {
  const t = p.type;
  if (t.kind !== 'tensor' || t.elem !== 'i32' || t.dims.length !== 3) return false;
  const [b, h, n] = t.dims;
  const last = isSize(n, 'kv') || n?.kind === 'literal' || n?.kind === 'param';
  return isSize(b, 'batch') && isSize(h, 'kv_heads') && last;
}
