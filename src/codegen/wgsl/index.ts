// The WGSL backend: renders the kernel IR to a WGSL module plus its launch manifest.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Artifact, Backend } from '../artifact.js';
import { eagerWgslFeatures } from './features-eager.js';
import { renderWgslWith, type WgslMeta } from './kernel.js';
import type { WgslLimits } from './limits.js';

export { renderWgslWith, type WgslMeta } from './kernel.js';
export {
  checkWgslSchedule,
  defaultWgslLimits,
  wgslScheduleProblem,
  wgslWorkgroupBytes,
  type WgslLimits,
} from './limits.js';
export { wgslRenderer, wgslRules } from './rules.js';

/** Renders `kernel` with every feature's code generator imported statically (features-eager.ts). */
export function renderWgsl(kernel: AttentionKernel, meta: WgslMeta, limits?: WgslLimits): Artifact {
  return renderWgslWith(eagerWgslFeatures, kernel, meta, limits);
}

/**
 * The WGSL Backend. Pass the device's `limits` (runtime/webgpu.ts deviceLimits) to have a schedule
 * that does not fit rejected here; without them only device-independent checks run, and
 * createKernel checks the device it runs on.
 */
export function wgslBackend(kernel: AttentionKernel, meta: WgslMeta, limits?: WgslLimits): Artifact {
  return renderWgsl(kernel, meta, limits);
}

/** A Backend bound to one device's limits. */
export function createWgslBackend(limits: WgslLimits): Backend {
  return (kernel, meta) => renderWgsl(kernel, meta, limits);
}

// Type-level check that wgslBackend is a Backend.
const _isBackend: Backend = wgslBackend;
void _isBackend;
