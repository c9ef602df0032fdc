// Sources for fuzzing the front end, from a seeded generator (the same stream on every run):
// grammar-based programs, byte and token mutations of seed programs (the stdlib), and deep or
// huge inputs around the language's limits. Shared by test/dsl/fuzz.test.ts (a few thousand
// cases in CI) and bench/parser-fuzz.mjs (10^5 cases, run against dist/).
import { lex } from '../../src/dsl/lexer.js';
import { limits } from '../../src/dsl/limits.js';
import { rng } from '../../src/runtime/inputs.js';

/** A uniform number in [0, 1). */
export type Rng = () => number;

/** The runtime's seeded PRNG (mulberry32), so a case is reproducible from its seed. */
export const seeded: (seed: number) => Rng = rng;

const below = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[below(rng, xs.length)]!;
const chance = (rng: Rng, p: number): boolean => rng() < p;

// ---- grammar-based programs (mostly well-typed, so later phases see them too) ----

const intLiterals = [
  '0',
  '1',
  '7',
  '64',
  '1024',
  '2147483647',
  '3',
  '5',
  '12',
  '65536 * 65536',
  '4294967298',
];
const f32Literals = ['0.5', '1.0', '30.0', '1e-3', '2.', '0.25', '3.4e38', '1.5', '1.0 / 0.0', '1e40'];

interface Scope {
  readonly ints: string[];
  readonly f32s: string[];
  readonly bools: string[];
  readonly score: boolean;
  readonly tensors: boolean;
  /** A parameter default: literals and operators only. */
  readonly constant?: boolean;
}

function intExpr(rng: Rng, s: Scope, d: number): string {
  if (d <= 0 || chance(rng, 0.3)) {
    if (s.constant) return pick(rng, ['0', '1', '7', '64', pick(rng, intLiterals)]);
    const atoms = [...s.ints, 'q', 'k', 'h', 'b', 'Nk', 'Nq', pick(rng, intLiterals)];
    if (s.tensors) atoms.push('doc[k]', 'doc[q]');
    return pick(rng, atoms);
  }
  switch (below(rng, 6) + (s.constant && chance(rng, 0.5) ? 2 : 0)) {
    case 0:
      return `-${intExpr(rng, s, d - 1)}`;
    case 1:
      return `(${intExpr(rng, s, d - 1)})`;
    case 2:
      if (s.constant) return `(${intExpr(rng, s, d - 1)})`;
      return chance(rng, 0.5) ? `abs(${intExpr(rng, s, d - 1)})` : `int(${f32Expr(rng, s, d - 1)})`;
    case 3:
      if (s.constant) return `-${intExpr(rng, s, d - 1)}`;
      return `clamp(${intExpr(rng, s, d - 1)}, ${intExpr(rng, s, d - 1)}, ${intExpr(rng, s, d - 1)})`;
    case 4:
      return `(${boolExpr(rng, s, d - 1)} ? ${intExpr(rng, s, d - 1)} : ${intExpr(rng, s, d - 1)})`;
    default:
      return `${intExpr(rng, s, d - 1)} ${pick(rng, ['+', '-', '*', '/', '%'])} ${intExpr(rng, s, d - 1)}`;
  }
}

function f32Expr(rng: Rng, s: Scope, d: number): string {
  if (d <= 0 || chance(rng, 0.3)) {
    if (s.constant) return pick(rng, ['0.5', '2.0', pick(rng, f32Literals)]);
    const atoms = [...s.f32s, pick(rng, f32Literals)];
    if (s.score) atoms.push('score', 'score');
    if (s.tensors) atoms.push('bias[h]');
    return pick(rng, atoms);
  }
  switch (s.constant ? 3 + below(rng, 2) : below(rng, 5)) {
    case 0:
      return `${pick(rng, ['exp', 'tanh', 'sqrt', 'log', 'floor'])}(${f32Expr(rng, s, d - 1)})`;
    case 1:
      return `float(${intExpr(rng, s, d - 1)})`;
    case 2:
      return `${pick(rng, ['min', 'max'])}(${f32Expr(rng, s, d - 1)}, ${f32Expr(rng, s, d - 1)})`;
    case 3:
      return `(${f32Expr(rng, s, d - 1)})`;
    default:
      return `${f32Expr(rng, s, d - 1)} ${pick(rng, ['+', '-', '*', '/', '%'])} ${f32Expr(rng, s, d - 1)}`;
  }
}

function boolExpr(rng: Rng, s: Scope, d: number): string {
  if (d <= 0 || chance(rng, 0.2))
    return pick(rng, s.constant ? ['true', 'false'] : [...s.bools, 'causal', 'true', 'false']);
  switch (below(rng, 5)) {
    case 0:
      return `!(${boolExpr(rng, s, d - 1)})`;
    case 1:
      return `(${boolExpr(rng, s, d - 1)})`;
    case 2:
      return `${boolExpr(rng, s, d - 1)} ${pick(rng, ['&&', '||'])} ${boolExpr(rng, s, d - 1)}`;
    default:
      return `${intExpr(rng, s, d - 1)} ${pick(rng, ['<', '<=', '>', '>=', '==', '!='])} ${intExpr(rng, s, d - 1)}`;
  }
}

function routing(rng: Rng, count: () => string): string {
  const force = chance(rng, 0.4) ? ` force first(${count()}) local(${count()})` : '';
  switch (below(rng, 3)) {
    case 0:
      return `select topk(${count()}) by q . k${force}`;
    case 1:
      return `route blocks(${pick(rng, ['16', '64', '2147483647 + 1', 'w'])}) topk(${count()}) by mean(q) . mean(k)${force}`;
    default:
      return `emit blocks(64) topk(${count()}) by mean(q) . mean(k)`;
  }
}

/** One generated declaration; `i` keeps names distinct. */
function declaration(rng: Rng, i: number): string {
  const tensors = chance(rng, 0.3);
  const constScope: Scope = { ints: [], f32s: [], bools: [], score: false, tensors: false, constant: true };
  const params = [`w: int = ${intExpr(rng, constScope, 2)}`, `c: f32 = ${f32Expr(rng, constScope, 2)}`];
  if (chance(rng, 0.3)) params.push(`on: bool = ${boolExpr(rng, constScope, 2)}`);
  if (tensors) params.push('doc: i32[kv]', 'bias: f32[heads]');
  const bools = params.some((p) => p.startsWith('on:')) ? ['on'] : [];
  const maskScope: Scope = { ints: ['w'], f32s: ['c'], bools, score: false, tensors };
  const body: string[] = [];
  const lets = below(rng, 3);
  for (let j = 0; j < lets; j++) {
    body.push(`let d${j} = ${intExpr(rng, maskScope, 3)}`);
    maskScope.ints.push(`d${j}`);
  }
  for (let j = below(rng, 3); j > 0; j--) body.push(`mask ${boolExpr(rng, maskScope, 4)}`);
  if (chance(rng, 0.6)) body.push(`score ${f32Expr(rng, { ...maskScope, score: true }, 4)}`);
  if (chance(rng, 0.2))
    body.push(routing(rng, () => pick(rng, ['1', '4', 'w', 'w + 1', '65536 * 65536 + 5'])));
  return `// generated ${i}\nattention g${i}(${params.join(', ')}) {\n  ${body.join('\n  ')}\n}\n`;
}

export function grammarProgram(rng: Rng): string {
  return Array.from({ length: 1 + below(rng, 3) }, (_, i) => declaration(rng, i)).join('\n');
}

// ---- mutations of seed programs ----

const vocabulary = [
  ...'attention mask score let int f32 bool i32 true false q k h b causal route select emit topk by'.split(
    ' ',
  ),
  ...'blocks chunks from vote force first local indices mean max heads groups kv abs clamp exp'.split(' '),
  ...'store importance scale zero norm recent salient per group token channel tensor int8 int4 int2 e4m3 e5m2 f16 bf16 sum normalized'.split(
    ' ',
  ),
  ...'0 12 1.5 2. 1e-3 1e40 2147483648 ( ) { } [ ] , : = == != < <= > >= + - * / % ! && || ? . & |'.split(
    ' ',
  ),
  ...[
    '//',
    '/*',
    '*/',
    ';',
    '#',
    '"',
    '\n',
    ' ',
    '\r\n',
    '\t',
    '\u0000',
    '\u001b[31m',
    'é',
    '\u{1F600}',
    '\uD800',
  ],
];

export function byteMutation(rng: Rng, src: string): string {
  let s = src;
  for (let n = 1 + below(rng, 4); n > 0; n--) {
    const a = below(rng, s.length + 1);
    const b = Math.min(s.length, a + below(rng, 12));
    const byte = String.fromCharCode(chance(rng, 0.5) ? below(rng, 128) : below(rng, 0x10000));
    switch (below(rng, 4)) {
      case 0:
        s = s.slice(0, a) + s.slice(b);
        break;
      case 1:
        s = s.slice(0, a) + byte + s.slice(a);
        break;
      case 2:
        s = s.slice(0, a) + byte + s.slice(a + 1);
        break;
      default:
        s = s.slice(0, a) + s.slice(a, b) + s.slice(a);
    }
  }
  return s;
}

export function tokenMutation(rng: Rng, src: string): string {
  let s = src;
  for (let n = 1 + below(rng, 3); n > 0; n--) {
    const tokens = lex(s).tokens;
    const t = tokens.length > 0 ? pick(rng, tokens) : undefined;
    const u = tokens.length > 0 ? pick(rng, tokens) : undefined;
    const cut = (x: { startOffset: number; endOffset?: number }): [number, number] => [
      x.startOffset,
      (x.endOffset ?? x.startOffset) + 1,
    ];
    if (!t || !u) return s + pick(rng, vocabulary);
    const [ta, tb] = cut(t);
    switch (below(rng, 4)) {
      case 0:
        s = s.slice(0, ta) + s.slice(tb);
        break;
      case 1:
        s = s.slice(0, ta) + t.image + ' ' + s.slice(ta);
        break;
      case 2:
        s = s.slice(0, ta) + pick(rng, vocabulary) + s.slice(ta);
        break;
      default: {
        const [x, y] = t.startOffset < u.startOffset ? [t, u] : [u, t];
        if (x === y) break;
        const [xa, xb] = cut(x);
        const [ya, yb] = cut(y);
        s = s.slice(0, xa) + y.image + s.slice(xb, ya) + x.image + s.slice(yb);
      }
    }
  }
  return s;
}

// ---- deep and huge inputs ----

/** Sizes around each limit, and far past it. */
function sizeNear(rng: Rng, limit: number): number {
  return pick(rng, [limit - 1, limit, limit + 1, 2 * limit, 10_000, 1 + below(rng, 3 * limit)]);
}

export function deepProgram(rng: Rng): string {
  const { nesting, operators, depth, masks } = limits;
  switch (below(rng, 9)) {
    case 0: {
      const n = sizeNear(rng, nesting);
      return `attention d() { mask ${'('.repeat(n)}q >= k${')'.repeat(n)} }`;
    }
    case 1: {
      const n = sizeNear(rng, nesting);
      return `attention d(t: f32[kv]) { score ${'abs(t['.repeat(n)}0${'])'.repeat(n)} }`;
    }
    case 2:
      return `attention d() { mask ${'!'.repeat(sizeNear(rng, operators))}true }`;
    case 3:
      return `attention d() { score ${'-'.repeat(sizeNear(rng, operators))}score }`;
    case 4: {
      const n = sizeNear(rng, operators / 2);
      return `attention d() { mask ${Array.from({ length: n }, (_, i) => `k != ${i}`).join(' && ')} }`;
    }
    case 5:
      return `attention d() { mask ${'true ? false : '.repeat(sizeNear(rng, operators))}true }`;
    case 6: {
      const n = sizeNear(rng, depth);
      const lets = Array.from({ length: n }, (_, i) => `let a${i + 1} = a${i} + 1`).join('\n');
      return `attention d() {\nlet a0 = q - k\n${lets}\nmask a${n} > 0\n}`;
    }
    case 7:
      return `attention d() {\n${Array.from({ length: sizeNear(rng, masks) }, (_, i) => `mask k != ${i}`).join('\n')}\n}`;
    default: {
      const n = sizeNear(rng, nesting);
      return `attention d() { select topk(${'('.repeat(n)}4${')'.repeat(n)}) by q . k }`;
    }
  }
}

/** A source near the size limit: repeated seeds, or one long line of garbage. */
export function hugeSource(rng: Rng, seeds: readonly string[]): string {
  const size = limits.sourceChars + below(rng, 21) - 10;
  const unit = chance(rng, 0.5) ? pick(rng, seeds).replace(/attention (\w+)/g, 'attention $1_') : '(@ q && ';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

export type CaseKind = 'grammar' | 'bytes' | 'tokens' | 'deep' | 'huge';

/** The `i`th case of the stream; one in `hugeEvery` is a source near the size limit. */
export function fuzzCase(
  rng: Rng,
  seeds: readonly string[],
  hugeEvery = 1000,
): { kind: CaseKind; source: string } {
  if (below(rng, hugeEvery) === 0) return { kind: 'huge', source: hugeSource(rng, seeds) };
  const r = rng();
  if (r < 0.35) return { kind: 'grammar', source: grammarProgram(rng) };
  const seed = chance(rng, 0.7) ? pick(rng, seeds) : grammarProgram(rng);
  if (r < 0.6) return { kind: 'bytes', source: byteMutation(rng, seed) };
  if (r < 0.85) return { kind: 'tokens', source: tokenMutation(rng, seed) };
  return { kind: 'deep', source: deepProgram(rng) };
}
