// An emitted module that carries both WGSL engines of one kernel (EmitModuleOptions.alternate):
// the row engine (an invocation per query row, for CPU adapters) and the coop engine (workgroups
// sharing register-blocked tiles, for GPUs). createKernel picks one by the device the way
// compile() does (runtime/device.ts: a software adapter takes row, hardware coop) unless its
// `engine` option says; hardware that cannot run the coop schedule (workgroup memory,
// invocations, the subgroups feature) takes row. Only what differs is carried twice: the
// schedule, entry points (workgroup sizes, grids), WGSL, the K/V row alignment and the decode
// variant; bindings, uniforms, params, resolve and the runtime are shared.
import type { Artifact } from './artifact.js';
import { decodeSource } from './emit-ts-decode.js';
import { entryPointRows, lit, templateLiteral } from './emit-ts-exprs.js';
import { wgslWorkgroupBytes } from './wgsl/limits.js';

export type WgslEngineName = 'row' | 'coop';

export const engineOf = (a: Artifact): WgslEngineName => (a.schedule.wgslEngine === 'coop' ? 'coop' : 'row');

/**
 * The alternates that are the same kernel on the other engine, in the order given (the first the
 * device can run wins): those on the primary's engine are dropped (compile() keeps kernels the
 * coop engine does not run on the row engine), as are repeats of one schedule. Throws when one is
 * another kernel.
 */
export function checkAlternates(a: Artifact, given: Artifact | readonly Artifact[] | undefined): Artifact[] {
  const list = given === undefined ? [] : Array.isArray(given) ? given : [given as Artifact];
  const out: Artifact[] = [];
  for (const alt of list) {
    if (engineOf(alt) === engineOf(a) || out.some((x) => x.code === alt.code)) continue;
    const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
    const what = [
      ['name', a.name, alt.name],
      ['source', a.sourceHash, alt.sourceHash],
      ['bindings', a.bindings, alt.bindings],
      ['uniforms', a.uniforms, alt.uniforms],
      ['params', a.params, alt.params],
      ['dtype', a.schedule.dtype, alt.schedule.dtype],
    ].find(([, x, y]) => !same(x, y));
    if (what)
      throw new Error(
        `emit ${a.name}: the alternate artifact differs in its ${String(what[0])}; pass the same kernel compiled for the other wgslEngine`,
      );
    out.push(alt);
  }
  // The row engine has one schedule: a coop primary carries one row alternate.
  return engineOf(a) === 'coop' ? out.slice(0, 1) : out;
}

/** Whether the two engines' launches differ in grids (resolve then takes the variant). */
export const gridsDiffer = (a: Artifact, alt: Artifact): boolean =>
  JSON.stringify(a.entryPoints.map((ep) => ep.grid)) !== JSON.stringify(alt.entryPoints.map((ep) => ep.grid));

/** Names of alternate `i`'s constants: altSchedule, alt2Schedule, …; decode suffixes Alt, Alt2, …. */
export const altPrefix = (i: number): string => (i === 0 ? 'alt' : `alt${i + 1}`);
export const altSuffix = (i: number): string => (i === 0 ? 'Alt' : `Alt${i + 1}`);

const maxWorkgroupOf = (a: Artifact): number =>
  Math.max(...a.entryPoints.map((ep) => ep.workgroupSize[0] * ep.workgroupSize[1] * ep.workgroupSize[2]));

/** Alternate `i`'s tables, WGSL and decode variant (module-private; createKernel takes them). */
export function alternateSource(alt: Artifact, altDecode: Artifact | undefined, i: number): string {
  const p = altPrefix(i);
  return [
    `/** The ${engineOf(alt)} engine's schedule, entry points and WGSL (createKernel's other choice${i > 0 ? `, variant ${i + 1}` : ''}). */`,
    `const ${p}Schedule«: KernelSchedule» = ${JSON.stringify(alt.schedule)};`,
    `const ${p}EntryPoints«: readonly KernelEntryPoint[]» = [`,
    ...entryPointRows(alt),
    '];',
    `const ${p}WorkgroupStorageBytes = ${wgslWorkgroupBytes(alt.schedule)};`,
    `const ${p}MaxWorkgroupSize = ${maxWorkgroupOf(alt)};`,
    `const ${p}Wgsl = ${templateLiteral(alt.code)};`,
    ...(altDecode ? ['', decodeSource(alt, altDecode, altSuffix(i))] : []),
  ].join('\n');
}

/** `engineFor(device)`, the device check of each variant and the software-adapter test. */
export function engineChoiceSource(a: Artifact, alts: readonly Artifact[]): string {
  const fitsCall = (p: string, schedule: string): string =>
    `fits(device, ${p === '' ? 'workgroupStorageBytes' : `${p}WorkgroupStorageBytes`}, ${p === '' ? 'maxWorkgroupSize' : `${p}MaxWorkgroupSize`}, ${schedule})`;
  const coopFits =
    engineOf(a) === 'coop'
      ? [fitsCall('', 'schedule')]
      : alts.map((_, i) => fitsCall(altPrefix(i), `${altPrefix(i)}Schedule`));
  return [
    '/** CPU adapters by the spec’s flag, or by name where an implementation does not set it (as the attnc runtime). */',
    'const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;',
    '',
    '/** Whether `device` has the workgroup memory, invocations and features a schedule needs. */',
    'function fits(device«: GPUDevice», bytes«: number», size«: number», s«: KernelSchedule»)«: boolean» {',
    '  const l = device.limits;',
    '  if (bytes > l.maxComputeWorkgroupStorageSize) return false;',
    '  if (size > Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX)) return false;',
    '  return s.subgroups !== true || device.features.has("subgroups");',
    '}',
    '',
    '/**',
    ' * The WGSL engine createKernel takes on `device` by default: "row" on a software adapter (or',
    ' * one that does not say), "coop" on hardware that can run a coop schedule, else "row".',
    ' */',
    'export function engineFor(device«: GPUDevice»)«: WgslEngine» {',
    '  const info = (device «as { adapterInfo?: GPUAdapterInfo }»).adapterInfo;',
    '  if (!info) return "row";',
    '  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");',
    '  if (info.isFallbackAdapter === true || SOFTWARE_NAMES.test(names)) return "row";',
    `  return ${coopFits.join(' || ')} ? "coop" : "row";`,
    '}',
    '',
    `/** The engines this module carries (${lit(engineOf(a))} is the one \`schedule\`, \`entryPoints\` and \`wgsl\` describe). */`,
    `export const engines«: readonly WgslEngine[]» = [${lit(engineOf(a))}, ${lit(engineOf(alts[0]!))}];`,
  ].join('\n');
}

/** createKernel's spec members for alternate `i` (resolve given its index where grids or K/V rows differ). */
function altSpec(i: number, ownResolve: boolean, decodeMember: string | undefined): string[] {
  const p = altPrefix(i);
  const resolve = ownResolve ? `((o«: LaunchOptions») => resolve(o, ${i + 1}))` : 'resolve';
  return [
    '        ...{ kernelName, bindings, uniformLayout },',
    `        ...{ schedule: ${p}Schedule, entryPoints: ${p}EntryPoints, workgroupStorageBytes: ${p}WorkgroupStorageBytes },`,
    `        ...{ maxWorkgroupSize: ${p}MaxWorkgroupSize, wgsl: ${p}Wgsl },`,
    `        resolve: ${resolve} «as KernelSpec['resolve']»,`,
    ...(decodeMember ? ['    ' + decodeMember.trim()] : []),
  ];
}

/**
 * createKernel of a module with both engines: the other engine's first variant the device can
 * run (its last when none can: instantiate then names what is missing).
 */
export function dualCreateKernel(
  a: Artifact,
  alts: readonly Artifact[],
  shared: string[],
  decodeMember: string | undefined,
  altDecodeMembers: readonly (string | undefined)[],
  ownResolve: boolean,
): string {
  const last = alts.length - 1;
  const fitsAlt = (i: number): string =>
    `fits(device, ${altPrefix(i)}WorkgroupStorageBytes, ${altPrefix(i)}MaxWorkgroupSize, ${altPrefix(i)}Schedule)`;
  const pick = alts
    .slice(0, last)
    .map((_, i) => `${fitsAlt(i)} ? ${i} : `)
    .join('');
  const branches = alts.flatMap((_, i) => [
    ...(i < last ? [`    : variant === ${i}`, '    ? {'] : ['    : {']),
    ...altSpec(i, ownResolve, altDecodeMembers[i]),
    i < last ? '      }' : '      };',
  ]);
  return [
    '/**',
    ' * Compiles the WGSL and its pipelines for `device` (once); the kernel then runs any number of times.',
    ' * The engine is engineFor(device) unless options.engine says; of its variants, the first the',
    ' * device can run. Throws if the device lacks the limits or features the schedule needs.',
    ' */',
    'export async function createKernel(device«: GPUDevice», options«: CreateKernelOptions» = {})«: Promise<Kernel>» {',
    ...shared,
    "  checkCreateArgs(kernelName, device, options, ['engine']);",
    '  const engine = options.engine ?? engineFor(device);',
    `  if (engine !== ${lit(engineOf(a))} && engine !== ${lit(engineOf(alts[0]!))})`,
    '    throw new Error(`createKernel: engine must be "row" or "coop", got ${String(engine)}`);',
    ...(alts.length > 1 ? [`  const variant = ${pick}${last};`] : []),
    `  const spec«: KernelSpec» = engine === ${lit(engineOf(a))}`,
    '    ? {',
    '        ...{ kernelName, schedule, bindings, entryPoints, uniformLayout, workgroupStorageBytes, maxWorkgroupSize, wgsl },',
    "        resolve: resolve «as KernelSpec['resolve']»,",
    ...(decodeMember ? ['    ' + decodeMember.trim()] : []),
    '      }',
    ...branches,
    '  return (await instantiate(spec, device)) «as unknown as Kernel»;',
    '}',
  ].join('\n');
}

/**
 * Limits the CLI compiles a module's coop engine for when the device is not known, preferred
 * first (createKernel takes the first the device meets): a GPU with 48 KiB of workgroup memory,
 * 1,024 invocations and subgroups gets the knob sets the H200 measured fastest (schedule-rules.ts);
 * one with 32 KiB (what GPUs offer browsers), 256 invocations and subgroups the measured sets that
 * fit there (D 128: 64×32/128 with Q from storage and prefetch, 13.2 TFLOP/s causal on the H200
 * against 9.6 for the portable pick); any other with 32 KiB the portable coop list without
 * subgroups. engineFor takes row where none holds.
 */
export const COOP_MODULE_TIERS = Object.freeze([
  Object.freeze({
    maxWorkgroupStorageBytes: 49152,
    maxInvocations: 1024,
    subgroups: true,
    softwareAdapter: false,
  }),
  Object.freeze({
    maxWorkgroupStorageBytes: 32768,
    maxInvocations: 256,
    subgroups: true,
    softwareAdapter: false,
  }),
  Object.freeze({
    maxWorkgroupStorageBytes: 32768,
    maxInvocations: 256,
    subgroups: false,
    softwareAdapter: false,
  }),
]);
