// A K/V storage format as a typed value (docs/LANGUAGE.md, "K/V storage formats"): what a `store`
// statement means once its constants are folded. Int codes always carry a scale; fp8 codes may
// not (then they are the values themselves). Salient tokens widen int codes only.
import type { AttentionDecl, Expr } from '../dsl/ast.js';
import { foldChecked } from '../dsl/check-constants.js';
import type { CheckedDecl } from '../dsl/checker.js';
import { codesPerWord, elemBits } from './elem.js';
import { isFloatElem, isIntElem, type FloatStorageElem } from './elem-registry.js';
import type { FloatDType, HalfDType, IntStorageElem, StorageDecl } from '../dsl/ast-storage.js';

export type { FloatDType, HalfDType, IntStorageElem, StorageElem } from '../dsl/ast-storage.js';
/** The 8-bit float element types (a format of kind 'fp8'). */
export type Fp8Elem = FloatStorageElem;

/**
 * What one scale (and zero point) covers, per (batch, kv head) unless `tensor`:
 * - `tensor`: the whole cache, one value;
 * - `token`: one token row, all D channels or each run of `group` channels (ragged at the end);
 * - `channel`: one channel, all Nk tokens or each run of `group` tokens (ragged at the end).
 */
export type Granularity =
  | { readonly kind: 'tensor' }
  | { readonly kind: 'token'; readonly group?: number }
  | { readonly kind: 'channel'; readonly group?: number };

/**
 * A format's scale granularity as the quantize kernels encode it: 0 no scale, 1 per tensor, 2 per
 * token, 3 per channel; `group` 0 when the scales are not grouped.
 */
export function scaleGranularityCode(per: Granularity | undefined): { gran: number; group: number } {
  const gran = per === undefined ? 0 : per.kind === 'tensor' ? 1 : per.kind === 'token' ? 2 : 3;
  const group = per && per.kind !== 'tensor' && per.group ? per.group : 0;
  return { gran, group };
}

export interface ScaleSpec {
  readonly dtype: FloatDType;
  readonly per: Granularity;
}

/** Both kinds: a per-channel normalizer (ZipCache) and a window of unquantized recent tokens (KIVI). */
interface FormatCommon {
  readonly norm?: FloatDType;
  readonly recent?: { readonly tokens: number; readonly dtype: HalfDType };
}

export interface IntFormat extends FormatCommon {
  readonly kind: 'int';
  readonly elem: IntStorageElem;
  readonly scale: ScaleSpec;
  /** Asymmetric: unsigned codes and a zero point of this dtype, in code units. */
  readonly zero?: FloatDType;
  /** Tokens marked by a runtime tensor are stored with `elem` (wider) codes in their own words. */
  readonly salient?: { readonly elem: IntStorageElem; readonly by: SalientBy };
}

export interface Fp8Format extends FormatCommon {
  readonly kind: 'fp8';
  readonly elem: Fp8Elem;
  readonly scale?: ScaleSpec;
}

export type QuantFormat = IntFormat | Fp8Format;

/** How salient tokens are marked: a flag per token, or a list of token indices. */
export type SalientBy = 'flags' | 'index';

/** The formats of a declaration's caches; a cache without a `store` keeps the kernel's dtype. */
export interface KVFormats {
  readonly k?: QuantFormat;
  readonly v?: QuantFormat;
  /** The tensor param marking salient tokens, per cache that has one. */
  readonly salientTensor?: { readonly k?: string; readonly v?: string };
}

/** A constant's value: the checker has folded and range-checked it (`constant` in check-storage.ts). */
export type FoldInt = (e: Expr) => number;

/** The format a checked `store` statement declares. */
export function formatOf(s: StorageDecl, fold: FoldInt, salientBy?: SalientBy): QuantFormat {
  const per = s.scale?.per;
  const granularity: Granularity | undefined =
    per === undefined
      ? undefined
      : per.kind === 'tensor'
        ? { kind: 'tensor' }
        : per.group
          ? { kind: per.kind, group: fold(per.group) }
          : { kind: per.kind };
  const scale = s.scale && granularity ? { dtype: s.scale.dtype, per: granularity } : undefined;
  const common: FormatCommon = {
    ...(s.norm ? { norm: s.norm.dtype } : {}),
    ...(s.recent ? { recent: { tokens: fold(s.recent.count), dtype: s.recent.dtype } } : {}),
  };
  if (isFloatElem(s.elem)) return { kind: 'fp8', elem: s.elem, ...(scale ? { scale } : {}), ...common };
  if (scale === undefined) throw new Error(`store: ${s.elem} codes need a scale (the checker reports this)`);
  const salient =
    s.salient && isIntElem(s.salient.elem)
      ? { salient: { elem: s.salient.elem, by: salientBy ?? 'flags' } }
      : {};
  return {
    kind: 'int',
    elem: s.elem,
    scale,
    ...(s.zero ? { zero: s.zero.dtype } : {}),
    ...salient,
    ...common,
  };
}

/** The formats of a checked declaration's `store` statements. */
export function declFormats(decl: AttentionDecl, fold: FoldInt): KVFormats {
  const out: { k?: QuantFormat; v?: QuantFormat } = {};
  const salient: { k?: string; v?: string } = {};
  for (const s of decl.storage ?? []) {
    const p = s.salient && decl.params.find((x) => x.name === s.salient?.tensor);
    const last = p?.type.kind === 'tensor' ? p.type.dims[2] : undefined;
    const by: SalientBy = last?.kind === 'size' && last.name === 'kv' ? 'flags' : 'index';
    const f = formatOf(s, fold, by);
    for (const t of s.target === 'kv' ? (['k', 'v'] as const) : [s.target]) {
      out[t] = f;
      if (s.salient) salient[t] = s.salient.tensor;
    }
  }
  return { ...out, ...(salient.k || salient.v ? { salientTensor: salient } : {}) };
}

/** The formats of a checked declaration: its constants folded with the checker's types. */
export function checkedFormats(checked: CheckedDecl): KVFormats {
  const fold: FoldInt = (e) => {
    const v = foldChecked(
      e,
      (x) => checked.types.get(x),
      () => undefined,
    );
    if (typeof v !== 'number') throw new Error('a storage constant did not fold (the checker reports this)');
    return v;
  };
  return declFormats(checked.decl, fold);
}

/**
 * Throws, naming the field, if `f` breaks a rule the checker enforces on `store` statements
 * (for formats built in code rather than parsed).
 */
export function validateFormat(f: QuantFormat): void {
  const bad = (what: string): never => {
    throw new Error(`storage format ${f.elem}: ${what}`);
  };
  const per = f.scale?.per;
  if (
    per &&
    per.kind !== 'tensor' &&
    per.group !== undefined &&
    !(Number.isInteger(per.group) && per.group >= 1)
  )
    bad(`scale.per.group must be an integer >= 1, got ${per.group}`);
  const elems = [f.elem, ...(f.kind === 'int' && f.salient ? [f.salient.elem] : [])];
  for (const e of elems)
    if (per?.kind === 'token' && per.group !== undefined && per.group % codesPerWord(e) !== 0)
      bad(`scale.per.group ${per.group} splits the 32-bit words of ${e} codes (${codesPerWord(e)} per word)`);
  if (f.norm && per?.kind !== 'token') bad('norm needs per-token scales');
  if (f.recent && !(Number.isInteger(f.recent.tokens) && f.recent.tokens >= 1))
    bad(`recent.tokens must be an integer >= 1, got ${f.recent.tokens}`);
  if (f.kind === 'int' && f.salient) {
    if (elemBits(f.salient.elem) <= elemBits(f.elem)) bad(`salient.elem ${f.salient.elem} must be wider`);
    if (per?.kind !== 'token') bad('salient tokens need per-token scales');
  }
}
