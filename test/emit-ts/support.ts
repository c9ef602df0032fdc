// Shared by the emitted-module tests: compile a stdlib kernel, emit its module (formatted, as the
// CLI writes it), type-check modules with the TypeScript compiler API, and import them.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { compile, type Compiled, type CompileOptions } from '../../src/compile.js';
import {
  emitKernelModule,
  emitRuntimeModule,
  type EmitLanguage,
  type EmitModuleOptions,
} from '../../src/codegen/emit-ts.js';
import { formatFiles } from '../../src/codegen/emit-ts-format.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { referenceAttention, type RefResult } from '../../src/runtime/reference.js';
import { evalShapeExpr } from '../../src/runtime/shape-expr.js';
import { stdlibPath } from '../support/stdlib.js';

/** Source with a required int param, a bool param and a tensor whose shape is a param. */
export const customSource = `attention custom(n: int, flag: bool = true, gain: f32[n]) {
  score score + gain[k % n]
  mask causal && (flag || q - k < n)
}
`;

export interface Emitted {
  readonly compiled: Compiled;
  readonly files: Record<string, string>;
}

export async function emitStdlib(
  name: string,
  lang: EmitLanguage = 'ts',
  options: Partial<CompileOptions> = {},
  module: ModuleOptions = {},
): Promise<Emitted> {
  const file = stdlibPath(`${name}.attn`);
  return emitSource(readFileSync(file, 'utf8'), lang, { file, ...options }, module);
}

/** emitKernelModule's options besides the language and source. */
export type ModuleOptions = Pick<EmitModuleOptions, 'sharedRuntime' | 'decode'>;

/** The kernel module alone; with sharedRuntime it imports ./attnc-runtime.js (emitRuntimeModule). */
export async function emitSource(
  source: string,
  lang: EmitLanguage = 'ts',
  options: Partial<CompileOptions> = {},
  module: ModuleOptions = {},
): Promise<Emitted> {
  const compiled = compile(source, { target: 'wgsl', headDim: 32, ...options });
  const { files } = emitKernelModule(compiled.artifact, {
    lang,
    source,
    ...module,
    ...(options.file ? { file: options.file } : {}),
  });
  return { compiled, files: await formatFiles(files) };
}

/** The shared runtime's files, formatted as the CLI writes them. */
export async function emitRuntime(lang: EmitLanguage): Promise<Record<string, string>> {
  return formatFiles(emitRuntimeModule(lang));
}

/**
 * Writes modules into one fresh folder under their own names (TypeScript transpiled to .js, as a
 * bundler would) and imports `mains` from it, so their `./attnc-runtime.js` imports resolve to
 * one module.
 */
export async function importFolder<T>(files: Record<string, string>, mains: readonly string[]): Promise<T[]> {
  tmp ??= mkdtempSync(join(tmpdir(), 'attnc-emit-'));
  const dir = mkdtempSync(join(tmp, 'set-'));
  for (const [name, text] of Object.entries(files)) {
    if (name.endsWith('.d.ts')) continue;
    const js = name.endsWith('.ts')
      ? ts.transpileModule(text, {
          compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
        }).outputText
      : text;
    writeFileSync(join(dir, name.replace(/\.ts$/, '.js')), js);
  }
  return Promise.all(mains.map(async (m) => (await import(pathToFileURL(join(dir, `${m}.js`)).href)) as T));
}

const require = createRequire(import.meta.url);
const webgpuTypes = dirname(require.resolve('@webgpu/types/package.json'));

const libCache = new Map<string, ts.SourceFile>();

/** Strict settings an engine might use, and then some. */
export const strictOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  types: [],
  typeRoots: [],
  strict: true,
  noUncheckedIndexedAccess: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  noImplicitReturns: true,
  exactOptionalPropertyTypes: true,
  noEmit: true,
  skipLibCheck: false,
};

/**
 * Type-checks in-memory files (plus @webgpu/types) and returns the diagnostics as
 * "file(line): TSxxxx message" strings.
 */
export function typecheck(files: Record<string, string>, options = strictOptions): string[] {
  const dir = '/virtual';
  const names = Object.keys(files).map((n) => join(dir, n));
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  const inMemory = (f: string): string | undefined =>
    f.startsWith(dir + '/') ? files[f.slice(dir.length + 1)] : undefined;
  host.readFile = (f) => inMemory(f) ?? read(f);
  host.fileExists = (f) => inMemory(f) !== undefined || exists(f);
  const dirExists = host.directoryExists?.bind(host);
  host.directoryExists = (d) => d === dir || d.startsWith(dir + '/') || (dirExists?.(d) ?? true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, onError, create) => {
    const text = inMemory(f);
    if (text !== undefined) return ts.createSourceFile(f, text, lang);
    // lib.dom.d.ts and @webgpu/types parse once per process, not once per check.
    const key = `${f}:${JSON.stringify(lang)}`;
    let sf = libCache.get(key);
    if (!sf) {
      sf = getSourceFile(f, lang, onError, create);
      if (sf) libCache.set(key, sf);
    }
    return sf;
  };
  const program = ts.createProgram([...names, join(webgpuTypes, 'dist/index.d.ts')], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return `<global> TS${d.code} ${text}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName.replace(dir + '/', '')}(${line + 1}): TS${d.code} ${text}`;
  });
}

/**
 * Several independent sets of files in one program (each in its own folder), which is much
 * faster than one program each: diagnostics by set name.
 */
export function typecheckGroups(groups: Record<string, Record<string, string>>): Record<string, string[]> {
  const files: Record<string, string> = {};
  for (const [group, set] of Object.entries(groups)) {
    for (const [name, text] of Object.entries(set)) files[`${group}/${name}`] = text;
  }
  const diags = typecheck(files);
  return Object.fromEntries(
    Object.keys(groups).map((g) => [
      g,
      diags.filter((d) => d.startsWith(`${g}/`) || d.startsWith('<global>')),
    ]),
  );
}

let tmp: string | undefined;

/** Writes `text` as an .mjs module into a temp dir and imports it. */
export async function importModule<T>(name: string, text: string): Promise<T> {
  tmp ??= mkdtempSync(join(tmpdir(), 'attnc-emit-'));
  const path = join(tmp, `${name}-${Math.random().toString(36).slice(2)}.mjs`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return (await import(pathToFileURL(path).href)) as T;
}

/** A TS module transpiled to JS by the TypeScript compiler (types stripped), then imported. */
export async function importTs<T>(name: string, text: string): Promise<T> {
  const js = ts.transpileModule(text, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  return importModule<T>(name, js);
}

/** The generated module's API as the execution tests use it (loosely typed: any kernel). */
export interface GeneratedModule {
  createKernel(device: GPUDevice): Promise<GeneratedKernel>;
  KernelInputError: new (issues: readonly string[]) => Error & { issues: readonly string[] };
  kernelName: string;
}
export interface GeneratedLaunch {
  readonly decodeSplits: number;
  encode(encoder: GPUCommandEncoder): void;
  update(changes: object): void;
  destroy(): void;
}
export interface GeneratedKernel {
  dispatch(args: object): Promise<{ out: Float32Array; lse?: Float32Array }>;
  encode(encoder: GPUCommandEncoder, args: object): void;
  prepare(args: object): GeneratedLaunch;
  destroy(): void;
}

export interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly params?: Record<string, number | boolean>;
  readonly tensors?: Record<string, Int32Array | Float32Array>;
  readonly qOffset?: number;
  readonly kOffset?: number;
  readonly seed?: number;
}

/** Random q/k/v for `c` at the compiled head dims. */
export function inputsFor(
  compiled: Compiled,
  c: Case,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const { headDim: D, valueDim: Dv } = compiled.artifact.schedule;
  const rand = rng(c.seed ?? 7);
  return {
    q: randomNormal(c.B * c.H * c.Nq * D, rand),
    k: randomNormal(c.B * c.Hkv * c.Nk * D, rand),
    v: randomNormal(c.B * c.Hkv * c.Nk * Dv, rand),
  };
}

/** The dense float64 reference of `c` (params: the given ones over the declared defaults). */
export function referenceFor(
  compiled: Compiled,
  c: Case,
  qkv: { q: Float32Array; k: Float32Array; v: Float32Array },
): RefResult {
  const { headDim: D, valueDim: Dv } = compiled.artifact.schedule;
  const params: Record<string, number | boolean> = {
    ...Object.fromEntries(compiled.decl.defaults),
    ...c.params,
  };
  const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D };
  const env: Record<string, number> = { ...sizes, Dv };
  for (const p of compiled.artifact.params) if (p.dtype === 'i32') env[p.name] = params[p.name] as number;
  const tensors = Object.fromEntries(
    Object.entries(c.tensors ?? {}).map(([name, data]) => {
      const b = compiled.artifact.bindings.find((x) => x.name === name)!;
      return [name, { data, shape: b.shape.map((e) => evalShapeExpr(e, env)) }];
    }),
  );
  const pred = declPredicates(compiled.decl.decl, { params, tensors, sizes });
  return referenceAttention(
    {
      ...qkv,
      B: c.B,
      Hq: c.H,
      Hkv: c.Hkv,
      Nq: c.Nq,
      Nk: c.Nk,
      D,
      Dv,
      ...(c.qOffset !== undefined ? { qOffset: c.qOffset } : {}),
      ...(c.kOffset !== undefined ? { kOffset: c.kOffset } : {}),
    },
    pred,
  );
}

/** Dispatch arguments of `c` for a generated module. */
export function dispatchArgs(c: Case, qkv: object): Record<string, unknown> {
  return {
    ...qkv,
    ...c.tensors,
    sizes: { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk },
    ...(c.params ? { params: c.params } : {}),
    ...(c.qOffset !== undefined ? { qOffset: c.qOffset } : {}),
    ...(c.kOffset !== undefined ? { kOffset: c.kOffset } : {}),
  };
}
