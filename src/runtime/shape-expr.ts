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
  const parser = new Parser(src, tokenize(src));
  const ast = parser.expr();
  parser.expectEnd();
  cache.set(src, ast);
  return ast;
}

interface Token {
  readonly t: string;
  /** 1-based column, for error messages. */
  readonly at: number;
}

/** Integers, names and single-character punctuation; stops at the first thing that is none of these. */
function tokenize(src: string): Token[] {
  const toks: Token[] = [];
  const re = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))/gy;
  for (let m = re.exec(src); m && m.index < src.length; m = re.exec(src)) {
    const t = m[1] ?? m[2] ?? m[3];
    if (t === undefined) break;
    toks.push({ t, at: m.index + m[0].length - t.length + 1 });
  }
  return toks;
}

/** Recursive descent over the grammar at the top of this file; one method per rule. */
class Parser {
  private i = 0;

  constructor(
    private readonly src: string,
    private readonly toks: readonly Token[],
  ) {}

  expr(): Ast {
    let a = this.term();
    for (let t = this.peek(); t === '+' || t === '-'; t = this.peek()) {
      this.i++;
      a = { k: 'bin', op: t, a, b: this.term() };
    }
    return a;
  }

  /** Every token was consumed: trailing text is an error, not silently ignored. */
  expectEnd(): void {
    if (this.i < this.toks.length) this.fail('unexpected token');
  }

  private term(): Ast {
    let a = this.unary();
    while (this.peek() === '*') {
      this.i++;
      a = { k: 'bin', op: '*', a, b: this.unary() };
    }
    return a;
  }

  private unary(): Ast {
    if (this.peek() === '-') {
      this.i++;
      return { k: 'neg', a: this.unary() };
    }
    return this.atom();
  }

  private atom(): Ast {
    const tok = this.toks[this.i];
    if (!tok) return this.fail('expected a number, a name, cdiv( or (');
    if (/^\d+$/.test(tok.t)) return this.integer(tok);
    if (tok.t === 'cdiv' && this.toks[this.i + 1]?.t === '(') return this.cdiv(tok);
    if (/^[A-Za-z_]/.test(tok.t)) {
      this.i++;
      return { k: 'sym', name: tok.t, at: tok.at };
    }
    if (tok.t === '(') {
      this.i++;
      const e = this.expr();
      this.eat(')');
      return e;
    }
    return this.fail('expected a number, a name, cdiv( or (');
  }

  /** Integers past 2^53 would evaluate to a different number than written. */
  private integer(tok: Token): Ast {
    this.i++;
    const value = Number(tok.t);
    if (!Number.isSafeInteger(value)) throw new ShapeExprError(this.src, `integer ${tok.t} is too large`);
    return { k: 'int', value };
  }

  private cdiv(tok: Token): Ast {
    this.i += 2; // `cdiv` and `(`
    const a = this.expr();
    this.eat(',');
    const b = this.expr();
    this.eat(')');
    return { k: 'cdiv', a, b, at: tok.at };
  }

  private peek(): string | undefined {
    return this.toks[this.i]?.t;
  }

  private eat(t: string): void {
    if (this.peek() !== t) this.fail(`expected "${t}"`);
    this.i++;
  }

  /** Names the column and token where parsing stopped, or says the expression ended early. */
  private fail(what: string): never {
    const tok = this.toks[this.i];
    throw new ShapeExprError(
      this.src,
      tok ? `${what} at column ${tok.at}, found "${tok.t}"` : `${what} at the end`,
    );
  }
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
