// The WGSL backward pass (issue 14): f32, an invocation per row, correctness before speed. Two
// entry points, launched in order in one compute pass (storage writes of the first are visible
// to the second), as FlashAttention-2 splits the work so that no dq/dk/dv needs atomics:
//   bwd_dq   one invocation per query row: delta_i = dO_i·O_i (written for the second pass), then
//            over the row's keys P_ij = exp(score′_ij − lse_i) recomputed from the saved lse,
//            dscore′ = P (dO_i·v_j − delta_i), dq_i += dscore′·∂score′/∂score·k_j; the f32 param
//            gradients summed per row and the tensor gradients per lookup go to atomic buffers.
//   bwd_dkdv one invocation per kv row: over the rows of every query head of its group (GQA
//            sums there), dv_j += P dO_i, dk_j += dscore′·∂score′/∂score·q_i.
// Tiles of BLOCK positions are classified as in the forward (tile_class: empty tiles skipped,
// the mask evaluated only on partial ones); a classifier that reads tensor summaries (document
// ids) gets them from summary passes launched first, as the forward's.
import { deriveScore } from '../../ir/derive.js';
import type { AttentionKernel, Schedule } from '../../ir/kernel.js';
import { backwardTileMode, type TileMode } from '../../ir/tile-mode.js';
import type { VarName } from '../../ir/ops.js';
import { kernelSlots } from '../common.js';
import {
  backwardLayout,
  backwardLayoutSource,
  gradTensorVar,
  type BackwardBinding,
} from './backward-layout.js';
import type { BackwardUniform } from './backward-layout.js';
import { dimText, helperSource, type WgslContext } from './rules.js';
import { NEG_INF, atomicAdd, dkdvEntry, dqEntry } from './backward-passes.js';
import { tileClassFn } from './tile-class.js';
import { summaryEntry } from './kernel.js';
import { elementVars, tileVars } from './kernel-vars.js';
import { SUMMARY_THREADS } from './stages.js';

export interface WgslBackwardArtifact {
  readonly kind: 'wgsl-backward';
  readonly name: string;
  readonly code: string;
  readonly bindings: readonly BackwardBinding[];
  readonly uniforms: readonly BackwardUniform[];
  readonly params: AttentionKernel['params'];
  /** f32 params with a gradient, in grad_params slot order. */
  readonly gradParams: readonly string[];
  /** f32 tensors with a gradient (a grad_<name> binding each). */
  readonly gradTensors: readonly string[];
  /**
   * Entry points in launch order: tile summaries (an invocation per block, SUMMARY_THREADS a
   * workgroup, 1-D), then the two passes (an invocation per row, WORKGROUP a workgroup).
   */
  readonly entryPoints: readonly BackwardEntry[];
  readonly workgroupSize: number;
  readonly summaryThreads: number;
  readonly headDim: number;
  readonly valueDim: number;
}

export type BackwardEntry =
  | { readonly name: string; readonly rows: 'summary'; readonly tensor: string }
  | { readonly name: 'bwd_dq' | 'bwd_dkdv'; readonly rows: 'query' | 'key' };

const WORKGROUP = 64;
const BLOCK = 16;

export type Mode = TileMode;

/** Why the kernel has no WGSL backward, or undefined. */
export function backwardUnsupported(kernel: AttentionKernel): string | undefined {
  if (kernel.routing)
    return 'the WGSL backward pass does not take routing/selection kernels; the CUDA SIMT backward takes them';
  return storageUnsupported(kernel);
}

/** Why the kernel's storage (paged, quantized or 16-bit caches) has no f32 backward, or undefined. */
export function storageUnsupported(kernel: AttentionKernel): string | undefined {
  const f = kernel.formats;
  if (f.paged) return 'the backward pass does not read paged K/V caches yet';
  // The stored tensors only (`paged` is a layout, not one of them).
  for (const name of ['q', 'k', 'v', 'out'] as const) {
    const t = f[name];
    if (t.kind !== 'float' || t.dtype !== 'f32')
      return `the WGSL backward pass is f32 only; ${name} is stored as ${t.kind === 'quant' ? 'a quantized cache' : t.dtype}`;
  }
  return undefined;
}

/** The module's constants: sizes, tile classes and the extreme values the passes compare with. */
function constants(s: Schedule): string[] {
  return [
    `const HEAD_DIM: u32 = ${s.headDim}u;`,
    `const VALUE_DIM: u32 = ${s.valueDim}u;`,
    `const WORKGROUP: u32 = ${WORKGROUP}u;`,
    `const BLOCK: u32 = ${BLOCK}u;`,
    'const TILE_EMPTY: u32 = 0u;',
    'const TILE_FULL: u32 = 1u;',
    'const TILE_PARTIAL: u32 = 2u;',
    `const NEG_INF_BITS: u32 = 0xff800000u; // ${NEG_INF}`,
    'const I32_MIN: i32 = -2147483647i - 1i;',
    'const I32_MAX: i32 = 2147483647i;',
    'const F32_MAX: f32 = 3.4028234663852886e+38f;',
  ];
}

/** The backward module of a compiled (forward) kernel; throws when backwardUnsupported says so. */
export function renderWgslBackward(kernel: AttentionKernel): WgslBackwardArtifact {
  const why = backwardUnsupported(kernel);
  if (why) throw new Error(why);
  const grad = deriveScore(kernel.graph, kernel.score, kernel.params);
  const { bindings, uniforms, gradTensors } = backwardLayout(kernel, grad);
  const used = new Set<string>();
  const cx = (vars: Partial<Record<VarName, string>>): WgslContext => ({
    vars,
    ...kernelSlots(kernel),
    used,
  });
  const mode = backwardTileMode(kernel);
  const s = kernel.schedule;
  const entries = [
    dqEntry(kernel, grad, mode, cx(elementVars)),
    dkdvEntry(kernel, grad, mode, cx(elementVars)),
  ];
  const tiles = mode === 'dynamic' ? tileClassFn(kernel, cx(tileVars)) : [];
  const summaries =
    mode === 'dynamic' ? kernel.summaries.map((x) => kernel.tensors.find((t) => t.name === x.tensor)!) : [];
  const code = [
    `// attnc backward of ${kernel.name} (WGSL, f32): see codegen/wgsl/backward.ts.`,
    `// ∂score′/∂score and the param/tensor derivatives are derived by the compiler (ir/derive.ts).`,
    ...constants(s),
    '',
    backwardLayoutSource(kernel, bindings, uniforms),
    '',
    atomicAdd('grad_add_param', 'grad_params'),
    ...gradTensors.map((t) => atomicAdd(`grad_add_${t}`, gradTensorVar(t))),
    helperSource(cx(elementVars)),
    ...tiles,
    ...summaries.map((t) => summaryEntry(t, s.summaryBlock, dimText(t.dims[0]!))),
    ...entries,
    '',
  ].join('\n');
  return {
    kind: 'wgsl-backward',
    name: `${kernel.name}_backward`,
    code,
    bindings,
    uniforms,
    params: kernel.params,
    gradParams: grad.params.map((p) => p.name),
    gradTensors,
    entryPoints: [
      ...summaries.map((t): BackwardEntry => ({
        name: `summarize_${t.name}`,
        rows: 'summary',
        tensor: t.name,
      })),
      { name: 'bwd_dq', rows: 'query' },
      { name: 'bwd_dkdv', rows: 'key' },
    ],
    workgroupSize: WORKGROUP,
    summaryThreads: SUMMARY_THREADS,
    headDim: s.headDim,
    valueDim: s.valueDim,
  };
}
