// Parser fuzzing: arbitrary and mutated input never throws, and every diagnostic (and every AST
// span) points inside the source with consistent line/column.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderDiagnostics, type Span } from '../../src/diagnostics.js';
import { frontend, parseProgram } from '../../src/dsl/index.js';
import { lex } from '../../src/dsl/lexer.js';
import { printProgram } from '../../src/dsl/print.js';
import { readStdlib, staticStdlib, stdlibFiles } from '../support/stdlib.js';
import { readFileSync, readdirSync } from 'node:fs';

const quantExamples = readdirSync('examples/quant')
  .filter((f) => f.endsWith('.attn'))
  .map((f) => readFileSync(`examples/quant/${f}`, 'utf8'));
import { fuzzCase, hugeSource, seeded, type CaseKind } from './fuzz-sources.js';

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

// The line starts of the last source seen (each input is checked span after span).
let lastSource = '';
let lastStarts: number[] = [0];

/** Offsets where each line starts, counting only `\n` as a line break (as the renderer does). */
function startsOf(source: string): number[] {
  if (lastSource === source) return lastStarts;
  const starts = [0];
  for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) starts.push(i + 1);
  [lastSource, lastStarts] = [source, starts];
  return starts;
}

/** Line and column of `offset` (binary search over the line starts: huge sources stay fast). */
function position(source: string, offset: number): { line: number; column: number } {
  const starts = startsOf(source);
  let [lo, hi] = [0, starts.length - 1];
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 };
}

/** Checks one span; plain comparisons first (a huge program has tens of thousands of spans). */
function expectSpanInside(span: Span, source: string): void {
  const { line, column } = position(source, span.offset);
  const inside =
    span.offset >= 0 &&
    span.length >= 0 &&
    span.offset <= source.length &&
    span.offset + span.length <= source.length + 1 &&
    span.line === line &&
    span.column === column;
  if (!inside)
    expect({ span, expected: { line, column }, sourceLength: source.length }).toBe('a span inside');
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

  // The stream of bench/parser-fuzz.mjs (10^5 cases there), at CI size: grammar-based programs,
  // byte and token mutations of every stdlib file, deep inputs around the limits, and a few
  // sources near the size limit. Seeded per run like the properties above (fixed under CI).
  it('the parser fuzz stream: generated, mutated, deep and huge sources', () => {
    const seed = fc.readConfigureGlobal().seed ?? Date.now();
    const rng = seeded(seed);
    // examples/quant: the storage statements, which compile() refuses (so not in stdlib/ yet).
    const seeds = [...stdlibFiles().map(readStdlib), ...quantExamples];
    const seen = new Map<CaseKind, number>();
    const huge = (): { kind: CaseKind; source: string } => ({ kind: 'huge', source: hugeSource(rng, seeds) });
    for (let i = 0; i < 1502; i++) {
      const { kind, source } = i < 2 ? huge() : fuzzCase(rng, seeds, 2 ** 30);
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      try {
        checkInvariants(source);
      } catch (e) {
        throw new Error(`seed ${seed}, case ${i} (${kind}): ${String(e)}\n${source.slice(0, 400)}`);
      }
    }
    expect([...seen.keys()].sort()).toEqual(['bytes', 'deep', 'grammar', 'tokens', 'huge'].sort());
  });
});
