import type { TargetBackend } from '../target.js';
import { wgslBackend, wgslWorkgroupBytes } from './index.js';

export const wgslTarget: TargetBackend = {
  render: (kernel, meta, limits) => wgslBackend(kernel, meta, limits),
  footprint: wgslWorkgroupBytes,
};
