// The language's limits (docs/LANGUAGE.md, "Limits"): anything within them goes through every
// recursive phase — parser, checker, printer, lowering, IR passes, both code generators and the
// reference interpreter — with stack to spare; anything past them is a positioned diagnostic,
// reported fast, before any recursive phase runs.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import { frontend, hiddenErrors, parseProgram } from '../../src/dsl/index.js';
import { lex } from '../../src/dsl/lexer.js';
import { limits } from '../../src/dsl/limits.js';
import { printProgram } from '../../src/dsl/print.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { binaryChain, letChainAndMasks, nestedCalls, ternaryChain } from './limit-programs.js';

/** How many frames of a small recursive function fit on this thread's stack. */
function stackFrames(): number {
  const probe = (n: number): number => {
    try {
      return probe(n + 1);
    } catch {
      return n;
    }
  };
  return probe(0);
}

/** Runs `f` with about half of the stack already used: what passes here has a 2x margin. */
function withHalfTheStack<T>(f: () => T): T {
  const descend = (n: number): T => (n === 0 ? f() : descend(n - 1));
  return descend(Math.floor(stackFrames() / 2));
}

const sizes = { B: 1, H: 1, Hkv: 1, Nq: 4, Nk: 4, D: 4 };

/** Every phase a program within the limits goes through; returns the number of diagnostics. */
function everyPhase(source: string): number | string {
  const fe = frontend(source, 'limit.attn');
  if (fe.diagnostics.length > 0) return fe.diagnostics.map((d) => d.message).join('; ');
  const printed = printProgram(fe.program);
  expect(parseProgram(printed, 'printed.attn').diagnostics).toEqual([]);
  for (const target of ['wgsl', 'cuda'] as const) compile(source, { target });
  const decl = fe.decls[0]!.decl;
  const p = declPredicates(decl, { params: {}, tensors: {}, sizes });
  for (let q = 0; q < 4; q++)
    for (let k = 0; k < 4; k++) p.score(0.5, 0, 0, q, k) + Number(p.mask(0, 0, q, k));
  return 0;
}

const atTheLimits: Record<string, () => string> = {
  [`${limits.nesting} nested calls over ${limits.operators - limits.nesting} prefix operators`]: () =>
    nestedCalls(),
  [`${limits.operators} nested conditionals`]: () => ternaryChain(),
  [`${limits.operators} chained binary operators`]: () => binaryChain(),
  [`lets ${limits.depth} deep under ${limits.masks} masks`]: () => letChainAndMasks(),
};

describe('programs exactly at the limits', () => {
  for (const [name, program] of Object.entries(atTheLimits)) {
    it(`${name}: every phase, with half the stack already used`, () => {
      expect(withHalfTheStack(() => everyPhase(program()))).toBe(0);
    });
  }
});

/** line:column and message of each diagnostic. */
const located = (source: string): string[] =>
  frontend(source, 'f.attn').diagnostics.map((d) => `${d.span.line}:${d.span.column} ${d.message}`);

describe('one past a limit', () => {
  it('one more open bracket', () => {
    expect(located(nestedCalls(1))).toEqual([
      `2:${9 + 4 * limits.nesting + 3} nesting too deep: more than ${limits.nesting} open brackets`,
    ]);
  });

  it('one more operator', () => {
    const column = 8 + 'true ? false : '.length * limits.operators + 5;
    expect(located(ternaryChain(1))).toEqual([
      `2:${column} expression too long: more than ${limits.operators} operators`,
    ]);
    expect(located(binaryChain(1))[0]).toMatch(/^2:\d+ expression too long/);
  });

  it('one more level of lets', () => {
    const ds = frontend(letChainAndMasks(1), 'f.attn').diagnostics;
    expect(ds[0]?.message).toBe(
      `expression too deep: ${limits.depth + 1} levels with its \`let\`s written out, the limit is ${limits.depth}`,
    );
    expect(ds[0]?.span.line).toBe(limits.depth + 3); // the first mask, after the lets
  });

  it('one more mask', () => {
    const line = limits.depth + 2 + limits.masks;
    expect(located(letChainAndMasks(0, 1))).toEqual([
      `${line}:3 too many \`mask\` statements: the limit is ${limits.masks}`,
    ]);
  });

  it('a source over the size limit is refused before it is read', () => {
    const source = `attention m() { mask true }\n${' '.repeat(limits.sourceChars)}`;
    expect(located(source)).toEqual([
      `1:1 the source is too large: ${source.length} characters, the limit is ${limits.sourceChars}`,
    ]);
  });
});

/** Runs `f`, failing if it takes longer than `seconds` (a hang guard, not a benchmark). */
function within<T>(seconds: number, f: () => T): T {
  const start = Date.now();
  const r = f();
  expect(Date.now() - start).toBeLessThan(seconds * 1000);
  return r;
}

describe('hostile input of issue #9', () => {
  const deep = 10_000;
  const hostile: Record<string, string> = {
    [`${deep} parentheses`]: `attention m() { mask ${'('.repeat(deep)}true${')'.repeat(deep)} }`,
    [`${deep} unary !`]: `attention m() { mask ${'!'.repeat(deep)}true }`,
    [`${deep} unary -`]: `attention m() { score ${'-'.repeat(deep)}score }`,
    [`${deep} nested calls`]: `attention m() { score ${'abs('.repeat(deep)}score${')'.repeat(deep)} }`,
    [`${deep} nested lookups`]: `attention m(t: f32[kv]) { score ${'t['.repeat(deep)}0${']'.repeat(deep)} }`,
    [`${deep} nested conditionals`]: `attention m() { mask ${'true ? '.repeat(deep)}true${' : false'.repeat(deep)} }`,
    '1800 &&': `attention m() { mask ${Array(1800).fill('q >= k').join(' && ')} }`,
    [`a default ${deep} deep`]: `attention m(x: int = ${'-'.repeat(deep)}1) { mask true }`,
    [`a topk count ${deep} deep`]: `attention m() { select topk(${'('.repeat(deep)}1${')'.repeat(deep)}) by q . k }`,
  };
  for (const [name, source] of Object.entries(hostile)) {
    it(`${name}: a positioned diagnostic, no RangeError`, () => {
      const ds = within(10, () => withHalfTheStack(() => frontend(source, 'f.attn').diagnostics));
      expect(ds.length).toBeGreaterThan(0);
      expect(ds[0]?.message).toMatch(/^(nesting too deep|expression too long)/);
      expect(ds[0]?.span.offset).toBeGreaterThan(0);
    });
  }

  // Each piece is within the limits, but error recovery joins pieces left open (a `?` without
  // its `:`) into one expression: the front end reports it rather than overflowing.
  for (const separator of ['{', '}', 'mask', 'let x =', 'score score', ') {']) {
    it(`80 unfinished conditionals joined by recovery across \`${separator}\``, () => {
      const pieces = Array.from({ length: 80 }, () => 'true ? '.repeat(limits.operators / 2));
      for (const head of ['attention m() { mask ', 'attention m(x: int = ']) {
        const source = head + pieces.join(` ${separator} `) + ' q';
        const ds = within(10, () => withHalfTheStack(() => frontend(source, 'f.attn').diagnostics));
        expect(ds.length).toBeGreaterThan(0);
        expect(ds.every((d) => d.severity === 'error' && d.span.offset <= source.length)).toBe(true);
      }
    });
  }

  it('compile() goes through the same limits: a CompileError, not a RangeError', () => {
    const source = `attention m() {\n  mask ${'!'.repeat(deep)}true\n}`;
    for (const target of ['wgsl', 'cuda'] as const) {
      expect(() => compile(source, { target })).toThrow(CompileError);
      expect(() => compile(source, { target })).toThrow(/expression too long/);
    }
  });

  it('a 5 MB single expression: one diagnostic, fast', () => {
    const source = `attention m() { mask ${Array(900_000).fill('q>=k').join('&&')} }`;
    expect(source.length).toBeGreaterThan(5_000_000);
    const ds = within(10, () => frontend(source, 'f.attn').diagnostics);
    expect(ds.map((d) => d.message)).toEqual([
      `the source is too large: ${source.length} characters, the limit is ${limits.sourceChars}`,
    ]);
  });

  it('the lexer is linear: 5 MB of tokens, comments and errors', () => {
    const chunk = 'mask q>=k&&(k<2.5e3) /* c */ // d\n@ 1e+ 12. #';
    const source = chunk.repeat(Math.ceil(5_000_000 / chunk.length));
    // Only the lexer: the front end refuses a source this size before lexing it.
    const r = within(30, () => lex(source));
    expect(r.tokens.length).toBeGreaterThan(1_000_000);
    expect(r.errors.length).toBeGreaterThan(100_000);
  });

  it('a limit-sized source full of errors reports a bounded number of them, fast', () => {
    const source = '@ mask ( ] '.repeat(Math.floor(limits.sourceChars / 11));
    const ds = within(10, () => frontend(source, 'f.attn').diagnostics);
    expect(ds.length).toBe(101);
    expect(ds.at(-1)?.message).toMatch(/^\d+ more errors after this one are not shown$/);
  });

  it('the note counts every error left out, not those the second cut saw', () => {
    // The parser's list was cut at 100 with a note ("2900 more …"), then the front end cut the
    // 101 again and wrote "1 more errors after this one are not shown".
    const source = Array.from({ length: 3000 }, (_, i) => `attention a${i}() { mask q < k &&& }\n`).join('');
    const ds = frontend(source, 'f.attn').diagnostics;
    expect(ds.length).toBe(101);
    expect(ds.at(-1)?.message).toBe('2900 more errors after this one are not shown');
    expect(hiddenErrors(ds)).toBe(2900);
    const one = Array.from({ length: 101 }, (_, i) => `attention a${i}() { mask q < k &&& }\n`).join('');
    expect(frontend(one, 'f.attn').diagnostics.at(-1)?.message).toBe(
      '1 more error after this one is not shown',
    );
  });

  it('a limit-sized source of many small declarations checks fast', () => {
    const decl = (i: number): string =>
      `attention m${i}(w: int = ${i}) {\n  let d = q - k\n  mask d < w\n}\n`;
    const parts: string[] = [];
    for (let i = 0, n = 0; n < limits.sourceChars - 100; i++) n += (parts[parts.length] = decl(i)).length;
    const fe = within(10, () => frontend(parts.join(''), 'f.attn'));
    expect(fe.diagnostics).toEqual([]);
    expect(fe.decls.length).toBe(parts.length);
  });
});
