// `attnc doctor --install-lavapipe`: a Mesa ≥ 24 lavapipe (CPU Vulkan) for this user, the way the
// repository's scripts/setup-lavapipe.sh does it, into the per-user folder the runtime looks in
// (runtime/lavapipe.ts). Dawn rejects older lavapipes: Debian 12 (bookworm) ships Mesa 22.3, so
// there the driver comes from bookworm-backports — apt fetches the .debs with a private
// configuration (the system's package lists stay untouched) and dpkg-deb unpacks them; only the
// Vulkan loader and lavapipe's libraries are installed system-wide (sudo unless root), and only
// when missing. Later releases (Debian 13, Ubuntu 24.04) ship Mesa ≥ 24: there the system's own
// mesa-vulkan-drivers is installed, and its version checked. The plan is pure (tested).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAVAPIPE_ICD } from '../../runtime/lavapipe.js';
import { UsageError } from '../errors.js';

/** Libraries lavapipe and the loader need from the system itself (Debian 12 / Ubuntu names). */
export const SYSTEM_DEPS = [
  'libvulkan1',
  'libelf1',
  'libexpat1',
  'libwayland-client0',
  'libx11-xcb1',
  'libxcb-dri3-0',
  'libxcb-present0',
  'libxcb-randr0',
  'libxcb-shm0',
  'libxcb-sync1',
  'libxcb-xfixes0',
  'libxcb1',
  'libxshmfence1',
  'libzstd1',
  'zlib1g',
];

/** Bookworm-backports' Mesa links the system's LLVM 15. */
const BOOKWORM_DEPS = [...SYSTEM_DEPS, 'libllvm15'];

export interface InstallContext {
  /** /etc/os-release ID and ID_LIKE. */
  readonly distro: readonly string[];
  readonly codename: string;
  /** The Debian/Ubuntu multiarch triplet's CPU part (`uname -m`). */
  readonly machine: string;
  /** The first non-security mirror of the system's apt sources. */
  readonly mirror: string | undefined;
  readonly isRoot: boolean;
  /** The per-user lavapipe folder. */
  readonly dir: string;
  /** Whether dpkg lists a package as installed. */
  readonly installed: (pkg: string) => boolean;
}

export interface Step {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly cwd?: string;
}

/** Per-user: backports .debs unpacked into the folder; system: the distribution's own package. */
export type InstallPlan =
  | {
      readonly kind: 'user';
      /** The private apt sources.list's text. */
      readonly sources: string;
      readonly steps: readonly Step[];
      /** Where lavapipe's libraries land after unpacking. */
      readonly libDir: string;
    }
  | { readonly kind: 'system'; readonly steps: readonly Step[] };

const TRIPLETS: Readonly<Record<string, string>> = {
  x86_64: 'x86_64-linux-gnu',
  aarch64: 'aarch64-linux-gnu',
};

/** The commands that install lavapipe into c.dir, or a UsageError saying why this machine can't. */
export function installPlan(c: InstallContext): InstallPlan {
  if (!c.distro.includes('ubuntu') && !c.distro.includes('debian'))
    throw new UsageError(
      `--install-lavapipe knows Debian and Ubuntu (this is ${c.distro.join('/') || 'an unknown system'}): ` +
        'install Mesa ≥ 24 with its lavapipe driver and point VK_DRIVER_FILES at its lvp_icd.json',
    );
  const triplet = TRIPLETS[c.machine];
  if (!triplet) throw new UsageError(`--install-lavapipe: no Debian packages for the CPU \`${c.machine}\``);
  const sudo = (cmd: string, args: string[]): Step =>
    c.isRoot ? { cmd, args } : { cmd: 'sudo', args: [cmd, ...args] };
  const aptInstall = (pkgs: readonly string[]): Step[] =>
    pkgs.length
      ? [
          sudo('apt-get', ['update', '-qq']),
          sudo('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]),
        ]
      : [];
  if (c.codename !== 'bookworm')
    return {
      kind: 'system',
      steps: aptInstall([...SYSTEM_DEPS, 'mesa-vulkan-drivers'].filter((p) => !c.installed(p))),
    };
  if (!c.mirror) throw new UsageError('--install-lavapipe: found no mirror in the apt sources (/etc/apt)');
  const apt = join(c.dir, 'apt');
  const aptOpts = [
    '-o',
    `Dir::Etc::SourceList=${join(apt, 'sources.list')}`,
    '-o',
    'Dir::Etc::SourceParts=-',
    '-o',
    `Dir::State::Lists=${join(apt, 'lists')}`,
    '-o',
    `Dir::Cache=${join(apt, 'cache')}`,
    '-o',
    'APT::Get::List-Cleanup=0',
    '-o',
    'Debug::NoLocking=1',
  ];
  return {
    kind: 'user',
    sources: `deb ${c.mirror} bookworm-backports main\n`,
    libDir: join(c.dir, 'mesa', 'usr', 'lib', triplet),
    steps: [
      ...aptInstall(BOOKWORM_DEPS.filter((p) => !c.installed(p))),
      { cmd: 'apt-get', args: [...aptOpts, 'update', '-qq'] },
      {
        cmd: 'apt-get',
        args: [...aptOpts, 'download', 'mesa-vulkan-drivers', 'libdrm2', 'libdrm-amdgpu1'],
        cwd: join(c.dir, 'debs'),
      },
    ],
  };
}

/** Mesa's major version from a downloaded `mesa-vulkan-drivers_25.0.7-2~bpo12+1_amd64.deb`. */
export function mesaMajor(debs: readonly string[]): number | undefined {
  for (const d of debs) {
    const m = /^mesa-vulkan-drivers_(?:\d+:)?(\d+)\./.exec(d);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The ICD manifest pointing the Vulkan loader at the unpacked driver. */
export const icdManifest = (libDir: string): string =>
  JSON.stringify({
    file_format_version: '1.0.0',
    ICD: { library_path: join(libDir, 'libvulkan_lvp.so'), api_version: '1.3.0' },
  }) + '\n';

/** What this machine is, for installPlan. */
export function machineContext(dir: string, distro: readonly string[]): InstallContext {
  const release = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  const codename = /^VERSION_CODENAME="?([^"\n]*)"?$/m.exec(release)?.[1] ?? '';
  const machine = spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    distro,
    codename,
    machine,
    mirror: aptMirror(),
    isRoot: process.getuid?.() === 0,
    dir,
    installed: (p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status === 0,
  };
}

/** The first non-security mirror of the system's apt sources (deb822 or one-line format). */
function aptMirror(): string | undefined {
  const texts: string[] = [];
  const parts = '/etc/apt/sources.list.d';
  if (existsSync(parts))
    for (const f of readdirSync(parts).sort())
      if (f.endsWith('.sources') || f.endsWith('.list')) texts.push(readFileSync(join(parts, f), 'utf8'));
  if (existsSync('/etc/apt/sources.list')) texts.push(readFileSync('/etc/apt/sources.list', 'utf8'));
  for (const t of texts) {
    const uris = [...t.matchAll(/^URIs:\s*(\S+)/gm), ...t.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)].map(
      (m) => m[1]!,
    );
    const mirror = uris.find((u) => !u.includes('security'));
    if (mirror) return mirror;
  }
  return undefined;
}

/** Runs the plan, writing progress lines to `log`; returns what it installed. Throws UsageError on failure. */
export function install(c: InstallContext, log: (line: string) => void): string {
  const plan = installPlan(c);
  if (plan.kind === 'system') {
    runSteps(plan.steps, log);
    const version = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], {
      encoding: 'utf8',
    });
    const major = mesaMajor([`mesa-vulkan-drivers_${version.stdout ?? ''}`]);
    checkMesa(major);
    return `the system's lavapipe (mesa-vulkan-drivers ${version.stdout})`;
  }
  rmSync(join(c.dir, 'debs'), { recursive: true, force: true });
  for (const d of ['apt/lists/partial', 'apt/cache/archives/partial', 'debs'])
    mkdirSync(join(c.dir, d), { recursive: true });
  writeFileSync(join(c.dir, 'apt', 'sources.list'), plan.sources);
  runSteps(plan.steps, log);
  const debs = readdirSync(join(c.dir, 'debs')).filter((f) => f.endsWith('.deb'));
  const major = checkMesa(mesaMajor(debs));
  rmSync(join(c.dir, 'mesa'), { recursive: true, force: true });
  for (const deb of debs) {
    const r = spawnSync('dpkg-deb', ['-x', join(c.dir, 'debs', deb), join(c.dir, 'mesa')], {
      stdio: ['ignore', 2, 2],
    });
    if (r.status !== 0) throw new UsageError(`--install-lavapipe: dpkg-deb could not unpack ${deb}`);
  }
  if (!existsSync(join(plan.libDir, 'libvulkan_lvp.so')))
    throw new UsageError(`--install-lavapipe: libvulkan_lvp.so is not in ${plan.libDir} after unpacking`);
  const icd = join(c.dir, LAVAPIPE_ICD);
  writeFileSync(icd, icdManifest(plan.libDir));
  return `lavapipe from Mesa ${major} in ${c.dir}`;
}

function runSteps(steps: readonly Step[], log: (line: string) => void): void {
  for (const step of steps) {
    log(`$ ${[step.cmd, ...step.args].join(' ')}`);
    // The command's output goes to stderr: stdout carries the report.
    const r = spawnSync(step.cmd, step.args, { stdio: ['ignore', 2, 2], cwd: step.cwd });
    if (r.status !== 0)
      throw new UsageError(
        `--install-lavapipe: \`${step.cmd}\` failed (${r.error?.message ?? `exit status ${r.status}`}); see its output above`,
      );
  }
}

function checkMesa(major: number | undefined): number {
  if (major === undefined || major < 24)
    throw new UsageError(
      `--install-lavapipe: the packages offer Mesa ${major ?? '(none)'}; Dawn needs lavapipe from Mesa 24 or later`,
    );
  return major;
}
