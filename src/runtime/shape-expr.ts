// Evaluator of the ShapeExpr grammar of artifacts (codegen/artifact.ts): integers, symbols
// (B H Hkv Nq Nk D Dv and int param names), + - *, parentheses and cdiv(a, b). Engines evaluate
// buffer shapes and launch grids with it, so errors say which expression and where.
//
//   expr   := term (('+' | '-') term)*
//   term   := unary ('*' unary)*
//   unary  := '-' unary | atom
//   atom   := INT | NAME | 'cdiv' '(' expr ',' expr ')' | '(' expr ')'
import type { ShapeExpr } from '../codegen/artifact.js';

export type ShapeEnv = Readonly<Record<string, number>>;

type Ast =
  | { readonly k: 'int'; readonly value: number }
  | { readonly k: 'sym'; readonly name: string; readonly at: number }
  | { readonly k: 'bin'; readonly op: '+' | '-' | '*'; readonly a: Ast; readonly b: Ast }
  | { readonly k: 'neg'; readonly a: Ast }
  | { readonly k: 'cdiv'; readonly a: Ast; readonly b: Ast; readonly at: number };

export class ShapeExprError extends Error {
  constructor(
    readonly expr: string,
    detail: string,
  ) {
    super(`shape expression "${expr}": ${detail}`);
    this.name = 'ShapeExprError';
  }
}

const cache = new Map<string, Ast>();

function parse(src: string): Ast {
  const hit = cache.get(src);
  if (hit) return hit;
  const toks: { t: string; at: number }[] = [];
  const re = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))/gy;
  for (let m = re.exec(src); m && m.index < src.length; m = re.exec(src)) {
    const t = m[1] ?? m[2] ?? m[3];
    if (t === undefined) break;
    toks.push({ t, at: m.index + m[0].length - t.length + 1 });
  }
  let i = 0;
  const fail = (what: string): never => {
    const tok = toks[i];
    throw new ShapeExprError(
      src,
      tok ? `${what} at column ${tok.at}, found "${tok.t}"` : `${what} at the end`,
    );
  };
  const eat = (t: string): void => {
    if (toks[i]?.t !== t) fail(`expected "${t}"`);
    i++;
  };
  const atom = (): Ast => {
    const tok = toks[i];
    if (!tok) return fail('expected a number, a name, cdiv( or (');
    if (/^\d+$/.test(tok.t)) {
      i++;
      const value = Number(tok.t);
      if (!Number.isSafeInteger(value)) throw new ShapeExprError(src, `integer ${tok.t} is too large`);
      return { k: 'int', value };
    }
    if (tok.t === 'cdiv' && toks[i + 1]?.t === '(') {
      i += 2;
      const a = expr();
      eat(',');
      const b = expr();
      eat(')');
      return { k: 'cdiv', a, b, at: tok.at };
    }
    if (/^[A-Za-z_]/.test(tok.t)) {
      i++;
      return { k: 'sym', name: tok.t, at: tok.at };
    }
    if (tok.t === '(') {
      i++;
      const e = expr();
      eat(')');
      return e;
    }
    return fail('expected a number, a name, cdiv( or (');
  };
  const unary = (): Ast => {
    if (toks[i]?.t === '-') {
      i++;
      return { k: 'neg', a: unary() };
    }
    return atom();
  };
  const term = (): Ast => {
    let a = unary();
    while (toks[i]?.t === '*') {
      i++;
      a = { k: 'bin', op: '*', a, b: unary() };
    }
    return a;
  };
  const expr = (): Ast => {
    let a = term();
    for (let t = toks[i]?.t; t === '+' || t === '-'; t = toks[i]?.t) {
      i++;
      a = { k: 'bin', op: t, a, b: term() };
    }
    return a;
  };
  const ast = expr();
  if (i < toks.length) fail('unexpected token');
  cache.set(src, ast);
  return ast;
}

/** Evaluates `expr` with integer `env` values. Throws ShapeExprError on unknown names, bad syntax, cdiv by ≤ 0. */
export function evalShapeExpr(expr: ShapeExpr, env: ShapeEnv): number {
  const ev = (n: Ast): number => {
    switch (n.k) {
      case 'int':
        return n.value;
      case 'sym': {
        const v = env[n.name];
        if (v === undefined) {
          const known = Object.keys(env).join(', ') || 'none';
          throw new ShapeExprError(expr, `unknown name "${n.name}" at column ${n.at} (known: ${known})`);
        }
        if (!Number.isSafeInteger(v)) throw new ShapeExprError(expr, `"${n.name}" is ${v}, not an integer`);
        return v;
      }
      case 'neg':
        return -ev(n.a);
      case 'bin': {
        const [a, b] = [ev(n.a), ev(n.b)];
        const r = n.op === '+' ? a + b : n.op === '-' ? a - b : a * b;
        if (!Number.isSafeInteger(r))
          throw new ShapeExprError(expr, `the value overflows (${a} ${n.op} ${b})`);
        return r;
      }
      case 'cdiv': {
        const [a, b] = [ev(n.a), ev(n.b)];
        if (b <= 0) throw new ShapeExprError(expr, `cdiv at column ${n.at} divides by ${b}`);
        // Float division can round across an integer for large values; correct by one step.
        let c = Math.ceil(a / b);
        if ((c - 1) * b >= a) c--;
        else if (c * b < a) c++;
        return c;
      }
    }
  };
  return ev(parse(expr));
}

/** Names an expression refers to (besides cdiv), in order of first use. */
export function shapeExprNames(expr: ShapeExpr): string[] {
  const out: string[] = [];
  const walk = (n: Ast): void => {
    if (n.k === 'sym' && !out.includes(n.name)) out.push(n.name);
    if (n.k === 'neg') walk(n.a);
    if (n.k === 'bin' || n.k === 'cdiv') {
      walk(n.a);
      walk(n.b);
    }
  };
  walk(parse(expr));
  return out;
}
