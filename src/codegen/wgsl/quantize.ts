// The WGSL `quantize` module of a quantized K or V cache (docs/LANGUAGE.md, "Quantization" and
// "Quantizing a range of rows"): the CUDA kernels' four passes (codegen/cuda/quantize.ts) as
// compute entry points, dispatched in order, bit for bit as src/quant's `quantize`
// (quantize-math.ts does the rounding on the bits). 16-bit tensors are packed in u32 words, so
// each invocation owns whole words: two scale groups, two normalizer or recent elements, one
// code word; a word's half outside the call's range keeps its bits.
import { codesPerWord, elemBits, floatMax, intCodeRange } from '../../quant/elem.js';
import { scaleGranularityCode, type QuantFormat } from '../../quant/format.js';
import { quantizesWhole } from '../../quant/range.js';
import type { AttentionKernel, StorageDType } from '../../ir/kernel.js';
import type { QuantizeModule } from '../artifact.js';
import { fp8EncodeWgsl, quantizeMath } from './quantize-math.js';
import { codePass, encoder, normPass, recentPass, rowHelpers, scalePass } from './quantize-passes.js';
import { atomicHalves } from './quantize-paged.js';

export const QUANTIZE_WORKGROUP = 64;

/** What one cache's quantize module is generated from. */
export interface WgslQuantizeSpec {
  readonly cache: 'k' | 'v';
  readonly format: QuantFormat;
  readonly dim: number;
  /** The source rows' element type: f32, or f16 packed in u32 words. */
  readonly input: Extract<StorageDType, 'f32' | 'f16'>;
  /** A paged cache (`cache paged P`): row-indexed tensors are pools of pages (quantize-paged.ts). */
  readonly paged?: { readonly pageSize: number };
}

/** A binding of the module: name, dtype as stored, access. */
export interface QuantizeBinding {
  readonly name:
    'uniforms' | 'x' | 'blockTable' | 'salient' | 'codes' | 'codesHi' | 'scale' | 'zero' | 'norm' | 'recent';
  readonly index: number;
  readonly dtype: 'u32' | 'i32' | 'f32' | 'f16' | 'bf16';
  readonly access: 'uniform' | 'read' | 'read_write';
}

/** The module's bindings in order (only those the format has). */
export function quantizeBindings(s: WgslQuantizeSpec): QuantizeBinding[] {
  const f = s.format;
  const salient = f.kind === 'int' && f.salient;
  const list: Omit<QuantizeBinding, 'index'>[] = [
    { name: 'uniforms', dtype: 'u32', access: 'uniform' },
    { name: 'x', dtype: s.input, access: 'read' },
    ...(s.paged ? [{ name: 'blockTable' as const, dtype: 'i32' as const, access: 'read' as const }] : []),
    ...(salient ? [{ name: 'salient' as const, dtype: 'i32' as const, access: 'read' as const }] : []),
    { name: 'codes', dtype: 'u32', access: 'read_write' },
    ...(salient ? [{ name: 'codesHi' as const, dtype: 'u32' as const, access: 'read_write' as const }] : []),
    ...(f.scale ? [{ name: 'scale' as const, dtype: f.scale.dtype, access: 'read_write' as const }] : []),
    ...(f.kind === 'int' && f.zero
      ? [{ name: 'zero' as const, dtype: f.zero, access: 'read_write' as const }]
      : []),
    ...(f.norm ? [{ name: 'norm' as const, dtype: f.norm, access: 'read_write' as const }] : []),
    ...(f.recent ? [{ name: 'recent' as const, dtype: f.recent.dtype, access: 'read_write' as const }] : []),
  ];
  return list.map((b, index) => ({ ...b, index }));
}

/** The entry points in launch order (only those the format needs). */
export function quantizeEntries(s: WgslQuantizeSpec): string[] {
  const f = s.format;
  return [
    ...(f.norm ? ['quantize_norm'] : []),
    ...(f.scale ? ['quantize_scale'] : []),
    'quantize_codes',
    ...(f.recent ? ['quantize_recent'] : []),
  ];
}

/** The uniform struct: sizes and the row range (u32 fields, in this order). */
export const QUANTIZE_UNIFORMS = ['B', 'Hkv', 'Nk', 'start', 'n', 'salient_n'] as const;
/** A paged module's uniforms: the block table's columns and the pools' page count besides. */
export const PAGED_QUANTIZE_UNIFORMS = [...QUANTIZE_UNIFORMS, 'max_pages', 'pages'] as const;

/** The uniforms of `s`'s module, in order. */
export const quantizeUniforms = (s: WgslQuantizeSpec): readonly QuantizeUniform[] =>
  s.paged ? PAGED_QUANTIZE_UNIFORMS : QUANTIZE_UNIFORMS;
export type QuantizeUniform = (typeof PAGED_QUANTIZE_UNIFORMS)[number];

function declarations(s: WgslQuantizeSpec): string[] {
  return quantizeBindings(s).map((b) => {
    if (b.name === 'uniforms') return `@group(0) @binding(${b.index}) var<uniform> u: Uniforms;`;
    const elem =
      b.dtype === 'f32' ? 'f32' : b.dtype === 'i32' ? 'i32' : atomicHalves(s, b.name) ? 'atomic<u32>' : 'u32';
    return `@group(0) @binding(${b.index}) var<storage, ${b.access}> ${b.name}: array<${elem}>;`;
  });
}

/** Loads of every float tensor as f32 (16-bit ones from their packed words). */
function loads(s: WgslQuantizeSpec): string[] {
  const word = (name: string) =>
    atomicHalves(s, name) ? `atomicLoad(&${name}[i >> 1u])` : `${name}[i >> 1u]`;
  const half = (name: string, conv: string) =>
    `fn ld_${name}(i: u32) -> f32 { return ${conv}((${word(name)} >> ((i & 1u) * 16u)) & 0xffffu); }`;
  return quantizeBindings(s).flatMap((b) => {
    if (b.name === 'uniforms' || b.name === 'salient' || b.dtype === 'u32' || b.dtype === 'i32') return [];
    if (b.dtype === 'f32') return [`fn ld_${b.name}(i: u32) -> f32 { return ${b.name}[i]; }`];
    if (b.dtype === 'bf16') return [half(b.name, 'bf16_value')];
    return [half(b.name, 'f16_value')];
  });
}

function constants(s: WgslQuantizeSpec): string[] {
  const f = s.format;
  const { gran, group } = scaleGranularityCode(f.scale?.per);
  const hi = f.kind === 'int' ? f.salient?.elem : undefined;
  const qmax = (e: typeof f.elem): number =>
    f.kind === 'fp8' ? floatMax(f.elem) : intCodeRange(elemBits(e), !!f.zero).hi;
  const cg = gran === 2 ? (group ? Math.ceil(s.dim / group) : 1) : gran === 3 ? s.dim : 1;
  return [
    `const D: u32 = ${s.dim}u;`,
    `const GRAN: u32 = ${gran}u; // 0 none, 1 tensor, 2 token, 3 channel`,
    `const GROUP: u32 = ${group}u; // 0: no group`,
    `const GDIV: u32 = ${Math.max(group, 1)}u; // GROUP as a divisor`,
    `const CHANNEL_GROUPS: u32 = ${cg}u;`,
    `const BITS: u32 = ${elemBits(f.elem)}u;`,
    `const WORDS: u32 = ${Math.ceil(s.dim / codesPerWord(f.elem))}u;`,
    `const QMAX: f32 = ${qmax(f.elem)}.0;`,
    `const HI_BITS: u32 = ${hi ? elemBits(hi) : 0}u;`,
    `const HI_WORDS: u32 = ${hi ? Math.ceil(s.dim / codesPerWord(hi)) : 0}u;`,
    `const HI_QMAX: f32 = ${hi ? qmax(hi) : 0}.0;`,
    `const MAX_WORDS: u32 = ${Math.max(Math.ceil(s.dim / codesPerWord(f.elem)), hi ? Math.ceil(s.dim / codesPerWord(hi)) : 0)}u;`,
    `const R: u32 = ${f.recent?.tokens ?? 0}u;`,
    `const WHOLE: bool = ${quantizesWhole(f)};`,
    `struct Uniforms { ${quantizeUniforms(s)
      .map((k) => `${k}: u32`)
      .join(', ')} }`,
  ];
}

/** The WGSL module of one cache's quantize passes (entry points: `quantizeEntries`). */
export function wgslQuantizeModule(s: WgslQuantizeSpec): string {
  const f = s.format;
  return [
    `// attnc quantize module: fills the quantized ${s.cache === 'k' ? 'key' : 'value'} cache from ${s.input} rows.`,
    '// Generated code: do not edit. docs/LANGUAGE.md, "Quantizing a range of rows".',
    ...constants(s),
    ...declarations(s),
    quantizeMath,
    ...(f.kind === 'fp8' ? [fp8EncodeWgsl(f.elem)] : []),
    ...loads(s),
    rowHelpers(s),
    normPass(s),
    scalePass(s),
    encoder(s),
    codePass(s),
    recentPass(s),
  ]
    .filter((x) => x !== '')
    .join('\n');
}

/** The quantize module of each quantized cache of `k` (none without a `store`). */
export function wgslQuantizeModules(
  k: AttentionKernel,
): Partial<Record<'k' | 'v', QuantizeModule>> | undefined {
  const out: Partial<Record<'k' | 'v', QuantizeModule>> = {};
  for (const cache of ['k', 'v'] as const) {
    const f = k.formats[cache];
    if (f.kind !== 'quant') continue;
    const dim = cache === 'k' ? k.schedule.headDim : k.schedule.valueDim;
    const paged = k.formats.paged;
    const spec: WgslQuantizeSpec = {
      cache,
      format: f.format,
      dim,
      input: f.dtype === 'f16' ? 'f16' : 'f32',
      ...(paged ? { paged } : {}),
    };
    out[cache] = {
      code: wgslQuantizeModule(spec),
      entryPoints: quantizeEntries(spec),
      workgroupSize: QUANTIZE_WORKGROUP,
      bindings: quantizeBindings(spec),
      uniforms: quantizeUniforms(spec),
      dim,
      ...(paged ? { pageSize: paged.pageSize } : {}),
      input: spec.input,
    };
  }
  return out.k || out.v ? out : undefined;
}
