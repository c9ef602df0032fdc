// The pooling passes of CUDA selection with pooled sides (select-score.ts runs them first):
// sel_pool_k / sel_pool_q reduce each slot's rows into route_scratch, a block per row.
import type { AttentionKernel } from '../../ir/kernel.js';
import { rankedSource, type PoolReducer } from '../../ir/routing.js';
import { poolRows, reducers } from './routing.js';
import { K_ROWS } from './kv-rows.js';
import { selDequantizes, selectKvHead } from './select-kv.js';
import { SEL_POOL_THREADS, selName } from './select.js';

/** Pools the rows of each slot of one side (one block per row; rows not starting a slot return). */
export function poolKernel(k: AttentionKernel, side: 'k' | 'q'): string[] {
  const source = rankedSource(k.routing!);
  if (!source) throw new Error('internal: CUDA selection pools the sides of a ranked plan only');
  const red = reducers[side === 'k' ? source.k : (source.q as PoolReducer)];
  // A quantized K cache is pooled from its dequantized values (select-kv.ts), a paged one
  // through its block table (kv-rows.ts).
  const dequant = side === 'k' && selDequantizes(k.formats.k);
  const paged = side === 'k' && !dequant && k.formats.paged !== undefined;
  const [N, off, heads, src, base] =
    side === 'k'
      ? ['a.Nk', 'a.k_offset', 'a.Hkv', 'a.k', '0']
      : ['a.Nq', 'a.q_offset', 'a.H', 'a.q', 'sel_pq_off(a)'];
  return [
    `extern "C" __global__ void __launch_bounds__(${SEL_POOL_THREADS}) ${selName(k, `pool_${side}`)}(const Args a) {`,
    '  const int i = blockIdx.x;',
    `  if (i >= ${N} || !sel_starts(a, ${off}, i)) return;`,
    `  const int len = sel_end(a, ${off}, ${N}, i) - i;`,
    `  const size_t bh = (size_t)blockIdx.z * ${heads} + blockIdx.y;`,
    ...(dequant
      ? [
          `  const SelDqK rows = ${selectKvHead(k.formats, K_ROWS, 'blockIdx.z', 'blockIdx.y')};`,
          `  float* dst = a.route_scratch + ${base} + (bh * ${N} + i) * D;`,
          ...poolRows(red, SEL_POOL_THREADS).map((l) =>
            l.replace('to_f32(rows[p * rs + d])', 'rows.at(i + p, d)'),
          ),
        ]
      : paged
        ? [
            `  const KvRows rows = ${selectKvHead(k.formats, K_ROWS, 'blockIdx.z', 'blockIdx.y')};`,
            `  float* dst = a.route_scratch + ${base} + (bh * ${N} + i) * D;`,
            ...poolRows(red, SEL_POOL_THREADS).map((l) =>
              l.replace('rows[p * rs + d]', 'rows.row(i + p)[d]'),
            ),
          ]
        : [
            ...(side === 'k'
              ? [
                  `  const T* rows = static_cast<const T*>(${src}) + (bh * ${N} + i) * D;`,
                  '  const long long rs = D;',
                ]
              : [
                  '  const T* rows = q_row(a, blockIdx.z, blockIdx.y, i);',
                  '  const long long rs = a.q_stride_n;',
                ]),
            `  float* dst = a.route_scratch + ${base} + (bh * ${N} + i) * D;`,
            ...poolRows(red, SEL_POOL_THREADS),
          ]),
    '}',
  ];
}
