// The CUDA backend: renders the kernel IR to a .cu (kernels + extern "C" launcher), a C header and
// a JSON manifest. See kernel.ts for the layout of the artifact and simt.ts for the attention core.
import type { Backend } from '../artifact.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Artifact } from '../artifact.js';
import { renderCuda, type CudaMeta } from './kernel.js';
import type { CudaLimits } from './plan.js';
import { floatKvProblem, renderStagedCuda } from './quant-stage.js';

export { renderCuda, type CudaMeta } from './kernel.js';
export {
  checkCudaSchedule,
  cudaLimits,
  cudaScheduleProblem,
  cudaSharedBytes,
  simtPlan,
  type CudaLimits,
  type SimtPlan,
} from './plan.js';
export { cudaRenderer, cudaRules } from './rules.js';
export { cudaLayout, type ArgField, type CudaLayout } from './layout.js';
export { mmaCore } from './mma.js';
export { mmaPlan, mmaScheduleProblem, mmaSharedBytes, type MmaPlan } from './mma-plan.js';
export { wgmmaCore } from './wgmma.js';
export { wgmmaPlan, wgmmaScheduleProblem, wgmmaSharedBytes, type WgmmaPlan } from './wgmma-plan.js';
export { wgmmaWsCore } from './wgmma-ws.js';
export {
  PRODUCER_THREADS,
  wgmmaWsPlan,
  wgmmaWsScheduleProblem,
  wgmmaWsSharedBytes,
  type WgmmaWsPlan,
} from './wgmma-ws-plan.js';
export { simtCore, type AttentionCore, type CoreOutput, type CoreSpec } from './simt.js';

export { renderStagedCuda, stagedProblem } from './quant-stage.js';

/** renderCuda, or the staged-prefill artifact when the schedule asks for it (quant-stage.ts). */
export function renderCudaArtifact(
  kernel: AttentionKernel,
  meta: CudaMeta,
  opts: { limits?: CudaLimits } = {},
): Artifact {
  const floatKv =
    kernel.schedule.quantPrefill === 'fused' ? floatKvProblem(kernel.formats, 'fused') : undefined;
  if (floatKv !== undefined) throw new Error(`CUDA backend: ${floatKv}`);
  return kernel.schedule.quantPrefill === 'staged'
    ? renderStagedCuda(kernel, meta, opts)
    : renderCuda(kernel, meta, opts);
}

/** Renders for sm_90a with the core of the schedule's engine (SIMT, mma.sync or wgmma). */
export const cudaBackend: Backend = (kernel, meta) => renderCudaArtifact(kernel, meta);

/** A backend for other limits (e.g. a smaller shared-memory budget). */
export function createCudaBackend(limits: CudaLimits): Backend {
  return (kernel, meta) => renderCudaArtifact(kernel, meta, { limits });
}
