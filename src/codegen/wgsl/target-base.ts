// The WGSL TargetBackend over a table of feature code generators (features.ts): target.ts binds
// it to the static table (`compile`), target-lazy.ts to the one import() fills (`compileAsync`).
import type { TargetBackend } from '../target.js';
import type { WgslFeatures } from './features.js';
import { renderWgslWith } from './kernel.js';
import { wgslScheduleRules } from './schedule-rules.js';
import { storageBufferProblem, storageBufferWarning } from './storage-buffers.js';

export function wgslTargetWith(features: Partial<WgslFeatures>): TargetBackend {
  return {
    render: (kernel, meta, limits) => {
      const artifact = renderWgslWith(features, kernel, meta, limits);
      const problem = storageBufferProblem(artifact, limits);
      if (problem !== undefined) throw new Error(`WGSL backend: ${problem}`);
      return artifact;
    },
    schedule: wgslScheduleRules,
    warnings: (artifact, limits) => {
      const warning = storageBufferWarning(artifact, limits);
      return warning === undefined ? [] : [warning];
    },
  };
}
