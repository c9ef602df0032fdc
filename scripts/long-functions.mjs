#!/usr/bin/env node
// Lists the functions longer than a line budget — declarations, methods, accessors, constructors,
// function expressions and arrow functions — in the .ts files under the given directories, longest
// first, as `LINES  FILE:LINE  NAME`. The style bar is "functions far smaller than a file": this
// finds the ones to split. A nested function counts inside its parent and is listed on its own too.
// Exits 0 whatever it finds (it is a report, not a gate).
//
//   node scripts/long-functions.mjs [--min N] [--json] [DIR|FILE ...]     (default: --min 60 src)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';

/** The .ts files (not .d.ts) at or under path, sorted for a stable report. */
function tsFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => {
      const child = join(path, name);
      if (statSync(child).isDirectory()) return tsFiles(child);
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [child] : [];
    });
}

/** A readable name: the declared one, else what the function is assigned or passed to. */
function functionName(node, source) {
  if (node.name && !ts.isComputedPropertyName(node.name)) {
    const own = node.name.getText(source);
    const owner = ts.isClassLike(node.parent) && node.parent.name ? `${node.parent.name.text}.` : '';
    return ts.isConstructorDeclaration(node) ? `${owner}constructor` : owner + own;
  }
  if (ts.isConstructorDeclaration(node)) return `${node.parent.name?.text ?? '(class)'}.constructor`;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
    return parent.name.getText(source);
  if (ts.isCallExpression(parent)) return `(callback to ${parent.expression.getText(source).slice(0, 40)})`;
  return '(anonymous)';
}

const isFunctionLike = (node) =>
  ts.isFunctionDeclaration(node) ||
  ts.isMethodDeclaration(node) ||
  ts.isConstructorDeclaration(node) ||
  ts.isGetAccessorDeclaration(node) ||
  ts.isSetAccessorDeclaration(node) ||
  ts.isFunctionExpression(node) ||
  ts.isArrowFunction(node);

/** Every function with a body in one file, with its line span (first line to last, inclusive). */
export function functionsIn(file, text = readFileSync(file, 'utf8')) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (isFunctionLike(node) && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ file, line: first + 1, lines: last - first + 1, name: functionName(node, source) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The functions of at least min lines under the paths, longest first (then by file and line). */
export function longFunctions(paths, min) {
  return paths
    .flatMap(tsFiles)
    .flatMap((file) => functionsIn(file))
    .filter((f) => f.lines >= min)
    .sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
}

function main() {
  const { values, positionals } = parseArgs({
    options: { min: { type: 'string', default: '60' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const min = Number(values.min);
  if (!Number.isInteger(min) || min < 1) {
    process.stderr.write(`long-functions: --min expects a positive integer, got \`${values.min}\`\n`);
    process.exit(2);
  }
  // `| head` closes the pipe early: the reader has what it wanted, so stop without a stack trace.
  process.stdout.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const found = longFunctions(positionals.length > 0 ? positionals : ['src'], min);
  if (values.json) process.stdout.write(JSON.stringify(found, null, 1) + '\n');
  else
    for (const f of found)
      process.stdout.write(`${String(f.lines).padStart(5)}  ${relative('.', f.file)}:${f.line}  ${f.name}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
