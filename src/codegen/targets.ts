// The backends, by target name (compile.ts); each entry point may carry a subset (src/wgsl.ts).
import type { Target } from '../ir/passes/legalize.js';
import { cudaTarget } from './cuda/target.js';
import type { TargetBackend } from './target.js';
import { wgslTarget } from './wgsl/target.js';

export type { TargetBackend } from './target.js';

export const targets: Readonly<Record<Target, TargetBackend>> = { wgsl: wgslTarget, cuda: cudaTarget };
