// What a WGSL schedule needs from a device, and the check that it fits. The schedule pass calls
// wgslWorkgroupBytes (or wgslScheduleProblem) to pick tile sizes; the backend and the runtime call
// checkWgslSchedule and refuse schedules that would fail pipeline creation on the device.
import type { ArtifactSchedule } from '../artifact.js';
import { describeSchedule, scheduleShapeProblem } from '../common.js';
import type { Schedule } from '../../ir/kernel.js';
import { coopScheduleProblem, coopWorkgroupBytes, isCoop } from './coop-geometry.js';

export interface WgslLimits {
  /** GPUSupportedLimits.maxComputeWorkgroupStorageSize. */
  maxWorkgroupStorageBytes: number;
  /** min(maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupSizeX). */
  maxInvocations: number;
  /** Whether the device has the `shader-f16` feature. */
  shaderF16: boolean;
  /** Whether the device has the `subgroups` feature (the coop engine's row reductions use it). */
  subgroups?: boolean;
  /**
   * Whether the adapter is a CPU implementation (lavapipe, SwiftShader, WARP), where the row engine
   * wins; on hardware (false) the default WGSL engine is coop. Unknown (undefined): row.
   */
  softwareAdapter?: boolean;
  /**
   * GPUSupportedLimits.maxStorageBuffersPerShaderStage. Unknown (undefined): compile() warns when a
   * kernel binds more than WebGPU's baseline of 8 (storage-buffers.ts) instead of refusing it.
   */
  maxStorageBuffers?: number;
}

/** The limits every WebGPU device guarantees (`shader-f16` is optional, so it is off). */
export const defaultWgslLimits: Readonly<WgslLimits> = Object.freeze({
  maxWorkgroupStorageBytes: 16384,
  maxInvocations: 256,
  shaderF16: false,
});

/**
 * Workgroup memory of the row engine's entry points: one K and one V tile staged as f32, plus one
 * u32 flag (the decode split's `decode_hit`, a routed tile's `tile_hit`), which WGSL rounds to 16
 * bytes: without it a decode module of 32 keys at D = 64 took 16400 bytes of the 16384 every
 * device guarantees. Coop engine: see coopWorkgroupBytes.
 */
export function wgslWorkgroupBytes(s: Schedule): number {
  if (isCoop(s)) return coopWorkgroupBytes(s);
  return 4 * s.blockK * (s.headDim + s.valueDim) + 16;
}

/**
 * Why `s` (a schedule with its storage dtype, as an artifact records it) cannot run under
 * `limits` (undefined when it can). Without `limits`, only what holds on
 * every device is checked (the runtime checks the rest against the device it runs on).
 */
export function wgslScheduleProblem(s: ArtifactSchedule, limits?: WgslLimits): string | undefined {
  const name = describeSchedule(s, s.dtype);
  const shape = scheduleShapeProblem(s, s.dtype);
  if (shape) return shape;
  if (s.dtype === 'bf16') {
    return `${name}: bf16 storage is not supported by the WGSL backend (WebGPU has no bf16 type); use f16 or f32`;
  }
  const coop = isCoop(s) ? coopScheduleProblem(s) : undefined;
  if (coop !== undefined) return `${name}: ${coop}`;
  if (!isCoop(s) && s.threads !== s.blockQ) {
    return `${name}: the WGSL kernel runs one invocation per query row, so threads must equal blockQ`;
  }
  if (!limits) return undefined;
  if (s.dtype === 'f16' && !limits.shaderF16) {
    return `${name}: f16 storage needs the WebGPU feature "shader-f16", which this device lacks; use f32, or limits { shaderF16: true } (CLI: --shader-f16) for a device that has it`;
  }
  if (s.subgroups === true && limits.subgroups !== true) {
    return `${name}: subgroup reductions need the WebGPU feature "subgroups", which this device lacks`;
  }
  if (s.threads > limits.maxInvocations) {
    return `${name}: ${s.threads} invocations per workgroup exceed the device limit of ${limits.maxInvocations}`;
  }
  const bytes = wgslWorkgroupBytes(s);
  if (bytes > limits.maxWorkgroupStorageBytes) {
    const formula = isCoop(s) ? 'coop engine' : '4·blockK·(D+Dv)';
    return `${name}: needs ${bytes} bytes of workgroup memory (${formula}), the device allows ${limits.maxWorkgroupStorageBytes}; lower blockK`;
  }
  return undefined;
}

export function checkWgslSchedule(s: ArtifactSchedule, limits?: WgslLimits): void {
  const problem = wgslScheduleProblem(s, limits);
  if (problem !== undefined) throw new Error(`WGSL backend: ${problem}`);
}
