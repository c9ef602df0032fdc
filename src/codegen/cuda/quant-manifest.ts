// The manifest's `caches` entry: for each quantized K/V cache, the args fields that point at its
// tensors (codes in the k/v pointer, then the side tensors of cudaCacheParts), each with its dtype
// and its shape as shape expressions over B, Hkv, Nk (the grammar of src/runtime/shape-expr.ts).
// Callers without the compiler (python/attnc) check and bind a quantized call from it: the shapes
// are cacheLayout's (src/quant/layout.ts), written symbolically because Nk is a runtime size. A
// paged kernel's tensors that page (codes, per-token and per-channel-group scales: src/quant/
// paged-layout.ts) also carry their pool shape over `pages` (the caller's pool size) and Hkv.
import type { TensorFormats } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { codesPerWord } from '../../quant/elem.js';
import type { Granularity, QuantFormat } from '../../quant/format.js';
import { wordsPerRow, type TensorDType } from '../../quant/layout.js';
import { pagedRows } from '../../quant/paged-layout.js';
import { cudaCacheParts, type CudaCachePart } from './dequant.js';
import type { CudaLayout } from './layout.js';

/** One tensor of a quantized cache as a caller passes it. */
export interface CacheTensorEntry {
  /** The args field (and the keyword the Python op takes it by): k / v for the codes, k_scale, … */
  readonly field: string;
  readonly part: 'codes' | CudaCachePart;
  readonly dtype: TensorDType;
  readonly shape: readonly string[];
  /** A paged kernel's tensor that pages: its pool [pages, Hkv, rows a page, row length]. */
  readonly pagedShape?: readonly string[];
}

export interface CacheEntry {
  readonly format: QuantFormat;
  readonly tensors: readonly CacheTensorEntry[];
  /** The tensor param marking salient tokens (a kernel tensor, passed as one). */
  readonly salient?: string;
}

export type CachesManifest = { readonly k?: CacheEntry; readonly v?: CacheEntry };

/** The scale (and zero) tensor's shape: scaleShape's, with Nk symbolic. */
function scaleShapeExpr(per: Granularity, D: number): string[] {
  if (per.kind === 'tensor') return ['1'];
  if (per.kind === 'token') return ['B', 'Hkv', 'Nk', String(per.group ? Math.ceil(D / per.group) : 1)];
  return ['B', 'Hkv', per.group ? `cdiv(Nk, ${per.group})` : '1', String(D)];
}

function partShape(f: QuantFormat, part: CacheTensorEntry['part'], D: number): string[] {
  const rows = ['B', 'Hkv', 'Nk'];
  switch (part) {
    case 'codes':
      return [...rows, String(wordsPerRow(D, codesPerWord(f.elem)))];
    case 'codesHi':
      if (f.kind !== 'int' || !f.salient)
        throw new Error('CUDA manifest: codesHi of a format without salient codes');
      return [...rows, String(wordsPerRow(D, codesPerWord(f.salient.elem)))];
    case 'scale':
    case 'zero':
      if (!f.scale) throw new Error(`CUDA manifest: ${part} of a format without a scale`);
      return scaleShapeExpr(f.scale.per, D);
    case 'norm':
      return ['B', 'Hkv', String(D)];
    case 'recent':
      return ['B', 'Hkv', String(f.recent?.tokens ?? 0), String(D)];
  }
}

function partDtype(f: QuantFormat, part: CacheTensorEntry['part']): TensorDType {
  switch (part) {
    case 'codes':
    case 'codesHi':
      return 'u32';
    case 'scale':
      return f.scale!.dtype;
    case 'zero':
      return f.kind === 'int' && f.zero ? f.zero : 'f32';
    case 'norm':
      return f.norm!;
    case 'recent':
      return f.recent!.dtype;
  }
}

/** The `caches` entry of a kernel with a quantized K or V, or undefined. */
export function cachesManifest(kernel: AttentionKernel, layout: CudaLayout): CachesManifest | undefined {
  const formats: TensorFormats = kernel.formats;
  const fieldOf = (name: string): string => {
    const f = layout.fields.find((x) => x.name === name && (x.role === 'cache' || x.role === name));
    if (!f) throw new Error(`CUDA manifest: no args field for cache tensor ${name}`);
    return f.field;
  };
  const entry = (which: 'k' | 'v'): CacheEntry | undefined => {
    const t = formats[which];
    if (t.kind !== 'quant') return undefined;
    const D = which === 'k' ? kernel.schedule.headDim : kernel.schedule.valueDim;
    const parts: CacheTensorEntry['part'][] = ['codes', ...cudaCacheParts(t.format).map((p) => p.part)];
    const P = formats.paged?.pageSize;
    const tensors = parts.map((part) => {
      const rows = P === undefined ? undefined : pagedRows(t.format, part, D, P);
      return {
        field: fieldOf(part === 'codes' ? which : `${which}_${part}`),
        part,
        dtype: partDtype(t.format, part),
        shape: partShape(t.format, part, D),
        ...(rows && P !== undefined
          ? { pagedShape: ['pages', 'Hkv', String(P / rows.tokensPerRow), String(rows.rowLen)] }
          : {}),
      };
    });
    return { format: t.format, tensors, ...(t.salient ? { salient: t.salient } : {}) };
  };
  const k = entry('k');
  const v = entry('v');
  if (!k && !v) return undefined;
  return { ...(k ? { k } : {}), ...(v ? { v } : {}) };
}
