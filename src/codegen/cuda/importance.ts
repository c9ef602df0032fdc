// The importance pass of a CUDA artifact (kernel.outputs.importance): a SIMT kernel the launcher
// runs after the attention (any engine, prefill or decode mode), reading the final lse, as a
// backward pass does; the N×N probabilities are never stored. One block per (tile of IMP_KEYS
// keys, kv head, batch); thread j owns key k0 + j with its k row in registers (so decode, a
// few query rows over a long KV, is parallel over keys) and walks the query rows in tiles of
// IMP_ROWS staged in shared memory (q rows and their lse), adding exp(score − lse) where the mask
// allows; a block covers every query head of its kv head (GQA), so the K tile is read once.
// (row tile, key tile) pairs are classified as in the attention: empty ones are skipped,
// full ones evaluate no mask.
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel, ImportanceMode } from '../../ir/kernel.js';
import type { Binding, EntryPoint } from '../artifact.js';
import { linearize } from '../linearize.js';
import { classMode } from './exprs.js';
import { keyRowLoad } from './importance-krow.js';
import type { CudaLayout } from './layout.js';
import { ARGS, cudaRenderer, cudaSizeVars, type CudaContext } from './rules.js';
import { voidIfUnread } from './unused.js';

/** Threads (keys) per block. */
export const IMP_KEYS = 128;
/** Bytes of static shared memory the staged rows may take (under the 48 KiB static limit). */
const STAGE_BYTES = 32768;

export const importanceEntry = (k: AttentionKernel): string => `attnc_${k.name}_importance`;
const hostLaunch = 'launch_importance';

/** Query rows staged per tile: a power of two ≤ 32 whose q rows and lse fit STAGE_BYTES. */
export function cudaImportanceRows(headDim: number): number {
  let rows = 32;
  while (rows > 1 && rows * (headDim + 1) * 4 > STAGE_BYTES) rows /= 2;
  return rows;
}

export const importanceBinding: Omit<Binding, 'name' | 'role' | 'index'> = {
  dtype: 'f32',
  shape: ['B', 'H', 'Nk'],
  access: 'read_write',
};

export function importanceEntryPoint(k: AttentionKernel): EntryPoint {
  const reads = [
    'q',
    'k',
    'lse',
    ...k.tensors.map((t) => t.name),
    ...k.summaries.map((s) => `${s.tensor}_summary`),
  ];
  return {
    name: importanceEntry(k),
    role: 'importance',
    workgroupSize: [IMP_KEYS, 1, 1],
    grid: [`cdiv(Nk, ${IMP_KEYS})`, 'Hkv', 'B'],
    bindings: [...reads, 'importance'],
  };
}

const pad = (lines: readonly string[], n: number): string[] => lines.map((l) => (l ? ' '.repeat(n) + l : l));
/** As pad, but preprocessor lines (`#pragma`) stay at column 0. */
const padCode = (lines: readonly string[], n: number): string[] =>
  lines.map((l) => (l.startsWith('#') ? l : pad([l], n)[0]!));

/** `(void)x;` for each name the rendered text does not read (nvcc -Werror all-warnings). */
function voidUnused(names: readonly string[], text: string): string[] {
  const unused = names.filter((v) => !new RegExp(`\\b${v}\\b`).test(text));
  return unused.length ? [unused.map((v) => `(void)${v};`).join(' ')] : [];
}

/** Renders IR roots to CUDA statements and expressions, with the given variable names. */
type Render = (
  roots: readonly Node[],
  vars: Record<string, string>,
  prefix: string,
) => ReturnType<typeof linearize>;

/**
 * The device kernel. Render it before the artifact's helper section: the mask and score record
 * the helpers they use in cx.used.
 */
export function importanceDevice(
  k: AttentionKernel,
  mode: ImportanceMode,
  cx: Omit<CudaContext, 'vars'>,
  layout: CudaLayout,
  alignBytes: number,
): string {
  const f = (key: string): string => `${ARGS}.${layout.field(key)}`;
  const out = `${f('importance')}[(size_t)bh * ${ARGS}.Nk + col]`;
  const head = [
    `// Importance (${mode}): after the attention, from its final lse; see codegen/cuda/importance.ts.`,
    `extern "C" __global__ void __launch_bounds__(${IMP_KEYS}) ${importanceEntry(k)}(const Args ${ARGS}) {`,
    `  const int col = blockIdx.x * ${IMP_KEYS} + threadIdx.x;`,
  ];
  if (classMode(k) === 'empty') return [...head, ...noPairBody(out)].join('\n');

  const render: Render = (roots, vars, prefix) =>
    linearize(roots, cudaRenderer({ ...cx, vars: { ...cudaSizeVars, ...vars } }), prefix);
  const classify = tileClassify(k, render);
  const perRow = rowTerm(k, mode, render);
  const kload = keyRowLoad(k, alignBytes);
  return [
    ...head,
    ...blockState(k, kload.what, [...perRow, ...classify].join('\n')),
    '  // GQA: the query heads h of kv head kvh are kvh * group .. kvh * group + group - 1.',
    '  for (int h = kvh * group; h < (kvh + 1) * group; ++h) {',
    `    const int bh = b * ${ARGS}.H + h;`,
    `    const float* lse = ${f('lse')} + (size_t)bh * ${ARGS}.Nq;`,
    '    float total = 0.f;',
    ...(mode === 'normalized' ? ['    int seen = 0; // rows whose mask allows this key'] : []),
    `    for (int r0 = 0; r0 < ${ARGS}.Nq; r0 += IMP_ROWS) {`,
    `      const int r_end = min(r0 + IMP_ROWS, ${ARGS}.Nq);`,
    ...pad(classify, 6),
    ...stageRowTile(),
    '      if (!col_ok) continue;',
    '      if (!k_loaded) {',
    ...padCode(kload.lines(f('k')), 8),
    '        k_loaded = true;',
    '      }',
    '      for (int i = 0; i < r_end - r0; ++i) {',
    ...pad(perRow, 8),
    '      }',
    '    }',
    `    if (col_ok) ${out} = ${mode === 'sum' ? 'total' : 'seen > 0 ? total / (float)seen : 0.f'};`,
    '  }',
    '}',
  ].join('\n');
}

/** The body of a kernel whose mask allows no pair: every key's importance is 0. */
function noPairBody(out: string): string[] {
  return [
    `  if (col >= ${ARGS}.Nk) return;`,
    `  const int group = ${ARGS}.H / ${ARGS}.Hkv;`,
    '  for (int h = blockIdx.y * group; h < (int)(blockIdx.y + 1) * group; ++h) {',
    `    const int bh = blockIdx.z * ${ARGS}.H + h;`,
    `    ${out} = 0.f; // the mask allows no pair`,
    '  }',
    '}',
  ];
}

/**
 * Per (row tile, key tile), with dynamic tiles: skip an empty pair, and set `partial` (the mask is
 * evaluated only then). Nothing for static tiles.
 */
function tileClassify(k: AttentionKernel, render: Render): string[] {
  if (k.tiles.kind !== 'dynamic') return [];
  const tileVars = { b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
  const c = render([k.tiles.canBeTrue, k.tiles.canBeFalse], tileVars, 'ic');
  const classify = [
    `const int q_lo = ${ARGS}.q_offset + r0, q_hi = ${ARGS}.q_offset + r_end - 1;`,
    ...c.stmts,
    `if (!(${c.roots[0]})) continue; // an empty tile: no row sees these keys`,
    `const bool partial = ${c.roots[1]};`,
  ];
  return [...classify, ...voidUnused(['q_lo', 'q_hi', 'k_lo', 'k_hi'], classify.join('\n'))];
}

/** Per staged query row i: skip it where the mask disallows, else add exp(score − lse_i) to total. */
function rowTerm(k: AttentionKernel, mode: ImportanceMode, render: Render): string[] {
  const cls = classMode(k);
  const elemVars = { b: 'b', h: 'h', q: 'qpos', k: 'kpos', score: 'x' };
  const mask = cls === 'full' ? undefined : render([k.mask], elemVars, 'im');
  const identity = k.score.op === 'var' && k.score.arg === 'score';
  const score = render([k.score], elemVars, 'is');
  const maskLines = mask
    ? [
        ...(cls === 'dynamic' ? ['if (partial) {'] : ['{']),
        ...pad(mask.stmts, 2),
        `  if (!(${mask.roots[0]})) continue;`,
        '}',
      ]
    : [];
  const rowExprs = [...maskLines, ...score.stmts, score.roots[0]!].join('\n');
  const xDecl = `const float x = ${ARGS}.scale * dot;`;
  // A score that ignores q·k (`score exp(c0)`) leaves x unread: cast it to void (nvcc -Werror).
  const lines = [
    // Declared only where read: nvcc -Werror all-warnings refuses an unused variable.
    ...(/\bqpos\b/.test(rowExprs) ? [`const int qpos = ${ARGS}.q_offset + r0 + i;`] : []),
    ...maskLines,
    ...(mode === 'normalized' ? ['++seen;'] : []),
    'const float lse_i = imp_lse[i];',
    '// A row with no allowed key (lse -inf) or a poisoned one (NaN) adds nothing.',
    'if (!isfinite(lse_i)) continue;',
    'float dot = 0.f;',
    '#pragma unroll',
    'for (int d = 0; d < D; ++d) dot += imp_q[i * D + d] * krow[d];',
    xDecl,
    ...score.stmts,
    `const float s = ${identity ? 'x' : score.roots[0]};`,
    '// A score of -inf weighs 0 (expf(-inf) = 0).',
    'total += expf(s - lse_i);',
  ];
  return voidIfUnread(lines, lines.indexOf(xDecl), 'x');
}

/** The block's staged rows, its kv head and key range, and its key row (loaded on first use). */
function blockState(k: AttentionKernel, kloadWhat: string, used: string): string[] {
  const rows = cudaImportanceRows(k.schedule.headDim);
  return [
    `  __shared__ float imp_q[${rows} * D];`,
    `  __shared__ float imp_lse[${rows}];`,
    `  constexpr int IMP_ROWS = ${rows};`,
    `  const int b = blockIdx.z, kvh = blockIdx.y, group = ${ARGS}.H / ${ARGS}.Hkv;`,
    `  const bool col_ok = col < ${ARGS}.Nk;`,
    `  const int kpos = ${ARGS}.k_offset + col;`,
    ...(k.tiles.kind === 'dynamic'
      ? [
          `  const int k_lo = ${ARGS}.k_offset + (int)blockIdx.x * ${IMP_KEYS};`,
          `  const int k_hi = ${ARGS}.k_offset + min((int)(blockIdx.x + 1) * ${IMP_KEYS}, ${ARGS}.Nk) - 1;`,
        ]
      : []),
    ...pad(voidUnused(['kpos'], used), 2),
    `  // This thread's key row (${kloadWhat}): read once for every query head of the kv`,
    '  // head, and only once a tile that is not empty needs it (a window over a long KV reads its',
    '  // window, not the whole KV).',
    '  float krow[D];',
    '  bool k_loaded = false;',
  ];
}

/** The row tile's q rows and lse into shared memory, between barriers. */
function stageRowTile(): string[] {
  return [
    '      __syncthreads(); // the previous row tile is no longer read',
    `      for (int e = threadIdx.x; e < (r_end - r0) * D; e += ${IMP_KEYS}) imp_q[e] = to_f32(q_row(${ARGS}, b, h, r0 + e / D)[e % D]);`,
    `      for (int e = threadIdx.x; e < r_end - r0; e += ${IMP_KEYS}) imp_lse[e] = lse[r0 + e];`,
    '      __syncthreads(); // the row tile is staged',
  ];
}

/** The launcher's checks of the pointers the pass needs (before the Nq == 0 return). */
export function importanceChecks(layout: CudaLayout): string[] {
  const imp = `a.${layout.field('importance')}`;
  const lse = `a.${layout.field('lse')}`;
  return [
    `if (a.Nk > 0 && (!ptr_ok(${imp}, 4) || (a.Nq > 0 && !ptr_ok(${lse}, 4))))`,
    '  return fail(ATTNC_ERR_ARGS, "importance and lse must be non-NULL and 4-byte aligned (the kernel was compiled with importance; its pass reads lse)");',
  ];
}

/** Host function (in the artifact's namespace) that launches the pass; ATTNC_OK or a failure. */
export function importanceHost(k: AttentionKernel): string {
  return [
    `static int ${hostLaunch}(const Args& a, cudaStream_t stream) {`,
    '  if (a.Nk == 0) return ATTNC_OK;',
    `  const dim3 grid((a.Nk + ${IMP_KEYS - 1}) / ${IMP_KEYS}, a.Hkv, a.B);`,
    `  ${importanceEntry(k)}<<<grid, ${IMP_KEYS}, 0, stream>>>(a);`,
    '  const cudaError_t e = cudaGetLastError();',
    '  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "importance: %s", cudaGetErrorString(e));',
    '  return ATTNC_OK;',
    '}',
  ].join('\n');
}

/** What the launcher returns once the attention is launched: the pass's launch, or ATTNC_OK. */
export function afterAttention(k: AttentionKernel, ns: string): string {
  return k.outputs.importance ? `${ns}::${hostLaunch}(a, stream)` : 'ATTNC_OK';
}
