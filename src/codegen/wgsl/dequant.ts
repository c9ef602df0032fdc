// Dequantizing K/V tile loads of the WGSL backend (docs/LANGUAGE.md, "K/V storage formats"): the
// bindings a quantized cache adds (src/quant's cacheLayout, as shape expressions) and the WGSL that
// turns one element's code into its f32 value with bit operations, in exactly the order the
// language defines: ((code − zero) · scale) · norm, each an f32 operation, none fused. 16-bit
// side tensors (f16/bf16 scales, zero points, normalizers, recent rows) are bound as u32 words
// holding two halves each, so neither the shader-f16 feature nor a bf16 type is needed.
import type { QuantTensorFormat, TensorFormat } from '../../ir/formats.js';
import { codesPerWord, elemBits, floatLayout, specialBits, specialCondition } from '../../quant/elem.js';
import type { FloatDType, Fp8Elem, Granularity, HalfDType, QuantFormat } from '../../quant/format.js';
import type { Binding, ShapeExpr } from '../artifact.js';
import { dequantFn, widthConst } from './dequant-calls.js';
import { tensorVar } from './rules.js';
import { salientFlagsVar } from './salient-list.js';

export type KvWhich = 'k' | 'v';
/** A side tensor of a quantized cache (the codes are the k/v binding itself). */
export type CachePart = 'codesHi' | 'scale' | 'zero' | 'norm' | 'recent';

const widthSym = (which: KvWhich): string => (which === 'k' ? 'D' : 'Dv');

/** WGSL variable of a part's binding. */
export const partVar = (which: KvWhich, part: CachePart): string => `${which}_${part}`;

/**
 * Shape expressions of the scale (and zero) tensor (layout.ts scaleShape); paged (P), per-token
 * and per-channel-group scales are pool rows (quant/paged-layout.ts).
 */
function scaleShapeExpr(per: Granularity, D: string, P?: number): ShapeExpr[] {
  switch (per.kind) {
    case 'tensor':
      return ['1'];
    case 'token':
      return [...rowDims(P), per.group ? `cdiv(${D}, ${per.group})` : '1'];
    case 'channel':
      if (P !== undefined && per.group) return [...rowDims(P, per.group), D];
      return ['B', 'Hkv', per.group ? `cdiv(Nk, ${per.group})` : '1', D];
  }
}

/**
 * Leading dims of a paged cache's pool tensor (quant/paged-layout.ts): [pages, Hkv, rows per page],
 * `pages` the pool's page count (the runtime reads it off the codes), or the unpaged rows.
 */
const rowDims = (P: number | undefined, tokensPerRow = 1): ShapeExpr[] =>
  P === undefined ? ['B', 'Hkv', 'Nk'] : ['pages', 'Hkv', String(P / tokensPerRow)];

/**
 * The binding of the codes (the k or v binding itself): u32 words, [B, Hkv, Nk, words]; a paged
 * cache (pages of P rows): [pages, Hkv, P, words].
 */
export function codesBinding(which: KvWhich, f: QuantFormat, P?: number): Omit<Binding, 'index'> {
  const words = `cdiv(${widthSym(which)}, ${codesPerWord(f.elem)})`;
  return {
    name: which,
    role: which,
    part: 'codes',
    dtype: 'u32',
    shape: [...rowDims(P), words],
    access: 'read',
  };
}

/** The side tensors of a quantized k or v, in cacheLayout's order (after the codes). */
export function partBindings(
  which: KvWhich,
  f: QuantFormat,
  P?: number,
): { binding: Omit<Binding, 'index'>; wgslVar: string }[] {
  const D = widthSym(which);
  const out: { binding: Omit<Binding, 'index'>; wgslVar: string }[] = [];
  const add = (part: CachePart, dtype: FloatDType | HalfDType, shape: ShapeExpr[]): void => {
    out.push({
      binding: { name: partVar(which, part), role: which, part, dtype, shape, access: 'read' },
      wgslVar: partVar(which, part),
    });
  };
  if (f.kind === 'int' && f.salient) {
    // An index list's flags come from a pre-pass (salient-list.ts); the codes are the same.
    const words = `cdiv(${D}, ${codesPerWord(f.salient.elem)})`;
    out.push({
      binding: {
        name: partVar(which, 'codesHi'),
        role: which,
        part: 'codesHi',
        dtype: 'u32',
        shape: [...rowDims(P), words],
        access: 'read',
      },
      wgslVar: partVar(which, 'codesHi'),
    });
  }
  if (f.scale) add('scale', f.scale.dtype, scaleShapeExpr(f.scale.per, D, P));
  if (f.kind === 'int' && f.zero && f.scale) add('zero', f.zero, scaleShapeExpr(f.scale.per, D, P));
  if (f.norm) add('norm', f.norm, ['B', 'Hkv', D]);
  if (f.recent) add('recent', f.recent.dtype, ['B', 'Hkv', String(f.recent.tokens), D]);
  return out;
}

/** WGSL storage element type of a part binding: 16-bit tensors are read as packed u32 words. */

/** Element `i` (a u32 expression, evaluated once by the caller) of a float side tensor as f32. */
export function readFloat(buf: string, dtype: FloatDType | HalfDType, i: string): string {
  if (dtype === 'f32') return `${buf}[${i}]`;
  const word = `${buf}[${i} >> 1u]`;
  if (dtype === 'f16') return `unpack2x16float(${word})[${i} & 1u]`;
  // bf16: the high half of an f32; element 2i is the word's low half.
  return `bitcast<f32>(select(${word} << 16u, ${word} & 0xffff0000u, (${i} & 1u) == 1u))`;
}

/** Lines setting `dq_v` (a declared f32) to the value of fp8 code `dq_raw`, by bit manipulation. */
export function fp8Lines(elem: Fp8Elem): string[] {
  const f = floatLayout(elem);
  const { mant: M, bias, top } = f;
  const special = specialCondition(f, 'dq_e', 'dq_m');
  const specialValue = `bitcast<f32>(dq_sign | ${specialBits(f, 'dq_m', (c, a, b) => `select(${b}, ${a}, ${c})`)})`;
  // Subnormals: m · 2^(1 − bias − M), an exact f32 product of normal numbers.
  const sub = `1.0f / ${2 ** (bias + M - 1)}.0f`;
  return [
    'let dq_sign = (dq_raw & 0x80u) << 24u;',
    `let dq_e = (dq_raw >> ${M}u) & ${top}u;`,
    `let dq_m = dq_raw & ${f.mantMask}u;`,
    `if (${special}) { dq_v = ${specialValue}; }`,
    `else if (dq_e == 0u) { dq_v = bitcast<f32>(dq_sign | bitcast<u32>(f32(dq_m) * (${sub}))); }`,
    `else { dq_v = bitcast<f32>(dq_sign | ((dq_e + ${127 - bias}u) << 23u) | (dq_m << ${23 - M}u)); }`,
  ];
}

/** Flat index (u32 expression) of the scale group of element (dq_row, dq_t, dq_c). */
export function scaleIndex(per: Granularity, W: string, paged: boolean): string {
  switch (per.kind) {
    case 'tensor':
      return '0u';
    case 'token': {
      const g = per.group ?? 0;
      return g ? `dq_row * ((${W} + ${g - 1}u) / ${g}u) + dq_c / ${g}u` : 'dq_row';
    }
    case 'channel': {
      const g = per.group ?? 0;
      // Paged: a page holds P / g whole groups, so the pool row's group is row / g.
      if (g && paged) return `(dq_row / ${g}u) * ${W} + dq_c`;
      return g ? `(dq_bh * ((Nk + ${g - 1}u) / ${g}u) + dq_t / ${g}u) * ${W} + dq_c` : `dq_bh * ${W} + dq_c`;
    }
  }
}

/** Lines setting `dq_v` from code element (dq_row, dq_c) of `buf`, `elem` codes. */
function rawValueLines(f: QuantFormat, elem: QuantFormat['elem'], buf: string, W: string): string[] {
  const bits = elemBits(elem);
  const perWord = codesPerWord(elem);
  const words = `((${W} + ${perWord - 1}u) / ${perWord}u)`;
  const lines = [
    `let dq_word = ${buf}[dq_row * ${words} + dq_c / ${perWord}u];`,
    `let dq_raw = (dq_word >> ((dq_c % ${perWord}u) * ${bits}u)) & ${(1 << bits) - 1}u;`,
  ];
  if (f.kind === 'fp8') return [...lines, ...fp8Lines(f.elem)];
  if (f.zero) return [...lines, 'dq_v = f32(dq_raw);'];
  return [...lines, `dq_v = f32(bitcast<i32>(dq_raw << ${32 - bits}u) >> ${32 - bits}u);`];
}

/** The flags a cache's salient tokens are read from: the flag tensor, or an index list's pre-pass flags. */
export function flagsOf(f: QuantTensorFormat): string {
  const list = f.format.kind === 'int' && f.format.salient?.by === 'index';
  return list ? salientFlagsVar(f.salient!) : tensorVar(f.salient!);
}

/** Lines returning the f32 value of a quantized element (not a recent token). */
function codeLines(which: KvWhich, f: QuantTensorFormat, paged: boolean): string[] {
  const q = f.format;
  const W = widthConst(which);
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  // Paged: dq_row is the pool row (kv_qrow); the flags stay the caller's logical [B, Hkv, Nk].
  const lines = paged ? ['let dq_row = kv_qrow(dq_bh, dq_t);', 'var dq_v: f32;'] : ['var dq_v: f32;'];
  if (wide !== undefined && f.salient !== undefined) {
    // Salient tokens (a non-zero flag per [b, h, t]) hold wider codes in their own words.
    lines.push(
      `if (${flagsOf(f)}[${paged ? 'dq_lrow' : 'dq_row'}] != 0) {`,
      ...rawValueLines(q, wide, partVar(which, 'codesHi'), W).map((l) => `  ${l}`),
      '} else {',
      ...rawValueLines(q, q.elem, `${which}_buf`, W).map((l) => `  ${l}`),
      '}',
    );
  } else lines.push(...rawValueLines(q, q.elem, `${which}_buf`, W));
  if (q.scale) {
    lines.push(`let dq_g = ${scaleIndex(q.scale.per, W, paged)};`);
    if (q.kind === 'int' && q.zero)
      lines.push(`dq_v = dq_v - ${readFloat(partVar(which, 'zero'), q.zero, 'dq_g')};`);
    lines.push(`dq_v = dq_v * ${readFloat(partVar(which, 'scale'), q.scale.dtype, 'dq_g')};`);
  }
  if (q.norm) {
    lines.push(`let dq_n = dq_bh * ${W} + dq_c;`);
    lines.push(`dq_v = dq_v * ${readFloat(partVar(which, 'norm'), q.norm, 'dq_n')};`);
  }
  lines.push('return dq_v;');
  return lines;
}

/**
 * The recent-window branch opening a dequant function (none without a window): tokens in the
 * last `recent.tokens` of Nk return `value(dq_i)` (dq_i: the window element of channel `channel`).
 */
export function recentLines(
  which: KvWhich,
  f: QuantTensorFormat,
  channel: string,
  value: (i: string) => string,
): string[] {
  const recent = f.format.recent;
  if (!recent) return [];
  return [
    `let dq_first = Nk - min(${recent.tokens}u, Nk); // the recent window's first token`,
    'if (dq_t >= dq_first) {',
    `  let dq_i = (dq_bh * ${recent.tokens}u + dq_t - dq_first) * ${widthConst(which)} + ${channel};`,
    `  return ${value('dq_i')};`,
    '}',
  ];
}

/**
 * The module-scope WGSL function `<k|v>_dequant(dq_row, dq_t, dq_c, dq_bh, Nk)`: element
 * (row dq_row over all batches and kv heads = token dq_t of (batch, kv head) dq_bh, channel dq_c)
 * as f32. Every load of a quantized K or V goes through it.
 */
export function dequantFunction(which: KvWhich, f: QuantTensorFormat, paged = false): string[] {
  const body = [
    ...recentLines(which, f, 'dq_c', (i) => readFloat(partVar(which, 'recent'), f.format.recent!.dtype, i)),
    ...codeLines(which, f, paged),
  ];
  // Paged: the caller's packed row is the logical one (the salient flags' index).
  const row = paged ? 'dq_lrow' : 'dq_row';
  return [
    `fn ${dequantFn(which)}(${row}: u32, dq_t: u32, dq_c: u32, dq_bh: u32, Nk: u32) -> f32 {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ];
}

/** The dequantizing functions of a kernel's quantized k and v (none for float caches). */
export function dequantFunctions(formats: {
  k: TensorFormat;
  v: TensorFormat;
  paged?: { pageSize: number };
}): string[] {
  const out: string[] = [];
  const P = formats.paged?.pageSize;
  if (P !== undefined && (formats.k.kind === 'quant' || formats.v.kind === 'quant'))
    out.push(
      '',
      '// Row of token t of cache head bh (b * Hkv + h) in a paged quantized cache: [pages, Hkv, P] rows.',
      `fn kv_qrow(bh: u32, t: u32) -> u32 {`,
      '  let hkv = u32(u.Hkv);',
      `  let page = u32(block_table[(bh / hkv) * u.max_pages + (t >> ${Math.log2(P)}u)]);`,
      `  return (page * hkv + bh % hkv) * ${P}u + (t & ${P - 1}u);`,
      '}',
    );
  if (formats.k.kind === 'quant') out.push('', ...dequantFunction('k', formats.k, P !== undefined));
  if (formats.v.kind === 'quant') out.push('', ...dequantFunction('v', formats.v, P !== undefined));
  return out;
}
