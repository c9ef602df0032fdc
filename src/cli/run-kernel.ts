// `attnc run`: compile for this machine's WebGPU device, execute on random inputs, and compare
// with the dense float64 reference. Shared by the CLI and (later) the REPL's `:run`.
import { checkSource, compile } from '../compile.js';
import { checkIntSpellings, checkParamNames } from './check-command.js';
import { blamingFlags, dimFlags } from './compile-flags.js';
import { UsageError } from './errors.js';
import { checkRunFits, type RunSizes } from './run-limits.js';
import type { ImportanceMode, StorageDType } from '../ir/kernel.js';
import { tileCounts } from '../ir/tile-stats.js';
import { routingFrom, unitBlockSize } from '../ir/routing.js';
import type { EvalEnv } from '../runtime/ast-eval.js';
import { compareArrays } from '../runtime/compare.js';
import { fromF16, toF16 } from '../runtime/f16.js';
import { declaredDefault, paramProblem } from '../runtime/params.js';
import { randomNormal, randomTensor, rng, tensorLength, tensorShape } from '../runtime/inputs.js';
import type { RefInputs } from '../runtime/reference.js';
import { storedRun } from '../runtime/stored-run.js';
import { randomPagedRun } from '../runtime/kv-rows.js';
import {
  createKernel,
  deviceLimits,
  getDevice,
  type GpuKernel,
  type RunInputs,
  type RunResult,
} from '../runtime/webgpu.js';
import { pageStoredCaches } from '../runtime/kv-quant-pages.js';
import type { AttentionKernel, ParamSlot } from '../ir/kernel.js';
import type { CheckedDecl } from '../dsl/checker.js';
import { importanceAgreement, runReference } from './run-reference.js';
import { bytesPerToken, runBytes, type RunReport } from './run-report.js';

export type { CacheBytesPerToken, RoutingReport, RunBytes, RunReport } from './run-report.js';

export interface RunOptions extends RunSizes {
  readonly file: string;
  readonly entry?: string;
  readonly dtype: StorageDType;
  readonly params: Readonly<Record<string, number | boolean>>;
  /** The `--param NAME=VALUE` items as typed: an i32 param spelled `1e3` is refused. */
  readonly paramText?: readonly string[];
  readonly seed: number;
  readonly repeats: number;
  /** The WGSL engine; default: by adapter (coop on hardware, row on CPU adapters). */
  readonly wgslEngine?: 'row' | 'coop';
  /** Compile with the importance output and compare it with the reference's. */
  readonly importance?: ImportanceMode;
  /** Told as each phase starts (the CLI's progress spinner). */
  readonly onPhase?: (phase: RunPhase) => void;
}

/** The phases of a run, in order. */
export type RunPhase = 'device' | 'compile' | 'gpu' | 'reference' | 'compare';

export async function runKernel(source: string, o: RunOptions): Promise<RunReport> {
  const phase = o.onPhase ?? (() => {});
  // The program's own errors first, and an --entry it does not declare: on a machine without an
  // adapter they are what to fix (and they need no device).
  const checked = blamingFlags({ dims: dimFlags(o.D, o.D), entry: o.entry }, () =>
    checkSource(source, o.file, o.entry),
  );
  // So are the `--param`s (a typo, a fraction for an int, a missing required one): the declared
  // params are the kernel's scalar params, so they are checked before the device is asked for.
  const params = runParams(declaredParams(checked.decl), o.params, o.paramText ?? []);
  phase('device');
  const device = await deviceForRun();
  phase('compile');
  const t0 = performance.now();
  const { artifact, kernel, decl } = blamingFlags({ dims: dimFlags(o.D, o.D), entry: o.entry }, () =>
    compile(source, {
      target: 'wgsl',
      file: o.file,
      ...(o.entry ? { entry: o.entry } : {}),
      headDim: o.D,
      dtype: o.dtype,
      limits: deviceLimits(device),
      ...(o.wgslEngine ? { wgslEngine: o.wgslEngine } : {}),
      ...(o.importance ? { importance: o.importance } : {}),
    }),
  );
  const t1 = performance.now();

  const rand = rng(o.seed);
  const sizes = { B: o.B, H: o.H, Hkv: o.Hkv, Nq: o.Nq, Nk: o.Nk };
  // Before any allocation: a size the device or the reference cannot hold is a one-line error.
  checkRunFits(artifact, { ...sizes, D: o.D }, params, device.limits);
  const gpuKernel = await createKernel(device, artifact);
  const t2 = performance.now();
  const { q, k, v, tensors, stored, paged, inputs } = randomRun(kernel, o, params, rand);
  phase('gpu');
  const { result, best } = await bestOfRuns(gpuKernel, inputs, o.repeats);
  gpuKernel.destroy();

  phase('reference');
  const t3 = performance.now();
  const env = referenceEnv(kernel, o, params, tensors);
  const inp: RefInputs = { q, k, v, ...sizes, Hq: o.H, D: o.D, Dv: o.D };
  const { ref, routing } = runReference(decl.decl, env, inp, result.indices);
  const t4 = performance.now();
  phase('compare');
  // The keys keep the order `--json` has always printed them in.
  return {
    name: kernel.name,
    ...agreement(kernel, o, env, result, ref),
    compileMs: t1 - t0,
    pipelineMs: t2 - t1,
    gpuMs: best,
    referenceMs: t4 - t3,
    bytes: runBytes(inputs, result, o.dtype === 'f16' ? 2 : 4, stored.bytes),
    tolerance: o.dtype === 'f32' ? 1e-5 : 5e-3,
    ...(routing ? { routing } : {}),
    ...cacheFacts(o, stored, paged),
  };
}

/** What the reference reads: params, each tensor with its shape, and the sizes (D included). */
function referenceEnv(
  kernel: AttentionKernel,
  o: RunOptions,
  params: Readonly<Record<string, number | boolean>>,
  tensors: Readonly<Record<string, Int32Array | Float32Array>>,
): EvalEnv & { tensors: NonNullable<EvalEnv['tensors']> } {
  const sizes = { B: o.B, H: o.H, Hkv: o.Hkv, Nq: o.Nq, Nk: o.Nk };
  const envTensors = Object.fromEntries(
    kernel.tensors.map((t) => [t.name, { data: tensors[t.name]!, shape: tensorShape(t, sizes, params) }]),
  );
  return { params, tensors: envTensors, sizes: { ...sizes, D: o.D } };
}

/** The GPU's outputs against the reference's, the mask density, and the kernel's tile classes. */
function agreement(
  kernel: AttentionKernel,
  o: RunOptions,
  env: ReturnType<typeof referenceEnv>,
  result: RunResult,
  ref: ReturnType<typeof runReference>['ref'],
): Pick<RunReport, 'out' | 'lse' | 'importance' | 'density' | 'tiles'> {
  let allowed = 0;
  for (const m of ref.mask) allowed += m;
  const tiles = tileCounts(kernel, {
    b: 0,
    h: 0,
    Nq: o.Nq,
    Nk: o.Nk,
    qOffset: o.Nk - o.Nq,
    kOffset: 0,
    env: { params: env.params, tensors: env.tensors, vars: { ...env.sizes } },
  });
  return {
    out: compareArrays(result.out, ref.out, ref.outScale),
    lse: result.lse ? compareArrays(result.lse, ref.lse, 1) : undefined,
    ...(kernel.outputs.importance
      ? { importance: importanceAgreement(result.importance, ref, o, kernel.outputs.importance) }
      : {}),
    density: allowed / ref.mask.length,
    tiles,
  };
}

/** A paged run's cache layout, and a quantized cache's bytes per token against a plain one. */
function cacheFacts(
  o: RunOptions,
  stored: ReturnType<typeof randomRun>['stored'],
  paged: ReturnType<typeof randomRun>['paged'],
): Pick<RunReport, 'cacheLayout' | 'cacheBytesPerToken'> {
  return {
    ...(paged ? { cacheLayout: paged.description } : {}),
    ...(stored.bytes.k !== undefined || stored.bytes.v !== undefined
      ? {
          cacheBytesPerToken: bytesPerToken(
            stored.bytes,
            o.B * o.Hkv * o.Nk,
            o.D * (o.dtype === 'f16' ? 2 : 4),
          ),
        }
      : {}),
  };
}

/** A declaration's scalar params as the compiled kernel's ParamSlots (a bool default as 0/1), and its tensors. */
function declaredParams(checked: CheckedDecl): {
  name: string;
  params: ParamSlot[];
  tensors: { name: string }[];
} {
  const params = checked.decl.params.flatMap((p): ParamSlot[] => {
    if (p.type.kind !== 'scalar') return [];
    const given = checked.defaults.get(p.name);
    const dflt = typeof given === 'boolean' ? Number(given) : given;
    return [{ name: p.name, dtype: p.type.name === 'int' ? 'i32' : p.type.name, default: dflt }];
  });
  const tensors = checked.decl.params.filter((p) => p.type.kind === 'tensor');
  return { name: checked.decl.name, params, tensors };
}

/** The kernel's scalar params: `--param` values checked, defaults filled in (a UsageError names the flag). */
function runParams(
  kernel: {
    readonly name: string;
    readonly params: readonly ParamSlot[];
    readonly tensors: readonly { readonly name: string }[];
  },
  given: Readonly<Record<string, number | boolean>>,
  paramText: readonly string[],
): Record<string, number | boolean> {
  checkParamNames(kernel, given);
  checkIntSpellings(kernel, paramText);
  const params: Record<string, number | boolean> = {};
  for (const p of kernel.params) params[p.name] = paramValue(kernel, p, given);
  return params;
}

function paramValue(
  kernel: { readonly name: string },
  p: ParamSlot,
  given: Readonly<Record<string, number | boolean>>,
): number | boolean {
  const problem = p.name in given ? paramProblem(p.name, p.dtype, given[p.name]) : undefined;
  if (problem) throw new UsageError(`--${problem}`);
  const v = given[p.name] ?? declaredDefault(p);
  // Said before any GPU work, with the flag to add (the runtime's message names no flag).
  if (v === undefined)
    throw new UsageError(
      `--param ${p.name}=VALUE is needed: ${kernel.name}'s \`${p.name}\` (${p.dtype}) has no default`,
    );
  return v;
}

/**
 * Random inputs of the run, drawn from `rand` in a fixed order (the seed reproduces a run): the
 * program's tensors, q, k, v, the quantized caches and the page table. `q`, `k`, `v` are the
 * values the reference sees; `inputs` is what the kernel binds.
 */
function randomRun(
  kernel: AttentionKernel,
  o: RunOptions,
  params: Readonly<Record<string, number | boolean>>,
  rand: () => number,
) {
  const sizes = { B: o.B, H: o.H, Hkv: o.Hkv, Nq: o.Nq, Nk: o.Nk };
  const tensors: Record<string, Int32Array | Float32Array> = {};
  for (const t of kernel.tensors) tensors[t.name] = randomTensor(t, tensorLength(t, sizes, params), rand);
  // A reused selection (`… from idx`): ids of the call's keys (or blocks), some −1 padding.
  const from = kernel.routing && routingFrom(kernel.routing);
  if (from) {
    const ids = Math.ceil(o.Nk / unitBlockSize(kernel.routing!));
    tensors[from.tensor] = Int32Array.from(tensors[from.tensor]!, () => Math.floor(rand() * (ids + 1)) - 1);
  }
  const q = randomNormal(o.B * o.H * o.Nq * o.D, rand);
  const k = randomNormal(o.B * o.Hkv * o.Nk * o.D, rand);
  const v = randomNormal(o.B * o.Hkv * o.Nk * o.D, rand);

  // f16 kernels take f16 bits; the reference sees the same rounded values.
  const store = (x: Float32Array): Float32Array | Uint16Array => (o.dtype === 'f16' ? toF16(x) : x);
  if (o.dtype === 'f16') for (const x of [q, k, v]) x.set(fromF16(toF16(x)));
  // Quantized caches (`store`): the kernel binds them; the reference reads the values they hold.
  const stored = storedRun(kernel.formats, { ...sizes, D: o.D, Dv: o.D }, rand, tensors);
  if (stored.values.k) k.set(stored.values.k);
  if (stored.values.v) v.set(stored.values.v);
  // A paged kernel reads K/V from a pool of pages through a shuffled block table.
  const P = kernel.formats.paged?.pageSize;
  const paged =
    P === undefined ? undefined : randomPagedRun({ k, v }, { ...sizes, D: o.D, Dv: o.D }, P, rand);
  const inputs = {
    q: store(q),
    k: store(paged ? paged.k : k),
    v: store(paged ? paged.v : v),
    ...sizes,
    tensors,
    params,
    // A paged quantized cache: its pools through the same block table (kv-quant-pages.ts).
    caches: paged
      ? pageStoredCaches(kernel.formats, stored.caches, { ...sizes, D: o.D, Dv: o.D }, paged.pages)
      : stored.caches,
    ...(paged ? { kvCache: paged.kvCache } : {}),
  };
  return { q, k, v, tensors, stored, paged, inputs };
}

/** `repeats` runs of the kernel: the last one's outputs and the best GPU time. */
async function bestOfRuns(
  gpuKernel: GpuKernel,
  inputs: RunInputs,
  repeats: number,
): Promise<{ result: RunResult; best: number }> {
  let result = await gpuKernel.run(inputs);
  let best = result.gpuMs ?? Infinity;
  for (let i = 1; i < repeats; i++) {
    const r = await gpuKernel.run(inputs);
    best = Math.min(best, r.gpuMs ?? Infinity);
    result = r;
  }
  return { result, best };
}

/** The WebGPU device; no adapter is the machine's state, not a bug: a one-line UsageError. */
async function deviceForRun(): Promise<GPUDevice> {
  try {
    return await getDevice();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
