// What `attnc run` (and the REPL's :run) can hold, checked before anything is allocated: sizes are
// int32, every GPU buffer fits the device's per-buffer limits, every launch grid fits its
// per-dimension limit, and the dense float64 reference (which keeps a B·H·Nq·Nk mask and spends
// about (D + Dv + 24) multiply-add times per pair on one CPU core) ends in reasonable time and memory.
// Each failure is one UsageError naming the sizes and the limit, instead of an allocation crash,
// a GPU fault or an unbounded wait.
import type { Artifact, Binding } from '../codegen/artifact.js';
import { evalShapeExpr, ShapeExprError } from '../runtime/shape-expr.js';
import { UsageError } from './errors.js';

export interface RunSizes {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
}

/** The device limits that bound one run (GPUSupportedLimits has them all). */
export interface RunDeviceLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
}

export const I32_MAX = 2147483647;
/** Reference work allowed, in multiply-add times: under a minute of float64 on one busy core. */
export const MAX_REFERENCE_WORK = 2 ** 34;
/** The reference's per-pair cost beyond the dot products (mask, score, exp), in multiply-adds (measured). */
const PAIR_OVERHEAD = 24;
/** Bytes of the reference's B·H·Nq·Nk mask allowed. */
export const MAX_REFERENCE_MASK = 2 ** 30;

const flagOf: Readonly<Record<keyof RunSizes, string>> = {
  B: 'batch',
  H: 'heads',
  Hkv: 'kv-heads',
  Nq: 'nq',
  Nk: 'nk',
  D: 'dim',
};

/** `--batch 1 --heads 4 --nq 100000 …`: the sizes as the user gives them. */
export function sizeFlags(s: RunSizes): string {
  return (Object.keys(flagOf) as (keyof RunSizes)[]).map((k) => `--${flagOf[k]} ${s[k]}`).join(' ');
}

export function formatSize(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (bytes >= 1000 && i < units.length - 1) {
    bytes /= 1000;
    i++;
  }
  return i === 0 ? `${bytes} bytes` : `${bytes >= 100 ? bytes.toFixed(0) : bytes.toPrecision(3)} ${units[i]}`;
}

const elementBytes = (b: Binding): number => (b.dtype === 'f16' || b.dtype === 'bf16' ? 2 : 4);
const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

interface Sized {
  readonly name: string;
  readonly shape: readonly number[];
  readonly bytes: number;
}

/**
 * A tensor whose shape uses an int param (`w: f32[n, kv]`) takes any int the user gives that
 * param; a negative one would reach a typed-array constructor as a negative length (an internal
 * error). Refused here, naming the tensor, its declared shape and the params in it.
 */
function checkDims(b: Binding, shape: readonly number[], env: Readonly<Record<string, number>>): void {
  if (shape.every((d) => d >= 0)) return;
  const names = b.shape.flatMap((e) => e.match(/[A-Za-z_]\w*/g) ?? []);
  const params = [...new Set(names)].filter((n) => Object.hasOwn(env, n) && !sizeNames.has(n));
  const given = params.map((p) => `--param ${p}=${env[p]}`).join(' ');
  throw new UsageError(
    `${b.role === 'tensor' ? 'tensor' : 'buffer'} "${b.name}" [${b.shape.join(', ')}] would have shape [${shape.join(', ')}]: ` +
      `a dimension must be ≥ 0${given ? ` (${given})` : ''}`,
  );
}
const sizeNames: ReadonlySet<string> = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk', 'D', 'Dv']);

/**
 * Storage buffers of `artifact` with their evaluated shapes (ones that do not evaluate are
 * skipped: the runtime's validation names them); a negative dimension is refused.
 */
function buffers(artifact: Artifact, env: Readonly<Record<string, number>>): Sized[] {
  const out: Sized[] = [];
  for (const b of artifact.bindings) {
    if (b.role === 'uniforms') continue;
    try {
      const shape = b.shape.map((e) => evalShapeExpr(e, env));
      checkDims(b, shape, env);
      out.push({ name: b.name, shape, bytes: product(shape) * elementBytes(b) });
    } catch (e) {
      if (!(e instanceof ShapeExprError)) throw e;
    }
  }
  return out;
}

function checkGrids(
  artifact: Artifact,
  env: Readonly<Record<string, number>>,
  max: number,
  flags: string,
): void {
  for (const ep of artifact.entryPoints) {
    let grid: number[];
    try {
      grid = ep.grid.map((g) => evalShapeExpr(g, env));
    } catch (e) {
      if (e instanceof ShapeExprError) continue;
      throw e;
    }
    if (grid.some((g) => g > max))
      throw new UsageError(
        `${flags}: entry point ${ep.name} needs a grid of [${grid.join(', ')}] workgroups; ` +
          `the device allows ${max} per dimension (maxComputeWorkgroupsPerDimension)`,
      );
  }
}

/** The largest buffer against the per-buffer limits (the smaller of the two names the limit). */
function checkBuffers(
  artifact: Artifact,
  env: Readonly<Record<string, number>>,
  limits: RunDeviceLimits,
  flags: string,
): void {
  const perBuffer = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const limitName =
    limits.maxStorageBufferBindingSize <= limits.maxBufferSize
      ? 'maxStorageBufferBindingSize'
      : 'maxBufferSize';
  // The decode variant is only chosen when its scratch fits (runtime/webgpu.ts chooseDecode), so
  // the main artifact's buffers are what must fit.
  const all = buffers(artifact, env);
  const largest = all.reduce<Sized | undefined>((m, b) => (!m || b.bytes > m.bytes ? b : m), undefined);
  if (!largest || largest.bytes <= perBuffer) return;
  const total = all.reduce((n, b) => n + b.bytes, 0);
  throw new UsageError(
    `${flags}: needs ${formatSize(total)} of buffers, "${largest.name}" [${largest.shape.join(', ')}] ` +
      `alone ${formatSize(largest.bytes)}; the device allows ${formatSize(perBuffer)} per buffer (${limitName})`,
  );
}

/** The dense reference's mask memory and time. */
function checkReference(sizes: RunSizes, Dv: number, flags: string): void {
  const { B, H, Nq, Nk, D } = sizes;
  const pairs = B * H * Nq * Nk;
  if (pairs > MAX_REFERENCE_MASK)
    throw new UsageError(
      `${flags}: the dense reference keeps a B·H·Nq·Nk mask of ${formatSize(pairs)}; ` +
        `attnc run allows ${formatSize(MAX_REFERENCE_MASK)}: use smaller sizes`,
    );
  const work = pairs * (D + Dv + PAIR_OVERHEAD);
  if (work > MAX_REFERENCE_WORK)
    throw new UsageError(
      `${flags}: the float64 reference would do about ${work.toExponential(1)} multiply-adds ` +
        `(B·H·Nq·Nk·(D + Dv + ${PAIR_OVERHEAD})); attnc run allows ${MAX_REFERENCE_WORK.toExponential(1)} ` +
        `(about a minute on one core): use smaller sizes`,
    );
}

/**
 * Throws a one-line UsageError when a run of `artifact` at `sizes` cannot be held by `limits` or
 * by the reference; returns normally otherwise. `params`: the int params shapes may use.
 */
export function checkRunFits(
  artifact: Artifact,
  sizes: RunSizes,
  params: Readonly<Record<string, number | boolean>>,
  limits: RunDeviceLimits,
): void {
  const flags = sizeFlags(sizes);
  for (const k of Object.keys(flagOf) as (keyof RunSizes)[])
    if (sizes[k] > I32_MAX)
      throw new UsageError(`--${flagOf[k]} ${sizes[k]}: sizes are int32, at most ${I32_MAX}`);
  const { B, H, Hkv, Nq, Nk, D } = sizes;
  const Dv = artifact.schedule.valueDim;
  const env: Record<string, number> = { B, H, Hkv, Nq, Nk, D, Dv };
  for (const [name, v] of Object.entries(params)) if (typeof v === 'number') env[name] = v;

  checkBuffers(artifact, env, limits, flags);
  checkGrids(artifact, env, limits.maxComputeWorkgroupsPerDimension, flags);
  checkReference(sizes, Dv, flags);
}
