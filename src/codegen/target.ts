// What a backend gives the compiler: a renderer plus its workgroup-memory footprint function
// (the schedule pass fits tile sizes to the device with it).
import type { AttentionKernel, Schedule } from '../ir/kernel.js';
import type { TargetLimits } from '../ir/passes/schedule.js';
import type { Artifact } from './artifact.js';

export interface TargetBackend {
  /** Renders a kernel; `limits` lets a backend reject what the device cannot run. */
  readonly render: (
    kernel: AttentionKernel,
    meta: { sourceHash: string; scheduleHash: string },
    limits: TargetLimits,
  ) => Artifact;
  readonly footprint: (s: Schedule) => number;
  /**
   * The limits an architecture implies (CUDA: `arch` such as sm_80 → its shared memory and
   * engines), over the target's portable defaults; throws for an arch it does not know.
   */
  readonly limitsFor?: (arch: string | undefined) => Partial<TargetLimits>;
}
