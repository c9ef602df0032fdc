// The process-wide WebGPU device: in Node through the `webgpu` package (Dawn; imported lazily so
// browser bundles never see it), in browsers through navigator.gpu.
import type { WgslLimits } from '../codegen/wgsl/limits.js';
import { importOptional } from '../optional.js';
import { useInstalledLavapipe } from './lavapipe.js';

let devicePromise: Promise<GPUDevice> | undefined;
// Dawn's Node bindings tear down the native instance when the GPU object is garbage-collected,
// crashing the process under a live device (seen as pthread assertion failures): keep them alive.
const keepAlive: unknown[] = [];

const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

/** Node: a new Dawn instance (it reads the Vulkan loader's environment as it is now). */
async function dawnInstance(): Promise<GPU> {
  // A variable specifier keeps bundlers from resolving the Node-only package.
  const name = 'webgpu';
  const mod = await importOptional(
    name,
    'running kernels from Node (WebGPU through Dawn)',
    () => import(/* @vite-ignore */ name) as Promise<typeof import('webgpu')>,
  );
  Object.assign(globalThis, mod.globals);
  // ATTNC_DAWN_FLAGS: Dawn options for benchmarks, e.g. disable-dawn-features=timestamp_quantization
  // (Dawn rounds timestamps to 2^16 ns by default: ±6% on a 1 ms decode).
  const flags = (typeof process !== 'undefined' ? process.env.ATTNC_DAWN_FLAGS : undefined) ?? '';
  const gpu = mod.create(flags.split(/\s+/).filter((f) => f !== ''));
  keepAlive.push(gpu);
  return gpu;
}

/** How an adapter was found: the browser's or the machine's own, or the per-user lavapipe. */
export type AdapterSource = 'browser' | 'native' | 'lavapipe';

/**
 * The default adapter, or undefined when there is none. In Node with no adapter, the lavapipe
 * that `attnc doctor --install-lavapipe` installed (runtime/lavapipe.ts) is tried next.
 */
export async function findAdapter(): Promise<{ adapter: GPUAdapter; source: AdapterSource } | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    const adapter = await nav.gpu.requestAdapter();
    return adapter ? { adapter, source: 'browser' } : undefined;
  }
  if (!isNode()) throw new Error('no WebGPU: navigator.gpu is undefined in this browser');
  const native = await (await dawnInstance()).requestAdapter();
  if (native) return { adapter: native, source: 'native' };
  if (!(await useInstalledLavapipe())) return undefined;
  const lavapipe = await (await dawnInstance()).requestAdapter();
  return lavapipe ? { adapter: lavapipe, source: 'lavapipe' } : undefined;
}

/** Names commands of the installed package (not the repository's scripts). */
export const NO_ADAPTER_MESSAGE =
  'no WebGPU adapter: run `npx attnc doctor` to see what is missing; on Debian or Ubuntu ' +
  '`npx attnc doctor --install-lavapipe` installs a CPU Vulkan driver (Mesa lavapipe) for your user; ' +
  'or use a machine with a GPU';

async function requestDevice(): Promise<GPUDevice> {
  const found = await findAdapter();
  if (!found) throw new Error(NO_ADAPTER_MESSAGE);
  const { adapter } = found;
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
    maxStorageBuffers: l.maxStorageBuffersPerShaderStage,
    ...softwareAdapter(device),
  };
}

/** CPU adapters by the spec's flag, or by name where an implementation does not set it. */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

/** Whether `device` runs on a CPU adapter (absent when the implementation does not say). */
function softwareAdapter(device: GPUDevice): { softwareAdapter?: boolean } {
  // GPUDevice.adapterInfo is recent (2024); older implementations leave the engine choice to the caller.
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (!info) return {};
  const names = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return { softwareAdapter: info.isFallbackAdapter === true || SOFTWARE_NAMES.test(names) };
}
