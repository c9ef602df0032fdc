// Literals and shape expressions as emitted-module code (emit-ts.ts and emit-ts-decode.ts).
import { shapeExprNames } from '../runtime/shape-expr.js';
import type { Artifact, Binding, ShapeExpr } from './artifact.js';

export const sizeNames = new Set(['B', 'H', 'Hkv', 'Nq', 'Nk']);

/**
 * A JS string as a template literal. Non-ASCII and control characters but \n and \t are escaped:
 * no «» marker can hide inside, and a \r survives (a template literal would normalize CRLF).
 */
export function templateLiteral(text: string): string {
  const body = text
    .replace(/\\/g, '\\\\')
    .replace(/`/g, '\\`')
    .replace(/\$\{/g, '\\${')
    .replace(/[^\x09\x0a\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
  return '`' + body + '`';
}

/** A JS string literal, ASCII only. */
export const lit = (s: string): string =>
  JSON.stringify(s).replace(/[^\x00-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * A shape expression (artifact.ts grammar) as TS over `e` (sizes and int params); D and Dv are
 * compile-time constants. The grammar's operators and precedence are JS's, so tokens map 1:1.
 */
export function shapeExprToTs(expr: ShapeExpr, artifact: Artifact): string {
  shapeExprNames(expr); // parses: a malformed expression fails here, with its position
  const ints = new Set(artifact.params.filter((p) => p.dtype === 'i32').map((p) => p.name));
  const consts: Record<string, number> = { D: artifact.schedule.headDim, Dv: artifact.schedule.valueDim };
  const out: string[] = [];
  const re = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))/gy;
  for (let m = re.exec(expr); m && m.index < expr.length; m = re.exec(expr)) {
    const [, int, name, op] = m;
    if (int !== undefined) out.push(int);
    else if (op !== undefined) out.push(op === '-' ? ' -' : op);
    else if (name === 'cdiv' && expr.slice(re.lastIndex).trimStart().startsWith('(')) out.push('cdiv');
    else if (name !== undefined && (ints.has(name) || sizeNames.has(name))) out.push(`e.${name}`);
    // A paged kernel's block table width (resolve puts it in `e`).
    else if (name === 'max_pages' && artifact.kvRows?.pageSize !== undefined) out.push('e.max_pages');
    // A paged quantized cache's pool size (kvCache.pages; resolve puts it in `e`).
    else if (name === 'pages' && artifact.kvRows?.pageSize !== undefined) out.push('e.pages');
    else if (name !== undefined && consts[name] !== undefined) out.push(String(consts[name]));
    else throw new Error(`emit ts: shape expression "${expr}" uses "${name}", which is no size or int param`);
  }
  return out.join('');
}

/** The `shapes` object literal of a resolve: every binding but the uniforms, by name. */
export function shapesLiteral(a: Artifact, indent: string): string[] {
  return a.bindings
    .filter((b) => b.role !== 'uniforms')
    .map((b: Binding) => `${indent}${b.name}: [${b.shape.map((d) => shapeExprToTs(d, a)).join(', ')}],`);
}

/** The `grids` array literal's rows: one per entry point, in launch order. */
export function gridsLiteral(a: Artifact, indent: string): string[] {
  return a.entryPoints.map(
    (ep) => `${indent}[${ep.grid.map((g) => shapeExprToTs(g, a)).join(', ')}], // ${ep.name}`,
  );
}

const bindingType = (b: Binding): string =>
  b.role === 'uniforms' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage';

/** The rows of a `bindings` table: binding index, role, element type, shape expressions, buffer type. */
export function bindingRows(a: Artifact): string[] {
  return a.bindings.map(
    (b) =>
      `  { name: ${lit(b.name)}, binding: ${b.index}, role: ${lit(b.role)}, dtype: ${lit(b.dtype)}, ` +
      `shape: [${b.shape.map(lit).join(', ')}], type: ${lit(bindingType(b))} },`,
  );
}

/** The rows of an `entryPoints` table, in launch order. */
export function entryPointRows(a: Artifact): string[] {
  return a.entryPoints.map(
    (ep) =>
      `  { name: ${lit(ep.name)}, role: ${lit(ep.role)}, workgroupSize: [${ep.workgroupSize.join(', ')}], ` +
      `grid: [${ep.grid.map(lit).join(', ')}] },`,
  );
}
