// The pooling passes of block routing (routing.ts): route_pool_k / route_pool_q, one workgroup per
// (slot, head, batch), reduce the slot's rows (mean, lnmean, max, first) into `route_pool`.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import type { PoolRankPlan, PoolReducer } from '../../ir/routing.js';
import { dequantFn } from './dequant-calls.js';

export const POOL_THREADS = 64;

/** A load of one stored element, widened to f32. */
const load = (f: TensorFormat, e: string): string => (f.dtype === 'f16' ? `f32(${e})` : e);

/** Accumulator init, fold and finish of one reducer over `x` (rows `len` of them). */
function reducer(red: PoolReducer): { init: string; fold: string; finish: string } {
  switch (red) {
    case 'mean':
      return { init: '0.0f', fold: 'acc + x', finish: 'acc / f32(len)' };
    case 'lnmean':
      // DHSA's length normalisation: mean · sqrt(len).
      return { init: '0.0f', fold: 'acc + x', finish: 'acc * (sqrt(f32(len)) / f32(len))' };
    case 'max':
      return { init: 'bitcast<f32>(neg_inf_bits)', fold: 'max(acc, x)', finish: 'acc' };
    case 'first':
      return { init: '0.0f', fold: 'select(acc, x, p == p_lo)', finish: 'acc' };
  }
}

/** Element d of pooled row p: a quantized key's dequantized, a float key's at its address (kv-load.ts), a query's packed. */
function poolElem(f: TensorFormats, side: 'k' | 'q', buf: string): string {
  if (side === 'k' && f.k.kind === 'quant')
    return `${dequantFn('k')}(row0 + u32(p - off), u32(p - off), d, bh, u32(N))`;
  if (side === 'k') return load(f.k, `k_buf[k_row(wg.z, wg.y, u32(p - off)) + d]`);
  return load(f.q, `${buf}[(row0 + u32(p - off)) * HEAD_DIM + d]`);
}

/** The pooling entry point of `side`. */
export function poolEntry(f: TensorFormats, r: PoolRankPlan, side: 'k' | 'q'): string {
  const red = reducer(side === 'k' ? r.source.k : (r.source.q as PoolReducer));
  const [N, off, heads, buf, base] =
    side === 'k'
      ? ['u.Nk', 'u.k_offset', 'u.Hkv', 'k_buf', '0u']
      : ['u.Nq', 'u.q_offset', 'u.H', 'q_buf', 'route_q_base()'];
  return [
    `// Pools the ${side === 'k' ? 'keys' : 'queries'} of slot wg.x (its rows present in the call).`,
    `@compute @workgroup_size(${POOL_THREADS})`,
    `fn route_pool_${side}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`,
    `  let N = ${N};`,
    `  let off = ${off};`,
    '  let pr = route_slot_range(i32(wg.x), off, N);',
    '  let p_lo = pr.x;',
    '  let len = pr.y; // p_lo + len may be 2^31: positions are walked by their index',
    '  if (len <= 0i) { return; }',
    `  let nblk = route_${side}slots();`,
    `  let bh = wg.z * u32(${heads}) + wg.y;`,
    '  let row0 = bh * u32(N);',
    `  let out0 = ${base} + (bh * nblk + wg.x) * HEAD_DIM;`,
    `  for (var d = lid; d < HEAD_DIM; d += ${POOL_THREADS}u) {`,
    `    var acc = ${red.init};`,
    '    for (var i = 0i; i < len; i++) {',
    '      let p = p_lo + i;',
    `      let x = ${poolElem(f, side, buf)};`,
    `      acc = ${red.fold};`,
    '    }',
    `    route_pool[out0 + d] = ${red.finish};`,
    '  }',
    '}',
  ].join('\n');
}
