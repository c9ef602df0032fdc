// AST → source text. Used to show generated programs (property-test counterexamples), by the
// REPL, and as the inverse of the parser in round-trip tests. Fully parenthesised where needed.
import type {
  AffinitySide,
  AttentionDecl,
  DimRef,
  Expr,
  ParamDecl,
  ParamType,
  Program,
  SparsityStmt,
  Stmt,
} from './ast.js';
import { printCache, printImportance, printPv, printQk, printStorage } from './print-storage.js';

const precedence: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
  '%': 6,
};

function formatNumber(value: number, isFloat: boolean): string {
  if (!isFloat) return String(Math.trunc(value));
  const s = String(value);
  return /[.eE]/.test(s) || !Number.isFinite(value) ? s : `${s}.0`;
}

/** Prints `e`; `ctx` is the precedence of the surrounding operator (0 = none). */
export function printExpr(e: Expr, ctx = 0): string {
  switch (e.kind) {
    case 'num':
      return e.value < 0 ? `(${formatNumber(e.value, e.isFloat)})` : formatNumber(e.value, e.isFloat);
    case 'bool':
      return String(e.value);
    case 'name':
      return e.name;
    case 'unary': {
      // `- -x`, not `--x` (which reads like a decrement) nor `-(-x)`: parentheses would count
      // against the nesting limit, and a printed program must parse wherever its source did.
      const inner = printExpr(e.operand, 7);
      return `${e.op}${inner.startsWith('-') ? ' ' : ''}${inner}`;
    }
    case 'binary': {
      const p = precedence[e.op] ?? 0;
      // Left-associative: the right operand needs parens at equal precedence.
      const s = `${printExpr(e.left, p)} ${e.op} ${printExpr(e.right, p + 1)}`;
      return p < ctx ? `(${s})` : s;
    }
    case 'ternary': {
      const s = `${printExpr(e.cond, 1)} ? ${printExpr(e.then, 0)} : ${printExpr(e.otherwise, 0)}`;
      return ctx > 0 ? `(${s})` : s;
    }
    case 'call':
      return `${e.callee}(${e.args.map((a) => printExpr(a)).join(', ')})`;
    case 'index':
      return `${e.tensor}[${e.indices.map((a) => printExpr(a)).join(', ')}]`;
  }
}

function printDim(d: DimRef): string {
  return d.kind === 'literal' ? String(d.value) : d.name;
}

export function printType(t: ParamType): string {
  return t.kind === 'scalar' ? t.name : `${t.elem}[${t.dims.map(printDim).join(', ')}]`;
}

function printParam(p: ParamDecl): string {
  const def = p.default ? ` = ${printExpr(p.default)}` : '';
  return `${p.name}: ${printType(p.type)}${def}`;
}

function printStmt(s: Stmt): string {
  switch (s.kind) {
    case 'mask':
      return `mask ${printExpr(s.expr)}`;
    case 'score':
      return `score ${printExpr(s.expr)}`;
    case 'let':
      return `let ${s.name} = ${printExpr(s.expr)}`;
  }
}

function printSide(s: AffinitySide, operand: 'q' | 'k'): string {
  return s.reducer === 'raw' ? operand : `${s.reducer}(${operand})`;
}

/** Canonical clause order: verb, unit, source, `vote`, `force`, `emit indices`. */
export function printSparsity(s: SparsityStmt): string {
  const parts: string[] = [s.kind];
  if (s.unit?.kind === 'blocks') parts.push(`blocks(${printExpr(s.unit.size)})`);
  if (s.unit?.kind === 'chunks') parts.push(`chunks(${s.unit.tensor})`);
  const src = s.source;
  if (src.kind === 'from') parts.push(`from ${src.tensor}`);
  else
    parts.push(`topk(${printExpr(src.count)}) by ${printSide(src.by.q, 'q')} . ${printSide(src.by.k, 'k')}`);
  if (s.vote) parts.push(`vote ${s.vote.over}`);
  if (s.force.length > 0)
    parts.push(
      `force ${[...s.force]
        .sort((a, b) => a.kind.localeCompare(b.kind))
        .map((f) => `${f.kind}(${printExpr(f.count)})`)
        .join(' ')}`,
    );
  if (s.emitIndices) parts.push('emit indices');
  return parts.join(' ');
}

/** The body, routing and storage statements in source order (routing first where spans tie). */
function statements(d: AttentionDecl): string[] {
  const all = [
    ...(d.sparsity ?? []).map((s) => ({ at: s.span.offset, text: printSparsity(s) })),
    ...(d.storage ?? []).map((s) => ({ at: s.span.offset, text: printStorage(s, (e) => printExpr(e)) })),
    ...(d.importance ?? []).map((s) => ({ at: s.span.offset, text: printImportance(s) })),
    ...(d.cache ?? []).map((s) => ({ at: s.span.offset, text: printCache(s) })),
    ...(d.qk ?? []).map((s) => ({ at: s.span.offset, text: printQk(s) })),
    ...(d.pv ?? []).map((s) => ({ at: s.span.offset, text: printPv(s) })),
    ...d.body.map((s) => ({ at: s.span.offset, text: printStmt(s) })),
  ];
  return all.sort((a, b) => a.at - b.at).map((x) => x.text);
}

export function printDecl(d: AttentionDecl): string {
  const doc = d.doc
    ? d.doc
        .split('\n')
        .map((l) => `// ${l}`.trimEnd())
        .join('\n') + '\n'
    : '';
  const body = statements(d)
    .map((s) => `  ${s}\n`)
    .join('');
  return `${doc}attention ${d.name}(${d.params.map(printParam).join(', ')}) {\n${body}}\n`;
}

export function printProgram(p: Program): string {
  // A lone comment block right above the first declaration is both the header and its doc (see
  // attachComments in lexer.ts): print it once.
  const shown = p.header === p.decls[0]?.doc ? '' : p.header;
  const header = shown
    ? shown
        .split('\n')
        .map((l) => `// ${l}`.trimEnd())
        .join('\n') + '\n\n'
    : '';
  return header + p.decls.map(printDecl).join('\n');
}
