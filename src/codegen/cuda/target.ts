import type { TargetBackend } from '../target.js';
import { cudaArchs, defaultCudaArch, isCudaArch } from './arch.js';
import { renderCudaArtifact } from './index.js';
import { cudaLimitsOf } from './plan.js';
import { cudaScheduleRules } from './schedule-rules.js';

export const cudaTarget: TargetBackend = {
  // The user's limits reach the renderer too, so it checks what the schedule pass fitted.
  render: (kernel, meta, limits) => renderCudaArtifact(kernel, meta, { limits: cudaLimitsOf(limits) }),
  schedule: cudaScheduleRules,
  limitsFor: (arch) => {
    const a = arch ?? defaultCudaArch;
    if (!isCudaArch(a))
      throw new Error(`unknown CUDA arch \`${a}\` (known: ${Object.keys(cudaArchs).join(', ')})`);
    return { maxWorkgroupStorageBytes: cudaArchs[a].maxSharedBytes, arch: a, engines: cudaArchs[a].engines };
  },
};
