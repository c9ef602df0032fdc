/// <reference types="@webgpu/types" preserve="true" />
// The process-wide WebGPU device: in Node through the `webgpu` package (Dawn; imported lazily so
// browser bundles never see it), in browsers through navigator.gpu.
import type { WgslLimits } from '../codegen/wgsl/limits.js';
import { importOptional } from '../optional.js';

let devicePromise: Promise<GPUDevice> | undefined;
// Dawn's Node bindings tear down the native instance when the GPU object is garbage-collected,
// crashing the process under a live device (seen as pthread assertion failures): keep them alive.
const keepAlive: unknown[] = [];

async function gpuEntry(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new Error('no WebGPU: navigator.gpu is undefined in this browser');
  }
  // A variable specifier keeps bundlers from resolving the Node-only package.
  const name = 'webgpu';
  const mod = await importOptional(
    name,
    'running kernels from Node (WebGPU through Dawn)',
    () => import(/* @vite-ignore */ name) as Promise<typeof import('webgpu')>,
  );
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  keepAlive.push(gpu);
  return gpu;
}

async function requestDevice(): Promise<GPUDevice> {
  const gpu = await gpuEntry();
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      'no WebGPU adapter: run `npm run gpu:setup` (a CPU Vulkan driver, Mesa lavapipe) and run through ' +
        '`node scripts/with-gpu.mjs <command>`, or use a machine with a GPU',
    );
  }
  keepAlive.push(adapter);
  // subgroups: the coop WGSL engine reduces row maxima with subgroup shuffles when it is there.
  const requiredFeatures = (['shader-f16', 'timestamp-query', 'subgroups'] as const).filter((f) =>
    adapter.features.has(f),
  );
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
    },
  });
  // A lost device is replaced on the next getDevice().
  void device.lost.then(() => {
    devicePromise = undefined;
  });
  return device;
}

/** The process-wide device (requested once). */
export function getDevice(): Promise<GPUDevice> {
  devicePromise ??= requestDevice().catch((e: unknown) => {
    devicePromise = undefined;
    throw e;
  });
  return devicePromise;
}

export function deviceLimits(device: GPUDevice): WgslLimits {
  const l = device.limits;
  return {
    maxWorkgroupStorageBytes: l.maxComputeWorkgroupStorageSize,
    maxInvocations: Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX),
    shaderF16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
  };
}
