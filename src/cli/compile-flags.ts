// The flags of `attnc compile` (also read by `attnc run` and `attnc viz`): their parsers, and
// checkCompileFlags, which refuses a combination that does not go together before anything compiles.
import type { CudaBackwardEngine } from '../backward.js';
import { statSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import { DECODE_LEAN_MODES } from '../ir/kernel.js';
import type { DecodeLean, ImportanceMode, StorageDType } from '../ir/kernel.js';
import { passNames } from '../ir/pipeline.js';
import { cudaArchs, isCudaArch } from '../codegen/cuda/arch.js';
import { CompileError } from '../diagnostics.js';
import { UsageError } from './errors.js';
import { decimalInt, positiveIntProblem } from './numbers.js';

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
  const problem = positiveIntProblem(flag, raw);
  if (problem) throw new UsageError(problem);
  return Number(raw);
}

/** The largest seed: the input generator (runtime/inputs.ts rng) keeps 32 bits of it. */
export const MAX_SEED = 2 ** 32 - 1;

/** `--seed`'s words, for the CLI and the REPL: every seed the generator tells apart, 0 included. */
export function seedProblem(raw: string): string | undefined {
  const n = decimalInt(raw);
  return n !== undefined && n >= 0 && n <= MAX_SEED
    ? undefined
    : `expects an integer in [0, ${MAX_SEED}], got \`${raw}\``;
}

export function seedFlag(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const problem = seedProblem(raw);
  if (problem) throw new UsageError(`--seed ${problem}`);
  return Number(raw);
}

/**
 * `compile()` under `--dim` (and `--value-dim`) and `--entry`: a schedule refusal because of the
 * head dims, or no declaration of the entry's name, is the flags' doing, so it names them
 * (`--dim 100000: no wgsl schedule fits: …`, `--entry nope: no attention named …`); compile()
 * has only the declaration's name, or the file's first line, to point at.
 */
export function blamingFlags<T>(flags: { dims: string; entry?: string | undefined }, compileIt: () => T): T {
  try {
    return compileIt();
  } catch (e) {
    const { dims, entry } = flags;
    const misfit = headDimMisfit(e);
    if (misfit) throw new UsageError(`${dims}: ${misfit}: use a smaller ${dims.split(' ')[0]}`);
    const only = e instanceof CompileError && e.diagnostics.length === 1 ? e.diagnostics[0]! : undefined;
    if (entry !== undefined && only?.message.startsWith(`no attention named \`${entry}\``))
      throw new UsageError(`--entry ${entry}: ${only.message}`);
    throw e;
  }
}

/** The message of compile()'s refusal because no schedule fits the head dims, else undefined. */
export function headDimMisfit(e: unknown): string | undefined {
  const only = e instanceof CompileError && e.diagnostics.length === 1 ? e.diagnostics[0]! : undefined;
  return only && /^no \w+ schedule fits: .*head ?dim/i.test(only.message) ? only.message : undefined;
}

/** `--dim 128` or `--dim 128 --value-dim 64`: the head dims as the user gives them. */
export function dimFlags(headDim: number, valueDim: number): string {
  return valueDim === headDim ? `--dim ${headDim}` : `--dim ${headDim} --value-dim ${valueDim}`;
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

/** compileCommand's flags once checked: each parsed, and every combination allowed. */
export interface CheckedCompileFlags {
  readonly target: 'wgsl' | 'cuda';
  readonly emit: 'ts' | 'js' | undefined;
  readonly dump: string | undefined;
  readonly wgslEngine: 'row' | 'coop' | undefined;
  readonly quantPrefill: 'staged' | 'fused' | undefined;
  readonly decodeLean: DecodeLean | undefined;
  readonly backwardEngine: CudaBackwardEngine | undefined;
  readonly headDim: number;
}

const isDirectory = (path: string): boolean =>
  statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;

/**
 * Parses compile's flags and refuses, with a UsageError naming the flags, a value out of range or
 * a combination that does not go together; the first problem in a fixed order (docs/CLI.md).
 */
export function checkCompileFlags(f: CompileFlags): CheckedCompileFlags {
  const target = f.target ?? 'wgsl';
  if (target !== 'wgsl' && target !== 'cuda')
    throw new UsageError(`--target expects wgsl or cuda, got \`${target}\``);
  const emit = f.emit;
  if (emit !== undefined && emit !== 'ts' && emit !== 'js')
    throw new UsageError(`--emit expects ts or js, got \`${emit}\``);
  if (emit !== undefined && target !== 'wgsl')
    throw new UsageError(`--emit ${emit} needs --target wgsl (a CUDA artifact is .cu + .h + .json)`);
  // --backward: WGSL, the emitted module's backward(); CUDA, NAME_backward.cu in the manifest.
  if (f.backward && target === 'wgsl' && (emit === undefined || f['shared-runtime']))
    throw new UsageError(
      '--backward on wgsl needs --emit ts|js, without --shared-runtime (a self-contained module)',
    );
  // `--out softcap.cu`, as nvcc's `-o`, made a folder of that name with softcap.cu inside.
  if (f.out !== undefined && /\.(wgsl|cu|h|json|ts|js)$/i.test(f.out) && !isDirectory(f.out))
    throw new UsageError(
      `--out takes a folder (the files in it are named after the kernel): \`${f.out}\` looks like a file name`,
    );
  if (f['shared-runtime'] && (emit === undefined || f.out === undefined))
    throw new UsageError(
      '--shared-runtime needs --emit ts|js and --out DIR (the runtime is a file of its own)',
    );
  if (f.arch !== undefined && target !== 'cuda')
    throw new UsageError(`--arch ${f.arch} needs --target cuda (it picks the CUDA architecture)`);
  // compile() reports an unknown arch as a diagnostic at the declaration's name, which is no
  // mistake of the source: the flag is.
  if (f.arch !== undefined && !isCudaArch(f.arch))
    throw new UsageError(`--arch expects ${Object.keys(cudaArchs).join(', ')}, got \`${f.arch}\``);
  const dump = f['dump-ir'];
  // README lists `legalize-wgsl|legalize-cuda`: the other target's pass is a missing --target.
  const other = target === 'wgsl' ? 'cuda' : 'wgsl';
  if (dump !== undefined && dump === `legalize-${other}`)
    throw new UsageError(`--dump-ir=${dump} needs --target ${other}`);
  if (dump !== undefined && !passNames(target).includes(dump))
    throw new UsageError(`--dump-ir: unknown pass \`${dump}\` (passes: ${passNames(target).join(', ')})`);
  if (f['shader-f16'] && target !== 'wgsl') throw new UsageError('--shader-f16 needs --target wgsl');
  // compile() says so as a diagnostic at the declaration's name, as if the source were wrong.
  if (f.dtype === 'bf16' && target === 'wgsl')
    throw new UsageError(
      '--dtype bf16 needs --target cuda (WebGPU has no bf16 storage): use --dtype f16 or f32',
    );
  if (f.dtype === 'f16' && target === 'wgsl' && !f['shader-f16'])
    throw new UsageError('--dtype f16 on wgsl needs --shader-f16 (for a device with the shader-f16 feature)');
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
  return {
    target,
    emit,
    dump,
    wgslEngine,
    quantPrefill,
    decodeLean,
    backwardEngine,
    headDim,
  };
}
