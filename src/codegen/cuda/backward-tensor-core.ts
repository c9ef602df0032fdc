// The skeleton every tensor-core CUDA backward shares (backward-mma.ts on mma.sync,
// backward-wgmma.ts on Hopper warpgroups): the Args struct, bwd_pre, bwd_dq_out or the
// deterministic bwd_dq/bwd_reduce, the summary kernels and the extern "C" launcher around the
// engine's own bwd_dkdv and device helpers (TensorCoreBackwardEngine).
import type { AttentionKernel } from '../../ir/kernel.js';
import { sharedStorage } from '../../ir/formats.js';
import { backwardMmaExprs, slotCountText, type BackwardMmaExprs } from './backward-mma-exprs.js';
import { add2Helper, dqOutKernel, preprocessKernel } from './backward-mma-kernels.js';
import { field, summaryKernel } from './backward-passes.js';
import { dqKernel, dqSmemBytes, reduceKernel } from './backward-mma-dq.js';
import { ARGS, cudaType, dimText } from './rules.js';
import { helperSource } from './rules-helpers.js';
import type { SmemNeeds } from './backward-mask-hoists.js';
import { residueBackwardHelpers } from './backward-residue.js';
import { stridedLoader } from './residue.js';
import { gatherLoader } from './patch.js';
import { ROWS_LOADER } from './mma-device.js';
import { patchBackwardHelpers } from './backward-patch.js';

export interface CudaBackwardMmaArtifact {
  readonly kind: 'cuda-backward-mma';
  readonly name: string;
  /** Device code in namespace `namespace`, then the extern "C" launcher and slot count. */
  readonly code: string;
  readonly namespace: string;
  readonly dtype: 'f16' | 'bf16';
  /**
   * Deterministic mode: dq from its own kernel over key tiles (no atomics) and the param gradients
   * from per-CTA partials summed in order; otherwise dq and the gradients are f32 atomics.
   */
  readonly deterministic: boolean;
  /** Args struct fields in declaration order (pointers, then ints, then floats and params). */
  readonly fields: readonly { readonly name: string; readonly ctype: string }[];
  readonly gradParams: readonly string[];
  readonly gradTensors: readonly string[];
  readonly summaries: readonly string[];
  /** Dynamic shared memory of bwd_dkdv (bytes). */
  readonly smemBytes: number;
  /** Dynamic shared memory of bwd_dq (deterministic mode; bytes). */
  readonly dqSmemBytes: number;
  /** Threads of every kernel (bwd_dkdv: a warp per 16 keys of a key tile). */
  readonly threads: number;
  readonly headDim: number;
  readonly valueDim: number;
}

function argsFields(
  kernel: AttentionKernel,
  summaries: readonly string[],
): { name: string; ctype: string }[] {
  return [
    ...['q', 'k', 'v', 'out', 'dout'].map((name) => ({ name, ctype: 'const T*' })),
    { name: 'lse', ctype: 'const float*' },
    { name: 'dlse', ctype: 'const float*' }, // ∂L/∂lse [B·H·Nq], or null: none flows into lse
    ...['dq', 'dk', 'dv'].map((name) => ({ name, ctype: 'T*' })),
    ...['delta', 'dq_acc', 'grads', 'partials'].map((name) => ({ name, ctype: 'float*' })),
    ...kernel.tensors.map((t) => ({ name: `t_${t.name}`, ctype: `const ${cudaType[t.dtype]}*` })),
    ...summaries.map((name) => {
      const t = kernel.tensors.find((x) => x.name === name)!;
      return { name: `s_${name}`, ctype: `${cudaType[t.dtype]}*` };
    }),
    ...['B', 'H', 'Hkv', 'Nq', 'Nk', 'q_offset', 'k_offset'].map((name) => ({ name, ctype: 'int' })),
    { name: 'scale', ctype: 'float' },
    ...kernel.params.map((p) => ({ name: `p_${p.name}`, ctype: cudaType[p.dtype] })),
  ];
}

function launcher(
  kernel: AttentionKernel,
  x: BackwardMmaExprs,
  ns: string,
  summaries: readonly string[],
  deterministic: boolean,
  dkdvThreads = 'THREADS',
): string[] {
  const a = (text: string): string => text.replaceAll(`${ARGS}.`, 'a->');
  // Residue classes, patches: a block per unit (backward-residue.ts, backward-patch.ts).
  const dkdvBlocks = x.residue || x.patch ? '(unsigned)dkdv_units(*a)' : '(unsigned)((a->Nk + BN - 1) / BN)';
  const np = x.grad.params.length;
  const dqTiles = '(unsigned)((a->Nq + 16 * WARPS - 1) / (16 * WARPS))';
  const dq = deterministic
    ? [
        '  err = cudaFuncSetAttribute(bwd_dq, cudaFuncAttributeMaxDynamicSharedMemorySize, DQ_SMEM);',
        '  if (err != cudaSuccess) return err;',
        `  bwd_dq<<<dim3(${dqTiles}, (unsigned)a->H, (unsigned)a->B), THREADS, DQ_SMEM, stream>>>(*a);`,
        ...(np ? [`  bwd_reduce<<<1, THREADS, 0, stream>>>(*a, (int)(${dqTiles} * a->H * a->B));`] : []),
      ]
    : ['  bwd_dq_out<<<(unsigned)((rows * D / 8 + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);'];
  return [
    `// Gradient slots of \`grads\`: ${x.grad.params.map((p) => p.name).join(', ') || 'no params'}${x.gradTensors.length ? `, then ${x.gradTensors.join(', ')}` : ''}.`,
    `extern "C" int ${ns}_slots(const ${ns}::Args* args) {`,
    `  const ${ns}::Args& ${ARGS} = *args;`,
    `  (void)${ARGS};`,
    `  return ${slotCountText(kernel, x)};`,
    '}',
    "// Floats of `partials` (deterministic mode's per-CTA param gradients; 0: unused).",
    `extern "C" long long ${ns}_partials(const ${ns}::Args* a) {`,
    deterministic && np
      ? `  return (long long)((a->Nq + 16 * ${ns}::WARPS - 1) / (16 * ${ns}::WARPS)) * a->H * a->B * ${np};`
      : '  (void)a;\n  return 0;',
    '}',
    `// Scratch the caller provides: delta [B·H·Nq] floats, grads [slots] floats, ${deterministic ? 'partials [_partials] floats' : 'dq_acc [B·H·Nq·D] floats'}.`,
    `extern "C" cudaError_t ${ns}_launch(const ${ns}::Args* a, cudaStream_t stream) {`,
    `  using namespace ${ns};`,
    '  const long long rows = (long long)a->B * a->H * a->Nq;',
    `  const int slots = ${ns}_slots(a);`,
    '  if (rows <= 0) return cudaSuccess;',
    ...summaries.map((t) => {
      const len = `(long long)(${a(dimText(kernel.tensors.find((y) => y.name === t)!.dims[0]!, field))})`;
      const blocks = `(${len} + SUMMARY_BLOCK - 1) / SUMMARY_BLOCK`;
      return `  if (${len} > 0) bwd_summary_${t}<<<(unsigned)((${blocks} + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);`;
    }),
    '  if (slots > 0) cudaMemsetAsync(a->grads, 0, sizeof(float) * slots, stream);',
    ...(deterministic ? [] : ['  cudaMemsetAsync(a->dq_acc, 0, sizeof(float) * rows * D, stream);']),
    '  bwd_pre<<<(unsigned)((rows + THREADS / (DV / 8) - 1) / (THREADS / (DV / 8))), THREADS, 0, stream>>>(*a);',
    '  cudaError_t err = cudaFuncSetAttribute(bwd_dkdv, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM);',
    '  if (err != cudaSuccess) return err;',
    `  if (a->Nk > 0) bwd_dkdv<<<dim3(${dkdvBlocks}, (unsigned)a->Hkv, (unsigned)a->B), ${dkdvThreads}, SMEM, stream>>>(*a);`,
    ...dq,
    '  return cudaGetLastError();',
    '}',
    '',
  ];
}

/**
 * What one tensor-core backward engine brings to the shared source (renderTensorCoreBackward):
 * its refusal, tile constants, dK/dV kernel and device helpers; bwd_pre, bwd_dq_out, the
 * deterministic bwd_dq/bwd_reduce, the summaries, Args and the launcher are common.
 */
export interface TensorCoreBackwardEngine {
  readonly unsupported: (kernel: AttentionKernel) => string | undefined;
  /** The first line of the source, after `// attnc backward of NAME `. */
  readonly title: (dtype: 'f16' | 'bf16') => string;
  readonly warps: number;
  readonly threads: number;
  /** Dynamic shared memory of bwd_dkdv for the carried slots and hoisted mask parts of `x`. */
  readonly smemBytes: (s: AttentionKernel['schedule'], x: SmemNeeds) => number;
  /** The BM/BN/WARPS/THREADS constants and the tiling's static_assert. */
  readonly tiling: (s: AttentionKernel['schedule']) => readonly string[];
  /** Comment lines above the deterministic mode's compile-time flags. */
  readonly flagNote: readonly string[];
  /** Headers beyond cuda_runtime.h, the storage type's, climits and cmath. */
  readonly includes: readonly string[];
  readonly dkdv: (x: BackwardMmaExprs, deterministic: boolean) => readonly string[];
  readonly deviceHelpers: (s: AttentionKernel['schedule'], dtype: 'f16' | 'bf16') => readonly string[];
  /** The C expression of bwd_dkdv's block size (default THREADS, every other kernel's). */
  readonly dkdvThreads?: string;
  /** The cp.async tile loader of bwd_dkdv and its swizzle (the residue order's strided twin). */
  readonly loader: { readonly name: string; readonly swizzle: string };
}

const storageC = (dtype: 'f16' | 'bf16') =>
  dtype === 'bf16'
    ? {
        ty: '__nv_bfloat16',
        to: '__bfloat162float(x)',
        from: '__float2bfloat16_rn(x)',
        inc: '#include <cuda_bf16.h>',
      }
    : { ty: '__half', to: '__half2float(x)', from: '__float2half_rn(x)', inc: '#include <cuda_fp16.h>' };

/** A tensor-core backward of a compiled (forward, f16/bf16) kernel on `engine`; throws when it has none. */
export function renderTensorCoreBackward(
  kernel: AttentionKernel,
  engine: TensorCoreBackwardEngine,
  options: { readonly deterministic?: boolean } = {},
): Omit<CudaBackwardMmaArtifact, 'kind'> {
  const why = engine.unsupported(kernel);
  if (why) throw new Error(why);
  const deterministic = options.deterministic === true;
  const dtype = sharedStorage(kernel.formats) as 'f16' | 'bf16';
  const x = backwardMmaExprs(kernel);
  if (deterministic && x.gradTensors.length)
    throw new Error(
      `the deterministic tensor-core CUDA backward adds tensor gradients (${x.gradTensors.join(', ')}) with atomics only; use the SIMT backward (compileCudaBackward) for a deterministic one`,
    );
  const s = kernel.schedule;
  // The residue order's classifier (backward-residue.ts) may read summaries the full one does not.
  const dynamic = x.mode === 'dynamic' || x.residue?.mode === 'dynamic';
  const summaries = dynamic ? kernel.summaries.map((y) => y.tensor) : [];
  const fields = argsFields(kernel, summaries);
  const ns = `attnc_${kernel.name}_backward`;
  const smemBytes = engine.smemBytes(s, x);
  const dqSmem = deterministic ? dqSmemBytes(engine.warps, s.headDim, s.valueDim) : 0;
  // Kernel bodies first: rendering them fills the helper set that helperSource reads.
  const body = [
    ...summaries.flatMap((t) => summaryKernel(kernel, t)),
    '',
    ...add2Helper,
    '',
    ...preprocessKernel,
    '',
    ...engine.dkdv(x, deterministic),
    '',
    ...(deterministic
      ? [...dqKernel(x), '', ...reduceKernel(Math.max(1, x.grad.params.length))]
      : dqOutKernel),
  ];
  const code = [
    ...sourceHead(kernel, engine, { dtype, ns, smemBytes, deterministic, dqSmem, summaries, fields }),
    ...engine.deviceHelpers(s, dtype),
    ...(x.residue ? residueBackwardHelpers(engine.loader, x.residue.modulus) : []),
    ...dqOrderHelpers(x, deterministic, engine.loader.name),
    ...(x.patch ? patchBackwardHelpers(engine.loader, x.patch) : []),
    helperSource(x.context),
    ...body,
    `} // namespace ${ns}`,
    '',
    ...launcher(kernel, x, ns, summaries, deterministic, engine.dkdvThreads),
  ].join('\n');
  return {
    name: `${kernel.name}_backward`,
    code,
    namespace: ns,
    dtype,
    deterministic,
    fields,
    gradParams: x.grad.params.map((p) => p.name),
    gradTensors: x.gradTensors,
    summaries,
    smemBytes,
    dqSmemBytes: dqSmem,
    threads: engine.threads,
    headDim: s.headDim,
    valueDim: s.valueDim,
  };
}

/** The source up to the engine's device helpers: includes, constants, conversions, Args. */
function sourceHead(
  kernel: AttentionKernel,
  engine: TensorCoreBackwardEngine,
  p: {
    readonly dtype: 'f16' | 'bf16';
    readonly ns: string;
    readonly smemBytes: number;
    readonly deterministic: boolean;
    /** bwd_dq's shared memory (DQ_SMEM, deterministic mode only). */
    readonly dqSmem: number;
    readonly summaries: readonly string[];
    readonly fields: readonly { readonly name: string; readonly ctype: string }[];
  },
): string[] {
  const { dtype, ns, smemBytes, deterministic, dqSmem, summaries, fields } = p;
  const s = kernel.schedule;
  const st = storageC(dtype);
  return [
    `// attnc backward of ${kernel.name} ${engine.title(dtype)}`,
    '#include <cuda_runtime.h>',
    ...engine.includes,
    st.inc,
    '#include <climits>',
    '#include <cmath>',
    `namespace ${ns} {`,
    `typedef ${st.ty} T;`,
    `constexpr int D = ${s.headDim}, DV = ${s.valueDim};`,
    ...engine.tiling(s).slice(0, 1),
    "constexpr int NT = BM / 8; // query n-tiles of a warp's transposed score block",
    `constexpr int SMEM = ${smemBytes};`,
    ...(deterministic ? [`constexpr int DQ_SMEM = ${dqSmem};`] : []),
    'constexpr float LOG2E = 1.4426950408889634f;',
    ...engine.tiling(s).slice(1),
    ...(summaries.length ? [`constexpr int SUMMARY_BLOCK = ${s.summaryBlock};`] : []),
    '__device__ __forceinline__ float to_f32(T x) { return ' + st.to + '; }',
    '__device__ __forceinline__ T from_f32(float x) { return ' + st.from + '; }',
    ...engine.flagNote,
    'template <bool V>',
    'struct Flag {',
    '  static constexpr bool value = V;',
    '};',
    '__device__ __forceinline__ const T* row_addr(const T* p, long long r, int w) { return p + r * w; }',
    'struct Args {',
    ...fields.map((f) => `  ${f.ctype} ${f.name};`),
    '};',
  ];
}

/**
 * The deterministic bwd_dq's permuted orders (backward-dq-order.ts) gather rows with load_rows'
 * strided or gathered twin, which the engines whose tile loader is another (wgmma's load_panel)
 * do not emit for bwd_dkdv.
 */
function dqOrderHelpers(x: BackwardMmaExprs, deterministic: boolean, loader: string): string[] {
  const { name, swizzle } = ROWS_LOADER;
  if (!deterministic || loader === name) return [];
  if (x.patch) return gatherLoader(name, swizzle);
  return x.residue ? stridedLoader(name, swizzle) : [];
}
