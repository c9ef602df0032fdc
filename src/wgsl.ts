// attnc/wgsl: the public API with the WGSL backend alone, for browser bundles (the CUDA backend,
// which a browser can never use, is most of the compiler's size). `compile` rejects other targets
// with a diagnostic naming the full entry, `attnc`.
import { compileWith, type CompileOptions, type Compiled } from './compile-core.js';
import { wgslTarget } from './codegen/wgsl/target.js';
import { eagerFrontFeatures } from './dsl/front-eager.js';

export * from './api.js';

export function compile(source: string, options: CompileOptions): Compiled {
  return compileWith({ wgsl: wgslTarget }, eagerFrontFeatures, source, options);
}
