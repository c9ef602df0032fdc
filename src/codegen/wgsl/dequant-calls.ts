// The calls of the dequantizing functions (dequant.ts, dequant-vec4.ts define them): names and
// call expressions only, so the engines every kernel has (row, coop, decode) and the routing and
// importance passes can emit a quantized cache's loads while the definitions, and the bindings a
// quantized cache adds, stay in the quantized-K/V feature (features.ts) that compileAsync loads
// only for programs with such a cache.
import type { KvWhich } from './dequant.js';

/** The row width constant of K or V. */
export const widthConst = (which: KvWhich): string => (which === 'k' ? 'HEAD_DIM' : 'VALUE_DIM');

/** Name of the WGSL function returning one element of a quantized K or V as f32. */
export const dequantFn = (which: KvWhich): string => `${which}_dequant`;

/** Name of the WGSL function returning a lane's run of a quantized K or V row (dequant-run.ts). */
export const dequantRunFn = (which: KvWhich): string => `${which}_dequant_run`;

/**
 * Element (key `t`, channel `c`, u32 expressions) of this entry's (batch, kv head) of a quantized
 * K or V, as an f32 expression; needs `kv_row0` and `Nk` in scope.
 */
export function dequantAt(which: KvWhich, t: string, c: string): string {
  return `${dequantFn(which)}(kv_row0 + ${t}, ${t}, ${c}, kv_row0 / Nk, Nk)`;
}

/**
 * Stages keys [k0, k_end) of a quantized K or V cache as f32 into `tile` ([BLOCK_K, width]),
 * the workgroup's `threads` invocations striding over the elements. Needs `base` (kv_row0 + k0),
 * `kv_row0`, `k0`, `k_end` and `Nk` in scope.
 */
export function stageDequantRows(which: KvWhich, tile: string, threads: string): string[] {
  const W = widthConst(which);
  return [
    `for (var e = lid; e < (k_end - k0) * ${W}; e += ${threads}) {`,
    `  let dq_j = e / ${W};`,
    `  ${tile}[e] = ${dequantFn(which)}(base + dq_j, k0 + dq_j, e % ${W}, kv_row0 / Nk, Nk);`,
    '}',
  ];
}

/** Name of the WGSL function returning channels 4·c4 .. 4·c4 + 3 of a quantized K or V row. */
export const dequant4Fn = (which: KvWhich): string => `${which}_dequant4`;

/** Channels 4·c4 .. 4·c4 + 3 of (row, token t) of a quantized K or V as a vec4<f32> expression. */
export function dequantVec4(
  which: KvWhich,
  row: string,
  t: string,
  c4: string,
  bh: string,
  nk: string,
): string {
  return `${dequant4Fn(which)}(${row}, ${t}, ${c4}, ${bh}, ${nk})`;
}

/**
 * The coop engine's stage of rows [k0, k0 + BLOCK_K) of a quantized K or V cache into co_kv as
 * vec4s (`W4` of them a row, rows past Nk zero), as kv-load.ts's stageKvVec4 stages float rows:
 * each vec4 is 4 channels through `<k|v>_dequant4`. Needs `kv_row0`, `k0`, `Nk`, `lid` in scope.
 */
export function stageDequantVec4(which: KvWhich, W4: string, tile = 'co_kv'): string[] {
  return [
    `for (var e = lid; e < BLOCK_K * ${W4}; e += CO_THREADS) {`,
    `  let j = e / ${W4};`,
    `  let c = e % ${W4};`,
    '  var x = vec4<f32>(0.0f);',
    '  if (k0 + j < Nk) {',
    '    let dq_t = k0 + j;',
    `    x = ${dequantVec4(which, 'kv_row0 + dq_t', 'dq_t', 'c', 'kv_row0 / Nk', 'Nk')};`,
    '  }',
    `  ${tile}[j * CO_KVS + c] = x;`,
    '}',
  ];
}
