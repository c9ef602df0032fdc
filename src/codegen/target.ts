// What a backend gives the compiler: a renderer, and its part of the schedule pass (candidates
// and fit rule, ir/passes/schedule.ts), so the engines a backend has and the rules they follow
// live in the backend.
import type { AttentionKernel } from '../ir/kernel.js';
import type { ScheduleRules, TargetLimits } from '../ir/passes/schedule.js';
import type { Artifact } from './artifact.js';

export interface TargetBackend {
  /** Renders a kernel; `limits` (the user's, over the target's defaults) lets it reject what the device cannot run. */
  readonly render: (
    kernel: AttentionKernel,
    meta: { sourceHash: string; scheduleHash: string },
    limits: TargetLimits,
  ) => Artifact;
  /** The schedules the pass may pick, preferred first, and the rule they must pass. */
  readonly schedule: ScheduleRules;
  /**
   * The limits an architecture implies (CUDA: `arch` such as sm_80 → its shared memory and
   * engines), over the target's portable defaults; throws for an arch it does not know.
   */
  readonly limitsFor?: (arch: string | undefined) => Partial<TargetLimits>;
  /**
   * What may keep the artifact off some devices, which `limits` cannot settle (WGSL: more storage
   * buffers than WebGPU's baseline when the device's limit is unknown); compile() reports them as
   * warnings at the declaration.
   */
  readonly warnings?: (artifact: Artifact, limits: TargetLimits) => readonly string[];
  /**
   * Loads what `render` needs for `kernel` that the entry left to import() (attnc/wgsl/async's
   * compileAsync, wgsl/target-lazy.ts); compileWithAsync awaits it before rendering.
   */
  readonly load?: (kernel: AttentionKernel) => Promise<void>;
}
