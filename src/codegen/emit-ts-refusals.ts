// The artifacts a generated module cannot express (emit-ts.ts refuses them before emitting): a
// tensor named like a dispatch argument, a non-WGSL target, the importance output and routing.
import type { Span } from '../diagnostics.js';
import type { Artifact } from './artifact.js';
import { isSalientFlags } from './wgsl/salient-list.js';

/** Dispatch/encode arguments besides the buffers; a tensor of one of these names cannot be emitted. */
const launchKeys = ['sizes', 'params', 'qOffset', 'kOffset', 'scale', 'kvCache'] as const;

/** The source's `importance` statement (a refusal of the importance output names it). */
export interface ImportanceStatement {
  readonly variant: string;
  readonly keywordSpan: Span;
}

export function checkNames(a: Artifact, importanceStatement?: ImportanceStatement): void {
  for (const b of a.bindings) {
    if (b.role === 'tensor' && (launchKeys as readonly string[]).includes(b.name)) {
      throw new Error(
        `emit ${a.name}: tensor "${b.name}" has the name of a dispatch argument (${launchKeys.join(', ')}); rename the tensor`,
      );
    }
  }
  if (a.target !== 'wgsl')
    throw new Error(`emit ts: artifact "${a.name}" targets ${a.target}; use --target wgsl`);
  if (a.bindings.some((b) => b.role === 'importance'))
    throw new Error(importanceRefusal(a, importanceStatement));
  // Routing kernels need scratch buffers and an indices output the module does not manage yet;
  // refuse rather than emit a module that fails at run time.
  // (A salient index list's flags are scratch the module makes, as it makes summaries.)
  const unsupported = a.bindings.filter(
    (b) => (b.role === 'scratch' && !isSalientFlags(a, b.name)) || b.role === 'indices',
  );
  if (unsupported.length)
    throw new Error(
      `emit ts: "${a.name}" routes (bindings ${unsupported.map((b) => b.name).join(', ')}); ` +
        'generated modules do not support routing kernels yet — use the attnc runtime (createKernel)',
    );
}

/** The module for `artifact` (a WGSL artifact). Throws on names the module cannot express. */
/** Why a module cannot carry the importance output, naming what asked for it. */
function importanceRefusal(a: Artifact, statement: ImportanceStatement | undefined): string {
  const notYet = 'generated modules do not run its pass yet';
  if (statement === undefined)
    return `emit ts: "${a.name}" was compiled with the importance option (--importance); ${notYet} — compile without it, or use the attnc runtime (createKernel)`;
  const { file, line, column } = statement.keywordSpan;
  return (
    `emit ts: "${a.name}" has the importance output (the \`importance ${statement.variant}\` statement at ${file}:${line}:${column}); ` +
    `${notYet} — use the attnc runtime (createKernel)`
  );
}
