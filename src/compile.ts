// The public compiler entry with every backend (WGSL and CUDA). Browser builds that only need
// WGSL import `attnc/wgsl` (src/wgsl.ts), which leaves the CUDA backend out.
import { targets } from './codegen/targets.js';
import { compileWith, type CompileOptions, type Compiled } from './compile-core.js';
import { eagerFrontFeatures } from './dsl/front-eager.js';

export { checkSource } from './check-source.js';
export type { CompileOptions, Compiled } from './compile-core.js';

export function compile(source: string, options: CompileOptions): Compiled {
  return compileWith(targets, eagerFrontFeatures, source, options);
}
