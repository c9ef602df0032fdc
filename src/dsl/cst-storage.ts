// CST → AST for `store` and `importance` (parser-storage.ts). The words of these statements
// (tensors, element types, dtypes, granularities) are checked here with a did-you-mean. A
// statement whose tensor or element type is unreadable is dropped, and so is a clause whose
// word is: the error is reported once, and the checker never sees a made-up format.
import type { CstNode, IToken } from 'chevrotain';
import { error, type Span } from '../diagnostics.js';
import {
  floatDTypes,
  halfDTypes,
  storageElems,
  type DTypeClause,
  type ImportanceRequest,
  type RecentClause,
  type SalientClause,
  type ScaleClause,
  type ScaleGranularity,
  type StorageDecl,
  type StorageElem,
  type StoredTensor,
} from './ast-storage.js';
import type { AstBuilder } from './cst-sparsity.js';
import { ch, PieceReader, q } from './cst-pieces.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

type Tok = IToken[] | undefined;
type Node = CstNode[] | undefined;

interface StmtCh {
  Store?: Tok;
  Identifier?: Tok;
  elem?: Node;
  storageClause?: Node;
}
interface ImportanceCh {
  Importance?: Tok;
  Identifier?: Tok;
}
interface WordCh {
  Identifier?: Tok;
  F32Kw?: Tok;
  IntKw?: Tok;
  I32Kw?: Tok;
  BoolKw?: Tok;
}
interface ClauseCh {
  ScaleKw?: Tok;
  Zero?: Tok;
  Norm?: Tok;
  Recent?: Tok;
  Salient?: Tok;
  dtype?: Node;
  scaleUnit?: Node;
  Group?: Tok;
  groupSize?: Node;
  expression?: Node;
  tensor?: Tok;
}

const list = (words: readonly string[]): string => words.map(q).join(', ');

type Clauses = {
  scale?: ScaleClause;
  zero?: DTypeClause;
  norm?: DTypeClause;
  recent?: RecentClause;
  salient?: SalientClause;
};
type ClauseName = keyof Clauses;

class StorageBuilder extends PieceReader {
  /** The word's text and span; undefined (reported by the parser) when recovery made it up. */
  private word(n: CstNode | undefined): { text: string; span: Span } | undefined {
    const c = ch<WordCh>(n);
    const t = c.Identifier?.[0] ?? c.F32Kw?.[0] ?? c.IntKw?.[0] ?? c.I32Kw?.[0] ?? c.BoolKw?.[0];
    const span = this.at(t);
    return this.b.isReal(t) ? { text: t.image, span } : undefined;
  }

  /** `text` if it is one of `allowed`, else reports `what` with a did-you-mean. */
  private oneOf<W extends string>(
    w: { text: string; span: Span } | undefined,
    allowed: readonly W[],
    what: string,
    hint?: string,
  ): W | undefined {
    if (w === undefined) return undefined;
    const found = allowed.find((a) => a === w.text);
    if (found !== undefined) return found;
    this.err(
      `unknown ${what} ${q(w.text)}`,
      w.span,
      didYouMean(w.text, allowed) ?? hint ?? `one of ${list(allowed)}`,
    );
    return undefined;
  }

  private elem(w: { text: string; span: Span } | undefined): StorageElem | undefined {
    const wide = ['f16', 'bf16', 'f32'].includes(w?.text ?? '');
    const hint = wide
      ? 'a 16- or 32-bit cache is the `dtype` compile option, not a `store` format'
      : undefined;
    return this.oneOf(w, storageElems, 'element type', hint);
  }

  build(keywordSpan: Span, c: StmtCh): StorageDecl | undefined {
    const targetTok = c.Identifier?.[0];
    const targetSpan = this.at(targetTok);
    const target = this.b.isReal(targetTok)
      ? this.oneOf<StoredTensor>({ text: targetTok.image, span: targetSpan }, ['k', 'v', 'kv'], 'cache')
      : undefined;
    const elemWord = this.word(c.elem?.[0]);
    const elem = this.elem(elemWord);
    const clauses: Clauses = {};
    const firsts = new Map<ClauseName, Span>();
    for (const n of c.storageClause ?? []) this.clause(ch<ClauseCh>(n), clauses, firsts);
    if (target === undefined || elem === undefined || elemWord === undefined) return undefined;
    return {
      kind: 'store',
      keywordSpan,
      target,
      targetSpan,
      elem,
      elemSpan: elemWord.span,
      ...clauses,
      span: this.upTo(keywordSpan),
    };
  }

  private clause(c: ClauseCh, into: Clauses, firsts: Map<ClauseName, Span>): void {
    const kw = c.ScaleKw?.[0] ?? c.Zero?.[0] ?? c.Norm?.[0] ?? c.Recent?.[0] ?? c.Salient?.[0];
    if (!this.b.isReal(kw)) return;
    const start = this.at(kw);
    const name = kw.image as ClauseName;
    const first = firsts.get(name);
    if (first) {
      const where = first.line === start.line ? `column ${first.column}` : `line ${first.line}`;
      this.err(`\`${name}\` is given twice`, start, `the first is at ${where}`);
    } else firsts.set(name, start);
    const built = this.clauseBody(name, c, start);
    if (built !== undefined && first === undefined) Object.assign(into, { [name]: built });
  }

  private clauseBody(name: ClauseName, c: ClauseCh, start: Span): Clauses[ClauseName] {
    const dtypeWord = (): { text: string; span: Span } | undefined => this.word(c.dtype?.[0]);
    switch (name) {
      case 'scale': {
        const dtype = this.oneOf(dtypeWord(), floatDTypes, 'scale dtype');
        const per = this.granularity(c);
        return dtype && per ? { dtype, per, span: this.upTo(start) } : undefined;
      }
      case 'zero':
      case 'norm': {
        const dtype = this.oneOf(dtypeWord(), floatDTypes, `${name} dtype`);
        return dtype ? { dtype, span: this.upTo(start) } : undefined;
      }
      case 'recent': {
        const count = this.b.expr(c.expression?.[0]);
        if (count.span.length > 0) this.end = count.span;
        const w = dtypeWord();
        if (w?.text === 'f32') {
          this.err('recent tokens are kept in 16 bits, found `f32`', w.span, 'use `f16` or `bf16`');
          return undefined;
        }
        const dtype = this.oneOf(w, halfDTypes, 'dtype for the recent tokens');
        return dtype ? { count, dtype, span: this.upTo(start) } : undefined;
      }
      case 'salient':
        return this.salient(c, start, dtypeWord());
    }
  }

  private granularity(c: ClauseCh): ScaleGranularity | undefined {
    const unitTok = ch<{ Identifier?: Tok }>(c.scaleUnit?.[0]).Identifier?.[0];
    const unitSpan = this.at(unitTok);
    const unit = this.b.isReal(unitTok)
      ? this.oneOf(
          { text: unitTok.image, span: unitSpan },
          ['tensor', 'token', 'channel'] as const,
          'scale granularity',
        )
      : undefined;
    const group = c.Group
      ? this.b.expr(ch<{ expression?: Node }>(c.groupSize?.[0]).expression?.[0])
      : undefined;
    if (group && group.span.length > 0) this.end = group.span;
    if (unit === undefined) return undefined;
    const span = this.upTo(unitSpan);
    if (unit === 'tensor') {
      if (group) this.err('`per tensor` takes no `group`', group.span, 'one scale covers the whole cache');
      return { kind: 'tensor', span };
    }
    return group ? { kind: unit, group, span } : { kind: unit, span };
  }

  private salient(
    c: ClauseCh,
    start: Span,
    w: { text: string; span: Span } | undefined,
  ): SalientClause | undefined {
    const elem = this.elem(w);
    this.at(c.tensor?.[0]);
    const t = c.tensor?.[0];
    const tensorSpan = this.b.span(t);
    if (elem === undefined || w === undefined || !this.b.isReal(t)) return undefined;
    return { elem, elemSpan: w.span, tensor: t.image, tensorSpan, span: this.upTo(start) };
  }
}

/** Builds a `store` statement from its CST node; undefined when it is too broken to mean anything. */
export function buildStorage(b: AstBuilder, n: CstNode): StorageDecl | undefined {
  const c = ch<StmtCh>(n);
  const kw = c.Store?.[0];
  if (!b.isReal(kw)) return undefined;
  const keywordSpan = b.span(kw);
  return new StorageBuilder(b, keywordSpan).build(keywordSpan, c);
}

/** Builds an `importance sum|normalized` statement. */
export function buildImportance(b: AstBuilder, n: CstNode): ImportanceRequest | undefined {
  const c = ch<ImportanceCh>(n);
  const kw = c.Importance?.[0];
  const v = c.Identifier?.[0];
  if (!b.isReal(kw)) return undefined;
  const keywordSpan = b.span(kw);
  if (!b.isReal(v)) return undefined;
  const vSpan = b.span(v);
  if (v.image === 'sum' || v.image === 'normalized')
    return { kind: 'importance', keywordSpan, variant: v.image, span: cover(keywordSpan, vSpan) };
  const hint = didYouMean(v.image, ['sum', 'normalized']) ?? 'one of `sum`, `normalized`';
  b.diags.push(error(`unknown importance variant ${q(v.image)}`, vSpan, hint));
  return undefined;
}
