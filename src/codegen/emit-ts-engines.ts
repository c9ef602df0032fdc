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
 * The alternate artifact when it is the same kernel on the other engine (undefined when it is on
 * the same engine: compile() keeps kernels the coop engine does not run on the row engine).
 * Throws when it is another kernel.
 */
export function checkAlternate(a: Artifact, alt: Artifact | undefined): Artifact | undefined {
  if (!alt || engineOf(alt) === engineOf(a)) return undefined;
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
  return alt;
}

/** Whether the two engines' launches differ in grids (resolve then takes the engine). */
export const gridsDiffer = (a: Artifact, alt: Artifact): boolean =>
  JSON.stringify(a.entryPoints.map((ep) => ep.grid)) !== JSON.stringify(alt.entryPoints.map((ep) => ep.grid));

/** The alternate engine's tables, WGSL and decode variant (module-private; createKernel takes them). */
export function alternateSource(alt: Artifact, altDecode: Artifact | undefined): string {
  const maxWorkgroup = Math.max(
    ...alt.entryPoints.map((ep) => ep.workgroupSize[0] * ep.workgroupSize[1] * ep.workgroupSize[2]),
  );
  return [
    `/** The ${engineOf(alt)} engine's schedule, entry points and WGSL (createKernel's other choice). */`,
    `const altSchedule«: KernelSchedule» = ${JSON.stringify(alt.schedule)};`,
    'const altEntryPoints«: readonly KernelEntryPoint[]» = [',
    ...entryPointRows(alt),
    '];',
    `const altWorkgroupStorageBytes = ${wgslWorkgroupBytes(alt.schedule)};`,
    `const altMaxWorkgroupSize = ${maxWorkgroup};`,
    `const altWgsl = ${templateLiteral(alt.code)};`,
    ...(altDecode ? ['', decodeSource(alt, altDecode, 'Alt')] : []),
  ].join('\n');
}

/** `engineFor(device)` and the software-adapter test it shares with the attnc runtime. */
export function engineChoiceSource(a: Artifact, alt: Artifact): string {
  const coop = engineOf(a) === 'coop' ? 'schedule' : 'altSchedule';
  const coopBytes = engineOf(a) === 'coop' ? 'workgroupStorageBytes' : 'altWorkgroupStorageBytes';
  const coopSize = engineOf(a) === 'coop' ? 'maxWorkgroupSize' : 'altMaxWorkgroupSize';
  return [
    '/** CPU adapters by the spec’s flag, or by name where an implementation does not set it (as the attnc runtime). */',
    'const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;',
    '',
    '/**',
    ' * The WGSL engine createKernel takes on `device` by default: "row" on a software adapter (or',
    ' * one that does not say), "coop" on hardware that can run the coop schedule, else "row".',
    ' */',
    'export function engineFor(device«: GPUDevice»)«: WgslEngine» {',
    '  const info = (device «as { adapterInfo?: GPUAdapterInfo }»).adapterInfo;',
    '  if (!info) return "row";',
    '  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");',
    '  if (info.isFallbackAdapter === true || SOFTWARE_NAMES.test(names)) return "row";',
    '  const l = device.limits;',
    `  if (${coopBytes} > l.maxComputeWorkgroupStorageSize) return "row";`,
    `  if (${coopSize} > Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX)) return "row";`,
    `  if (${coop}.subgroups === true && !device.features.has("subgroups")) return "row";`,
    '  return "coop";',
    '}',
    '',
    `/** The engines this module carries (${lit(engineOf(a))} is the one \`schedule\`, \`entryPoints\` and \`wgsl\` describe). */`,
    `export const engines«: readonly WgslEngine[]» = [${lit(engineOf(a))}, ${lit(engineOf(alt))}];`,
  ].join('\n');
}

/** createKernel of a module with both engines. */
export function dualCreateKernel(
  a: Artifact,
  alt: Artifact,
  shared: string[],
  decodeMember: string | undefined,
  altDecodeMember: string | undefined,
): string {
  const altResolve = gridsDiffer(a, alt) ? '(o«: LaunchOptions») => resolve(o, true)' : 'resolve';
  return [
    '/**',
    ' * Compiles the WGSL and its pipelines for `device` (once); the kernel then runs any number of times.',
    ' * The engine is engineFor(device) unless options.engine says. Throws if the device lacks the',
    ' * limits or features the engine’s schedule needs.',
    ' */',
    'export async function createKernel(device«: GPUDevice», options«: CreateKernelOptions» = {})«: Promise<Kernel>» {',
    ...shared,
    '  const engine = options.engine ?? engineFor(device);',
    `  if (engine !== ${lit(engineOf(a))} && engine !== ${lit(engineOf(alt))})`,
    '    throw new Error(`createKernel: engine must be "row" or "coop", got ${String(engine)}`);',
    `  const spec«: KernelSpec» = engine === ${lit(engineOf(a))}`,
    '    ? {',
    '        ...{ kernelName, schedule, bindings, entryPoints, uniformLayout, workgroupStorageBytes, maxWorkgroupSize, wgsl },',
    "        resolve: resolve «as KernelSpec['resolve']»,",
    ...(decodeMember ? ['    ' + decodeMember.trim()] : []),
    '      }',
    '    : {',
    '        ...{ kernelName, bindings, uniformLayout },',
    '        ...{ schedule: altSchedule, entryPoints: altEntryPoints, workgroupStorageBytes: altWorkgroupStorageBytes },',
    '        ...{ maxWorkgroupSize: altMaxWorkgroupSize, wgsl: altWgsl },',
    `        resolve: ${altResolve} «as KernelSpec['resolve']»,`,
    ...(altDecodeMember ? ['    ' + altDecodeMember.trim()] : []),
    '      };',
    '  return (await instantiate(spec, device)) «as unknown as Kernel»;',
    '}',
  ].join('\n');
}

/**
 * Limits the CLI compiles a module's coop engine for when the device is not known: 32 KiB of
 * workgroup memory (what GPUs offer browsers), 256 invocations, no subgroups (an optional
 * feature; the knob sweep measured no difference). engineFor takes row where they do not hold.
 */
export const COOP_MODULE_LIMITS = Object.freeze({
  maxWorkgroupStorageBytes: 32768,
  maxInvocations: 256,
  subgroups: false,
  softwareAdapter: false,
});
