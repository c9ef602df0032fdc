// `attnc doctor`'s findings: what each probe saw, whether it is fine, and what to do when not.
// Pure over its probes (probes.ts), so tests describe machines instead of needing them.
import { escapeControl } from '../../diagnostics.js';
import type { AdapterFacts, DoctorProbes, VulkanFacts } from './probes.js';

export type CheckStatus = 'ok' | 'warn' | 'missing';

export interface DoctorCheck {
  readonly id: 'node' | 'webgpu' | 'adapter' | 'vulkan-loader' | 'lavapipe' | 'nvcc';
  readonly status: CheckStatus;
  readonly summary: string;
  /** What to do about it (absent when ok). */
  readonly fix?: string;
}

export interface DoctorReport {
  readonly node: string;
  readonly webgpu: string | undefined;
  /** The adapter the runtime uses (the first of `adapters`). */
  readonly adapter: AdapterFacts | undefined;
  readonly adapters: readonly AdapterFacts[];
  /** Why the adapter request failed, when it threw rather than finding none. */
  readonly adapterError?: string;
  readonly vulkan: VulkanFacts;
  readonly nvcc: string | undefined;
  readonly distro: readonly string[];
  readonly checks: readonly DoctorCheck[];
  /** Whether `attnc run` and the runtime can get a device here. */
  readonly canRunKernels: boolean;
}

const INSTALL = 'npx attnc doctor --install-lavapipe';
const isDebianLike = (distro: readonly string[]) => distro.includes('debian') || distro.includes('ubuntu');

export async function examine(p: DoctorProbes): Promise<DoctorReport> {
  // Before the adapter request: its lavapipe fallback sets VK_DRIVER_FILES in this process.
  const vulkan = p.vulkan();
  const webgpu = await p.webgpuVersion();
  let adapters: readonly AdapterFacts[] = [];
  let adapterError: string | undefined;
  if (webgpu !== undefined) {
    try {
      adapters = await p.adapters();
    } catch (e) {
      adapterError = (e as Error).message;
    }
  }
  const adapter = adapters[0];
  const facts = {
    node: p.nodeVersion(),
    webgpu,
    adapter,
    adapters,
    vulkan,
    nvcc: p.nvcc(),
    distro: p.distro(),
  };
  const checks = [
    nodeCheck(facts.node),
    webgpuCheck(webgpu),
    adapterCheck(facts, adapterError),
    loaderCheck(facts.vulkan, facts.distro),
    lavapipeCheck(facts.vulkan, facts.distro, adapter !== undefined),
    nvccCheck(facts.nvcc),
  ];
  return {
    ...facts,
    ...(adapterError !== undefined ? { adapterError } : {}),
    checks,
    canRunKernels: adapter !== undefined,
  };
}

function nodeCheck(version: string): DoctorCheck {
  const major = Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);
  return major >= 20
    ? { id: 'node', status: 'ok', summary: `Node ${version}` }
    : { id: 'node', status: 'missing', summary: `Node ${version}`, fix: 'attnc needs Node 20 or later' };
}

function webgpuCheck(version: string | undefined): DoctorCheck {
  if (version !== undefined) return { id: 'webgpu', status: 'ok', summary: `webgpu ${version} (Dawn)` };
  return {
    id: 'webgpu',
    status: 'missing',
    summary: 'the optional package `webgpu` is not installed: `attnc run` and the Node runtime need it',
    fix: '`npm install webgpu` (compiling kernels does not need it)',
  };
}

function adapterCheck(
  f: {
    webgpu: string | undefined;
    adapter: AdapterFacts | undefined;
    distro: readonly string[];
    vulkan: VulkanFacts;
  },
  error: string | undefined,
): DoctorCheck {
  const a = f.adapter;
  if (a) {
    const name = a.description || a.device || 'adapter';
    const via = a.source === 'lavapipe' ? `, through the lavapipe in ${f.vulkan.userLavapipe.dir}` : '';
    return { id: 'adapter', status: 'ok', summary: `${name} (${a.vendor} ${a.architecture})${via}` };
  }
  if (f.webgpu === undefined)
    return {
      id: 'adapter',
      status: 'missing',
      summary: 'WebGPU adapter: not looked for without `webgpu`',
      fix: '`npm install webgpu`',
    };
  const summary = error !== undefined ? `the adapter request failed: ${error}` : 'no WebGPU adapter found';
  if (f.vulkan.userLavapipe.installed)
    return {
      id: 'adapter',
      status: 'missing',
      summary: `${summary} (not even the lavapipe in ${f.vulkan.userLavapipe.dir})`,
      fix: 'check the Vulkan loader below; run again with VK_LOADER_DEBUG=error to see why the driver was refused',
    };
  if (f.vulkan.repoLavapipe)
    return {
      id: 'adapter',
      status: 'missing',
      summary,
      fix: `this repository has a lavapipe: run through \`node scripts/with-gpu.mjs <command>\`, or set VK_DRIVER_FILES=${f.vulkan.repoLavapipe}`,
    };
  return {
    id: 'adapter',
    status: 'missing',
    summary,
    fix: isDebianLike(f.distro)
      ? `\`${INSTALL}\` (a CPU Vulkan driver, Mesa ≥ 24 lavapipe, for this user), or use a machine with a GPU and its Vulkan driver`
      : 'install a GPU driver with Vulkan, or Mesa ≥ 24 with its lavapipe driver (mesa-vulkan-drivers or your distribution’s name for it)',
  };
}

function loaderCheck(v: VulkanFacts, distro: readonly string[]): DoctorCheck {
  if (v.loader) return { id: 'vulkan-loader', status: 'ok', summary: `Vulkan loader ${v.loader}` };
  return {
    id: 'vulkan-loader',
    status: 'missing',
    summary: 'no Vulkan loader (libvulkan.so.1): Dawn opens it on Linux',
    fix: isDebianLike(distro)
      ? '`sudo apt-get install libvulkan1`'
      : 'install your distribution’s Vulkan loader',
  };
}

function lavapipeCheck(v: VulkanFacts, distro: readonly string[], haveAdapter: boolean): DoctorCheck {
  const found = [
    v.driverFilesEnv !== undefined ? `VK_DRIVER_FILES=${v.driverFilesEnv}` : '',
    v.userLavapipe.installed ? `per-user lavapipe ${v.userLavapipe.dir}` : '',
    v.repoLavapipe ? `repository lavapipe ${v.repoLavapipe}` : '',
    v.systemIcds.length ? `system ICDs ${v.systemIcds.join(', ')}` : '',
  ].filter(Boolean);
  const summary = found.length
    ? `Vulkan drivers: ${found.join('; ')}`
    : 'no Vulkan driver manifests (ICDs) found';
  if (v.userLavapipe.installed || v.driverFilesEnv !== undefined || haveAdapter)
    return { id: 'lavapipe', status: 'ok', summary };
  return {
    id: 'lavapipe',
    status: 'warn',
    summary,
    fix: isDebianLike(distro)
      ? `\`${INSTALL}\` puts Mesa lavapipe in ${v.userLavapipe.dir}, where attnc finds it`
      : 'a Mesa ≥ 24 lavapipe: point VK_DRIVER_FILES at its lvp_icd.json',
  };
}

function nvccCheck(release: string | undefined): DoctorCheck {
  if (release !== undefined) return { id: 'nvcc', status: 'ok', summary: `nvcc ${release}` };
  return {
    id: 'nvcc',
    status: 'warn',
    summary:
      'nvcc not on PATH: `attnc compile --target cuda` still writes .cu files, nothing here builds them',
    fix: 'install the CUDA toolkit (12 or later) to build the CUDA kernels on this machine',
  };
}

/** The report as text for a terminal: one line per check, its fix below, adapter details. */
export function renderReport(r: DoctorReport): string {
  const lines = ['attnc doctor'];
  for (const c of r.checks) {
    lines.push(`  ${c.status.padEnd(8)}${escapeControl(c.summary)}`);
    if (c.id === 'adapter' && r.adapter) lines.push(...adapterLines(r.adapter));
    if (c.id === 'adapter')
      for (const other of r.adapters.slice(1))
        lines.push(
          `          also: ${escapeControl(other.description || other.device)} (${other.vendor} ${other.architecture})`,
        );
    if (c.fix) lines.push(`          fix: ${escapeControl(c.fix)}`);
  }
  lines.push(r.canRunKernels ? 'kernels can run here.' : 'kernels cannot run here yet: see the fixes above.');
  return lines.join('\n') + '\n';
}

function adapterLines(a: AdapterFacts): string[] {
  const key = ['shader-f16', 'subgroups', 'timestamp-query'];
  const has = key.map((f) => `${f} ${a.features.includes(f) ? 'yes' : 'no'}`).join(', ');
  const limits = Object.entries(a.limits).map(([k, v]) => `${k} ${v}`);
  return [`          features: ${has} (${a.features.length} in all)`, ...limits.map((l) => `          ${l}`)];
}
