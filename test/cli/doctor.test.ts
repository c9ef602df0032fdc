// `attnc doctor` (src/cli/doctor): its report over injected probes — a headless Debian box with
// nothing, one with a per-user lavapipe, a GPU machine — as text and as --json; the lavapipe
// install plan for Debian 12, later releases and other systems (nothing is installed here); and
// where the runtime looks for the per-user lavapipe.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AdapterFacts, DoctorProbes, VulkanFacts } from '../../src/cli/doctor/probes.js';
import { examine, renderReport } from '../../src/cli/doctor/report.js';
import {
  installPlan,
  mesaMajor,
  icdManifest,
  type InstallContext,
} from '../../src/cli/doctor/install-lavapipe.js';
import { lavapipeDir, lavapipeEnv } from '../../src/runtime/lavapipe.js';
import { NO_ADAPTER_MESSAGE } from '../../src/runtime/device.js';

const noVulkan: VulkanFacts = {
  driverFilesEnv: undefined,
  loader: undefined,
  systemIcds: [],
  repoLavapipe: undefined,
  userLavapipe: { dir: '/home/u/.cache/attnc/lavapipe', installed: false },
};

const lavapipeAdapter: AdapterFacts = {
  source: 'lavapipe',
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe',
  description: 'llvmpipe: Mesa 25.0.7',
  features: ['shader-f16', 'subgroups', 'timestamp-query'],
  limits: { maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 134217728 },
};

function probes(over: Partial<DoctorProbes> = {}): DoctorProbes {
  return {
    nodeVersion: () => 'v20.20.2',
    webgpuVersion: async () => '0.6.2',
    adapters: async () => [],
    vulkan: () => noVulkan,
    nvcc: () => undefined,
    distro: () => ['debian'],
    ...over,
  };
}

const status = (r: Awaited<ReturnType<typeof examine>>, id: string) => r.checks.find((c) => c.id === id);

describe('attnc doctor report', () => {
  it('a bare headless Debian box: each missing piece with its fix, naming installed commands', async () => {
    const r = await examine(probes());
    expect(r.canRunKernels).toBe(false);
    expect(status(r, 'adapter')).toMatchObject({ status: 'missing' });
    expect(status(r, 'adapter')?.fix).toContain('npx attnc doctor --install-lavapipe');
    expect(status(r, 'vulkan-loader')).toMatchObject({
      status: 'missing',
      fix: '`sudo apt-get install libvulkan1`',
    });
    expect(status(r, 'nvcc')).toMatchObject({ status: 'warn' });
    const text = renderReport(r);
    expect(text).toMatch(/missing no WebGPU adapter found\n\s+fix: `npx attnc doctor --install-lavapipe`/);
    expect(text).toContain('kernels cannot run here yet');
    // No repository-only commands in what an installed package tells its user.
    expect(text).not.toMatch(/gpu:setup|with-gpu/);
  });

  it('no webgpu package: it says to install it and does not look for an adapter', async () => {
    const adapters = vi.fn(async () => [lavapipeAdapter]);
    const r = await examine(probes({ webgpuVersion: async () => undefined, adapters }));
    expect(adapters).not.toHaveBeenCalled();
    expect(status(r, 'webgpu')).toMatchObject({
      status: 'missing',
      fix: expect.stringContaining('npm install webgpu'),
    });
    expect(r.canRunKernels).toBe(false);
    // The adapter line named no subject: "missing not looked for: needs `webgpu`".
    expect(renderReport(r)).toContain('missing WebGPU adapter: not looked for without `webgpu`\n');
  });

  it('an adapter through the per-user lavapipe: name, features incl. shader-f16 and subgroups, limits', async () => {
    const vulkan = { ...noVulkan, loader: '/usr/lib/x86_64-linux-gnu/libvulkan.so.1' };
    const installed = { ...vulkan, userLavapipe: { ...vulkan.userLavapipe, installed: true } };
    const r = await examine(
      probes({ adapters: async () => [lavapipeAdapter], vulkan: () => installed, nvcc: () => '13.0' }),
    );
    expect(r.canRunKernels).toBe(true);
    expect(r.checks.every((c) => c.status === 'ok')).toBe(true);
    const text = renderReport(r);
    expect(text).toContain(
      'llvmpipe: Mesa 25.0.7 (mesa software), through the lavapipe in /home/u/.cache/attnc/lavapipe',
    );
    expect(text).toContain('features: shader-f16 yes, subgroups yes, timestamp-query yes');
    expect(text).toContain('maxComputeWorkgroupStorageSize 32768');
    expect(text).toContain('nvcc 13.0');
  });

  it('several adapters: the runtime uses the first; the others are listed', async () => {
    const gpu = {
      ...lavapipeAdapter,
      source: 'native' as const,
      vendor: 'nvidia',
      architecture: 'hopper',
      description: 'NVIDIA H200',
    };
    const r = await examine(probes({ adapters: async () => [gpu, lavapipeAdapter] }));
    expect(r.adapter).toEqual(gpu);
    expect(r.adapters).toHaveLength(2);
    const text = renderReport(r);
    expect(text).toMatch(/ok {6}NVIDIA H200 \(nvidia hopper\)\n/);
    expect(text).toContain('also: llvmpipe: Mesa 25.0.7 (mesa software)');
  });

  it('an adapter request that throws is reported, not raised', async () => {
    const r = await examine(probes({ adapters: async () => Promise.reject(new Error('Dawn exploded')) }));
    expect(r.adapterError).toBe('Dawn exploded');
    expect(status(r, 'adapter')?.summary).toContain('the adapter request failed: Dawn exploded');
  });

  it('another distribution: no --install-lavapipe advice, a portable one', async () => {
    const r = await examine(probes({ distro: () => ['fedora'] }));
    expect(status(r, 'adapter')?.fix).not.toContain('--install-lavapipe');
    expect(status(r, 'adapter')?.fix).toContain('Mesa ≥ 24');
  });

  it('the runtime error names commands that exist in the installed package', () => {
    expect(NO_ADAPTER_MESSAGE).toContain('npx attnc doctor');
    expect(NO_ADAPTER_MESSAGE).not.toMatch(/gpu:setup|with-gpu|scripts\//);
  });
});

describe('attnc doctor --json', () => {
  afterEach(() => vi.restoreAllMocks());

  it('one document: head, checks and facts; exit 1 when no adapter, 0 with one', async () => {
    const { doctorCommand } = await import('../../src/cli/doctor/index.js');
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    expect(await doctorCommand({ json: true }, probes())).toBe(1);
    const doc = JSON.parse(out) as Record<string, unknown>;
    expect(doc).toMatchObject({ schema: 1, command: 'doctor', ok: false, exitCode: 1, canRunKernels: false });
    expect(doc.checks).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'adapter', status: 'missing' })]),
    );
    out = '';
    expect(await doctorCommand({ json: true }, probes({ adapters: async () => [lavapipeAdapter] }))).toBe(0);
    expect(JSON.parse(out)).toMatchObject({
      ok: true,
      adapter: { source: 'lavapipe', features: expect.arrayContaining(['shader-f16']) },
    });
  });
});

describe('--install-lavapipe plan', () => {
  const ctx = (over: Partial<InstallContext>): InstallContext => ({
    distro: ['debian'],
    codename: 'bookworm',
    machine: 'x86_64',
    mirror: 'http://mirror.example/debian',
    isRoot: false,
    dir: '/home/u/.cache/attnc/lavapipe',
    installed: () => true,
    ...over,
  });

  it('Debian 12: backports .debs through a private apt configuration into the per-user folder', () => {
    const plan = installPlan(ctx({}));
    expect(plan.kind).toBe('user');
    if (plan.kind !== 'user') return;
    expect(plan.sources).toBe('deb http://mirror.example/debian bookworm-backports main\n');
    expect(plan.libDir).toBe('/home/u/.cache/attnc/lavapipe/mesa/usr/lib/x86_64-linux-gnu');
    expect(plan.steps.map((s) => s.cmd)).toEqual(['apt-get', 'apt-get']); // nothing system-wide: all present
    const download = plan.steps[1]!;
    expect(download.args).toEqual(expect.arrayContaining(['download', 'mesa-vulkan-drivers', 'libdrm2']));
    expect(download.args).toContain('Dir::Etc::SourceList=/home/u/.cache/attnc/lavapipe/apt/sources.list');
    expect(download.cwd).toBe('/home/u/.cache/attnc/lavapipe/debs');
  });

  it('missing system libraries are installed with sudo unless root', () => {
    const missing = (p: string) => p !== 'libvulkan1' && p !== 'libllvm15';
    const plan = installPlan(ctx({ installed: missing }));
    expect(plan.steps[0]).toEqual({ cmd: 'sudo', args: ['apt-get', 'update', '-qq'] });
    expect(plan.steps[1]!.args).toEqual(expect.arrayContaining(['install', 'libvulkan1', 'libllvm15']));
    expect(installPlan(ctx({ installed: missing, isRoot: true })).steps[0]).toEqual({
      cmd: 'apt-get',
      args: ['update', '-qq'],
    });
  });

  it('later releases (Mesa ≥ 24 in the distribution): the system package', () => {
    const plan = installPlan(
      ctx({ distro: ['ubuntu', 'debian'], codename: 'noble', installed: (p) => p !== 'mesa-vulkan-drivers' }),
    );
    expect(plan.kind).toBe('system');
    expect(plan.steps.at(-1)!.args).toEqual(expect.arrayContaining(['install', 'mesa-vulkan-drivers']));
  });

  it('refuses with a clear message: other systems, CPUs, no mirror', () => {
    expect(() => installPlan(ctx({ distro: ['fedora'] }))).toThrow(
      /knows Debian and Ubuntu \(this is fedora\)/,
    );
    expect(() => installPlan(ctx({ machine: 'riscv64' }))).toThrow(
      /no Debian packages for the CPU `riscv64`/,
    );
    expect(() => installPlan(ctx({ mirror: undefined }))).toThrow(/no mirror in the apt sources/);
  });

  it('reads Mesa major versions from package names; writes an ICD for the unpacked driver', () => {
    expect(mesaMajor(['libdrm2_2.4.123-1_amd64.deb', 'mesa-vulkan-drivers_25.0.7-2~bpo12+1_amd64.deb'])).toBe(
      25,
    );
    expect(mesaMajor(['mesa-vulkan-drivers_22.3.6-1+deb12u1_amd64.deb'])).toBe(22);
    expect(mesaMajor(['mesa-vulkan-drivers_1:24.2.8-1ubuntu1'])).toBe(24);
    expect(mesaMajor([])).toBeUndefined();
    expect(JSON.parse(icdManifest('/x/lib'))).toEqual({
      file_format_version: '1.0.0',
      ICD: { library_path: '/x/lib/libvulkan_lvp.so', api_version: '1.3.0' },
    });
  });
});

describe('the per-user lavapipe the runtime looks for', () => {
  it('lives in ATTNC_LAVAPIPE_DIR, else XDG_CACHE_HOME, else ~/.cache', () => {
    expect(lavapipeDir({ ATTNC_LAVAPIPE_DIR: '/opt/lvp' }, '/home/u')).toBe('/opt/lvp');
    expect(lavapipeDir({ XDG_CACHE_HOME: '/c' }, '/home/u')).toBe('/c/attnc/lavapipe');
    expect(lavapipeDir({}, '/home/u')).toBe('/home/u/.cache/attnc/lavapipe');
  });

  it('is used only when the environment names no Vulkan drivers', () => {
    expect(lavapipeEnv('/l', {})).toEqual({
      VK_DRIVER_FILES: '/l/lvp_icd.json',
      VK_ICD_FILENAMES: '/l/lvp_icd.json',
      XDG_RUNTIME_DIR: '/l/xdg-runtime',
    });
    expect(lavapipeEnv('/l', { XDG_RUNTIME_DIR: '/run/user/1' })).not.toHaveProperty('XDG_RUNTIME_DIR');
    expect(lavapipeEnv('/l', { VK_DRIVER_FILES: '/mine.json' })).toBeUndefined();
    expect(lavapipeEnv('/l', { VK_ICD_FILENAMES: '/mine.json' })).toBeUndefined();
  });
});
