// checkSource with every front-end feature loaded (dsl/front-eager.ts): attnc's and attnc/wgsl's
// public checkSource and the CLI's. compile-core.ts and source-check.ts import no feature themselves, so that
// attnc/wgsl/async's compileAsync can load them on demand.
import type { CheckedDecl } from './dsl/checker.js';
import type { Program } from './dsl/ast.js';
import { checkSourceWith } from './source-check.js';
import { eagerFrontFeatures } from './dsl/front-eager.js';

/** Parses and checks; returns the chosen declaration or throws a CompileError. */
export function checkSource(
  source: string,
  file = '<input>',
  entry?: string,
): { program: Program; decl: CheckedDecl } {
  return checkSourceWith(eagerFrontFeatures, source, file, entry);
}
