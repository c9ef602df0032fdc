// The backends, by target name: each a renderer plus its workgroup-memory footprint function
// (the schedule pass fits tile sizes to the device with it).
import type { Schedule } from '../ir/kernel.js';
import type { Target } from '../ir/passes/legalize.js';
import type { Artifact } from './artifact.js';
import type { AttentionKernel } from '../ir/kernel.js';
import type { TargetLimits } from '../ir/passes/schedule.js';
import { cudaBackend, cudaSharedBytes } from './cuda/index.js';
import { wgslBackend, wgslWorkgroupBytes } from './wgsl/index.js';

export interface TargetBackend {
  /** Renders a kernel; `limits` lets a backend reject what the device cannot run. */
  readonly render: (
    kernel: AttentionKernel,
    meta: { sourceHash: string; scheduleHash: string },
    limits: TargetLimits,
  ) => Artifact;
  readonly footprint: (s: Schedule) => number;
}

export const targets: Readonly<Record<Target, TargetBackend>> = {
  wgsl: {
    render: (kernel, meta, limits) => wgslBackend(kernel, meta, limits),
    footprint: wgslWorkgroupBytes,
  },
  cuda: { render: (kernel, meta) => cudaBackend(kernel, meta), footprint: cudaSharedBytes },
};
