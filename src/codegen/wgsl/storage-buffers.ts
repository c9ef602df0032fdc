// The storage buffers a WGSL kernel binds against the device's maxStorageBuffersPerShaderStage.
// Pipeline creation fails past it, so the runtime checks it (runtime/webgpu.ts); compile() checks
// it too, so an offline compile says so before any device is at hand: a refusal when the caller's
// limits name the device's count, else a warning past WebGPU's baseline, which every device
// allows (attnc's runtime requests the adapter's own limit: lavapipe's 16 run zipcache's 15).
import type { Artifact } from '../artifact.js';
import type { WgslLimits } from './limits.js';

/** maxStorageBuffersPerShaderStage of every WebGPU device (the spec's default limit). */
export const BASELINE_STORAGE_BUFFERS = 8;

/** The storage (non-uniform) buffers of the kernel's main module. */
export function storageBufferCount(artifact: Artifact): number {
  return artifact.bindings.filter((b) => b.role !== 'uniforms').length;
}

/**
 * Why the kernel cannot run on a device whose limit `limits` names, or undefined. The decode mode
 * is not counted: the runtime and emitted modules skip it on a device it does not fit.
 */
export function storageBufferProblem(artifact: Artifact, limits: Partial<WgslLimits>): string | undefined {
  const most = limits.maxStorageBuffers;
  const count = storageBufferCount(artifact);
  if (most === undefined || count <= most) return undefined;
  return `kernel \`${artifact.name}\` binds ${count} storage buffers; the device allows ${most} (maxStorageBuffersPerShaderStage)`;
}

/** The warning for a kernel past the baseline when the device's limit is not known, or undefined. */
export function storageBufferWarning(artifact: Artifact, limits: Partial<WgslLimits>): string | undefined {
  const count = storageBufferCount(artifact);
  if (limits.maxStorageBuffers !== undefined || count <= BASELINE_STORAGE_BUFFERS) return undefined;
  return (
    `kernel \`${artifact.name}\` binds ${count} storage buffers, more than the ${BASELINE_STORAGE_BUFFERS} every ` +
    `WebGPU device allows (maxStorageBuffersPerShaderStage): it runs only on a device created with a ` +
    `limit of ${count} or more (attnc's runtime requests the adapter's limit)`
  );
}
