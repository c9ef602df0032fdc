import type { TargetBackend } from '../target.js';
import { wgslBackend } from './index.js';
import { wgslScheduleRules } from './schedule-rules.js';
import { storageBufferProblem, storageBufferWarning } from './storage-buffers.js';

export const wgslTarget: TargetBackend = {
  render: (kernel, meta, limits) => {
    const artifact = wgslBackend(kernel, meta, limits);
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
