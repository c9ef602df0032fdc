// The front end's part of compiling: a source parsed and checked, and the declaration to compile
// chosen, or a CompileError. With the features given (compile: all, check-source.ts) or loaded
// as the source needs them (compileAsync: dsl/front-async.ts).
import { CompileError, error, hasErrors, type Diagnostic } from './diagnostics.js';
import type { Program } from './dsl/ast.js';
import type { CheckedDecl } from './dsl/checker.js';
import { frontendAsync, type LazyFront } from './dsl/front-async.js';
import type { FrontFeatures } from './dsl/front-features.js';
import { frontend, type FrontendResult } from './dsl/front.js';

/**
 * Parses and checks with the front-end features `front` (check-source.ts binds every one);
 * returns the chosen declaration or throws a CompileError.
 */
export function checkSourceWith(
  front: Partial<FrontFeatures>,
  source: string,
  file = '<input>',
  entry?: string,
): { program: Program; decl: CheckedDecl } {
  return chosenDecl(frontend(source, file, front), source, file, entry);
}

/** checkSourceWith with the features loaded as the source needs them (compileAsync). */
export async function checkSourceAsync(
  front: LazyFront,
  source: string,
  file: string,
  entry: string | undefined,
): Promise<{ program: Program; decl: CheckedDecl }> {
  return chosenDecl(await frontendAsync(source, file, front), source, file, entry);
}

/** The declaration `entry` (default: the first) of a front-end result, or a CompileError. */
function chosenDecl(
  fe: FrontendResult,
  source: string,
  file: string,
  entry: string | undefined,
): { program: Program; decl: CheckedDecl } {
  const diags: Diagnostic[] = [...fe.diagnostics];
  if (hasErrors(diags)) throw new CompileError(diags, source);
  const decl = entry === undefined ? fe.decls[0] : fe.decls.find((d) => d.decl.name === entry);
  if (!decl) {
    const names = fe.decls.map((d) => d.decl.name).join(', ') || 'none';
    const span = { file, line: 1, column: 1, offset: 0, length: 1 };
    throw new CompileError(
      [
        error(
          entry
            ? `no attention named \`${entry}\` (declared: ${names})`
            : 'no `attention` declaration in this file',
          span,
        ),
      ],
      source,
    );
  }
  return { program: fe.program, decl };
}
