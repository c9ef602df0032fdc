// The Hopper (sm_90a) tensor-core CUDA backward (issue 14): the mma backward's passes
// (backward-mma.ts: bwd_pre, bwd_dq_out, the deterministic bwd_dq/bwd_reduce, the summaries, the
// launcher and the Args struct are the same) with bwd_dkdv on warpgroup MMAs, FlashAttention-3's
// layout (backward-wgmma-kernel.ts, backward-wgmma-tile.ts). The derivative expressions, tile
// classification and carried slots are the mma backward's (backward-mma-exprs.ts).
//
// Not yet FA3's full design: no producer warp (cp.async by every thread, double-buffered), and dQ
// goes by 8-byte f32 atomics from registers rather than a TMA reduce-add. The deterministic mode
// keeps bwd_dq on mma.sync (bwd_dkdv on wgmma, without the dQ product).
import type { AttentionKernel } from '../../ir/kernel.js';
import { sharedStorage } from '../../ir/formats.js';
import { backwardMmaExprs } from './backward-mma-exprs.js';
import { add2Helper, dqOutKernel, preprocessKernel } from './backward-mma-kernels.js';
import { dqKernel, dqSmemBytes, reduceKernel } from './backward-mma-dq.js';
import {
  argsFields,
  backwardMmaUnsupported,
  launcher,
  type CudaBackwardMmaArtifact,
} from './backward-mma.js';
import { summaryKernel } from './backward-passes.js';
import { wgmmaDkdvKernel, wgmmaSmemBytes } from './backward-wgmma-kernel.js';
import { wgmmaDeviceHelpers, wgmmaFn } from './wgmma-device.js';
import { helperSource } from './rules.js';

export const WGMMA_BWD = { BM: 64, BN: 128, WARPS: 8, THREADS: 256 } as const;
/** The most dynamic shared memory an sm_90 CTA may have (227 KiB). */
const SM90_SMEM = 227 * 1024;

export interface CudaBackwardWgmmaArtifact extends Omit<CudaBackwardMmaArtifact, 'kind'> {
  readonly kind: 'cuda-backward-wgmma';
}

/** Why the wgmma backward cannot run `kernel` (undefined when it can). */
export function backwardWgmmaUnsupported(kernel: AttentionKernel): string | undefined {
  const why = backwardMmaUnsupported(kernel);
  if (why) return why.replace('tensor-core CUDA backward', 'wgmma CUDA backward');
  const s = kernel.schedule;
  const bytes = wgmmaSmemBytes(s.headDim, s.valueDim, backwardMmaExprs(kernel).slots);
  if (bytes > SM90_SMEM)
    return `the wgmma CUDA backward needs ${bytes} bytes of shared memory for this score (carried derivative values), more than sm_90's ${SM90_SMEM}`;
  return undefined;
}

/** The wgmma backward of a compiled (forward, f16/bf16) kernel; throws when it has none. */
export function renderCudaBackwardWgmma(
  kernel: AttentionKernel,
  options: { readonly deterministic?: boolean } = {},
): CudaBackwardWgmmaArtifact {
  const why = backwardWgmmaUnsupported(kernel);
  if (why) throw new Error(why);
  const deterministic = options.deterministic === true;
  const dtype = sharedStorage(kernel.formats) as 'f16' | 'bf16';
  const x = backwardMmaExprs(kernel);
  if (deterministic && x.gradTensors.length)
    throw new Error(
      `the deterministic tensor-core CUDA backward adds tensor gradients (${x.gradTensors.join(', ')}) with atomics only; use the SIMT backward (compileCudaBackward) for a deterministic one`,
    );
  const s = kernel.schedule;
  const { BM, BN, WARPS, THREADS } = WGMMA_BWD;
  const summaries = x.mode === 'dynamic' ? kernel.summaries.map((y) => y.tensor) : [];
  const fields = argsFields(kernel, summaries);
  const ns = `attnc_${kernel.name}_backward`;
  const smemBytes = wgmmaSmemBytes(s.headDim, s.valueDim, x.slots);
  const dqSmem = deterministic ? dqSmemBytes(WARPS, s.headDim, s.valueDim) : 0;
  const st =
    dtype === 'bf16'
      ? {
          ty: '__nv_bfloat16',
          to: '__bfloat162float(x)',
          from: '__float2bfloat16_rn(x)',
          inc: '#include <cuda_bf16.h>',
        }
      : { ty: '__half', to: '__half2float(x)', from: '__float2half_rn(x)', inc: '#include <cuda_fp16.h>' };
  // Kernel bodies first: rendering them fills the helper set that helperSource reads.
  const body = [
    ...summaries.flatMap((t) => summaryKernel(kernel, t)),
    '',
    ...add2Helper,
    '',
    ...preprocessKernel,
    '',
    ...wgmmaDkdvKernel(x, deterministic),
    '',
    ...(deterministic
      ? [...dqKernel(x), '', ...reduceKernel(Math.max(1, x.grad.params.length))]
      : dqOutKernel),
  ];
  const code = [
    `// attnc backward of ${kernel.name} (CUDA tensor cores, wgmma ${dtype}, sm_90a): see codegen/cuda/backward-wgmma.ts.`,
    '#include <cuda_runtime.h>',
    '#include <cstdint>',
    st.inc,
    '#include <climits>',
    '#include <cmath>',
    `namespace ${ns} {`,
    `typedef ${st.ty} T;`,
    `constexpr int D = ${s.headDim}, DV = ${s.valueDim};`,
    `constexpr int BM = ${BM}, BN = ${BN}, WARPS = ${WARPS}, THREADS = ${THREADS};`,
    "constexpr int NT = BM / 8; // query n-tiles of a warp's transposed score block",
    `constexpr int SMEM = ${smemBytes};`,
    ...(deterministic ? [`constexpr int DQ_SMEM = ${dqSmem};`] : []),
    'constexpr float LOG2E = 1.4426950408889634f;',
    'static_assert(BM == 64 && BN == 128 && WARPS == 8 && (D == 64 || D == 128) && D == DV, "wgmma backward tiling");',
    ...(summaries.length ? [`constexpr int SUMMARY_BLOCK = ${s.summaryBlock};`] : []),
    '__device__ __forceinline__ float to_f32(T x) { return ' + st.to + '; }',
    '__device__ __forceinline__ T from_f32(float x) { return ' + st.from + '; }',
    "// Compile-time flags of the deterministic mode's bwd_dq (backward-mma-dq.ts).",
    'template <bool V>',
    'struct Flag {',
    '  static constexpr bool value = V;',
    '};',
    '__device__ __forceinline__ const T* row_addr(const T* p, long long r, int w) { return p + r * w; }',
    'struct Args {',
    ...fields.map((f) => `  ${f.ctype} ${f.name};`),
    '};',
    // wg_qk is m64n{BM} (Sᵀ, dPᵀ), wg_pv the register-A m64n64 of dV and dK (D = DV).
    ...wgmmaDeviceHelpers({ ...s, blockK: BM }, dtype),
    '',
    ...wgmmaFn('wg_dq', 64, dtype, false, true),
    "// Descriptor units (16 bytes) of `elems` 16-bit elements: added to a descriptor's address field.",
    '__device__ __forceinline__ uint64_t du(int elems) { return (uint64_t)(elems >> 3); }',
    '// A value the compiler must treat as computed here (keeps descriptors from being hoisted).',
    '__device__ __forceinline__ uint64_t opaque(uint64_t v) {',
    '  asm volatile("" : "+l"(v));',
    '  return v;',
    '}',
    '// Waits until at most N committed wgmma groups of this warpgroup are still running.',
    'template <int N>',
    '__device__ __forceinline__ void wg_wait() {',
    '#if ATTNC_SM90A',
    '  asm volatile("wgmma.wait_group.sync.aligned %0;\\n" ::"n"(N) : "memory");',
    '#endif',
    '}',
    helperSource(x.context),
    ...body,
    `} // namespace ${ns}`,
    '',
    ...launcher(kernel, x, ns, summaries, deterministic),
  ].join('\n');
  return {
    kind: 'cuda-backward-wgmma',
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
    threads: THREADS,
    headDim: s.headDim,
    valueDim: s.valueDim,
  };
}
