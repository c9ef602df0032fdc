// AST → source for `store`, `importance`, `cache`, `qk` and `pv` (docs/LANGUAGE.md, "K/V storage
// formats"). Store clauses print in one canonical order: scale, zero, norm, recent, salient.
// Apart from the statements' builders and checkers (cst-storage.ts, cache-stmt.ts, qk-stmt.ts,
// pv-stmt.ts), which attnc/wgsl/async loads only for programs that have them (front-features.ts).
import type { CacheDecl, ImportanceRequest, ScaleGranularity, StorageDecl } from './ast-storage.js';
import type { Expr } from './ast.js';
import type { PvDecl } from './pv-stmt.js';
import type { QkDecl } from './qk-stmt.js';

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

export function printCache(s: CacheDecl): string {
  return `cache ${s.layout} ${s.pageSize}`;
}

export function printQk(s: QkDecl): string {
  return `qk ${s.elem}${s.smoothK ? ' smooth k' : ''}`;
}

export function printPv(s: PvDecl): string {
  return `pv ${s.elem}${s.smoothV ? ' smooth v' : ''}`;
}
