// `attnc compile --target wgsl --emit ts|js`: a WGSL artifact as a TypeScript (or JS + .d.ts)
// module an engine can import: the WGSL, its bind-group and uniform layouts, and a typed
// createKernel(device) whose dispatch/encode/prepare arguments list exactly this kernel's buffers
// and params. Self-contained by default; with sharedRuntime it imports the runtime that every
// module of an engine shares (emit-ts-shared.ts).
// Shape and grid expressions are compiled to code here, so the module needs no expression evaluator.
// Browser-safe and synchronous; formatting (prettier) lives in emit-ts-format.ts.
import type { Artifact } from './artifact.js';
import type { ImportanceStatement } from './emit-ts-refusals.js';
import { checkNames } from './emit-ts-refusals.js';
import { bindingRows, entryPointRows, lit, templateLiteral } from './emit-ts-exprs.js';
import { decodeSource, decodeSpecMember, usableDecode } from './emit-ts-decode.js';
import { declarations, header, sharedTypeImports } from './emit-ts-header.js';
import { inlineRuntime, runtimeImports, sharedTypeExports } from './emit-ts-shared.js';
import { createKernelExport, engineTypes } from './emit-ts-create.js';
import { genericTypes, kernelTypes } from './emit-ts-types.js';
import { wgslWorkgroupBytes } from './wgsl/limits.js';
import { quantizeDeclarations, quantizeSource, quantizeTypes } from './emit-ts-quantize.js';
import { backwardSource, backwardTypes } from './emit-ts-backward.js';
import type { WgslBackwardArtifact } from './wgsl/backward.js';
import { ownGrids, ownKv, resolveSource } from './emit-ts-resolve.js';
import {
  alternateSource,
  checkAlternates,
  altSuffix,
  engineChoiceSource,
  engineOf,
} from './emit-ts-engines.js';

export type EmitLanguage = 'ts' | 'js';

export interface EmitModuleOptions {
  /** 'ts' (default): one `.ts` file; 'js': an ES module `.js` plus its `.d.ts`. */
  readonly lang?: EmitLanguage;
  /** The .attn source, embedded as `source` (for reference checks and provenance). */
  readonly source?: string;
  /** The source's file name, for the header comment. */
  readonly file?: string;
  /**
   * Import the runtime from `./attnc-runtime.js` (emitRuntimeModule writes it, once per engine)
   * instead of carrying a copy of it. Default false: the module is self-contained.
   */
  readonly sharedRuntime?: boolean;
  /**
   * Carry the artifact's WGSL decode variant (split-KV + merge, taken per launch for few query
   * rows over a long KV, as the attnc runtime does). Default true; false leaves it out (smaller).
   */
  readonly decode?: boolean;
  /**
   * The kernel's WGSL backward module (compileBackward's `backward`): the module then exports
   * `backward(device, args)` (emit-ts-backward.ts). Self-contained modules only, for now.
   */
  readonly backward?: WgslBackwardArtifact;
  /**
   * The source's `importance` statement, when the artifact has the importance output: the refusal
   * of it names the statement (and its position) rather than the --importance option.
   */
  readonly importanceStatement?: ImportanceStatement;
  /**
   * The same kernel compiled for the other WGSL engine (compile() with the other wgslEngine): the
   * module then carries both and createKernel picks one by the device (emit-ts-engines.ts). A list
   * gives variants of that engine, preferred first (createKernel takes the first the device can
   * run: coop tiles for several limit tiers). An alternate on the same engine (a kernel coop does
   * not run) is ignored, as is a repeat of one code.
   */
  readonly alternate?: Artifact | readonly Artifact[];
}

export interface EmittedModule {
  /** File name → text, unformatted (emit-ts-format.ts runs prettier). */
  readonly files: Readonly<Record<string, string>>;
}

const tsMarkers = /[«»]/g;
const tsOnly = /«[^«»]*»/g;

/** The tables: schedule, bindings, entry points, uniform layout, device needs. */
function tablesSource(a: Artifact, source: string | undefined): string {
  const s = a.schedule;
  const uniformBytes = Math.max(16, Math.ceil((4 * a.uniforms.length) / 16) * 16);
  const maxWorkgroup = Math.max(
    ...a.entryPoints.map((ep) => ep.workgroupSize[0] * ep.workgroupSize[1] * ep.workgroupSize[2]),
  );
  const bindings = bindingRows(a);
  const entryPoints = entryPointRows(a);
  const fields = a.uniforms.map(
    (f) => `    { name: ${lit(f.name)}, dtype: ${lit(f.dtype)}, offset: ${f.offset} },`,
  );
  return [
    `export const kernelName = ${lit(a.name)};`,
    ...(source === undefined
      ? []
      : [
          '/** The .attn source this module was compiled from. */',
          `export const source = ${templateLiteral(source)};`,
        ]),
    `export const schedule«: KernelSchedule» = ${JSON.stringify(s)};`,
    '/** Bind group 0: binding index, role, element type, shape expressions, WebGPU buffer type. */',
    'export const bindings«: readonly KernelBinding[]» = [',
    ...bindings,
    '];',
    '/** Launch order: summaries, then attention. Grids are workgroup counts per dimension. */',
    'export const entryPoints«: readonly KernelEntryPoint[]» = [',
    ...entryPoints,
    '];',
    '/** The uniform struct: 4-byte little-endian fields at these offsets. */',
    `export const uniformLayout«: UniformLayout» = {`,
    `  bytes: ${uniformBytes},`,
    '  fields: [',
    ...fields,
    '  ],',
    '};',
    `const workgroupStorageBytes = ${wgslWorkgroupBytes(s)};`,
    `const maxWorkgroupSize = ${maxWorkgroup};`,
  ].join('\n');
}

export function emitKernelModule(artifact: Artifact, options: EmitModuleOptions = {}): EmittedModule {
  checkNames(artifact, options.importanceStatement);
  const m = moduleParts(artifact, options);
  const types = typesSection(m);
  const body = bodySection(m, options.source);
  const { a, shared, alt, bwd } = m;
  const info = { ...options, lang: m.lang, sharedRuntime: shared };
  if (m.lang === 'ts') {
    // The runtime imports come first: a module's imports precede its code.
    const [imports, rest] = shared ? splitImports(body) : ['', body];
    const text = [header(a, info), imports, types, rest]
      .filter((x) => x !== '')
      .join('\n\n')
      .replace(tsMarkers, '');
    return { files: { [`${a.name}.ts`]: text + '\n' } };
  }
  const js = [header(a, info), body].join('\n\n').replace(tsOnly, '');
  const dts = [
    header(a, { ...info, dts: true }),
    shared ? sharedTypeImports() : '',
    types,
    declarations(options.source !== undefined, shared, alt !== undefined, engineOf(a)),
    ...(a.quantize ? [quantizeDeclarations(a)] : []),
    ...(bwd ? backwardDeclarations : []),
  ]
    .filter((x) => x !== '')
    .join('\n\n');
  return { files: { [`${a.name}.js`]: js + '\n', [`${a.name}.d.ts`]: dts + '\n' } };
}

/** What one module carries: the artifact, its decode variant, the other engine's, and backward. */
interface ModuleParts {
  readonly a: Artifact;
  readonly lang: EmitLanguage;
  readonly shared: boolean;
  readonly decode: ReturnType<typeof usableDecode>;
  /** The other engine's artifacts (checkAlternates), their decode variants, and the first of each. */
  readonly alts: readonly Artifact[];
  readonly altDecodes: readonly ReturnType<typeof usableDecode>[];
  readonly alt: Artifact | undefined;
  readonly altDecode: ReturnType<typeof usableDecode>;
  readonly bwd: WgslBackwardArtifact | undefined;
}

/** Picks the variants the options ask for, refusing combinations the module cannot carry. */
function moduleParts(a: Artifact, options: EmitModuleOptions): ModuleParts {
  const shared = options.sharedRuntime ?? false;
  const decode = options.decode === false ? undefined : usableDecode(a);
  const alts = checkAlternates(a, options.alternate);
  const altDecodes = alts.map((x) => (options.decode !== false ? usableDecode(x) : undefined));
  const bwd = options.backward;
  if (bwd && shared)
    throw new Error(`emit ${a.name}: backward() is emitted in self-contained modules only, for now`);
  const altDecode = altDecodes.find((x) => x !== undefined);
  return { a, lang: options.lang ?? 'ts', shared, decode, alts, altDecodes, alt: alts[0], altDecode, bwd };
}

/** The exported types: runtime types, this kernel's, then quantize / backward / engine extras. */
function typesSection({ a, shared, alts, alt, bwd }: ModuleParts): string {
  return [
    shared ? sharedTypeExports : genericTypes,
    kernelTypes(
      a,
      alts.map((x) => x.schedule),
    ),
    ...(a.quantize ? [quantizeTypes(a)] : []),
    ...(bwd ? [backwardTypes(bwd)] : []),
    ...(alt ? [engineTypes] : []),
  ].join('\n\n');
}

/** The code: runtime (imported or inlined), tables, resolve, variants, createKernel, WGSL, extras. */
function bodySection(m: ModuleParts, source: string | undefined): string {
  const { a, shared, decode, alts, alt, altDecodes, altDecode, bwd } = m;
  return [
    shared
      ? runtimeImports(paramKinds(a), decode !== undefined || altDecode !== undefined, a.kvRows !== undefined)
      : inlineRuntime(paramKinds(a), a.kvRows !== undefined),
    tablesSource(a, source),
    resolveSource(a, alts),
    decode ? decodeSource(a, decode) : '',
    ...alts.map((x, i) => alternateSource(x, altDecodes[i], i)),
    ...(alt ? [engineChoiceSource(a, alts)] : []),
    usesCdiv(m) ? cdivSource : '',
    createKernelExport(
      shared,
      engineOf(a),
      decode ? decodeSpecMember(a) : undefined,
      alt && {
        a,
        alts,
        altDecodeMembers: alts.map((x, i) => (altDecodes[i] ? decodeSpecMember(x, altSuffix(i)) : undefined)),
        ownResolve: ownGrids(a, alts) || ownKv(a, alts),
      },
    ),
    `/** The WGSL module (every entry point). */\nexport const wgsl = ${templateLiteral(a.code)};`,
    // A quantized cache's quantize(...) (emit-ts-quantize.ts); nothing for other kernels.
    ...(a.quantize ? [quantizeSource(a)] : []),
    ...(bwd ? [backwardSource(bwd)] : []),
  ].join('\n\n');
}

/** The runtime's param helpers this kernel needs, one per param dtype it has. */
function paramKinds(a: Artifact): ('int' | 'float' | 'bool')[] {
  return (['int', 'float', 'bool'] as const).filter((kind) =>
    a.params.some((p) => p.dtype === { int: 'i32', float: 'f32', bool: 'bool' }[kind]),
  );
}

/** Whether any carried artifact's grids or buffer shapes call cdiv (the module then defines it). */
function usesCdiv({ a, decode, alts, altDecodes }: ModuleParts): boolean {
  return [a, ...[decode, ...alts, ...altDecodes].filter((x) => x !== undefined)].some(
    (x) =>
      x.entryPoints.some((ep) => ep.grid.some((g) => g.includes('cdiv'))) ||
      x.bindings.some((b) => b.shape.some((d) => d.includes('cdiv'))),
  );
}

const backwardDeclarations = [
  'export declare const backwardWgsl: string;',
  'export declare function backward(device: GPUDevice, args: BackwardArgs): Promise<BackwardResult>;',
];

const cdivSource = `
/** Ceiling division of the shape and grid expressions (sizes are non-negative integers). */
function cdiv(a«: number», b«: number»)«: number» {
  if (!(b > 0)) throw new KernelInputError([\`cdiv(\${a}, \${b}): the divisor must be positive\`], kernelName);
  return Math.ceil(a / b);
}
`;

/** The import lines at the head of `body`, and the rest. */
function splitImports(body: string): [string, string] {
  const end = body.indexOf('\n\n');
  return [body.slice(0, end), body.slice(end + 2)];
}

export { emitRuntimeModule, runtimeName } from './emit-ts-shared.js';
export { shapeExprToTs, templateLiteral } from './emit-ts-exprs.js';
