// `attnc run FILE [shape flags]`: execute on WebGPU and compare with the dense reference.
import { parseDtype, parseImportance, parseWgslEngine, positiveInt, seedFlag } from './compile-flags.js';
import type { CompileFlags } from './compile-flags.js';
import { UsageError } from './errors.js';
import { EXIT } from './exit.js';
import { head, writeJson } from './json.js';
import { startProgress } from './progress.js';
import {
  runKernel,
  type RunOptions,
  type RunPhase,
  type RunReport,
  type CacheBytesPerToken,
} from './run-kernel.js';

export interface RunFlags extends CompileFlags {
  nq?: string | undefined;
  nk?: string | undefined;
  heads?: string | undefined;
  'kv-heads'?: string | undefined;
  batch?: string | undefined;
  seed?: string | undefined;
  repeat?: string | undefined;
  /** The `--param` items as typed (their values come parsed as `params`). */
  param?: string[] | undefined;
}

const phaseText: Readonly<Record<RunPhase, string>> = {
  device: 'requesting a WebGPU device',
  compile: 'compiling',
  gpu: 'running the kernel on the GPU',
  reference: 'computing the float64 reference on the CPU',
  compare: 'comparing with the reference',
};

/** Timing repeats at most: more measures nothing new and only makes a run look hung. */
export const MAX_REPEAT = 100;

export function repeatCount(raw: string | undefined, fallback: number): number {
  const n = positiveInt('repeat', raw, fallback);
  if (n > MAX_REPEAT) throw new UsageError(`--repeat ${n}: at most ${MAX_REPEAT}`);
  return n;
}

const fmt = (x: number): string => (x === 0 ? '0' : x.toExponential(2));

export async function runCommand(
  source: string,
  file: string,
  f: RunFlags,
  params: Record<string, number | boolean>,
): Promise<number> {
  const options = runOptions(file, f, params);
  const r = await runWithProgress(source, options, f.json === true);
  const ok = agrees(r);
  const code = ok ? EXIT.ok : EXIT.disagrees;
  if (f.json) {
    const { B, H: heads, Hkv: kvHeads, Nq, Nk: keys, D } = options;
    const sizes = { B, H: heads, Hkv: kvHeads, Nq, Nk: keys, D };
    writeJson({ ...head('run', code), file, agrees: ok, sizes, dtype: options.dtype, ...r });
    return code;
  }
  process.stdout.write(reportLines(r, ok).join('\n') + '\n');
  return code;
}

/** The run's options from its flags, each checked in the order the flags are documented. */
function runOptions(file: string, f: RunFlags, params: Record<string, number | boolean>): RunOptions {
  const H = positiveInt('heads', f.heads, 4);
  const Hkv = positiveInt('kv-heads', f['kv-heads'], H);
  if (H % Hkv !== 0) throw new UsageError(`--heads (${H}) must be a multiple of --kv-heads (${Hkv})`);
  const Nk = positiveInt('nk', f.nk, 1024);
  const dtype = parseDtype(f.dtype, 'f32');
  if (dtype === 'bf16') throw new UsageError('WebGPU has no bf16 storage: use --dtype f32 or f16');
  return {
    file,
    ...(f.entry ? { entry: f.entry } : {}),
    B: positiveInt('batch', f.batch, 1),
    H,
    Hkv,
    Nq: positiveInt('nq', f.nq, Nk),
    Nk,
    D: positiveInt('dim', f.dim, 64),
    dtype,
    params,
    ...(f.param ? { paramText: f.param } : {}),
    seed: seedFlag(f.seed, 1),
    repeats: repeatCount(f.repeat, 3),
    ...(f.importance !== undefined ? { importance: parseImportance(f.importance)! } : {}),
    ...(f['wgsl-engine'] !== undefined ? { wgslEngine: parseWgslEngine(f['wgsl-engine'])! } : {}),
  };
}

/** runKernel with a progress line on stderr (none under --json), cleared however the run ends. */
async function runWithProgress(source: string, options: RunOptions, json: boolean): Promise<RunReport> {
  const progress = await startProgress({ stream: process.stderr, json, env: process.env });
  try {
    return await runKernel(source, { ...options, onPhase: (p) => progress.phase(phaseText[p]) });
  } finally {
    progress.done();
  }
}

/** The human-readable report: verdict, errors, density and tiles, routing, cache, timings. */
function reportLines(r: RunReport, ok: boolean): string[] {
  const total = r.tiles.empty + r.tiles.full + r.tiles.partial;
  return [
    `${r.name}: ${ok ? 'agrees with the reference' : 'DISAGREES with the reference'} (tolerance ${fmt(r.tolerance)})`,
    `  out  max abs error ${fmt(r.out.maxAbsError)}, relative ${fmt(r.out.relError)}${r.out.nanCount ? `, ${r.out.nanCount} NaN` : ''}`,
    ...(r.lse ? [`  lse  max abs error ${fmt(r.lse.maxAbsError)}, relative ${fmt(r.lse.relError)}`] : []),
    ...(r.importance
      ? [
          `  importance max abs error ${fmt(r.importance.maxAbsError)}, relative ${fmt(r.importance.relError)}${r.importance.nanCount ? `, ${r.importance.nanCount} NaN` : ''}`,
        ]
      : []),
    `  mask density ${(r.density * 100).toFixed(1)}%; tiles (head 0): ${r.tiles.full} full, ${r.tiles.partial} partial, ${r.tiles.empty} empty of ${total}`,
    ...(r.routing ? [routingLine(r.routing)] : []),
    ...(r.cacheBytesPerToken ? [cacheLine(r.cacheBytesPerToken)] : []),
    ...(r.cacheLayout ? [`  K/V cache: ${r.cacheLayout}`] : []),
    `  time: compile ${r.compileMs.toFixed(1)} ms, pipeline ${r.pipelineMs.toFixed(1)} ms, kernel ${r.gpuMs.toFixed(2)} ms (best of runs), reference ${r.referenceMs.toFixed(0)} ms`,
  ];
}

/** Selected-unit and pair densities, and whether the kernel's indices match the oracle's. */
function routingLine(routing: NonNullable<RunReport['routing']>): string {
  const indices =
    routing.indices === 'exact'
      ? 'match the reference'
      : routing.indices === 'near-tie'
        ? 'differ only at f32 near-ties (valid top-k)'
        : `WRONG: ${routing.indices}`;
  return `  routing: selected-${routing.unit} density ${(routing.blockDensity * 100).toFixed(1)}%, pair density ${(routing.pairDensity * 100).toFixed(1)}%; indices ${indices}`;
}

/** The bytes a quantized K/V cache reads per token (one row of one kv head), against plain rows. */
function cacheLine(c: CacheBytesPerToken): string {
  const part = (name: string, b: number | undefined) => (b === undefined ? [] : [`${name} ${b.toFixed(2)}`]);
  const parts = [...part('k', c.k), ...part('v', c.v)].join(', ');
  return `  K/V cache: ${c.total.toFixed(2)} bytes read per token per kv head (${parts}; ${c.plain} unquantized, ${(c.plain / c.total).toFixed(2)}x less)`;
}

/** Whether a run agrees with the reference: exit 0, else EXIT.disagrees (3). */
export function agrees(r: RunReport): boolean {
  const indicesOk = !r.routing || r.routing.indices === 'exact' || r.routing.indices === 'near-tie';
  return (
    indicesOk &&
    r.out.relError <= r.tolerance &&
    r.out.nanCount === 0 &&
    (!r.lse || r.lse.relError <= r.tolerance) &&
    (!r.importance || (r.importance.relError <= r.tolerance && r.importance.nanCount === 0))
  );
}
