import type { TargetBackend } from '../target.js';
import { wgslBackend } from './index.js';
import { wgslScheduleRules } from './schedule-rules.js';

export const wgslTarget: TargetBackend = {
  render: (kernel, meta, limits) => wgslBackend(kernel, meta, limits),
  schedule: wgslScheduleRules,
};
