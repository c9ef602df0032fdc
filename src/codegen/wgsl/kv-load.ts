// K/V tile loads of the WGSL backend: every entry point that reads K or V (row attention, coop,
// decode split, routing, importance) addresses its rows through here. A float cache's rows go
// through the tensor's address function (`k_row` / `v_row`, kvRowFunctions: element strides, and a
// block table when paged); a quantized cache's through its dequantizing function (dequant.ts; the
// calls in dequant-calls.ts),
// which addresses its own packed layout from `kv_row0`.

import { hasQuantizedKv, type TensorFormat, type TensorFormats } from '../../ir/formats.js';
import { stageDequantRows, stageDequantVec4 } from './dequant-calls.js';

/** K or V: its storage buffer and its row width (elements, or vec4s for coop's `*_buf4` views). */
export interface KvTensor {
  readonly which: 'k' | 'v';
  readonly buffer: string;
  readonly width: string;
  /** Storage dtype: f16 rows widen to f32 on load. */
  readonly dtype: string;
}

export const kTensor = (dtype: string): KvTensor => ({
  which: 'k',
  buffer: 'k_buf',
  width: 'HEAD_DIM',
  dtype,
});
export const vTensor = (dtype: string): KvTensor => ({
  which: 'v',
  buffer: 'v_buf',
  width: 'VALUE_DIM',
  dtype,
});

/**
 * The lines (2-space indented) that fix an entry's (batch, kv head) from u32 expressions: `kv_b`
 * and `kv_h`, which float K/V rows are addressed by (kvRowAt), and `kv_row0`, the packed row of
 * its key 0, which a quantized cache's own layout addresses rows by (dequant.ts).
 */
export function kvEntry(b: string, hkv: string): string[] {
  return [`  let kv_b = ${b};`, `  let kv_h = ${hkv};`, '  let kv_row0 = (kv_b * u32(u.Hkv) + kv_h) * Nk;'];
}

/**
 * Element offset of column 0 of key `key` (u32, from 0) of this entry's (kv_b, kv_h) in a float K
 * or V cache: every float K/V load goes through the tensor's address function (kvRowFunctions).
 */
export function kvRowAt(which: 'k' | 'v', key: string): string {
  return `${which}_row(kv_b, kv_h, ${key})`;
}

/** The artifact's `kvRows` record (strides a multiple of `align`; paged pages), if K or V is float. */
export function kvRowsRecord(
  formats: TensorFormats,
  align: number,
): { align: number; pageSize?: number } | undefined {
  // A paged cache of quantized K and V still has its page size here (the runtime's block table).
  if (formats.k.kind !== 'float' && formats.v.kind !== 'float' && !formats.paged) return undefined;
  return { align, ...(formats.paged ? { pageSize: formats.paged.pageSize } : {}) };
}

/** log2 of a power of two. */
const log2 = (n: number): number => 31 - Math.clz32(n);

/**
 * The address function of each float K/V tensor (docs/LANGUAGE.md "Paged and strided caches"):
 * `<k|v>_row(b, h, j)`, the element offset of column 0 of key j of (batch b, kv head h), from the
 * tensor's element strides (uniforms `<k|v>_stride_b/_h/_n`), and, for a paged cache, through the
 * block table (key j is row j mod N of page block_table[b][j / N]; `_stride_b` is the page
 * stride). All terms are u32: the runtime checks that every addressed element lies inside the
 * bound buffer, so no sum of them can pass 2^32. A quantized cache has its own layout (dequant.ts).
 */
export function kvRowFunctions(formats: TensorFormats): string[] {
  const floats = (['k', 'v'] as const).filter((w) => formats[w].kind === 'float');
  if (floats.length === 0) return [];
  const P = formats.paged?.pageSize;
  const out = [
    '',
    '// K/V rows: where key j of (batch b, kv head h) starts (every float K/V load uses these).',
  ];
  if (P !== undefined)
    out.push(
      `const KV_PAGE_SHIFT: u32 = ${log2(P)}u; // pages of ${P} rows`,
      'fn kv_page(b: u32, j: u32) -> u32 { return u32(block_table[b * u.max_pages + (j >> KV_PAGE_SHIFT)]); }',
    );
  for (const w of floats) {
    const [sb, sh, sn] = [`u.${w}_stride_b`, `u.${w}_stride_h`, `u.${w}_stride_n`];
    const body =
      P === undefined
        ? `b * ${sb} + h * ${sh} + j * ${sn}`
        : `kv_page(b, j) * ${sb} + h * ${sh} + (j & ${P - 1}u) * ${sn}`;
    out.push(`fn ${w}_row(b: u32, h: u32, j: u32) -> u32 { return ${body}; }`);
  }
  return out;
}

const widen = (dtype: string, expr: string): string => (dtype === 'f16' ? `f32(${expr})` : expr);

/**
 * Stages keys [k0, k_end) of a K or V tensor as f32, row-major in `tile` ([BLOCK_K, width]), the
 * workgroup's `threads` invocations striding over the elements, each row from its address.
 */
export function stageKvRows(t: KvTensor, tile: string, threads: string): string[] {
  const at = `${t.buffer}[${kvRowAt(t.which, `k0 + e / ${t.width}`)} + e % ${t.width}]`;
  return [
    `for (var e = lid; e < (k_end - k0) * ${t.width}; e += ${threads}) {`,
    `  ${tile}[e] = ${widen(t.dtype, at)};`,
    '}',
  ];
}

/** Stages K or V as f32: widened from floats, or dequantized from a quantized cache. */
function stageOne(which: 'k' | 'v', f: TensorFormat, threads: string): string[] {
  const tile = `${which}_tile`;
  if (f.kind === 'quant') return stageDequantRows(which, tile, threads);
  return stageKvRows(which === 'k' ? kTensor(f.dtype) : vTensor(f.dtype), tile, threads);
}

/**
 * Stages K and V (row attention and decode split); a quantized cache's staging reads `base`, the
 * tile's first packed row.
 */
export function stageKvTile(formats: TensorFormats, threads: string): string[] {
  return [
    ...(hasQuantizedKv(formats) ? ['let base = kv_row0 + k0;'] : []),
    ...stageOne('k', formats.k, threads),
    ...stageOne('v', formats.v, threads),
  ];
}

/**
 * Coop: stages rows [k0, k0+BLOCK_K) of K or V (its `*_buf4` view) into `tile` (rows past Nk are
 * zero); a row's vec4s start at its element offset / 4 (the runtime keeps strides multiples of 4).
 */
export function stageKvVec4(which: 'k' | 'v', width: string, tile = 'co_kv'): string[] {
  return [
    `for (var e = lid; e < BLOCK_K * ${width}; e += CO_THREADS) {`,
    `  let j = e / ${width};`,
    `  let c = e % ${width};`,
    '  var x = vec4<f32>(0.0f);',
    `  if (k0 + j < Nk) { x = vec4<f32>(${which}_buf4[(${kvRowAt(which, 'k0 + j')} >> 2u) + c]); }`,
    `  ${tile}[j * CO_KVS + c] = x;`,
    '}',
  ];
}

/**
 * Coop prefetch: loads tile `tileIndex`'s rows of a K or V buffer into the private vec4 array
 * `regs` (element lid + i·CO_THREADS of the [BLOCK_K, width] tile; zero past Nk), so the loads
 * are in flight while the previous tile is computed.
 */
export function loadKvRegsVec4(
  which: 'k' | 'v',
  width: string,
  regs: string,
  count: string,
  tileIndex: string,
): string[] {
  return [
    `for (var i = 0u; i < ${count}; i++) {`,
    '  let e = lid + i * CO_THREADS;',
    `  let key = ${tileIndex} * BLOCK_K + e / ${width};`,
    '  var x = vec4<f32>(0.0f);',
    `  if (e < BLOCK_K * ${width} && key < Nk) { x = vec4<f32>(${which}_buf4[(${kvRowAt(which, 'key')} >> 2u) + e % ${width}]); }`,
    `  ${regs}[i] = x;`,
    '}',
  ];
}

/** Coop prefetch: stores what loadKvRegsVec4 loaded into the staged tile `tile`. */
export function storeKvRegsVec4(width: string, regs: string, count: string, tile: string): string[] {
  return [
    `for (var i = 0u; i < ${count}; i++) {`,
    '  let e = lid + i * CO_THREADS;',
    `  if (e < BLOCK_K * ${width}) { ${tile}[(e / ${width}) * CO_KVS + e % ${width}] = ${regs}[i]; }`,
    '}',
  ];
}

/** Coop: stages K or V tile rows into co_kv, from a float cache's vec4 view or dequantized. */
export function stageCoopKv(which: 'k' | 'v', formats: TensorFormats, tile = 'co_kv'): string[] {
  const width = which === 'k' ? 'CO_D4' : 'CO_DV4';
  if (formats[which].kind === 'quant') return stageDequantVec4(which, width, tile);
  return stageKvVec4(which, width, tile);
}
