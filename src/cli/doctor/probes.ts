// What `attnc doctor` looks at, each behind one function so tests inject a machine of their own
// (report.test feeds fake probes; nothing here is called there). The real probes only read:
// files, `nvcc --version`, and one WebGPU adapter request.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findAdapter, type AdapterSource } from '../../runtime/device.js';
import { LAVAPIPE_ICD, lavapipeDir } from '../../runtime/lavapipe.js';

export interface AdapterFacts {
  readonly source: AdapterSource;
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly features: readonly string[];
  readonly limits: Readonly<Record<string, number>>;
}

export interface VulkanFacts {
  /** VK_DRIVER_FILES or VK_ICD_FILENAMES as set in the environment. */
  readonly driverFilesEnv: string | undefined;
  /** libvulkan.so.1 (the loader Dawn opens) where it was found. */
  readonly loader: string | undefined;
  /** ICD manifests of the system (/usr/share/vulkan/icd.d, /etc/vulkan/icd.d). */
  readonly systemIcds: readonly string[];
  /** A repository-style `.gpu/lvp_icd.json` under the working directory. */
  readonly repoLavapipe: string | undefined;
  /** The per-user lavapipe's folder and whether its ICD manifest is there. */
  readonly userLavapipe: { readonly dir: string; readonly installed: boolean };
}

export interface DoctorProbes {
  nodeVersion(): string;
  /** The optional `webgpu` package's version, or undefined when it is not installed. */
  webgpuVersion(): Promise<string | undefined>;
  /**
   * The adapters found: first the one the runtime would use (its lookup, lavapipe fallback
   * included), then any other that a high-performance or low-power request returns. Empty: none.
   */
  adapters(): Promise<readonly AdapterFacts[]>;
  vulkan(): VulkanFacts;
  /** `nvcc --version`'s release (e.g. "13.0"), or undefined when nvcc is not on PATH. */
  nvcc(): string | undefined;
  /** /etc/os-release's ID and ID_LIKE, e.g. ["debian"] or ["ubuntu", "debian"]. */
  distro(): readonly string[];
}

/** The limits that decide which kernels and sizes fit (WGSL backend and run-limits). */
const KEY_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
] as const;

async function adapters(): Promise<readonly AdapterFacts[]> {
  const found = await findAdapter();
  if (!found) return [];
  const all = [facts(found.adapter, found.source)];
  if (found.source === 'browser') return all;
  // The same Vulkan environment the runtime settled on (findAdapter may have set it).
  const name = 'webgpu';
  const { create } = (await import(/* @vite-ignore */ name)) as typeof import('webgpu');
  const gpu = create([]);
  for (const powerPreference of ['high-performance', 'low-power'] as const) {
    const a = await gpu.requestAdapter({ powerPreference });
    const f = a && facts(a, found.source);
    if (f && !all.some((x) => sameAdapter(x, f))) all.push(f);
  }
  return all;
}

const sameAdapter = (a: AdapterFacts, b: AdapterFacts) =>
  a.vendor === b.vendor &&
  a.architecture === b.architecture &&
  a.device === b.device &&
  a.description === b.description;

function facts(adapter: GPUAdapter, source: AdapterSource): AdapterFacts {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const k of KEY_LIMITS) limits[k] = adapter.limits[k];
  return {
    source,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

async function webgpuVersion(): Promise<string | undefined> {
  try {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('webgpu/package.json');
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/lib64',
];
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

function vulkanFacts(): VulkanFacts {
  const env = process.env;
  const dir = lavapipeDir(env, homedir());
  const repo = join(process.cwd(), '.gpu', LAVAPIPE_ICD);
  return {
    driverFilesEnv: env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES || undefined,
    loader: LIB_DIRS.map((d) => join(d, 'libvulkan.so.1')).find((f) => existsSync(f)),
    systemIcds: ICD_DIRS.flatMap((d) => {
      try {
        return readdirSync(d)
          .filter((f) => f.endsWith('.json'))
          .map((f) => join(d, f));
      } catch {
        return [];
      }
    }),
    repoLavapipe: existsSync(repo) ? repo : undefined,
    userLavapipe: { dir, installed: existsSync(join(dir, LAVAPIPE_ICD)) },
  };
}

function nvccRelease(): string | undefined {
  const r = spawnSync('nvcc', ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return undefined;
  return /release (\d+\.\d+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

function distro(): readonly string[] {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1] ?? '';
    return [field('ID'), ...field('ID_LIKE').split(/\s+/)].filter(Boolean);
  } catch {
    return [];
  }
}

export const machineProbes: DoctorProbes = {
  nodeVersion: () => process.version,
  webgpuVersion,
  adapters,
  vulkan: vulkanFacts,
  nvcc: nvccRelease,
  distro,
};
