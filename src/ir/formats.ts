// Per-tensor storage formats of a kernel's q, k, v and out (issue #10): how each tensor's elements
// are stored in memory, apart from the schedule (tile sizes, threads, engine), which never
// changes a result. Arithmetic is always f32; a format says only how a load widens an element
// to f32 and how a store narrows it. K and V may also be quantized caches (a `store` statement:
// codes in u32 words plus scales, zero points, …, src/quant), read through a dequantizing load.
import type { KVFormats, QuantFormat } from '../quant/format.js';

export type StorageDType = 'f32' | 'f16' | 'bf16';

/** A float element type (f32, or f16/bf16 widened on load). */
export type FloatFormat = { readonly kind: 'float'; readonly dtype: StorageDType };

/**
 * A quantized K or V cache (docs/LANGUAGE.md, "K/V storage formats"): the tensors of
 * src/quant's cacheLayout, dequantized to f32 by the K/V tile load. `dtype` is the kernel's
 * element type (q and out), which code that still reads one dtype per kernel sees.
 */
export type QuantTensorFormat = {
  readonly kind: 'quant';
  readonly format: QuantFormat;
  readonly dtype: StorageDType;
  /** The tensor param flagging salient tokens, when the format has them. */
  readonly salient?: string;
};

/** One tensor's storage. */
export type TensorFormat = FloatFormat | QuantTensorFormat;

export interface TensorFormats {
  readonly q: TensorFormat;
  readonly k: TensorFormat;
  readonly v: TensorFormat;
  readonly out: TensorFormat;
  /**
   * K and V rows addressed through a block table of pages of `pageSize` rows (`cache paged N`,
   * docs/LANGUAGE.md "Paged and strided caches"); absent: one run of rows per (batch, kv head).
   */
  readonly paged?: { readonly pageSize: number };
}

/** `f` with K/V paged in pages of `pageSize` rows (a `cache paged N` statement), or as it is. */
export function withPagedKv(f: TensorFormats, pageSize: number | undefined): TensorFormats {
  return pageSize === undefined ? f : { ...f, paged: { pageSize } };
}

/** q, k, v and out all stored as `dtype` (what `--dtype` asks for). */
export function uniformFormats(dtype: StorageDType): TensorFormats {
  const f: TensorFormat = { kind: 'float', dtype };
  return { q: f, k: f, v: f, out: f };
}

/**
 * `base` with k and/or v replaced by the quantized formats a declaration's `store` statements
 * give them (checkedFormats); the others keep `base`'s.
 */
export function withStoredFormats(base: TensorFormats, stored: KVFormats): TensorFormats {
  const quant = (which: 'k' | 'v', t: TensorFormat): TensorFormat => {
    const f = stored[which];
    const salient = stored.salientTensor?.[which];
    return f === undefined
      ? t
      : { kind: 'quant', format: f, dtype: t.dtype, ...(salient ? { salient } : {}) };
  };
  return { ...base, k: quant('k', base.k), v: quant('v', base.v) };
}

/** Whether k or v is a quantized cache. */
export const hasQuantizedKv = (f: TensorFormats): boolean => f.k.kind === 'quant' || f.v.kind === 'quant';

/** The default storage of a target when none is asked: bf16 on CUDA, f32 elsewhere. */
export const defaultStorage = (target: string): StorageDType => (target === 'cuda' ? 'bf16' : 'f32');

/** Bytes of one stored element. */
export function elementBytes(f: TensorFormat): number {
  switch (f.kind) {
    case 'float':
      return f.dtype === 'f32' ? 4 : 2;
    case 'quant':
      return 4;
  }
}

/**
 * The one element type of q, k, v and out, for code that stages them all in one C/WGSL type
 * (CUDA's `T`, WGSL's storage arrays); throws when they differ, which no lowering produces yet.
 * A quantized k or v counts as the kernel's dtype: its own load widens it to f32.
 */
export function sharedStorage(formats: TensorFormats): StorageDType {
  const all = [formats.q, formats.k, formats.v, formats.out].map((f) =>
    f.kind === 'quant' ? { kind: 'float' as const, dtype: f.dtype } : f,
  );
  const first = all[0]!;
  if (!all.every((f) => f.kind === first.kind && f.dtype === first.dtype))
    throw new Error('internal: q, k, v and out have different storage formats, which no backend runs yet');
  return first.dtype;
}

/**
 * The tensors that list salient tokens by index (`salient … from t`, t: i32[batch, kv_heads, n]) of
 * the quantized caches, each once, k before v: each backend scatters them into per-token flags.
 */
export function salientIndexLists(f: TensorFormats): string[] {
  const out: string[] = [];
  for (const t of [f.k, f.v]) {
    if (t.kind !== 'quant' || t.format.kind !== 'int' || !t.format.salient || t.salient === undefined)
      continue;
    if (t.format.salient.by === 'index' && !out.includes(t.salient)) out.push(t.salient);
  }
  return out;
}
