// `attnc compile --target wgsl --emit ts|js`: a WGSL artifact as a self-contained TypeScript (or
// JS + .d.ts) module an engine can import: the WGSL, its bind-group and uniform layouts, and a typed
// createKernel(device) whose dispatch/encode arguments list exactly this kernel's buffers and params.
// Shape and grid expressions are compiled to code here, so the module needs no expression evaluator.
// Browser-safe and synchronous; formatting (prettier) lives in emit-ts-format.ts.
import type { ParamSlot } from '../ir/kernel.js';
import { shapeExprNames } from '../runtime/shape-expr.js';
import type { Artifact, Binding, ShapeExpr } from './artifact.js';
import {
  boolParamSource,
  cdivSource,
  floatParamSource,
  intParamSource,
  runtimeSource,
} from './emit-ts-runtime.js';
import { createKernelSource } from './emit-ts-kernel.js';
import { kernelTypes } from './emit-ts-types.js';
import { wgslWorkgroupBytes } from './wgsl/limits.js';

export type EmitLanguage = 'ts' | 'js';

export interface EmitModuleOptions {
  /** 'ts' (default): one `.ts` file; 'js': an ES module `.js` plus its `.d.ts`. */
  readonly lang?: EmitLanguage;
  /** The .attn source, embedded as `source` (for reference checks and provenance). */
  readonly source?: string;
  /** The source's file name, for the header comment. */
  readonly file?: string;
}

export interface EmittedModule {
  /** File name → text, unformatted (emit-ts-format.ts runs prettier). */
  readonly files: Readonly<Record<string, string>>;
}

/** Dispatch/encode arguments besides the buffers; a tensor of one of these names cannot be emitted. */
const launchKeys = ['sizes', 'params', 'qOffset', 'kOffset', 'scale'] as const;
const sizeNames = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk']);
const tsMarkers = /[«»]/g;
const tsOnly = /«[^«»]*»/g;

/**
 * A JS string as a template literal. Non-ASCII and control characters but \n and \t are escaped:
 * no «» marker can hide inside, and a \r survives (a template literal would normalize CRLF).
 */
export function templateLiteral(text: string): string {
  const body = text
    .replace(/\\/g, '\\\\')
    .replace(/`/g, '\\`')
    .replace(/\$\{/g, '\\${')
    .replace(/[^\x09\x0a\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
  return '`' + body + '`';
}

/** A JS string literal, ASCII only. */
const lit = (s: string): string =>
  JSON.stringify(s).replace(/[^\x00-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * A shape expression (artifact.ts grammar) as TS over `e` (sizes and int params); D and Dv are
 * compile-time constants. The grammar's operators and precedence are JS's, so tokens map 1:1.
 */
export function shapeExprToTs(expr: ShapeExpr, artifact: Artifact): string {
  shapeExprNames(expr); // parses: a malformed expression fails here, with its position
  const ints = new Set(artifact.params.filter((p) => p.dtype === 'i32').map((p) => p.name));
  const consts: Record<string, number> = { D: artifact.schedule.headDim, Dv: artifact.schedule.valueDim };
  const out: string[] = [];
  const re = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))/gy;
  for (let m = re.exec(expr); m && m.index < expr.length; m = re.exec(expr)) {
    const [, int, name, op] = m;
    if (int !== undefined) out.push(int);
    else if (op !== undefined) out.push(op === '-' ? ' -' : op);
    else if (name === 'cdiv' && expr.slice(re.lastIndex).trimStart().startsWith('(')) out.push('cdiv');
    else if (name !== undefined && (ints.has(name) || sizeNames.has(name))) out.push(`e.${name}`);
    else if (name !== undefined && consts[name] !== undefined) out.push(String(consts[name]));
    else throw new Error(`emit ts: shape expression "${expr}" uses "${name}", which is no size or int param`);
  }
  return out.join('');
}

function paramHelper(p: ParamSlot): string {
  return p.dtype === 'i32' ? 'intParam' : p.dtype === 'f32' ? 'floatParam' : 'boolParam';
}

/** `resolve`: validates the launch options, evaluates shapes and grids, packs the uniforms. */
function resolveSource(a: Artifact): string {
  const params = a.params;
  const lines = [
    '/** Checks sizes, params, offsets and scale; evaluates shapes and grids; packs the uniforms. */',
    'function resolve(o«: LaunchOptions»)«: Resolved» {',
    '  const s = checkSizes(o.sizes);',
    '  const issues«: string[]» = [];',
    '  const given = (o «as { params?: unknown }»).params;',
    `  unknownKeys('param', given, [${params.map((p) => lit(p.name)).join(', ')}], issues);`,
  ];
  if (params.length > 0) {
    lines.push(
      '  const p = (typeof given === "object" && given !== null ? given : {}) «as Record<string, unknown>»;',
      '  const params = {',
      ...params.map(
        (p) =>
          `    ${p.name}: ${paramHelper(p)}(${lit(p.name)}, p[${lit(p.name)}], ${p.default ?? 'undefined'}, issues),`,
      ),
      '  };',
    );
  }
  const ints = params.filter((p) => p.dtype === 'i32').map((p) => `${p.name}: params.${p.name}`);
  lines.push(
    '  const { qOffset, kOffset, scale } = launchScalars(o, s, issues);',
    '  if (issues.length > 0) throw new KernelInputError(issues);',
    `  const e = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk${ints.map((x) => `, ${x}`).join('')} };`,
    '  const shapes«: Record<string, number[]>» = {',
    ...a.bindings
      .filter((b) => b.role !== 'uniforms')
      .map((b) => `    ${b.name}: [${b.shape.map((d) => shapeExprToTs(d, a)).join(', ')}],`),
    '  };',
    '  checkShapes(shapes);',
    '  const grids«: [number, number, number][]» = [',
    ...a.entryPoints.map(
      (ep) => `    [${ep.grid.map((g) => shapeExprToTs(g, a)).join(', ')}], // ${ep.name}`,
    ),
    '  ];',
    '  const u = new DataView(new ArrayBuffer(uniformLayout.bytes));',
  );
  const fixed: Record<string, string> = {
    q_offset: 'qOffset',
    k_offset: 'kOffset',
    scale: 'scale',
    ...Object.fromEntries([...sizeNames].map((n) => [n, `s.${n}`])),
  };
  const paramNames = new Set(params.map((p) => p.name));
  for (const f of a.uniforms) {
    const value = paramNames.has(f.name) ? `params.${f.name}` : fixed[f.name];
    if (value === undefined) throw new Error(`emit ts: uniform field "${f.name}" has no known source`);
    const set = f.dtype === 'f32' ? 'setFloat32' : f.dtype === 'u32' ? 'setUint32' : 'setInt32';
    lines.push(`  u.${set}(${f.offset}, ${value}, true); // ${f.name}: ${f.dtype}`);
  }
  lines.push('  return { shapes, grids, uniforms: u.buffer };', '}');
  return lines.join('\n');
}

const bindingType = (b: Binding): string =>
  b.role === 'uniforms' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage';

/** The tables: schedule, bindings, entry points, uniform layout, device needs. */
function tablesSource(a: Artifact, source: string | undefined): string {
  const s = a.schedule;
  const uniformBytes = Math.max(16, Math.ceil((4 * a.uniforms.length) / 16) * 16);
  const maxWorkgroup = Math.max(
    ...a.entryPoints.map((ep) => ep.workgroupSize[0] * ep.workgroupSize[1] * ep.workgroupSize[2]),
  );
  const bindings = a.bindings.map(
    (b) =>
      `  { name: ${lit(b.name)}, binding: ${b.index}, role: ${lit(b.role)}, dtype: ${lit(b.dtype)}, ` +
      `shape: [${b.shape.map(lit).join(', ')}], type: ${lit(bindingType(b))} },`,
  );
  const entryPoints = a.entryPoints.map(
    (ep) =>
      `  { name: ${lit(ep.name)}, role: ${lit(ep.role)}, workgroupSize: [${ep.workgroupSize.join(', ')}], ` +
      `grid: [${ep.grid.map(lit).join(', ')}] },`,
  );
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
    `const launchKeys = [${launchKeys.map(lit).join(', ')}];`,
  ].join('\n');
}

function header(a: Artifact, o: EmitModuleOptions, lang: EmitLanguage): string {
  const s = a.schedule;
  const from = o.file ? ` from ${o.file}` : '';
  const tensors = a.bindings.filter((b) => b.role === 'tensor').map((b) => `${b.name}, `);
  return [
    `// attnc kernel "${a.name}"${from}: WGSL, ${s.dtype} storage, D = ${s.headDim}, Dv = ${s.valueDim}.`,
    `// Generated by \`attnc compile --target wgsl --emit ${lang}\`: regenerate rather than edit.`,
    '// Self-contained: imports nothing at run time' +
      (lang === 'ts' ? '; type-checks against @webgpu/types.' : '; types in the .d.ts beside it.'),
    `// sourceHash ${a.sourceHash}, scheduleHash ${a.scheduleHash}`,
    '//',
    '//   const kernel = await createKernel(device);',
    `//   const { out${a.bindings.some((b) => b.role === 'lse') ? ', lse' : ''} } = await kernel.dispatch({ q, k, v, ${tensors.join('')}sizes: { B, H, Hkv, Nq, Nk } });`,
    '//   kernel.encode(encoder, { q, k, v, out, ... }); // GPUBuffers the engine owns',
  ].join('\n');
}

function checkNames(a: Artifact): void {
  for (const b of a.bindings) {
    if (b.role === 'tensor' && (launchKeys as readonly string[]).includes(b.name)) {
      throw new Error(
        `emit ${a.name}: tensor "${b.name}" has the name of a dispatch argument (${launchKeys.join(', ')}); rename the tensor`,
      );
    }
  }
  if (a.target !== 'wgsl')
    throw new Error(`emit ts: artifact "${a.name}" targets ${a.target}; use --target wgsl`);
  if (a.bindings.some((b) => b.role === 'importance'))
    throw new Error(
      `emit ts: "${a.name}" was compiled with the importance option (--importance); generated ` +
        'modules do not run its pass yet — compile without it, or use the attnc runtime (createKernel)',
    );
  // Routing kernels need scratch buffers and an indices output the module does not manage yet;
  // refuse rather than emit a module that fails at run time.
  const unsupported = a.bindings.filter((b) => b.role === 'scratch' || b.role === 'indices');
  if (unsupported.length)
    throw new Error(
      `emit ts: "${a.name}" routes (bindings ${unsupported.map((b) => b.name).join(', ')}); ` +
        'generated modules do not support routing kernels yet — use the attnc runtime (createKernel)',
    );
}

/** The module for `artifact` (a WGSL artifact). Throws on names the module cannot express. */
export function emitKernelModule(artifact: Artifact, options: EmitModuleOptions = {}): EmittedModule {
  checkNames(artifact);
  const lang = options.lang ?? 'ts';
  const a = artifact;
  const helpers = [
    a.entryPoints.some((ep) => ep.grid.some((g) => g.includes('cdiv'))) ||
    a.bindings.some((b) => b.shape.some((d) => d.includes('cdiv')))
      ? cdivSource
      : '',
    a.params.some((p) => p.dtype === 'i32') ? intParamSource : '',
    a.params.some((p) => p.dtype === 'f32') ? floatParamSource : '',
    a.params.some((p) => p.dtype === 'bool') ? boolParamSource : '',
  ];
  const types = kernelTypes(a);
  const body = [
    tablesSource(a, options.source),
    resolveSource(a),
    runtimeSource,
    createKernelSource,
    ...helpers,
    `/** The WGSL module (every entry point). */\nexport const wgsl = ${templateLiteral(a.code)};`,
  ].join('\n\n');
  if (lang === 'ts') {
    const text = [header(a, options, 'ts'), types, body].join('\n\n').replace(tsMarkers, '');
    return { files: { [`${a.name}.ts`]: text + '\n' } };
  }
  const js = [header(a, options, 'js'), body].join('\n\n').replace(tsOnly, '');
  const dts = [
    header(a, options, 'js').replace(/^\/\/ Self-contained.*$/m, '// Types of the module beside this file.'),
    types,
    declarations(options.source !== undefined),
  ].join('\n\n');
  return { files: { [`${a.name}.js`]: js + '\n', [`${a.name}.d.ts`]: dts + '\n' } };
}

/** The .d.ts half of the JS module: its values' types. */
function declarations(withSource: boolean): string {
  return [
    'export declare const kernelName: string;',
    ...(withSource ? ['export declare const source: string;'] : []),
    'export declare const schedule: KernelSchedule;',
    'export declare const bindings: readonly KernelBinding[];',
    'export declare const entryPoints: readonly KernelEntryPoint[];',
    'export declare const uniformLayout: UniformLayout;',
    'export declare const bindGroupLayoutEntries: GPUBindGroupLayoutEntry[];',
    'export declare const wgsl: string;',
    'export declare class KernelInputError extends Error {',
    '  readonly issues: readonly string[];',
    '  constructor(issues: readonly string[]);',
    '}',
    'export declare function createKernel(device: GPUDevice): Promise<Kernel>;',
  ].join('\n');
}
