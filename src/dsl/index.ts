// The DSL frontend with every feature loaded (front-eager.ts): what the CLI, the REPL, scripts
// and tests call. The front end itself is front.ts; attnc/wgsl/async loads its features on
// demand (front-lazy.ts). Never throws on bad input; the REPL calls it on every keystroke.
import type { Diagnostic, Span } from '../diagnostics.js';
import type { AttentionDecl, Program } from './ast.js';
import { checkProgram as checkProgramWith, type CheckedDecl } from './checker.js';
import { eagerFrontFeatures } from './front-eager.js';
import { frontend as frontendWith, parseProgram as parseProgramWith, type FrontendResult } from './front.js';

export type { CheckedDecl, ValueType } from './checker.js';
export { isHole } from './cst-to-ast.js';
export { hiddenErrors, maxDiagnostics, type FrontendResult } from './front.js';

export function parseProgram(source: string, file: string): { program: Program; diagnostics: Diagnostic[] } {
  return parseProgramWith(source, file, eagerFrontFeatures);
}

export function checkProgram(p: Program): { decls: CheckedDecl[]; diagnostics: Diagnostic[] } {
  return checkProgramWith(p, eagerFrontFeatures);
}

export function frontend(source: string, file: string): FrontendResult {
  return frontendWith(source, file, eagerFrontFeatures);
}

/**
 * True if `decl` uses data-dependent sparsity (`route`, `select` or `emit`): the kernel itself
 * decides which keys matter. compile() lowers what the code generators implement (block routing
 * on WGSL) and rejects the rest with a positioned diagnostic at `sparsitySpan(decl)`.
 */
export function usesDataDependentSparsity(decl: AttentionDecl): boolean {
  return (decl.sparsity?.length ?? 0) > 0;
}

/** The span of the first `route`/`select`/`emit` statement of `decl`, if any. */
export function sparsitySpan(decl: AttentionDecl): Span | undefined {
  return decl.sparsity?.[0]?.span;
}
