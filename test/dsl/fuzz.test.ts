// Parser fuzzing: arbitrary and mutated input never throws, and every diagnostic (and every AST
// span) points inside the source with consistent line/column.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderDiagnostics, type Span } from '../../src/diagnostics.js';
import { frontend, parseProgram } from '../../src/dsl/index.js';
import { lex } from '../../src/dsl/lexer.js';
import { printProgram } from '../../src/dsl/print.js';
import { readStdlib, staticStdlib } from '../support/stdlib.js';

const inline = [
  `// Sliding window with attention sinks (StreamingLLM).
attention sink_window(window: int = 1024, sinks: int = 4) {
  mask causal && (q - k < window || k < sinks)
}`,
  `attention softcap(cap: f32 = 30.0) {\n  score cap * tanh(score / cap)\n  mask causal\n}`,
  `attention alibi(slopes: f32[heads]) {\n  let dist = q - k\n  score score - slopes[h] * float(dist)\n  mask causal\n}`,
  `attention relbias(buckets: int = 64, table: f32[heads, buckets]) {
  score score + table[h, clamp(q - k, 0, buckets - 1)]
}`,
  `attention m(on: bool = !false, s: f32 = -1.5e2) {\n  mask on ? (q - k) % 2 == 0 : k < int(s) /* c */\n}`,
];
// Mask/score programs; the routing statements have their own fuzzer in routing.test.ts.
const stdlib = staticStdlib.map(readStdlib);
const programs = stdlib.length > 0 ? [...stdlib, ...inline.slice(4)] : inline;

const vocabulary = [
  ...'attention mask score let int f32 bool i32 true false q k h b causal window doc'.split(' '),
  ...'exp clamp kv heads'.split(' '),
  ...'0 12 1.5 2. 1e-3 ( ) { } [ ] , : = == != < <= > >= + - * / % ! && || ? & | ; # // /* */'.split(' '),
  ...['\n', ' ', '\r\n', '\t'],
];

/** Line and column of `offset`, counting only `\n` as a line break (as the renderer does). */
function position(source: string, offset: number): { line: number; column: number } {
  const before = source.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

function expectSpanInside(span: Span, source: string): void {
  expect(span.line).toBeGreaterThanOrEqual(1);
  expect(span.column).toBeGreaterThanOrEqual(1);
  expect(span.offset).toBeGreaterThanOrEqual(0);
  expect(span.length).toBeGreaterThanOrEqual(0);
  expect(span.offset + span.length).toBeLessThanOrEqual(source.length + 1);
  expect(span.offset).toBeLessThanOrEqual(source.length);
  expect({ line: span.line, column: span.column }).toEqual(position(source, span.offset));
}

function collectSpans(x: unknown, out: Span[]): Span[] {
  if (Array.isArray(x)) x.forEach((y) => collectSpans(y, out));
  else if (x !== null && typeof x === 'object') {
    for (const [k, v] of Object.entries(x)) {
      if (k === 'span' || k === 'nameSpan' || k === 'calleeSpan' || k === 'tensorSpan') out.push(v as Span);
      else collectSpans(v, out);
    }
  }
  return out;
}

/** The invariants every input must satisfy; returns the number of errors. */
function checkInvariants(source: string): number {
  const fe = frontend(source, 'f.attn');
  for (const d of fe.diagnostics) {
    expect(d.span.file).toBe('f.attn');
    expectSpanInside(d.span, source);
  }
  expect(() => renderDiagnostics(fe.diagnostics, source)).not.toThrow();
  for (const s of collectSpans(fe.program.decls, [])) expectSpanInside(s, source);
  const errors = fe.diagnostics.filter((d) => d.severity === 'error').length;
  if (errors === 0) {
    // A clean program is fully usable and survives a print → parse round trip.
    expect(fe.decls.length).toBe(fe.program.decls.length);
    expect(fe.decls.length).toBeGreaterThan(0);
    const again = parseProgram(printProgram(fe.program), 'f.attn');
    expect(again.diagnostics).toEqual([]);
    expect(printProgram(again.program)).toBe(printProgram(fe.program));
  }
  return errors;
}

const program = fc.constantFrom(...programs);

/** A mutation of a valid program at a char or token position. */
const mutated = fc
  .tuple(program, fc.nat(), fc.nat(), fc.constantFrom(...vocabulary), fc.integer({ min: 0, max: 5 }))
  .map(([src, i, j, insert, kind]) => {
    const tokens = lex(src).tokens;
    const a = i % (src.length + 1);
    const b = j % (src.length + 1);
    const t = tokens[i % Math.max(1, tokens.length)];
    const u = tokens[j % Math.max(1, tokens.length)];
    switch (kind) {
      case 0: // delete a char range
        return src.slice(0, Math.min(a, b)) + src.slice(Math.max(a, b));
      case 1: // insert a token or character
        return src.slice(0, a) + insert + src.slice(a);
      case 2: // delete a token
        return t ? src.slice(0, t.startOffset) + src.slice(t.endOffset! + 1) : src;
      case 3: // duplicate a token
        return t ? src.slice(0, t.startOffset) + t.image + ' ' + src.slice(t.startOffset) : src;
      case 4: {
        // swap two tokens
        if (!t || !u || t === u) return src;
        const [x, y] = t.startOffset < u.startOffset ? [t, u] : [u, t];
        const mid = src.slice(x.endOffset! + 1, y.startOffset);
        return src.slice(0, x.startOffset) + y.image + mid + x.image + src.slice(y.endOffset! + 1);
      }
      default: // replace a char
        return src.slice(0, a) + insert + src.slice(a + 1);
    }
  });

/** Mutations that are certainly errors: an unbalanced bracket, or a character outside the language. */
const broken = fc.tuple(program, fc.nat(), fc.constantFrom('#', '@', '$', '`', '\\')).map(([src, i, bad]) => {
  const tokens = lex(src).tokens;
  const brackets = tokens.filter((t) => '()[]{}'.includes(t.image));
  const t = brackets[i % brackets.length];
  if (i % 2 === 0 && t) return src.slice(0, t.startOffset) + src.slice(t.startOffset + 1);
  const at = tokens[i % tokens.length];
  const offset = at ? at.startOffset : 0; // a token boundary is never inside a comment
  return src.slice(0, offset) + bad + src.slice(offset);
});

describe('frontend fuzzing', () => {
  it('the unmutated programs are clean', () => {
    for (const p of programs) expect(checkInvariants(p)).toBe(0);
  });

  it('arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 120 }), (s) => {
        checkInvariants(s);
      }),
      { numRuns: 1000 },
    );
  });

  it('token soup', () => {
    const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 60 }).map((ts) => ts.join(' '));
    fc.assert(
      fc.property(soup, (s) => {
        checkInvariants(s);
      }),
      { numRuns: 1500 },
    );
  });

  it('mutated valid programs', () => {
    fc.assert(
      fc.property(mutated, (s) => {
        checkInvariants(s);
      }),
      { numRuns: 2500 },
    );
  });

  it('certainly broken programs report at least one error', () => {
    fc.assert(
      fc.property(broken, (s) => {
        expect(checkInvariants(s)).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 1000 },
    );
  });
});
