// `attnc compile FILE --target wgsl|cuda [--out DIR] [--dump-ir=PASS] [--emit ts|js]`.
import { renderWgslBackward, type WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { AttentionKernel } from '../ir/kernel.js';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Artifact } from '../codegen/artifact.js';
import { emitKernelModule, emitRuntimeModule } from '../codegen/emit-ts.js';
import { formatFiles } from '../codegen/emit-ts-format.js';
import { backwardEngineRefusal, cudaBackwardBeside, type CudaBackwardEngine } from '../backward.js';
import { compile, type CompileOptions } from '../compile.js';
import { COOP_MODULE_TIERS } from '../codegen/emit-ts-engines.js';
import { dumpIR } from '../ir/dump.js';
import { DECODE_LEAN_MODES, type DecodeLean, type ImportanceMode, type StorageDType } from '../ir/kernel.js';
import { passNames } from '../ir/pipeline.js';
import type { Target } from '../ir/passes/legalize.js';
import { UsageError } from './errors.js';
import { head, writeJson } from './json.js';
import { ensureDirectory, writeOutput } from './out-path.js';

export interface CompileFlags {
  target?: string | undefined;
  out?: string | undefined;
  'dump-ir'?: string | undefined;
  entry?: string | undefined;
  dim?: string | undefined;
  'value-dim'?: string | undefined;
  dtype?: string | undefined;
  'no-lse'?: boolean | undefined;
  importance?: string | undefined;
  emit?: string | undefined;
  'shared-runtime'?: boolean | undefined;
  'no-decode'?: boolean | undefined;
  arch?: string | undefined;
  'quant-prefill'?: string | undefined;
  'decode-lean'?: string | undefined;
  'shader-f16'?: boolean | undefined;
  'wgsl-engine'?: string | undefined;
  json?: boolean | undefined;
  backward?: boolean | undefined;
  'backward-engine'?: string | undefined;
}

export function parseBackwardEngine(raw: string | undefined): CudaBackwardEngine | undefined {
  if (raw === undefined || raw === 'simt' || raw === 'mma' || raw === 'wgmma') return raw;
  throw new UsageError(`--backward-engine expects simt, mma or wgmma, got \`${raw}\``);
}

/** `file` relative to the working directory, or its base name when it lies outside it. */
export function portableName(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? basename(file) : rel.split(sep).join('/');
}

export function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`--${flag} expects a positive integer, got \`${raw}\``);
  return n;
}

/** The largest seed: the input generator (runtime/inputs.ts rng) keeps 32 bits of it. */
export const MAX_SEED = 2 ** 32 - 1;

/** `--seed`'s words, for the CLI and the REPL: every seed the generator tells apart, 0 included. */
export function seedProblem(raw: string): string | undefined {
  const n = Number(raw);
  return raw.trim() !== '' && Number.isInteger(n) && n >= 0 && n <= MAX_SEED
    ? undefined
    : `expects an integer in [0, ${MAX_SEED}], got \`${raw}\``;
}

export function seedFlag(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const problem = seedProblem(raw);
  if (problem) throw new UsageError(`--seed ${problem}`);
  return Number(raw);
}

export function parseDtype(raw: string | undefined, fallback: StorageDType): StorageDType {
  if (raw === undefined) return fallback;
  if (raw === 'f32' || raw === 'f16' || raw === 'bf16') return raw;
  throw new UsageError(`--dtype expects f32, f16 or bf16, got \`${raw}\``);
}

export function parseWgslEngine(raw: string | undefined): 'row' | 'coop' | undefined {
  if (raw === undefined || raw === 'row' || raw === 'coop') return raw;
  throw new UsageError(`--wgsl-engine expects row or coop, got \`${raw}\``);
}

/** `--quant-prefill`: how a CUDA prefill reads quantized K/V (Schedule.quantPrefill). */
export function parseQuantPrefill(raw: string | undefined, target: string): 'staged' | 'fused' | undefined {
  if (raw === undefined) return undefined;
  if (raw !== 'staged' && raw !== 'fused')
    throw new UsageError(`--quant-prefill expects staged or fused, got \`${raw}\``);
  if (target !== 'cuda') throw new UsageError(`--quant-prefill ${raw} needs --target cuda`);
  return raw;
}

/** `--decode-lean`: the CUDA tensor-core decode's lean per-step code (Schedule.decodeLean). */
export function parseDecodeLean(raw: string | undefined, target: string): DecodeLean | undefined {
  if (raw === undefined) return undefined;
  if (!DECODE_LEAN_MODES.includes(raw as DecodeLean))
    throw new UsageError(`--decode-lean expects ${DECODE_LEAN_MODES.join(', ')}, got \`${raw}\``);
  if (target !== 'cuda') throw new UsageError(`--decode-lean ${raw} needs --target cuda`);
  return raw as DecodeLean;
}

export function parseImportance(raw: string | undefined): ImportanceMode | undefined {
  if (raw === undefined || raw === 'sum' || raw === 'normalized') return raw;
  throw new UsageError(`--importance expects sum or normalized, got \`${raw}\``);
}

export function compileCommand(source: string, file: string, f: CompileFlags): number | Promise<number> {
  const target = f.target ?? 'wgsl';
  if (target !== 'wgsl' && target !== 'cuda')
    throw new UsageError(`--target expects wgsl or cuda, got \`${target}\``);
  const emit = f.emit;
  if (emit !== undefined && emit !== 'ts' && emit !== 'js')
    throw new UsageError(`--emit expects ts or js, got \`${emit}\``);
  if (emit !== undefined && target !== 'wgsl')
    throw new UsageError(`--emit ${emit} needs --target wgsl (a CUDA artifact is .cu + .h + .json)`);
  if (f['no-decode'] && emit === undefined)
    throw new UsageError('--no-decode needs --emit ts|js (it leaves the decode variant out of the module)');
  // --backward: WGSL, the emitted module's backward(); CUDA, NAME_backward.cu in the manifest.
  if (f.backward && target === 'wgsl' && (emit === undefined || f['shared-runtime']))
    throw new UsageError(
      '--backward on wgsl needs --emit ts|js, without --shared-runtime (a self-contained module)',
    );
  if (f['shared-runtime'] && (emit === undefined || f.out === undefined))
    throw new UsageError(
      '--shared-runtime needs --emit ts|js and --out DIR (the runtime is a file of its own)',
    );
  if (f.arch !== undefined && target !== 'cuda')
    throw new UsageError(`--arch ${f.arch} needs --target cuda (it picks the CUDA architecture)`);
  const dump = f['dump-ir'];
  if (dump !== undefined && !passNames(target).includes(dump))
    throw new UsageError(`--dump-ir: unknown pass \`${dump}\` (passes: ${passNames(target).join(', ')})`);
  if (f['shader-f16'] && target !== 'wgsl') throw new UsageError('--shader-f16 needs --target wgsl');
  const wgslEngine = parseWgslEngine(f['wgsl-engine']);
  if (wgslEngine && target !== 'wgsl')
    throw new UsageError(`--wgsl-engine ${wgslEngine} needs --target wgsl`);
  const quantPrefill = parseQuantPrefill(f['quant-prefill'], target);
  const decodeLean = parseDecodeLean(f['decode-lean'], target);
  if (f.backward && dump !== undefined) throw new UsageError('--backward does not go with --dump-ir');
  const backwardEngine = parseBackwardEngine(f['backward-engine']);
  if (backwardEngine && (!f.backward || target !== 'cuda'))
    throw new UsageError(`--backward-engine ${backwardEngine} needs --backward and --target cuda`);
  const headDim = positiveInt('dim', f.dim, 64);
  // Generated files name their source, and must not carry this machine's absolute paths.
  const name = portableName(file);
  let ir = '';
  const options: CompileOptions = {
    target: target as Target,
    file: name,
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
    // Printed as soon as the pass ran (a later pass may fail: the dump is what helps then).
    observe: (pass, dumped) => {
      if (pass !== dump) return;
      if (f.json) ir = dumpIR(dumped, pass);
      else process.stdout.write(dumpIR(dumped, pass));
    },
  };
  const { artifact, kernel } = compile(source, options);
  const output: CompileOutput = { artifact, file: name, json: f.json === true, out: f.out };
  if (dump !== undefined) {
    if (output.json) writeJson({ ...head('compile', 0), kernel: artifact.name, pass: dump, ir });
    return 0;
  }
  if (emit !== undefined) {
    const module = {
      sharedRuntime: f['shared-runtime'] ?? false,
      decode: !f['no-decode'],
      ...(f.backward ? { backward: backwardOf(kernel) } : {}),
      // No --wgsl-engine: the module carries the coop engine too and picks by the device.
      ...(target === 'wgsl' && !wgslEngine ? { alternate: coopAlternates(source, options) } : {}),
    };
    return emitModule(output, source, emit, module);
  }
  const ext = target === 'wgsl' ? 'wgsl' : 'cu';
  const { code, files, ...rest } = artifact;
  const main = `${artifact.name}.${ext}`;
  const written: Record<string, string> = { [main]: code, ...files };
  if (!files || !Object.keys(files).some((n) => n.endsWith('.json')))
    written[`${artifact.name}.json`] = JSON.stringify({ ...rest, code: main }, null, 2) + '\n';
  if (f.backward) {
    // The backward (src/backward.ts: SIMT f32, or mma/wgmma in the kernel's dtype), listed in the
    // manifest for attnc.torch's autograd.
    const options = {
      file: name,
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
    const manifestName = `${artifact.name}.json`;
    const manifest = JSON.parse(written[manifestName]!) as Record<string, unknown>;
    written[manifestName] = JSON.stringify({ ...manifest, backward: bwd.manifest }, null, 2) + '\n';
    Object.assign(written, bwd.files);
  }
  return report(output, written, main);
}

interface CompileOutput {
  readonly artifact: Artifact;
  /** The source's portable name (what generated files cite). */
  readonly file: string;
  readonly json: boolean;
  /** --out DIR, or undefined for the main file on stdout. */
  readonly out: string | undefined;
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
      files: paths,
      // Without --out the main file travels inside the document, not beside it.
      ...(o.out === undefined ? { code: files[main] } : {}),
    });
  } else if (o.out === undefined) process.stdout.write(files[main]!);
  else process.stdout.write(`wrote ${paths.join(', ')}\n`);
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
