// The CUDA backend: renders the kernel IR to a .cu (kernels + extern "C" launcher), a C header and
// a JSON manifest. See kernel.ts for the layout of the artifact and simt.ts for the attention core.
import type { Backend } from '../artifact.js';
import { renderCuda } from './kernel.js';
import type { CudaLimits } from './plan.js';

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

/** Renders for sm_90a with the core of the schedule's engine (SIMT, mma.sync or wgmma). */
export const cudaBackend: Backend = (kernel, meta) => renderCuda(kernel, meta);

/** A backend for other limits (e.g. a smaller shared-memory budget). */
export function createCudaBackend(limits: CudaLimits): Backend {
  return (kernel, meta) => renderCuda(kernel, meta, { limits });
}
