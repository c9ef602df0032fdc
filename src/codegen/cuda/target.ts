import type { TargetBackend } from '../target.js';
import { cudaArchs, defaultCudaArch, isCudaArch } from './arch.js';
import { cudaSharedBytes, renderCuda } from './index.js';
import { cudaLimits } from './plan.js';

export const cudaTarget: TargetBackend = {
  // The user's limits reach the renderer too, so it checks what the schedule pass fitted.
  render: (kernel, meta, limits) => {
    const arch = isCudaArch(limits.arch) ? limits.arch : defaultCudaArch;
    return renderCuda(kernel, meta, {
      limits: {
        ...cudaLimits,
        arch,
        maxThreadsPerBlock: limits.maxInvocations,
        maxSharedBytes: limits.maxWorkgroupStorageBytes,
      },
    });
  },
  footprint: cudaSharedBytes,
  limitsFor: (arch) => {
    const a = arch ?? defaultCudaArch;
    if (!isCudaArch(a))
      throw new Error(`unknown CUDA arch \`${a}\` (known: ${Object.keys(cudaArchs).join(', ')})`);
    return { maxWorkgroupStorageBytes: cudaArchs[a].maxSharedBytes, arch: a, engines: cudaArchs[a].engines };
  },
};
