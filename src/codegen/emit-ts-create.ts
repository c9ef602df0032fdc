// The createKernel export of an emitted module (emit-ts.ts): the single-engine form here, the
// two-engine form from emit-ts-engines.ts, and the types a two-engine module adds.
import type { Artifact } from './artifact.js';
import { dualCreateKernel } from './emit-ts-engines.js';
import { lit } from './emit-ts-exprs.js';
import { runtimeIdCheck } from './emit-ts-shared.js';

/** The types of a module with both engines (createKernel's option). */
export const engineTypes = [
  '/** The WGSL engines: "row" (an invocation per query row, for CPU adapters), "coop" (for GPUs). */',
  "export type WgslEngine = 'row' | 'coop';",
  'export interface CreateKernelOptions {',
  '  /** The engine to run (default engineFor(device)). */',
  '  readonly engine?: WgslEngine;',
  '}',
].join('\n');

/** createKernel and the module's other runtime-made exports. */
export function createKernelExport(
  shared: boolean,
  engine: string,
  decodeMember: string | undefined,
  dual:
    | {
        a: Artifact;
        alts: readonly Artifact[];
        altDecodeMembers: readonly (string | undefined)[];
        ownResolve: boolean;
      }
    | undefined,
): string {
  const check = shared ? [runtimeIdCheck] : [];
  const create = dual
    ? [dualCreateKernel(dual.a, dual.alts, check, decodeMember, dual.altDecodeMembers, dual.ownResolve)]
    : singleCreateKernel(check, engine, decodeMember);
  return [
    '/** Bind group 0 of every entry point: one explicit layout, so a single bind group serves every pass. */',
    'export const bindGroupLayoutEntries«: GPUBindGroupLayoutEntry[]» = layoutEntries(bindings);',
    '',
    'export { KernelInputError };',
    '',
    ...create,
  ].join('\n');
}

function singleCreateKernel(check: string[], engine: string, decodeMember: string | undefined): string[] {
  return [
    '/**',
    ' * Compiles the WGSL and its pipelines for `device` (once); the kernel then runs any number of times.',
    ` * Throws if the device lacks the limits or features the schedule needs. options.engine may only`,
    ` * name this module's engine, ${lit(engine)} (an engine loop passes one to every module).`,
    ' */',
    `export async function createKernel(device«: GPUDevice», options«: { readonly engine?: ${lit(engine)} }» = {})«: Promise<Kernel>» {`,
    ...check,
    "  checkCreateArgs(kernelName, device, options, ['engine']);",
    `  if (options.engine !== undefined && options.engine !== ${lit(engine)}) {`,
    '    throw new KernelInputError(',
    `      [\`createKernel(device, options): engine \${JSON.stringify(options.engine)}: this module carries the "${engine}" engine only (attnc compile without --wgsl-engine writes a module with both)\`],`,
    '      kernelName,',
    '    );',
    '  }',
    '  const spec«: KernelSpec» = {',
    '    ...{ kernelName, schedule, bindings, entryPoints, uniformLayout, workgroupStorageBytes, maxWorkgroupSize, wgsl },',
    "    resolve: resolve «as KernelSpec['resolve']»,",
    ...(decodeMember ? [decodeMember] : []),
    '  };',
    '  return (await instantiate(spec, device)) «as unknown as Kernel»;',
    '}',
  ];
}
