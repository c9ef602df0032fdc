// `attnc compile FILE --target wgsl|cuda [--out DIR] [--dump-ir=PASS] [--emit ts|js]`.
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Artifact } from '../codegen/artifact.js';
import { emitKernelModule } from '../codegen/emit-ts.js';
import { formatFiles } from '../codegen/emit-ts-format.js';
import { compile } from '../compile.js';
import { dumpIR } from '../ir/dump.js';
import type { ImportanceMode, StorageDType } from '../ir/kernel.js';
import { passNames } from '../ir/pipeline.js';
import type { Target } from '../ir/passes/legalize.js';
import { UsageError } from './errors.js';
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
  arch?: string | undefined;
  'shader-f16'?: boolean | undefined;
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

export function parseDtype(raw: string | undefined, fallback: StorageDType): StorageDType {
  if (raw === undefined) return fallback;
  if (raw === 'f32' || raw === 'f16' || raw === 'bf16') return raw;
  throw new UsageError(`--dtype expects f32, f16 or bf16, got \`${raw}\``);
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
  if (f.arch !== undefined && target !== 'cuda')
    throw new UsageError(`--arch ${f.arch} needs --target cuda (it picks the CUDA architecture)`);
  const dump = f['dump-ir'];
  if (dump !== undefined && !passNames(target).includes(dump))
    throw new UsageError(`--dump-ir: unknown pass \`${dump}\` (passes: ${passNames(target).join(', ')})`);
  if (f['shader-f16'] && target !== 'wgsl') throw new UsageError('--shader-f16 needs --target wgsl');
  const headDim = positiveInt('dim', f.dim, 64);
  // Generated files name their source, and must not carry this machine's absolute paths.
  const name = portableName(file);
  const { artifact } = compile(source, {
    target: target as Target,
    file: name,
    // Offline WGSL for a device known to have shader-f16 (the portable default lacks it).
    ...(f['shader-f16'] ? { limits: { shaderF16: true } } : {}),
    ...(f.entry ? { entry: f.entry } : {}),
    ...(f.arch !== undefined ? { arch: f.arch } : {}),
    headDim,
    valueDim: positiveInt('value-dim', f['value-dim'], headDim),
    dtype: parseDtype(f.dtype, target === 'cuda' ? 'bf16' : 'f32'),
    lse: !f['no-lse'],
    ...(f.importance !== undefined ? { importance: parseImportance(f.importance)! } : {}),
    observe: (pass, ir) => {
      if (pass === dump) process.stdout.write(dumpIR(ir, pass));
    },
  });
  if (dump !== undefined) return 0;
  if (emit !== undefined) return emitModule(artifact, source, name, emit, f.out);
  const ext = target === 'wgsl' ? 'wgsl' : 'cu';
  const { code, files, ...rest } = artifact;
  const manifest = JSON.stringify({ ...rest, code: `${artifact.name}.${ext}` }, null, 2) + '\n';
  if (!f.out) {
    process.stdout.write(code);
    return 0;
  }
  ensureDirectory(f.out);
  const written: Record<string, string> = { [`${artifact.name}.${ext}`]: code, ...files };
  if (!files || !Object.keys(files).some((n) => n.endsWith('.json')))
    written[`${artifact.name}.json`] = manifest;
  for (const [name, text] of Object.entries(written)) writeOutput(join(f.out, name), text);
  process.stdout.write(
    `wrote ${Object.keys(written)
      .map((n) => join(f.out!, n))
      .join(', ')}\n`,
  );
  return 0;
}

/** `--emit ts|js`: the artifact as a self-contained module (codegen/emit-ts.ts), formatted. */
async function emitModule(
  artifact: Artifact,
  source: string,
  file: string,
  lang: 'ts' | 'js',
  out: string | undefined,
): Promise<number> {
  let emitted: ReturnType<typeof emitKernelModule>;
  try {
    emitted = emitKernelModule(artifact, { lang, source, file });
  } catch (e) {
    throw new UsageError((e as Error).message); // a kernel the module format cannot express
  }
  const files = await formatFiles(emitted.files);
  const main = `${artifact.name}.${lang}`;
  if (!out) {
    process.stdout.write(files[main]!);
    return 0;
  }
  ensureDirectory(out);
  for (const [name, text] of Object.entries(files)) writeOutput(join(out, name), text);
  process.stdout.write(
    `wrote ${Object.keys(files)
      .map((n) => join(out, n))
      .join(', ')}\n`,
  );
  return 0;
}
