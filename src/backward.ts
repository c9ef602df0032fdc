// The backward pass's entry point (issue 14): compiles the forward kernel as `compile` does and
// renders its backward module from the same kernel IR, so both share the tile classification,
// params and tensors: WGSL (f32, codegen/wgsl/backward.ts) and CUDA SIMT (f32, deterministic,
// codegen/cuda/backward.ts).
import { compile, type CompileOptions, type Compiled } from './compile.js';
import type { StorageDType } from './ir/kernel.js';
import { CompileError, error } from './diagnostics.js';
import { renderWgslBackward, type WgslBackwardArtifact } from './codegen/wgsl/backward.js';
import { renderCudaBackward, type CudaBackwardArtifact } from './codegen/cuda/backward.js';
import { renderCudaBackwardMma, type CudaBackwardMmaArtifact } from './codegen/cuda/backward-mma.js';
import { renderCudaBackwardWgmma, type CudaBackwardWgmmaArtifact } from './codegen/cuda/backward-wgmma.js';
import type { BackwardWgmmaTune } from './codegen/cuda/backward-wgmma-tune.js';
import { cudaArchs, isCudaArch } from './codegen/cuda/arch.js';

export interface CompiledBackward extends Compiled {
  readonly backward: WgslBackwardArtifact;
}

/** The forward artifact plus its WGSL backward module; a CompileError where there is none. */
export function compileBackward(source: string, options: Omit<CompileOptions, 'target'>): CompiledBackward {
  const compiled = compile(source, { ...options, target: 'wgsl', lse: true });
  try {
    return { ...compiled, backward: renderWgslBackward(compiled.kernel) };
  } catch (e) {
    throw new CompileError([error((e as Error).message, compiled.decl.decl.nameSpan)], source);
  }
}

export interface CompiledCudaBackward extends Compiled {
  readonly backward: CudaBackwardArtifact;
}

/** The CUDA forward artifact (f32 storage) plus its SIMT backward; a CompileError where there is none. */
export function compileCudaBackward(
  source: string,
  options: Omit<CompileOptions, 'target' | 'dtype'>,
): CompiledCudaBackward {
  const compiled = compile(source, { ...options, target: 'cuda', dtype: 'f32', lse: true });
  try {
    return { ...compiled, backward: renderCudaBackward(compiled.kernel) };
  } catch (e) {
    throw new CompileError([error((e as Error).message, compiled.decl.decl.nameSpan)], source);
  }
}

export interface CompiledCudaBackwardMma extends Compiled {
  readonly backward: CudaBackwardMmaArtifact;
}

/**
 * The CUDA forward artifact (f16/bf16, tensor-core engine unless `schedule` says otherwise) plus
 * its tensor-core backward (mma.sync, sm_80+); a CompileError where there is none.
 */
export function compileCudaBackwardMma(
  source: string,
  options: Omit<CompileOptions, 'target' | 'dtype'> & {
    readonly dtype: 'f16' | 'bf16';
    /** dq without atomics and param gradients summed in a fixed order (backward-mma-dq.ts). */
    readonly deterministic?: boolean;
  },
): CompiledCudaBackwardMma {
  return withTensorCoreBackward(source, options, renderCudaBackwardMma);
}

/** The forward compiled for a tensor-core backward, and `render`'s backward of it (positioned errors). */
function withTensorCoreBackward<A>(
  source: string,
  options: Parameters<typeof compileCudaBackwardMma>[1],
  render: (kernel: Compiled['kernel'], o: { readonly deterministic: boolean }) => A,
): Compiled & { readonly backward: A } {
  const { deterministic, ...compileOptions } = options;
  const compiled = compile(source, {
    ...compileOptions,
    target: 'cuda',
    lse: true,
    schedule: { engine: 'mma', ...options.schedule },
  });
  try {
    return { ...compiled, backward: render(compiled.kernel, { deterministic: deterministic === true }) };
  } catch (e) {
    throw new CompileError([error((e as Error).message, compiled.decl.decl.nameSpan)], source);
  }
}

export interface CompiledCudaBackwardWgmma extends Compiled {
  readonly backward: CudaBackwardWgmmaArtifact;
}

/**
 * As compileCudaBackwardMma, with the dK/dV kernel on wgmma (sm_90a, codegen/cuda/backward-wgmma.ts);
 * the deterministic mode's dq kernel stays on mma.sync.
 */
export function compileCudaBackwardWgmma(
  source: string,
  options: Parameters<typeof compileCudaBackwardMma>[1] & {
    /** The dK/dV kernel with a producer warpgroup (backward-wgmma-ws.ts; default WGMMA_BWD_PRODUCER). */
    readonly producer?: boolean;
    /** Tile-body knobs (backward-wgmma-tune.ts; default WGMMA_BWD_TUNE with a producer, none without). */
    readonly tune?: BackwardWgmmaTune;
  },
): CompiledCudaBackwardWgmma {
  const { producer, tune, ...rest } = options;
  return withTensorCoreBackward(source, rest, (kernel, o) =>
    renderCudaBackwardWgmma(kernel, {
      ...o,
      ...(producer === undefined ? {} : { producer }),
      ...(tune === undefined ? {} : { tune }),
    }),
  );
}

/**
 * Which CUDA backward: the f32 SIMT one (deterministic; f32 kernels and gradcheck), mma.sync (f16/bf16,
 * sm_80+) or wgmma (f16/bf16, sm_90a). Both tensor-core ones read and write the kernel's 16-bit dtype.
 */
export type CudaBackwardEngine = 'simt' | 'mma' | 'wgmma';

/**
 * The engines `attnc compile --backward` tries, in order, when none is asked for: SIMT for f32 (the
 * deterministic f32 backward gradcheck uses); for f16/bf16 wgmma on sm_90a, then mma.sync, then
 * SIMT, each taken where the one before cannot take the kernel (head dims, shared memory, quantized
 * caches); mma.sync then SIMT on the other sm_80+ arches. The tensor-core kernels passed the H200
 * check against torch autograd on every pattern (bench/cuda/backward.sh) and, in round 6, the
 * Python autograd path through their dq_acc/partials scratch (python/gpu_tests/
 * test_autograd_tensor_cores.py); wgmma is the faster (full 16K bf16: 42.8 ms vs mma's 69.5).
 * Routing/selection kernels: only SIMT takes them (the tensor-core engines refuse), so they get it.
 */
export function defaultBackwardEngines(dtype: StorageDType, arch: string): readonly CudaBackwardEngine[] {
  if (dtype === 'f32') return ['simt'];
  return arch === 'sm_90a' ? ['wgmma', 'mma', 'simt'] : ['mma', 'simt'];
}

/** Why `engine` cannot serve a `dtype` kernel built for `arch` (undefined when it can). */
export function backwardEngineRefusal(
  engine: CudaBackwardEngine,
  dtype: StorageDType,
  arch: string,
): string | undefined {
  if (engine === 'simt') return undefined;
  if (dtype === 'f32')
    return `the ${engine} backward needs --dtype f16 or bf16 (f32 kernels use the simt backward)`;
  if (engine === 'wgmma' && arch !== 'sm_90a') return `the wgmma backward needs --arch sm_90a (got ${arch})`;
  return undefined;
}

/** What a CUDA manifest says of the kernel's backward (the `backward` key; `--backward` writes it). */
export type CudaBackwardManifest =
  | {
      readonly available: true;
      readonly engine: CudaBackwardEngine;
      /** Storage of q, k, v, out, dout, dq, dk, dv: f32 for simt (callers cast), else the kernel's. */
      readonly dtype: StorageDType;
      /** The backward's own .cu. */
      readonly code: string;
      readonly launch: string;
      /** `int <ns>_slots(const Args*)`: the length of `grads` (and of each row of `partials`). */
      readonly slots: string;
      /**
       * Tensor-core engines: `long long <ns>_partials(const Args*)`, the floats of `partials`; they
       * also take the f32 scratch `dq_acc` [B·H·Nq·D]. simt: partials is [B·H·Nq·slots] floats.
       */
      readonly partials?: string;
      /**
       * Routing/selection kernels (simt): `long long <ns>_inverted(const Args*)`, the ints of the
       * `inverted` scratch (the selection inverted into per-id row lists for bwd_dkdv).
       */
      readonly inverted?: string;
      readonly fields: CudaBackwardArtifact['fields'];
      readonly gradParams: readonly string[];
      readonly gradTensors: readonly string[];
      readonly summaries: readonly string[];
      readonly summaryBlock: number;
      readonly headDim: number;
      readonly valueDim: number;
    }
  | { readonly available: false; readonly reason: string };

type BesideOptions = Omit<CompileOptions, 'target' | 'dtype'>;

/** The chosen engine's backward artifact (a CompileError where there is none). */
function backwardFor(
  source: string,
  options: BesideOptions,
  engine: CudaBackwardEngine,
  dtype: StorageDType,
  arch: string,
): {
  kernel: Compiled['kernel'];
  backward: CudaBackwardArtifact | CudaBackwardMmaArtifact | CudaBackwardWgmmaArtifact;
} {
  if (engine === 'simt') return compileCudaBackward(source, options);
  const tc = { ...options, dtype: dtype as 'f16' | 'bf16' };
  const r = engine === 'mma' ? compileCudaBackwardMma(source, tc) : compileCudaBackwardWgmma(source, tc);
  // The launcher raises the block's shared memory to what the kernel asks; past the arch's opt-in
  // limit that fails at launch (sm_86 / sm_89: 99 KiB, under the mma.sync dK/dV kernel at D = 128).
  const limit = isCudaArch(arch) ? cudaArchs[arch].maxSharedBytes : undefined;
  const needs = Math.max(r.backward.smemBytes, r.backward.dqSmemBytes);
  if (limit !== undefined && needs > limit)
    throw new CompileError(
      [
        error(
          `the ${engine} backward needs ${needs} bytes of shared memory, more than ${arch}'s ${limit}`,
          r.decl.decl.nameSpan,
        ),
      ],
      source,
    );
  return r;
}

/**
 * The backward beside a CUDA forward artifact: its .cu file (name -> text) and the manifest's
 * `backward` entry. A kernel without one (quantized or paged caches, no lse) gets
 * `available: false` and the reason, so callers can say why instead of failing the forward.
 * `engine` undefined: the first of defaultBackwardEngines that takes the kernel; an engine asked
 * for is not replaced.
 */
export function cudaBackwardBeside(
  source: string,
  options: BesideOptions,
  choice: {
    readonly engine?: CudaBackwardEngine;
    readonly dtype?: StorageDType;
    readonly arch?: string;
  } = {},
): { files: Record<string, string>; manifest: CudaBackwardManifest } {
  const none = (reason: string) => ({ files: {}, manifest: { available: false as const, reason } });
  if (options.lse === false) return none('the backward needs the forward to write lse (built with --no-lse)');
  const dtype = choice.dtype ?? 'f32';
  const engines = choice.engine ? [choice.engine] : defaultBackwardEngines(dtype, choice.arch ?? 'sm_90a');
  let engine = engines[0]!;
  let b: CudaBackwardArtifact | CudaBackwardMmaArtifact | CudaBackwardWgmmaArtifact | undefined;
  let kernel: Compiled['kernel'] | undefined;
  try {
    for (const [i, next] of engines.entries()) {
      engine = next;
      try {
        ({ kernel, backward: b } = backwardFor(source, options, engine, dtype, choice.arch ?? 'sm_90a'));
        break;
      } catch (e) {
        // The default engine cannot take this kernel: the next one may (the last one says why not).
        if (!(e instanceof CompileError) || i === engines.length - 1) throw e;
      }
    }
    if (!kernel || !b) throw new Error('unreachable: no backward engine tried');
    if (kernel.formats.paged) return none('the backward reads packed K/V; a paged cache is for inference');
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    return none(e.diagnostics.map((d) => d.message).join('; '));
  }
  const code = `${b.name}.cu`;
  return {
    files: { [code]: b.code },
    manifest: {
      available: true,
      engine,
      dtype: b.kind === 'cuda-backward' ? 'f32' : b.dtype,
      code,
      launch: `${b.namespace}_launch`,
      slots: `${b.namespace}_slots`,
      ...(b.kind === 'cuda-backward' ? {} : { partials: `${b.namespace}_partials` }),
      ...(b.fields.some((f) => f.name === 'inverted') ? { inverted: `${b.namespace}_inverted` } : {}),
      fields: b.fields,
      gradParams: b.gradParams,
      gradTensors: b.gradTensors,
      summaries: b.summaries,
      summaryBlock: kernel.schedule.summaryBlock,
      headDim: b.headDim,
      valueDim: b.valueDim,
    },
  };
}
