// The fixed text of a rendered CUDA attention artifact: the banner comment that heads the .cu and
// the .h, and the prelude (storage type, conversions, vector helpers) every kernel in it uses.
import { show } from '../../ir/graph.js';
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel, StorageDType } from '../../ir/kernel.js';
import type { CudaLayout } from './layout.js';
import { kvRowsPrelude } from './kv-rows.js';
import { qoRowsPrelude } from './qo-rows.js';
import type { CoreOutput } from './simt.js';

export interface CudaMeta {
  readonly sourceHash: string;
  readonly scheduleHash: string;
}

const storage: Readonly<Record<StorageDType, { ty: string; to: string; from: string }>> = {
  f32: { ty: 'float', to: 'x', from: 'x' },
  f16: { ty: '__half', to: '__half2float(x)', from: '__float2half_rn(x)' },
  bf16: { ty: '__nv_bfloat16', to: '__bfloat162float(x)', from: '__float2bfloat16_rn(x)' },
};

export function prelude(k: AttentionKernel, layout: CudaLayout): string {
  const s = k.schedule;
  // One C type T for q, k, v and out: their formats are one float type (sharedStorage checks).
  const dtype = sharedStorage(k.formats);
  const st = storage[dtype];
  return [
    `using Args = ::${layout.struct};`,
    `typedef ${st.ty} T; // storage type of q, k, v, out (${dtype}); all arithmetic is f32`,
    `constexpr int D = ${s.headDim}, DV = ${s.valueDim};`,
    'constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;',
    `__device__ __forceinline__ float to_f32(T x) { return ${st.to}; }`,
    `__device__ __forceinline__ T from_f32(float x) { return ${st.from}; }`,
    '',
    '// N storage elements, aligned so that one load or store moves all of them.',
    'template <int N>',
    'struct alignas(N * sizeof(T)) VecT {',
    '  T v[N];',
    '  static __device__ __forceinline__ VecT zero() {',
    '    VecT z;',
    '#pragma unroll',
    '    for (int i = 0; i < N; ++i) z.v[i] = from_f32(0.f);',
    '    return z;',
    '  }',
    '};',
    '',
    'template <int N>',
    '__device__ __forceinline__ void store_f32(float* dst, const VecT<N>& x) {',
    '  if constexpr (N % 4 == 0) {',
    '#pragma unroll',
    '    for (int i = 0; i < N; i += 4)',
    '      *reinterpret_cast<float4*>(dst + i) =',
    '          make_float4(to_f32(x.v[i]), to_f32(x.v[i + 1]), to_f32(x.v[i + 2]), to_f32(x.v[i + 3]));',
    '  } else if constexpr (N == 2) {',
    '    *reinterpret_cast<float2*>(dst) = make_float2(to_f32(x.v[0]), to_f32(x.v[1]));',
    '  } else {',
    '    dst[0] = to_f32(x.v[0]);',
    '  }',
    '}',
    '',
    'template <bool V>',
    'struct Flag {',
    '  static constexpr bool value = V;',
    '};',
    '',
    ...kvRowsPrelude(k.formats),
    ...qoRowsPrelude(),
  ].join('\n');
}

export function banner(k: AttentionKernel, meta: CudaMeta, core: CoreOutput, arch: string): string[] {
  const s = k.schedule;
  const tiles =
    k.tiles.kind === 'static'
      ? [`//   static: every tile is ${k.tiles.value}`]
      : [
          '//   dynamic, per (q-tile, k-tile), from inclusive position bounds q_lo..q_hi, k_lo..k_hi:',
          `//     empty (skipped, nothing loaded) unless canBeTrue = ${show(k.tiles.canBeTrue)}`,
          `//     full (no predicate evaluated)   unless canBeFalse = ${show(k.tiles.canBeFalse)}`,
          '//     partial otherwise (predicate per element)',
        ];
  const mapping = Object.entries(core.mapping)
    .map(([key, v]) => `${key}=${v}`)
    .join(' ');
  return [
    `// attnc kernel "${k.name}" for CUDA (${arch}). Generated code: do not edit.`,
    `// build: nvcc -arch=${arch} -std=c++17 --shared -Xcompiler -fPIC ${k.name}.cu -o lib${k.name}.so`,
    `// source ${meta.sourceHash}, schedule ${meta.scheduleHash}`,
    `//   score: ${show(k.score)}`,
    `//   mask:  ${show(k.mask)}`,
    `// schedule: blockQ=${s.blockQ} blockK=${s.blockK} threads=${s.threads} D=${s.headDim} Dv=${s.valueDim} ${sharedStorage(k.formats)} summaryBlock=${s.summaryBlock}${s.engine !== undefined && s.engine !== 'simt' ? ` engine=${s.engine} stages=${s.stages}` : ''}`,
    `// mapping: ${mapping}`,
    '// tiles:',
    ...tiles,
    '// Semantics: query row i has position q = i + q_offset, key j has k = j + k_offset; GQA kv head',
    '// h / (H / Hkv); scores scale * <q, k> then the modifier then the mask; a row with no allowed',
    '// key gives out = 0 and lse = -inf.',
  ];
}

/** The system headers the .cu includes (before the artifact's own header). */
export const includes = [
  '#include <cuda_runtime.h>',
  '#include <cuda_fp16.h>',
  '#include <cuda_bf16.h>',
  '#include <limits.h>',
  '#include <math.h>',
  '#include <stdarg.h>',
  '#include <stdint.h>',
  '#include <stdio.h>',
  '#include <string.h>',
];
