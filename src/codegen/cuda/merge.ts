// The split-KV log-sum-exp merge of the CUDA backend: one renderer for every kernel that cuts a
// row's keys into splits (decode mode, selected-key attention). A split leaves one partial record
// per row, [acc[DV], m, l] (acc unnormalised, m the running max, l the sum of exponentials); the
// merge combines a row's records:
//   M = max m_j, L = Σ l_j·e(m_j − M), out = Σ acc_j·e(m_j − M) / L, lse = M + log L (natural
//   base), the sums over records with l_j != 0 (block: M too; serial: M over all, an empty
//   record's m being -inf),
// where e is 2^x (`log2` scores, as decode keeps them) or e^x (`ln`). L == 0 is a row with no
// allowed key (out 0, lse -inf); a record with l NaN (a NaN or +inf score) makes L, and the row,
// NaN (docs/LANGUAGE.md "Non-finite values").
//
// Two strategies, because their callers' emitted code is pinned byte for byte (issue 10 phase 1):
// `block` reduces M and L across the block and keeps each split's weight in shared memory (many
// splits: decode over a long KV); `serial` has every thread walk the few records itself.

/** Where a row's partial records lie: record j is `${first}[j * ${stride} + c]`, c < DV + 2. */
export interface PartialRecords {
  readonly first: string;
  readonly stride: string;
  /** Number of records (splits). */
  readonly count: string;
  /** What the count is called in comments (default: `count`). */
  readonly countLabel?: string;
}

/** Where the merged row goes. */
export interface MergeSink {
  /** Declares what `at` needs (a row pointer), or nothing. */
  readonly decl?: string;
  /** The lvalue of output column `d` (type T). */
  readonly at: (d: string) => string;
  /** The row's lse slot (float*), if the kernel has the output: pointer and index. */
  readonly lse?: { readonly ptr: string; readonly index: string };
}

export interface CudaMerge {
  readonly strategy: 'block' | 'serial';
  /** Base of the records' m: `log2` (scores scaled by log2 e) or `ln`. */
  readonly base: 'log2' | 'ln';
  readonly records: PartialRecords;
  readonly sink: MergeSink;
  /** Block size (block strategy: a multiple of 32, at most 128). */
  readonly threads: string;
}

/** Field c of record j: the accumulator column, `m` or `l`. */
function field(r: PartialRecords, j: string, c: string): string {
  return `${r.first}[${j} * ${r.stride} + ${c}]`;
}
const M_FIELD = 'DV';
const L_FIELD = 'DV + 1';

const exp = (base: CudaMerge['base']): string => (base === 'log2' ? 'exp2f' : 'expf');
const lseOf = (base: CudaMerge['base']): string => (base === 'log2' ? '(M + log2f(L)) * LN2' : 'M + logf(L)');

/** Statements of the merge (inside the kernel, after the caller has located the records). */
export function cudaMergeBody(m: CudaMerge): string[] {
  return m.strategy === 'block' ? blockMerge(m) : serialMerge(m);
}

function blockMerge(m: CudaMerge): string[] {
  const r = m.records;
  const n = r.count;
  const ex = exp(m.base);
  const lse = m.sink.lse;
  return [
    "  // Block-wide max and sum over the splits, then each split's weight 2^(m_j - M) in shared memory.",
    `  extern __shared__ float w[]; // ${r.countLabel ?? n} weights`,
    '  __shared__ float red[4];',
    '  const int warp = threadIdx.x >> 5, ln = threadIdx.x & 31;',
    '  float M = -INFINITY;',
    `  for (int j = threadIdx.x; j < ${n}; j += ${m.threads})`,
    `    if (${field(r, 'j', L_FIELD)} != 0.f) M = fmaxf(M, ${field(r, 'j', M_FIELD)});`,
    '  for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));',
    '  if (ln == 0) red[warp] = M;',
    '  __syncthreads();',
    '  M = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));',
    '  __syncthreads();',
    '  float L = 0.f;',
    `  for (int j = threadIdx.x; j < ${n}; j += ${m.threads}) {`,
    `    const float lj = ${field(r, 'j', L_FIELD)};`,
    `    const float wj = lj != 0.f ? ${ex}(${field(r, 'j', M_FIELD)} - M) : 0.f;`,
    '    w[j] = wj;',
    '    L += lj * wj;',
    '  }',
    '  for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(0xffffffffu, L, off);',
    '  if (ln == 0) red[warp] = L;',
    '  __syncthreads();',
    '  L = red[0] + red[1] + red[2] + red[3];',
    '  const float inv = L == 0.f ? 0.f : 1.f / L;',
    ...(m.sink.decl ? [`  ${m.sink.decl}`] : []),
    `  for (int d = threadIdx.x; d < DV; d += ${m.threads}) {`,
    '    float o = 0.f; // every split wrote its acc (0 where l = 0)',
    '#pragma unroll 8',
    `    for (int j = 0; j < ${n}; ++j) o = fmaf(w[j], ${field(r, 'j', 'd')}, o);`,
    `    ${m.sink.at('d')} = from_f32(o * inv);`,
    '  }',
    ...(lse
      ? [
          `  if (threadIdx.x == 0 && ${lse.ptr} != NULL)`,
          `    ${lse.ptr}[${lse.index}] = L == 0.f ? -INFINITY : ${lseOf(m.base)};`,
        ]
      : []),
  ];
}

function serialMerge(m: CudaMerge): string[] {
  const r = m.records;
  const n = r.count;
  const s = 's'; // the record (split) index
  const ex = exp(m.base);
  const lse = m.sink.lse;
  const mj = field(r, s, M_FIELD);
  return [
    ...(m.sink.decl ? [`  ${m.sink.decl}`] : []),
    '  float M = -INFINITY, L = 0.f;',
    `  for (int ${s} = 0; ${s} < ${n}; ++${s}) M = fmaxf(M, ${mj});`,
    '  // As in the split: l == 0 is an empty partial, l NaN a poisoned one (L becomes NaN).',
    `  for (int ${s} = 0; ${s} < ${n}; ++${s}) {`,
    `    const float ls = ${field(r, s, L_FIELD)};`,
    `    if (ls != 0.f) L += ls * ${ex}(${mj} - M);`,
    '  }',
    `  for (int d = threadIdx.x; d < DV; d += ${m.threads}) {`,
    '    float o = 0.f;',
    `    for (int ${s} = 0; ${s} < ${n}; ++${s}) {`,
    `      if (${field(r, s, L_FIELD)} != 0.f) o += ${field(r, s, 'd')} * ${ex}(${mj} - M);`,
    '    }',
    `    ${m.sink.at('d')} = from_f32(L == 0.f ? 0.f : o / L);`,
    '  }',
    ...(lse
      ? [
          `  if (threadIdx.x == 0 && ${lse.ptr} != NULL) ${lse.ptr}[${lse.index}] = L == 0.f ? -INFINITY : ${lseOf(m.base)};`,
        ]
      : []),
  ];
}
