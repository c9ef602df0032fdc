// The backward pass's entry point (issue 14): compiles the forward kernel as `compile` does and
// renders its backward module from the same kernel IR, so both share the tile classification,
// params and tensors: WGSL (f32, codegen/wgsl/backward.ts) and CUDA SIMT (f32, deterministic,
// codegen/cuda/backward.ts).
import { compile, type CompileOptions, type Compiled } from './compile.js';
import { CompileError, error } from './diagnostics.js';
import { renderWgslBackward, type WgslBackwardArtifact } from './codegen/wgsl/backward.js';
import { renderCudaBackward, type CudaBackwardArtifact } from './codegen/cuda/backward.js';
import { renderCudaBackwardMma, type CudaBackwardMmaArtifact } from './codegen/cuda/backward-mma.js';

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
