// `attnc compile FILE [--target wgsl|cuda] [--out DIR] [--dump-ir=PASS] [--emit ts|js]`.
import { renderWgslBackward, type WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { AttentionKernel } from '../ir/kernel.js';
import { join } from 'node:path';
import type { Artifact } from '../codegen/artifact.js';
import { emitKernelModule, emitRuntimeModule } from '../codegen/emit-ts.js';
import { formatFiles } from '../codegen/emit-ts-format.js';
import { backwardEngineRefusal, cudaBackwardBeside } from '../backward.js';
import { compile, type CompileOptions } from '../compile.js';
import { COOP_MODULE_TIERS } from '../codegen/emit-ts-engines.js';
import { CompileError, escapeControl, renderDiagnostics, type Diagnostic } from '../diagnostics.js';
import { dumpIR } from '../ir/dump.js';
import type { Target } from '../ir/passes/legalize.js';
import { UsageError } from './errors.js';
import {
  blamingFlags,
  checkCompileFlags,
  dimFlags,
  parseDtype,
  parseImportance,
  portableName,
  positiveInt,
} from './compile-flags.js';
import type { CheckedCompileFlags, CompileFlags } from './compile-flags.js';
import { diagnosticJson, head, writeJson } from './json.js';
import { ensureDirectory, writeOutput } from './out-path.js';

export function compileCommand(source: string, file: string, f: CompileFlags): number | Promise<number> {
  const checked = checkCompileFlags(f);
  const { target, emit, dump } = checked;
  // Generated files name their source, and must not carry this machine's absolute paths.
  const name = portableName(file);
  let ir = '';
  // Printed as soon as the pass ran (a later pass may fail: the dump is what helps then).
  const observe: CompileOptions['observe'] = (pass, dumped) => {
    if (pass !== dump) return;
    if (f.json) ir = dumpIR(dumped, pass);
    else process.stdout.write(dumpIR(dumped, pass));
  };
  const options = compileOptionsOf(f, checked, name, observe);
  const dims = dimFlags(options.headDim ?? 64, options.valueDim ?? options.headDim ?? 64);
  const { artifact, kernel, decl, warnings } = citingGivenPath(file, name, () =>
    blamingFlags({ dims, entry: f.entry }, () => compile(source, options)),
  );
  const cited = warnings.map(citing(file, name));
  // On stderr, so stdout (the code) stays what it was; --json lists them in the document.
  if (cited.length && !f.json) process.stderr.write(renderDiagnostics(cited, source) + '\n');
  const output: CompileOutput = { artifact, file: name, json: f.json === true, out: f.out, warnings: cited };
  if (dump !== undefined) {
    if (output.json) writeJson({ ...head('compile', 0), kernel: artifact.name, pass: dump, ir });
    return 0;
  }
  if (emit !== undefined) {
    const module = {
      sharedRuntime: f['shared-runtime'] ?? false,
      decode: !f['no-decode'],
      ...(f.backward ? { backward: backwardOf(kernel) } : {}),
      // A refusal of the importance output names the statement that asked for it.
      ...(decl.decl.importance?.[0] ? { importanceStatement: decl.decl.importance[0] } : {}),
      // No --wgsl-engine: the module carries the coop engine too and picks by the device.
      ...(target === 'wgsl' && !checked.wgslEngine ? { alternate: coopAlternates(source, options) } : {}),
    };
    return emitModule(output, source, emit, module);
  }
  const { code, files, ...rest } = artifact;
  const main = `${artifact.name}.${target === 'wgsl' ? 'wgsl' : 'cu'}`;
  const written: Record<string, string> = { [main]: code, ...files };
  if (!files || !Object.keys(files).some((n) => n.endsWith('.json')))
    written[`${artifact.name}.json`] = JSON.stringify({ ...rest, code: main }, null, 2) + '\n';
  if (f.backward) addCudaBackward(written, artifact.name, source, f, checked, name);
  return report(output, written, main);
}

/**
 * compile() under the portable name, whose diagnostics cite the path given instead: the portable
 * name keeps this machine's paths out of generated files, but an error is read on this machine,
 * where `x.attn:3:8` for `/tmp/x.attn` names no file (check, run and viz cite the path given).
 */
function citingGivenPath<T>(given: string, portable: string, compileIt: () => T): T {
  try {
    return compileIt();
  } catch (e) {
    if (!(e instanceof CompileError) || given === portable) throw e;
    throw new CompileError(e.diagnostics.map(citing(given, portable)), e.source);
  }
}

/** A diagnostic at the portable name moved to the path given (citingGivenPath). */
const citing =
  (given: string, portable: string) =>
  (d: Diagnostic): Diagnostic =>
    d.span.file === portable ? { ...d, span: { ...d.span, file: given } } : d;

/** The compile options the flags ask for (checked: checkCompileFlags's; file: the portable name). */
function compileOptionsOf(
  f: CompileFlags,
  checked: CheckedCompileFlags,
  file: string,
  observe: CompileOptions['observe'],
): CompileOptions {
  const { target, wgslEngine, quantPrefill, decodeLean, headDim } = checked;
  return {
    target: target as Target,
    file,
    // Offline WGSL for a device known to have shader-f16 (the portable default lacks it).
    ...(f['shader-f16'] ? { limits: { shaderF16: true } } : {}),
    ...(f.entry ? { entry: f.entry } : {}),
    ...(f.arch !== undefined ? { arch: f.arch } : {}),
    ...(wgslEngine ? { wgslEngine } : {}),
    // Staged: a pass dequantizes K/V into the caller's workspace once; fused: each tile converts.
    // decodeLean: the tensor-core decode's lean code off, behind -DATTNC_DEC_MMA_LEAN, or on.
    ...(quantPrefill || decodeLean
      ? { schedule: { ...(quantPrefill ? { quantPrefill } : {}), ...(decodeLean ? { decodeLean } : {}) } }
      : {}),
    headDim,
    valueDim: positiveInt('value-dim', f['value-dim'], headDim),
    dtype: parseDtype(f.dtype, target === 'cuda' ? 'bf16' : 'f32'),
    // WGSL's emitted backward() reads the forward's lse (CUDA's manifest says when there is none).
    lse: !f['no-lse'] || (f.backward === true && target === 'wgsl'),
    ...(f.importance !== undefined ? { importance: parseImportance(f.importance)! } : {}),
    // No split-KV decode variant: CUDA's .cu without decode kernels (half the nvcc time), WGSL's
    // artifact and emitted module without the decode module.
    ...(f['no-decode'] ? { decode: false } : {}),
    observe,
  };
}

/**
 * `--backward` on CUDA: the backward's files (src/backward.ts: SIMT f32, or mma/wgmma in the
 * kernel's dtype) added to `written`, and listed in the manifest for attnc.torch's autograd.
 */
function addCudaBackward(
  written: Record<string, string>,
  kernelName: string,
  source: string,
  f: CompileFlags,
  { headDim, backwardEngine }: CheckedCompileFlags,
  file: string,
): void {
  const options = {
    file,
    headDim,
    valueDim: positiveInt('value-dim', f['value-dim'], headDim),
    lse: !f['no-lse'],
  };
  const dtype = parseDtype(f.dtype, 'bf16');
  const arch = f.arch ?? 'sm_90a';
  const refusal = backwardEngine && backwardEngineRefusal(backwardEngine, dtype, arch);
  if (refusal) throw new UsageError(`--backward-engine: ${refusal}`);
  const bwd = cudaBackwardBeside(
    source,
    { ...options, ...(f.entry ? { entry: f.entry } : {}) },
    { dtype, arch, ...(backwardEngine ? { engine: backwardEngine } : {}) },
  );
  const manifestName = `${kernelName}.json`;
  const manifest = JSON.parse(written[manifestName]!) as Record<string, unknown>;
  written[manifestName] = JSON.stringify({ ...manifest, backward: bwd.manifest }, null, 2) + '\n';
  Object.assign(written, bwd.files);
}

interface CompileOutput {
  readonly artifact: Artifact;
  /** The source's portable name (what generated files cite). */
  readonly file: string;
  readonly json: boolean;
  /** --out DIR, or undefined for the main file on stdout. */
  readonly out: string | undefined;
  /** compile()'s warnings, citing the path given. */
  readonly warnings: readonly Diagnostic[];
}

/**
 * Writes the files into --out (or the main one to stdout), then says what was written: a line
 * of paths, or with --json the compile document (docs/CLI.md).
 */
function report(o: CompileOutput, files: Record<string, string>, main: string, emit?: string): number {
  const paths = o.out === undefined ? [] : Object.keys(files).map((n) => join(o.out!, n));
  if (o.out !== undefined) {
    ensureDirectory(o.out);
    for (const [name, text] of Object.entries(files)) writeOutput(join(o.out, name), text);
  }
  if (o.json) {
    const a = o.artifact;
    writeJson({
      ...head('compile', 0),
      file: o.file,
      target: a.target,
      ...(emit !== undefined ? { emit } : {}),
      kernel: a.name,
      sourceHash: a.sourceHash,
      scheduleHash: a.scheduleHash,
      schedule: a.schedule,
      entryPoints: a.entryPoints,
      bindings: a.bindings,
      params: a.params,
      diagnostics: o.warnings.map(diagnosticJson),
      files: paths,
      // Without --out the main file travels inside the document, not beside it.
      ...(o.out === undefined ? { code: files[main] } : {}),
    });
  } else if (o.out === undefined) process.stdout.write(files[main]!);
  else process.stdout.write(`wrote ${paths.map(escapeControl).join(', ')}\n`);
  return 0;
}

/**
 * The coop engine's artifacts of the kernel, one per limit tier (emit-ts-engines.ts), for a module
 * that picks its engine and tile at run time; a tier whose code repeats another's is dropped there.
 */
function coopAlternates(source: string, options: CompileOptions): Artifact[] {
  const { observe: _observe, ...rest } = options;
  return COOP_MODULE_TIERS.map((tier) => {
    const limits = { ...tier, shaderF16: options.limits?.shaderF16 === true };
    return compile(source, { ...rest, wgslEngine: 'coop', limits }).artifact;
  });
}

/** `--backward`: the kernel's WGSL backward module, or a one-line error saying why it has none. */
function backwardOf(kernel: AttentionKernel): WgslBackwardArtifact {
  try {
    return renderWgslBackward(kernel);
  } catch (e) {
    throw new UsageError(`--backward: ${(e as Error).message}`);
  }
}

/** `--emit ts|js`: the artifact as a self-contained module (codegen/emit-ts.ts), formatted. */
async function emitModule(
  o: CompileOutput,
  source: string,
  lang: 'ts' | 'js',
  module: { sharedRuntime: boolean; decode: boolean; backward?: WgslBackwardArtifact },
): Promise<number> {
  let emitted: ReturnType<typeof emitKernelModule>;
  try {
    emitted = emitKernelModule(o.artifact, { lang, source, file: o.file, ...module });
  } catch (e) {
    throw new UsageError((e as Error).message); // a kernel the module format cannot express
  }
  // The shared runtime is written with each module: the same text for every module of one attnc.
  const runtime = module.sharedRuntime ? emitRuntimeModule(lang) : {};
  const files = await formatFiles({ ...emitted.files, ...runtime });
  return report(o, files, `${o.artifact.name}.${lang}`, lang);
}
