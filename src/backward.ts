// The backward pass's entry point (issue 14): compiles the forward kernel as `compile` does and
// renders its backward module from the same kernel IR, so both share the tile classification,
// params and tensors: WGSL (f32, codegen/wgsl/backward.ts) and CUDA SIMT (f32, deterministic,
// codegen/cuda/backward.ts).
import { compile, type CompileOptions, type Compiled } from './compile.js';
import { CompileError, error } from './diagnostics.js';
import { renderWgslBackward, type WgslBackwardArtifact } from './codegen/wgsl/backward.js';
import { renderCudaBackward, type CudaBackwardArtifact } from './codegen/cuda/backward.js';
import { renderCudaBackwardMma, type CudaBackwardMmaArtifact } from './codegen/cuda/backward-mma.js';
import { renderCudaBackwardWgmma, type CudaBackwardWgmmaArtifact } from './codegen/cuda/backward-wgmma.js';

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
  const { deterministic, ...compileOptions } = options;
  const compiled = compile(source, {
    ...compileOptions,
    target: 'cuda',
    lse: true,
    schedule: { engine: 'mma', ...options.schedule },
  });
  try {
    return {
      ...compiled,
      backward: renderCudaBackwardMma(compiled.kernel, { deterministic: deterministic === true }),
    };
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
  options: Parameters<typeof compileCudaBackwardMma>[1],
): CompiledCudaBackwardWgmma {
  const { deterministic, ...compileOptions } = options;
  const compiled = compile(source, {
    ...compileOptions,
    target: 'cuda',
    lse: true,
    schedule: { engine: 'mma', ...options.schedule },
  });
  try {
    return {
      ...compiled,
      backward: renderCudaBackwardWgmma(compiled.kernel, { deterministic: deterministic === true }),
    };
  } catch (e) {
    throw new CompileError([error((e as Error).message, compiled.decl.decl.nameSpan)], source);
  }
}

/** What a CUDA manifest says of the kernel's backward (the `backward` key; `--backward` writes it). */
export type CudaBackwardManifest =
  | {
      readonly available: true;
      /** The backward's own .cu (f32 storage whatever the forward's dtype: callers cast). */
      readonly code: string;
      readonly launch: string;
      /** `int <ns>_slots(const Args*)`: the length of `grads` (and of each row of `partials`). */
      readonly slots: string;
      readonly fields: CudaBackwardArtifact['fields'];
      readonly gradParams: readonly string[];
      readonly gradTensors: readonly string[];
      readonly summaries: readonly string[];
      readonly summaryBlock: number;
      readonly headDim: number;
      readonly valueDim: number;
    }
  | { readonly available: false; readonly reason: string };

/**
 * The backward beside a CUDA forward artifact: its .cu file (name -> text) and the manifest's
 * `backward` entry. A kernel without one (routing/selection, quantized caches, no lse) gets
 * `available: false` and the reason, so callers can say why instead of failing the forward.
 */
export function cudaBackwardBeside(
  source: string,
  options: Omit<CompileOptions, 'target' | 'dtype'>,
): { files: Record<string, string>; manifest: CudaBackwardManifest } {
  if (options.lse === false)
    return {
      files: {},
      manifest: {
        available: false,
        reason: 'the backward needs the forward to write lse (built with --no-lse)',
      },
    };
  let b: CudaBackwardArtifact;
  try {
    const compiled = compileCudaBackward(source, options);
    if (compiled.kernel.formats.paged)
      return {
        files: {},
        manifest: {
          available: false,
          reason: 'the backward reads packed K/V; a paged cache is for inference',
        },
      };
    b = compiled.backward;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    return {
      files: {},
      manifest: { available: false, reason: e.diagnostics.map((d) => d.message).join('; ') },
    };
  }
  const code = `${b.name}.cu`;
  return {
    files: { [code]: b.code },
    manifest: {
      available: true,
      code,
      launch: `${b.namespace}_launch`,
      slots: `${b.namespace}_slots`,
      fields: b.fields,
      gradParams: b.gradParams,
      gradTensors: b.gradTensors,
      summaries: b.summaries,
      summaryBlock: b.summaryBlock,
      headDim: b.headDim,
      valueDim: b.valueDim,
    },
  };
}
