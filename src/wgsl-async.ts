// attnc/wgsl/async: attnc/wgsl's API with `compileAsync` in place of `compile`, for pages that
// bundle the compiler. The code generators only some programs need (each engine with its decode
// module, routing/selection, quantized K/V caches, the importance output) are loaded with import()
// the first time a program needs them (codegen/wgsl/features-lazy.ts), so a bundler splits them
// into chunks; so are the front end's routing, storage and qk/pv statements, their target checks,
// and its error messages (dsl/front-lazy.ts).
// An entry of its own because a module graph that reaches those import() calls changes the bundle
// of attnc/wgsl's `compile` even where compileAsync goes unused (esbuild without code splitting
// wraps every module they reach in a lazy initializer, +2.6 kB gzip; with splitting it cuts
// `compile`'s bundle into a dozen chunks).
import { compileWithAsync, type CompileOptions, type Compiled } from './compile-core.js';
import type { TargetBackend } from './codegen/target.js';
import { lazyWgslTarget } from './codegen/wgsl/target-lazy.js';
import type { LazyFront } from './dsl/front-async.js';
import { lazyFront } from './dsl/front-lazy.js';

export * from './api.js';

// Made on the first call: one loader per page, so each chunk loads once.
let lazyTarget: TargetBackend | undefined;
let front: LazyFront | undefined;

/**
 * attnc/wgsl's `compile` as a promise: the same options, artifacts and warnings, and its
 * CompileErrors and TypeErrors as rejections. Before rendering a kernel it loads the code
 * generators the kernel needs (and, before checking it, the front end's statements and messages the
 * source needs); a chunk that fails to load rejects with an Error naming the feature.
 */
export function compileAsync(source: string, options: CompileOptions): Promise<Compiled> {
  lazyTarget ??= lazyWgslTarget();
  front ??= lazyFront();
  return compileWithAsync({ wgsl: lazyTarget }, front, source, options);
}
