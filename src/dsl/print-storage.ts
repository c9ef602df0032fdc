// AST → source for `store` and `importance` (docs/LANGUAGE.md, "K/V storage formats"). Clauses
// print in one canonical order: scale, zero, norm, recent, salient.
import type { ImportanceRequest, ScaleGranularity, StorageDecl } from './ast-storage.js';
import type { Expr } from './ast.js';

function printGranularity(g: ScaleGranularity, printExpr: (e: Expr) => string): string {
  if (g.kind === 'tensor') return 'per tensor';
  return g.group ? `per ${g.kind} group ${printExpr(g.group)}` : `per ${g.kind}`;
}

export function printStorage(s: StorageDecl, printExpr: (e: Expr) => string): string {
  const parts = ['store', s.target, s.elem];
  if (s.scale) parts.push(`scale ${s.scale.dtype} ${printGranularity(s.scale.per, printExpr)}`);
  if (s.zero) parts.push(`zero ${s.zero.dtype}`);
  if (s.norm) parts.push(`norm ${s.norm.dtype}`);
  if (s.recent) parts.push(`recent ${printExpr(s.recent.count)} ${s.recent.dtype}`);
  if (s.salient) parts.push(`salient ${s.salient.elem} from ${s.salient.tensor}`);
  return parts.join(' ');
}

export function printImportance(s: ImportanceRequest): string {
  return `importance ${s.variant}`;
}
