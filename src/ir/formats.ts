// Per-tensor storage formats of a kernel's q, k, v and out (issue #10): how each tensor's elements
// are stored in memory, apart from the schedule (tile sizes, threads, engine), which never
// changes a result. Arithmetic is always f32; a format says only how a load widens an element
// to f32 and how a store narrows it. Today every format is a float type; quantized K/V formats
// will be added variants of TensorFormat (with their scales), so readers switch on `kind`.
export type StorageDType = 'f32' | 'f16' | 'bf16';

/** One tensor's storage: a float element type (f32, or f16/bf16 widened on load). */
export type TensorFormat = { readonly kind: 'float'; readonly dtype: StorageDType };

export interface TensorFormats {
  readonly q: TensorFormat;
  readonly k: TensorFormat;
  readonly v: TensorFormat;
  readonly out: TensorFormat;
}

/** q, k, v and out all stored as `dtype` (what `--dtype` asks for). */
export function uniformFormats(dtype: StorageDType): TensorFormats {
  const f: TensorFormat = { kind: 'float', dtype };
  return { q: f, k: f, v: f, out: f };
}

/** The default storage of a target when none is asked: bf16 on CUDA, f32 elsewhere. */
export const defaultStorage = (target: string): StorageDType => (target === 'cuda' ? 'bf16' : 'f32');

/** Bytes of one stored element. */
export function elementBytes(f: TensorFormat): number {
  switch (f.kind) {
    case 'float':
      return f.dtype === 'f32' ? 4 : 2;
  }
}

/**
 * The one element type of q, k, v and out, for code that stages them all in one C/WGSL type
 * (CUDA's `T`, WGSL's storage arrays); throws when they differ, which no lowering produces yet.
 */
export function sharedStorage(formats: TensorFormats): StorageDType {
  const all = [formats.q, formats.k, formats.v, formats.out];
  const first = all[0]!;
  if (!all.every((f) => f.kind === first.kind && f.dtype === first.dtype))
    throw new Error('internal: q, k, v and out have different storage formats, which no backend runs yet');
  return first.dtype;
}
