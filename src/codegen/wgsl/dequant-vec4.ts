// Four channels of a quantized K/V row at once, for the coop engine's vec4 loads (its prefill
// tiles and its decode split pass read K/V as vec4s). `<k|v>_dequant` (dequant.ts) returns one
// element, so a vec4 through it reads the same code word four times and a per-token scale four
// times; the GPU's shader compilers do not merge those storage loads (on the H200 through Dawn a
// 32K int8 decode read 59 GB/s, a quarter of the f32 cache's speed). Here the four codes come out
// of one word (every element type packs 4, 8 or 16 codes a word, so channels 4c..4c+3 share one),
// and a scale, zero point or recent row shared by the four channels is read once.
// The arithmetic is dequant.ts's, lane by lane: ((code − zero) · scale) · norm, each an f32
// operation, none fused — the values are bit-identical to four `<k|v>_dequant` calls.
import type { QuantTensorFormat, TensorFormat } from '../../ir/formats.js';
import { codesPerWord, elemBits } from '../../quant/elem.js';
import type { FloatDType, Fp8Elem, Granularity, HalfDType, QuantFormat } from '../../quant/format.js';
import { type KvWhich, flagsOf, fp8Lines, partVar, readFloat, recentLines, scaleIndex } from './dequant.js';
import { dequant4Fn, widthConst } from './dequant-calls.js';

const LANES = [0, 1, 2, 3] as const;

/** The WGSL fp8 decoder of one code (the vec4 path applies it per lane). */
export const fp8Fn = (which: KvWhich): string => `${which}_fp8_value`;

/** A vec4<f32> of `read(lane)` for the four lanes. */
const vec4Of = (read: (lane: number) => string): string => `vec4<f32>(${LANES.map(read).join(', ')})`;

/**
 * Lines setting `dq_v` (a declared vec4<f32>) from the word holding channels dq_c..dq_c + 3.
 * Integer codes become f32 without an int → float conversion instruction (a quarter-rate
 * instruction on NVIDIA GPUs, and what bound the quantized decode): a code c of b bits put in the
 * low mantissa bits of 2^23 is the f32 2^23 + c, so one subtraction leaves c exactly (every such
 * integer is exact in f32). Symmetric codes first get their sign bit flipped in the whole word
 * (c + 2^(b−1), unsigned), and 2^(b−1) more is subtracted.
 */
function rawVec4Lines(which: KvWhich, f: QuantFormat, elem: QuantFormat['elem'], buf: string): string[] {
  const bits = elemBits(elem);
  const perWord = codesPerWord(elem);
  const W = widthConst(which);
  const signed = f.kind !== 'fp8' && !f.zero;
  const half = 1 << (bits - 1);
  // The sign bit of every code of the word (0x80808080 for int8, 0x88888888 for int4, …).
  const flip = signed ? ` ^ 0x${(((2 ** 32 - 1) / (2 ** bits - 1)) * half).toString(16)}u` : '';
  const shifts = LANES.map((l) => `${l * bits}u`).join(', ');
  const lines = [
    `let dq_word = ${buf}[dq_row * ((${W} + ${perWord - 1}u) / ${perWord}u) + dq_c / ${perWord}u]${flip};`,
    `let dq_raw = (vec4<u32>(dq_word) >> (vec4<u32>((dq_c % ${perWord}u) * ${bits}u) + vec4<u32>(${shifts}))) & vec4<u32>(${(1 << bits) - 1}u);`,
  ];
  if (f.kind === 'fp8') return [...lines, `dq_v = ${vec4Of((l) => `${fp8Fn(which)}(dq_raw[${l}])`)};`];
  const offset = 2 ** 23 + (signed ? half : 0);
  return [...lines, `dq_v = bitcast<vec4<f32>>(dq_raw | vec4<u32>(0x4b000000u)) - vec4<f32>(${offset}.0f);`];
}

/** Whether the four channels dq_c..dq_c + 3 (dq_c a multiple of 4) share one scale group. */
function sharedGroup(per: Granularity): boolean {
  if (per.kind === 'tensor') return true;
  if (per.kind === 'token') return !per.group || per.group % 4 === 0;
  return false;
}

/**
 * Lines applying a side tensor to `dq_v` (`op`: subtract a zero point, multiply by a scale or
 * norm): one read at `index` if the four lanes share it, else a read per lane at `index` with
 * channel dq_c + lane (every index expression names the channel as `dq_c`).
 */
function applyLines(
  buf: string,
  dtype: FloatDType | HalfDType,
  index: string,
  shared: boolean,
  op: '-' | '*',
  name: string,
): string[] {
  if (shared) return [`let ${name} = ${index};`, `dq_v = dq_v ${op} ${readFloat(buf, dtype, name)};`];
  const lanes = LANES.map((l) => `let ${name}${l} = ${index.replace(/\bdq_c\b/g, `(dq_c + ${l}u)`)};`);
  return [...lanes, `dq_v = dq_v ${op} ${vec4Of((l) => readFloat(buf, dtype, `${name}${l}`))};`];
}

/** Lines returning the vec4 of a quantized (not recent) row: codes, zero, scale, norm. */
function codeVec4Lines(which: KvWhich, f: QuantTensorFormat, paged: boolean): string[] {
  const q = f.format;
  const W = widthConst(which);
  const wide = q.kind === 'int' ? q.salient?.elem : undefined;
  const lines = paged ? ['let dq_row = kv_qrow(dq_bh, dq_t);'] : [];
  lines.push('let dq_c = 4u * dq_c4;', 'var dq_v: vec4<f32>;');
  if (wide !== undefined && f.salient !== undefined) {
    lines.push(
      `if (${flagsOf(f)}[${paged ? 'dq_lrow' : 'dq_row'}] != 0) {`,
      ...rawVec4Lines(which, q, wide, partVar(which, 'codesHi')).map((l) => `  ${l}`),
      '} else {',
      ...rawVec4Lines(which, q, q.elem, `${which}_buf`).map((l) => `  ${l}`),
      '}',
    );
  } else lines.push(...rawVec4Lines(which, q, q.elem, `${which}_buf`));
  if (q.scale) {
    const shared = sharedGroup(q.scale.per);
    const index = scaleIndex(q.scale.per, W, paged);
    if (q.kind === 'int' && q.zero)
      lines.push(...applyLines(partVar(which, 'zero'), q.zero, index, shared, '-', 'dq_z'));
    lines.push(...applyLines(partVar(which, 'scale'), q.scale.dtype, index, shared, '*', 'dq_g'));
  }
  if (q.norm)
    lines.push(...applyLines(partVar(which, 'norm'), q.norm, `dq_bh * ${W} + dq_c`, false, '*', 'dq_n'));
  lines.push('return dq_v;');
  return lines;
}

/** `fn <k|v>_fp8_value(dq_raw: u32) -> f32`, dequant.ts's fp8 bit decoder as a function. */
function fp8Function(which: KvWhich, elem: Fp8Elem): string[] {
  return [
    `fn ${fp8Fn(which)}(dq_raw: u32) -> f32 {`,
    '  var dq_v: f32;',
    ...fp8Lines(elem).map((l) => `  ${l}`),
    '  return dq_v;',
    '}',
  ];
}

/**
 * The module-scope WGSL function `<k|v>_dequant4(dq_row, dq_t, dq_c4, dq_bh, Nk)`: channels
 * 4·dq_c4 .. 4·dq_c4 + 3 of row dq_row (token dq_t of (batch, kv head) dq_bh) as a vec4<f32>,
 * equal lane by lane to `<k|v>_dequant` of each channel. Needs the row width a multiple of 4.
 */
export function dequantVec4Function(which: KvWhich, f: QuantTensorFormat, paged = false): string[] {
  const recent = (i: string): string =>
    vec4Of((l) => readFloat(partVar(which, 'recent'), f.format.recent!.dtype, `(${i} + ${l}u)`));
  const row = paged ? 'dq_lrow' : 'dq_row';
  return [
    ...(f.format.kind === 'fp8' ? [...fp8Function(which, f.format.elem), ''] : []),
    `fn ${dequant4Fn(which)}(${row}: u32, dq_t: u32, dq_c4: u32, dq_bh: u32, Nk: u32) -> vec4<f32> {`,
    ...[...recentLines(which, f, '4u * dq_c4', recent), ...codeVec4Lines(which, f, paged)].map(
      (l) => `  ${l}`,
    ),
    '}',
  ];
}

/** The four-channel functions of a kernel's quantized k and v (none for float caches). */
export function dequantVec4Functions(formats: {
  k: TensorFormat;
  v: TensorFormat;
  paged?: { pageSize: number };
}): string[] {
  const paged = formats.paged !== undefined;
  return (['k', 'v'] as const).flatMap((which) => {
    const f = formats[which];
    return f.kind === 'quant' ? ['', ...dequantVec4Function(which, f, paged)] : [];
  });
}
