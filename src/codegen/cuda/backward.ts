// The CUDA SIMT backward pass (issue 14): f32, a thread per row, deterministic. The same
// algorithm as the WGSL backward (codegen/wgsl/backward.ts, FlashAttention-2's split):
//   bwd_dq     a thread per query row: delta = dO·O, P recomputed from the saved lse, dq; the row's
//              contributions to the f32 param and tensor gradients go to its own slice of a
//              `partials` scratch [rows, slots] (no atomics: each slice has one writer);
//   bwd_dkdv   a thread per kv row, over every query row of its head group (GQA sums there; a
//              routing kernel's, over the rows that selected its id: bwd_invert lists them first);
//   bwd_reduce a thread per gradient slot sums the partials in row order, so results do not
//              depend on scheduling (the deterministic mode; the only mode so far).
// Tiles are classified as in the forward (empty skipped, the mask only on partial tiles); the
// tensor summaries a classifier reads (document ids) come from bwd_summary_<t>, launched first.
// Routing/selection kernels take the forward's `indices` back as a constant and walk only the
// selected pairs (backward-routing.ts), through the `inverted` scratch the caller allocates
// (NS_inverted ints).
// The kernels are in backward-passes.ts; the tensor-core backwards (bf16/f16: backward-mma.ts,
// backward-wgmma.ts) are the default for 16-bit kernels (src/backward.ts, defaultBackwardEngines).
import { deriveScore } from '../../ir/derive.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { backwardTileMode } from '../../ir/tile-mode.js';
import { kernelSlots } from '../common.js';
import { storageUnsupported } from '../wgsl/backward.js';
import {
  invertLaunch,
  invertedSizeFn,
  routingFields,
  routingStage,
  type RoutingStage,
} from './backward-routing.js';
import { ARGS, cudaSizeVars, cudaType, dimText, exactMulOf, type CudaContext } from './rules.js';
import { helperSource } from './rules-helpers.js';
import {
  BLOCK,
  THREADS,
  classifier,
  dkdvKernel,
  dqKernel,
  field,
  reduceKernel,
  summaryKernel,
  tensorSlots,
} from './backward-passes.js';

export interface CudaBackwardArtifact {
  readonly kind: 'cuda-backward';
  readonly name: string;
  /** Device code in namespace `namespace`, then an extern "C" launcher. */
  readonly code: string;
  readonly namespace: string;
  /** Args struct fields in declaration order (pointers first, then ints/floats). */
  readonly fields: readonly { readonly name: string; readonly ctype: string }[];
  readonly gradParams: readonly string[];
  /** f32 tensors with a gradient: slots [offset, offset + length) of `grads` after the params. */
  readonly gradTensors: readonly string[];
  /** 1-D tensors whose per-block [min, max] (`s_<name>`, 2 per block) bwd_summary_<name> writes first. */
  readonly summaries: readonly string[];
  readonly summaryBlock: number;
  readonly threads: number;
  readonly headDim: number;
  readonly valueDim: number;
}

function argsFields(
  kernel: AttentionKernel,
  summaries: readonly string[],
  route: RoutingStage | undefined,
): { name: string; ctype: string }[] {
  const fields = [
    // dlse: ∂L/∂lse [B·H·Nq], or null when no gradient flows into lse.
    ...['q', 'k', 'v', 'out', 'lse', 'dlse', 'dout'].map((name) => ({ name, ctype: 'const float*' })),
    ...['dq', 'dk', 'dv', 'delta', 'partials', 'grads'].map((name) => ({ name, ctype: 'float*' })),
    ...kernel.tensors.map((t) => ({ name: `t_${t.name}`, ctype: `const ${cudaType[t.dtype]}*` })),
    ...summaries.map((name) => {
      const t = kernel.tensors.find((x) => x.name === name)!;
      return { name: `s_${name}`, ctype: `${cudaType[t.dtype]}*` };
    }),
    // The forward's selection [B, G, Nq, K], held constant (backward-routing.ts).
    ...routingFields(route),
    ...['B', 'H', 'Hkv', 'Nq', 'Nk', 'q_offset', 'k_offset', 'slots'].map((name) => ({ name, ctype: 'int' })),
    { name: 'scale', ctype: 'float' },
    ...kernel.params.map((p) => ({ name: `p_${p.name}`, ctype: cudaType[p.dtype] })),
  ];
  return fields;
}

/** The CUDA backward of a compiled (forward) kernel; throws when it has none. */
export function renderCudaBackward(kernel: AttentionKernel): CudaBackwardArtifact {
  const why = storageUnsupported(kernel);
  if (why) throw new Error(why.replace('WGSL', 'CUDA'));
  const route = routingStage(kernel, field);
  const grad = deriveScore(kernel.graph, kernel.score, kernel.params);
  const gradTensors = [...new Set(grad.loads.map((l) => l.tensor))].sort();
  const used = new Set<string>();
  const cx = (vars: Record<string, string>): CudaContext => ({
    vars: { ...cudaSizeVars, ...vars },
    ...kernelSlots(kernel),
    field,
    used,
    scoreMath: 'precise',
    exactMul: exactMulOf(kernel),
  });
  const mode = backwardTileMode(kernel);
  const slots = tensorSlots(kernel, grad, gradTensors);
  const element = cx({ b: 'b', h: 'h', q: 'q', k: 'k', score: 'score' });
  const kernels = [
    ...dqKernel(kernel, grad, mode, element, slots, route),
    '',
    ...dkdvKernel(kernel, grad, mode, element, route),
  ];
  const tiles =
    mode === 'dynamic'
      ? classifier(kernel, cx({ b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' }))
      : [];
  const ns = `attnc_${kernel.name}_backward`;
  const summaries = mode === 'dynamic' ? kernel.summaries.map((x) => x.tensor) : [];
  const fields = argsFields(kernel, summaries, route);
  const s = kernel.schedule;
  const slotCount = gradTensors.length
    ? `${slots.get(gradTensors.at(-1)!)!} + ${lengthText(kernel, gradTensors.at(-1)!)}`
    : String(grad.params.length);
  const code = [
    ...deviceNamespace(
      kernel,
      ns,
      mode,
      fields,
      summaries,
      element,
      [...(route?.helpers ?? []), ...tiles, ...kernels],
      route !== undefined,
    ),
    `// Gradient slots: ${grad.params.map((p) => p.name).join(', ') || 'no params'}${gradTensors.length ? `, then ${gradTensors.join(', ')}` : ''}.`,
    // No pair to invert for where the mask empties every tile (bwd_dkdv only zeroes then).
    ...hostEntries(kernel, ns, summaries, slotCount, route, mode !== 'empty'),
  ].join('\n');
  return {
    kind: 'cuda-backward',
    name: `${kernel.name}_backward`,
    code,
    namespace: ns,
    fields,
    gradParams: grad.params.map((p) => p.name),
    gradTensors,
    summaries,
    summaryBlock: s.summaryBlock,
    threads: THREADS,
    headDim: s.headDim,
    valueDim: s.valueDim,
  };
}

/**
 * The device code in namespace `ns`: constants, Args, the helpers the rendered expressions used
 * (so `rendered`, the classifier and kernels, must be rendered first), the summary kernels,
 * `rendered` and bwd_reduce (BLOCK only where a pass walks tiles: not `routed`).
 */
function deviceNamespace(
  kernel: AttentionKernel,
  ns: string,
  mode: ReturnType<typeof backwardTileMode>,
  fields: readonly { readonly name: string; readonly ctype: string }[],
  summaries: readonly string[],
  element: CudaContext,
  rendered: readonly string[],
  routed: boolean,
): string[] {
  const s = kernel.schedule;
  return [
    `// attnc backward of ${kernel.name} (CUDA SIMT, f32, deterministic): see codegen/cuda/backward.ts.`,
    '#include <cuda_runtime.h>',
    '#include <climits>',
    '#include <cmath>',
    `namespace ${ns} {`,
    `constexpr int D = ${s.headDim};`,
    `constexpr int DV = ${s.valueDim};`,
    `constexpr int THREADS = ${THREADS};`,
    // Tiles of rows or keys; a routed backward walks its selected pairs instead.
    ...(mode === 'empty' || routed ? [] : [`constexpr int BLOCK = ${BLOCK};`]),
    ...(mode === 'dynamic' ? ['constexpr int TILE_EMPTY = 0, TILE_FULL = 1, TILE_PARTIAL = 2;'] : []),
    'struct Args {',
    ...fields.map((f) => `  ${f.ctype} ${f.name};`),
    '};',
    // After the kernels are rendered: the helpers are those their expressions used.
    helperSource(element),
    ...(summaries.length ? [`constexpr int SUMMARY_BLOCK = ${s.summaryBlock};`] : []),
    ...summaries.flatMap((t) => summaryKernel(kernel, t)),
    ...rendered,
    '',
    ...reduceKernel,
    `} // namespace ${ns}`,
    '',
  ];
}

/**
 * The extern "C" host functions: NS_slots (the gradient slots of a call, slotCount over Args) and
 * NS_launch (the summary, dq, dkdv and reduce kernels, each skipped when it has no work); a routing
 * kernel's also NS_inverted (the ints of Args.inverted) and, where the mask leaves any `pairs`,
 * bwd_invert before bwd_dkdv.
 */
function hostEntries(
  kernel: AttentionKernel,
  ns: string,
  summaries: readonly string[],
  slotCount: string,
  route: RoutingStage | undefined,
  pairs: boolean,
): string[] {
  return [
    `extern "C" int ${ns}_slots(const ${ns}::Args* args) {`,
    `  const ${ns}::Args& ${ARGS} = *args;`,
    `  (void)${ARGS};`,
    `  return ${slotCount};`,
    '}',
    ...(route ? invertedSizeFn(ns) : []),
    `extern "C" cudaError_t ${ns}_launch(const ${ns}::Args* a, cudaStream_t stream) {`,
    `  using namespace ${ns};`,
    '  const long long rows = (long long)a->B * a->H * a->Nq, keys = (long long)a->B * a->Hkv * a->Nk;',
    ...summaries.map((t) => {
      const len = `(long long)(${dimText(kernel.tensors.find((x) => x.name === t)!.dims[0]!, field).replaceAll(`${ARGS}.`, 'a->')})`;
      const blocks = `(${len} + SUMMARY_BLOCK - 1) / SUMMARY_BLOCK`;
      return `  if (${len} > 0) bwd_summary_${t}<<<(unsigned)((${blocks} + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);`;
    }),
    '  if (rows > 0) bwd_dq<<<(unsigned)((rows + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);',
    ...(route && pairs ? invertLaunch : []),
    '  if (keys > 0) bwd_dkdv<<<(unsigned)((keys + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);',
    '  if (a->slots > 0) bwd_reduce<<<(unsigned)((a->slots + THREADS - 1) / THREADS), THREADS, 0, stream>>>(*a);',
    '  return cudaGetLastError();',
    '}',
    '',
  ];
}

function lengthText(kernel: AttentionKernel, tensor: string): string {
  const t = kernel.tensors.find((x) => x.name === tensor)!;
  return t.dims.map((d) => `(${dimText(d, field)})`).join(' * ');
}
