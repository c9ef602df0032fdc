// K/V tile loads of the WGSL backend: every entry point that reads K or V (row attention, coop,
// decode split) addresses its rows and stages its tiles through here. The row address is kvRow
// (from kvRow0, the entry's first row): the place where paged caches (a block table) and caches
// with a capacity stride will change it; the stage renderers take the tensor, its storage dtype and the
// tile geometry, which is where dequantization will plug in.

import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { stageDequantRows, stageDequantVec4 } from './dequant.js';

/** K or V: its storage buffer and its row width (elements, or vec4s for coop's `*_buf4` views). */
export interface KvTensor {
  readonly buffer: string;
  readonly width: string;
  /** Storage dtype: f16 rows widen to f32 on load. */
  readonly dtype: string;
}

export const kTensor = (dtype: string): KvTensor => ({ buffer: 'k_buf', width: 'HEAD_DIM', dtype });
export const vTensor = (dtype: string): KvTensor => ({ buffer: 'v_buf', width: 'VALUE_DIM', dtype });

/**
 * Row index of key 0 of (batch `b`, kv head `hkv`) in the [B, Hkv, Nk, width] K/V buffers (both
 * u32 expressions); key j's row is kv_row0 + j.
 */
export function kvRow0(b: string, hkv: string): string {
  return `(${b} * u32(u.Hkv) + ${hkv}) * Nk`;
}

/** Row of key `key` (u32, from 0) of this entry's (batch, kv head): every K/V load goes through it. */
export function kvRow(key: string): string {
  return `kv_row0 + ${key}`;
}

const widen = (dtype: string, expr: string): string => (dtype === 'f16' ? `f32(${expr})` : expr);

/**
 * Stages keys [k0, k_end) of a K or V tensor as f32, row-major in `tile` ([BLOCK_K, width]), the
 * workgroup's `threads` invocations striding over the elements. `base` names kv_row0 + k0.
 */
export function stageKvRows(t: KvTensor, tile: string, threads: string): string[] {
  return [
    `for (var e = lid; e < (k_end - k0) * ${t.width}; e += ${threads}) {`,
    `  ${tile}[e] = ${widen(t.dtype, `${t.buffer}[base * ${t.width} + e]`)};`,
    '}',
  ];
}

/** Stages K or V as f32: widened from floats, or dequantized from a quantized cache. */
function stageOne(which: 'k' | 'v', f: TensorFormat, threads: string): string[] {
  const tile = `${which}_tile`;
  if (f.kind === 'quant') return stageDequantRows(which, tile, threads);
  return stageKvRows(which === 'k' ? kTensor(f.dtype) : vTensor(f.dtype), tile, threads);
}

/** Declares `base` (the tile's first row) and stages K and V (row attention and decode split). */
export function stageKvTile(formats: TensorFormats, threads: string): string[] {
  return [
    `let base = ${kvRow('k0')};`,
    ...stageOne('k', formats.k, threads),
    ...stageOne('v', formats.v, threads),
  ];
}

/** Coop: stages rows [k0, k0+BLOCK_K) of a K or V buffer into `tile` (rows past Nk are zero). */
export function stageKvVec4(buf: string, width: string, tile = 'co_kv'): string[] {
  return [
    `for (var e = lid; e < BLOCK_K * ${width}; e += CO_THREADS) {`,
    `  let j = e / ${width};`,
    `  let c = e % ${width};`,
    '  var x = vec4<f32>(0.0f);',
    `  if (k0 + j < Nk) { x = vec4<f32>(${buf}[(${kvRow('k0 + j')}) * ${width} + c]); }`,
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
  buf: string,
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
    `  if (e < BLOCK_K * ${width} && key < Nk) { x = vec4<f32>(${buf}[(${kvRow('key')}) * ${width} + e % ${width}]); }`,
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
  return stageKvVec4(`${which}_buf4`, width, tile);
}
