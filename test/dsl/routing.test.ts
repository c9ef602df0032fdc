// The routing statements (`route`, `select`, `emit`): parsing, printing, checking, and the
// stdlib's routing sources. docs/LANGUAGE.md, "Pooling, routing and selection", is the spec.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderDiagnostics, type Span } from '../../src/diagnostics.js';
import type { Program } from '../../src/dsl/ast.js';
import { frontend, parseProgram, sparsitySpan, usesDataDependentSparsity } from '../../src/dsl/index.js';
import { lex } from '../../src/dsl/lexer.js';
import { printProgram } from '../../src/dsl/print.js';
import { readStdlib, routedStdlib, staticStdlib } from '../support/stdlib.js';

const render = (source: string): string => renderDiagnostics(frontend(source, 'x.attn').diagnostics, source);

/** `message [hint]` of every diagnostic. */
function errors(source: string): string[] {
  return frontend(source, 't.attn').diagnostics.map((d) => (d.hint ? `${d.message} [${d.hint}]` : d.message));
}

const inDecl = (params: string, body: string): string[] => errors(`attention t(${params}) {\n${body}\n}`);

function parseOk(source: string): Program {
  const fe = frontend(source, 't.attn');
  expect(fe.diagnostics.map((d) => d.message)).toEqual([]);
  return fe.program;
}

const spanKeys = new Set(['span', 'nameSpan', 'calleeSpan', 'tensorSpan', 'keywordSpan', 'emitIndices']);
function stripSpans(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripSpans);
  if (x === null || typeof x !== 'object') return x;
  const entries = Object.entries(x).filter(([k]) => !spanKeys.has(k));
  return Object.fromEntries(entries.map(([k, v]) => [k, stripSpans(v)]));
}

/** The only routing statement of a one-declaration program, without spans. */
const stmtOf = (source: string): unknown => stripSpans(parseOk(source).decls[0]?.sparsity?.[0]);

const routingFiles = routedStdlib;

const sketches = `attention biformer(top: int = 8) {
  route blocks(64) topk(top) by mean(q) . mean(k)
}
attention nsa_select(top: int = 16) {
  route blocks(64) topk(top) by q . mean(k) force first(1) local(2)
  mask causal
}
attention dhsa(bounds: i32[kv], top: int = 4) {
  route chunks(bounds) topk(top) by lnmean(q) . lnmean(k)
  mask causal
}
attention tokenselect(budget: int = 2048) {
  select topk(budget) by q . k vote heads
  mask causal
}
attention tidal_select(budget: int = 256) {
  emit topk(budget) by q . k vote groups
  mask causal
}
attention tidal_reuse(budget: int = 256, idx: i32[batch, heads, queries, budget]) {
  mask causal
  select from idx force local(4) first(2)
}
attention landmark_blocks(top: int = 2) {
  emit blocks(32) topk(top) by q . first(k)
  mask causal
}
attention routed_and_emitted(top: int = 2) {
  route blocks(16) topk(2 * top) by max(q) . max(k) vote groups emit indices
}`;

describe('parsing', () => {
  it('reads a route with pooled sides into the AST', () => {
    expect(stmtOf('attention a(top: int = 8) { route blocks(64) topk(top) by mean(q) . mean(k) }')).toEqual({
      kind: 'route',
      unit: { kind: 'blocks', size: { kind: 'num', value: 64, isFloat: false } },
      source: {
        kind: 'topk',
        count: { kind: 'name', name: 'top' },
        by: { q: { reducer: 'mean' }, k: { reducer: 'mean' } },
      },
      force: [],
    });
  });

  it('reads chunks, raw sides, votes, forced units, emit and from', () => {
    const p = parseOk(sketches);
    const routes = p.decls.map((d) => stripSpans(d.sparsity?.[0]));
    expect(routes[2]).toMatchObject({ unit: { kind: 'chunks', tensor: 'bounds' } });
    expect(routes[1]).toMatchObject({
      source: { by: { q: { reducer: 'raw' }, k: { reducer: 'mean' } } },
      force: [
        { kind: 'first', count: { value: 1 } },
        { kind: 'local', count: { value: 2 } },
      ],
    });
    expect(routes[3]).toMatchObject({ kind: 'select', vote: { over: 'heads' } });
    expect(routes[4]).toMatchObject({ kind: 'emit', vote: { over: 'groups' } });
    expect(routes[5]).toMatchObject({ kind: 'select', source: { kind: 'from', tensor: 'idx' } });
    expect(routes[6]).toMatchObject({ kind: 'emit', unit: { kind: 'blocks' } });
    expect(p.decls[7]?.sparsity?.[0]?.emitIndices).toBeDefined();
    expect(p.decls.map((d) => d.body.length)).toEqual([0, 1, 1, 1, 1, 1, 1, 0]);
  });

  it('keeps its words usable as names (they are soft keywords)', () => {
    const p =
      parseOk(`attention a(top: int = 2, first: int = 1, local: int = 3, from: int = 0, indices: f32[kv]) {
  let select = q - k
  let by = select < local || k < first
  mask by && from <= 0 && indices[k] > 0.0
  route blocks(4) topk(top) by mean(q) . mean(k) force first(first) local(local)
}`);
    expect(p.decls[0]?.body.map((s) => s.kind)).toEqual(['let', 'let', 'mask']);
  });

  it('records spans for the statement, its keyword and its parts', () => {
    const src = 'attention a() {\n  mask causal\n  route blocks(8) topk(2) by q . mean(k) vote groups\n}';
    const s = parseOk(src).decls[0]?.sparsity?.[0];
    const text = (sp: Span | undefined): string => (sp ? src.slice(sp.offset, sp.offset + sp.length) : '');
    expect(text(s?.span)).toBe('route blocks(8) topk(2) by q . mean(k) vote groups');
    expect(text(s?.keywordSpan)).toBe('route');
    expect(text(s?.unit?.span)).toBe('blocks(8)');
    expect(text(s?.source.span)).toBe('topk(2) by q . mean(k)');
    expect(s?.source.kind === 'topk' && text(s.source.by.k.span)).toBe('mean(k)');
    expect(text(s?.vote?.span)).toBe('vote groups');
    expect(s?.span).toMatchObject({ line: 3, column: 3 });
  });
});

describe('print → parse round trip', () => {
  const sources = [
    { name: 'sketches', source: sketches },
    ...routingFiles.map((f) => ({ name: f, source: readStdlib(f) })),
  ];
  it.each(sources)('$name', ({ source }) => {
    const first = parseOk(source);
    const printed = printProgram(first);
    const second = parseOk(printed);
    expect(stripSpans(second)).toEqual(stripSpans(first));
    expect(printProgram(second)).toBe(printed);
  });

  it('keeps statements in source order and prints clauses in canonical order', () => {
    const p = parseOk(
      'attention a(i: i32[batch, 1, queries, 2]) {\n  mask causal\n  select from i force local(2) first(1)\n}',
    );
    expect(printProgram(p)).toBe(
      'attention a(i: i32[batch, 1, queries, 2]) {\n  mask causal\n  select from i force first(1) local(2)\n}\n',
    );
  });
});

describe('checker', () => {
  it('at most one routing statement', () => {
    expect(
      render(`attention a(top: int = 4) {
  route blocks(64) topk(top) by mean(q) . mean(k)
  select topk(top) by q . k
}`),
    ).toMatchInlineSnapshot(`
      "error: only one \`route\`, \`select\` or \`emit\` statement is allowed
       --> x.attn:3:3
        |
      3 |   select topk(top) by q . k
        |   ^^^^^^ the first is on line 2"
    `);
  });

  it('verbs and units', () => {
    expect(inDecl('', 'route topk(2) by q . mean(k)')).toEqual([
      '`route` needs a unit: `blocks(n)` or `chunks(ids)` [to rank single keys, use `select topk(n) by q . k`]',
    ]);
    expect(render('attention a() {\n  select blocks(8) topk(2) by q . k\n}')).toMatchInlineSnapshot(`
      "error: \`select\` ranks single keys and takes no unit
       --> x.attn:2:10
        |
      2 |   select blocks(8) topk(2) by q . k
        |          ^^^^^^^^^ to rank blocks, use \`route blocks(…)\`"
    `);
    expect(inDecl('', 'route blocks(8) topk(2) by q . k')).toEqual([
      '`route` ranks blocks, so the key side must be pooled, like `mean(k)` [to rank single keys, use `select topk(n) by q . k`]',
    ]);
    expect(inDecl('', 'select topk(2) by mean(q) . k')).toEqual([
      '`select` ranks single keys by `q . k`; pooling needs a unit [to pool, use `route blocks(n) topk(…) by …`]',
    ]);
    expect(inDecl('', 'emit topk(2) by q . max(k)')).toEqual([
      '`emit` ranks single keys by `q . k`; pooling needs a unit [to pool, use `route blocks(n) topk(…) by …`]',
    ]);
  });

  it('block sizes are positive constants; counts are ints fixed for the whole kernel', () => {
    expect(render('attention a(bs: int = 64) {\n  route blocks(bs) topk(2) by q . mean(k)\n}'))
      .toMatchInlineSnapshot(`
      "error: the block size must be a constant int
       --> x.attn:2:16
        |
      2 |   route blocks(bs) topk(2) by q . mean(k)
        |                ^^ it shapes the kernel's tiles; write a literal like \`blocks(64)\`"
    `);
    expect(inDecl('', 'route blocks(0) topk(2) by q . mean(k)')).toEqual([
      'the block size must be at least 1, found 0',
    ]);
    expect(
      inDecl('', 'route blocks(16 * 4) topk(Nk / 64 - 1) by q . mean(k) force first(min(1, H))'),
    ).toEqual([]);
    expect(render('attention a() {\n  route blocks(8) topk(q - k) by q . mean(k)\n}')).toMatchInlineSnapshot(`
      "error: \`q\` varies across the kernel
       --> x.attn:2:24
        |
      2 |   route blocks(8) topk(q - k) by q . mean(k)
        |                        ^ counts and block sizes take literals, scalar parameters and sizes like \`Nk\`

      error: \`k\` varies across the kernel
       --> x.attn:2:28
        |
      2 |   route blocks(8) topk(q - k) by q . mean(k)
        |                            ^ counts and block sizes take literals, scalar parameters and sizes like \`Nk\`"
    `);
    expect(
      inDecl(
        't: f32[kv], w: f32 = 2.0',
        'let n = 3\nroute blocks(8) topk(n) by q . mean(k) force first(t[0]) local(w)',
      ),
    ).toEqual([
      '`n` is a `let`, which varies across the kernel [counts and block sizes take literals, scalar parameters and sizes like `Nk`]',
      'a tensor lookup varies across the kernel [counts and block sizes take literals, scalar parameters and sizes like `Nk`]',
      '`local(…)` takes an int, found f32',
    ]);
    expect(inDecl('', 'select topk(-1) by q . k force local(0 - 2)')).toEqual([
      '`topk` must be at least 0, found -1',
      '`local(…)` must be at least 0, found -2',
    ]);
  });

  it('chunk ids and index tensors', () => {
    expect(render('attention a(ids: f32[kv]) {\n  route chunks(ids) topk(2) by q . mean(k)\n}'))
      .toMatchInlineSnapshot(`
      "error: \`chunks\` takes an \`i32[kv]\` tensor of chunk ids, but \`ids\` is f32[kv]
       --> x.attn:2:16
        |
      2 |   route chunks(ids) topk(2) by q . mean(k)
        |                ^^^"
    `);
    expect(inDecl('ids: i32[kv]', 'route chunks(idz) topk(2) by q . mean(k)')).toEqual([
      'unknown tensor `idz` [did you mean `ids`?]',
    ]);
    expect(inDecl('n: int = 2', 'route chunks(n) topk(2) by q . mean(k)')).toEqual([
      '`n` is not a tensor [declare it like `ids: i32[kv]`]',
    ]);
    expect(render('attention a(idx: i32[heads, 8]) {\n  select from idx\n}')).toMatchInlineSnapshot(`
      "error: \`from\` takes an index tensor \`i32[batch, G, queries, K]\` with G one of \`heads\`, \`kv_heads\`, 1, but \`idx\` is i32[heads, 8]
       --> x.attn:2:15
        |
      2 |   select from idx
        |               ^^^"
    `);
    for (const ok of ['batch, heads, queries, 8', 'batch, kv_heads, queries, n', 'batch, 1, queries, 4']) {
      expect(inDecl(`n: int = 4, idx: i32[${ok}]`, 'select from idx')).toEqual([]);
    }
  });

  it('clauses that do not fit their statement', () => {
    expect(inDecl('idx: i32[batch, heads, queries, 4]', 'select from idx vote heads emit indices')).toEqual([
      "a selection read `from` a tensor was voted where it was computed [the index tensor's second dimension says which heads share a selection]",
      'a selection read `from` a tensor is not emitted again [drop `emit indices`]',
    ]);
    expect(inDecl('', 'emit topk(4) by q . k emit indices')).toEqual([
      '`emit` already writes the indices [drop `emit indices`]',
    ]);
    expect(inDecl('idx: i32[batch, heads, queries, 4]', 'emit from idx')).toEqual([
      '`emit` cannot read a selection `from` a tensor [`emit` computes a selection; to reuse one, use `select from …` or `route … from …`]',
    ]);
    expect(inDecl('indices: i32[kv]', 'select topk(4) by q . k emit indices')).toEqual([
      'parameter `indices` clashes with the output of this statement [the selection is written to the output `indices`; rename the parameter]',
    ]);
  });

  it('the words of the affinity and the clauses', () => {
    expect(render('attention a() {\n  route blocks(8) topk(2) by avg(q) . mean(q) vote head\n}'))
      .toMatchInlineSnapshot(`
      "error: unknown pooling \`avg\`
       --> x.attn:2:30
        |
      2 |   route blocks(8) topk(2) by avg(q) . mean(q) vote head
        |                              ^^^ one of \`mean\`, \`max\`, \`lnmean\`, \`first\`

      error: expected \`k\` here, found \`q\`
       --> x.attn:2:44
        |
      2 |   route blocks(8) topk(2) by avg(q) . mean(q) vote head
        |                                            ^ write the query side first, like \`mean(q) . mean(k)\`

      error: expected \`heads\` or \`groups\` after \`vote\`, found \`head\`
       --> x.attn:2:52
        |
      2 |   route blocks(8) topk(2) by avg(q) . mean(q) vote head
        |                                                    ^^^^ did you mean \`heads\`?"
    `);
    expect(inDecl('', 'route blocks(8) topk(2) by k . mean(k)')).toEqual([
      'expected `q` here, found `k` [write the query side first, like `mean(q) . mean(k)`]',
    ]);
    expect(inDecl('', 'route blocks(8) topk(2) by q . mean')).toEqual([
      'expected `k` or a pooling like `mean(k)`, found `mean` [pool it like `mean(k)`]',
    ]);
    expect(
      inDecl(
        '',
        'route blocks(8) topk(2) by q . mean(k) force first(1) local(1) first(2) vote heads vote heads',
      ),
    ).toEqual([
      '`first(…)` is given twice [the first is at column 46]',
      '`vote` is given twice [the first is at column 73]',
    ]);
  });

  it('syntax errors point where the piece is missing', () => {
    expect(render('attention a() {\n  mask causal &&\n  route blocks(4) topk(1) by q . mean(k)\n}'))
      .toMatchInlineSnapshot(`
        "error: expected an expression, found \`route\`
         --> x.attn:2:17
          |
        2 |   mask causal &&
          |                 ^"
      `);
    expect(render('attention a() {\n  route blocks(8) topk(2) mean(q) . mean(k)\n}')).toMatchInlineSnapshot(`
      "error: expected \`by\` and an affinity like \`mean(q) . mean(k)\`, found \`mean\`
       --> x.attn:2:27
        |
      2 |   route blocks(8) topk(2) mean(q) . mean(k)
        |                           ^^^^"
    `);
    expect(render('attention a() {\n  select topk(2) by q k\n  mask causal\n}')).toMatchInlineSnapshot(`
      "error: expected \`.\` between the query side and the key side, found \`k\`
       --> x.attn:2:23
        |
      2 |   select topk(2) by q k
        |                       ^"
    `);
    expect(render('attention a() {\n  route blocks(8) topk(2) by q . mean(k) force\n}'))
      .toMatchInlineSnapshot(`
        "error: expected \`first(n)\` or \`local(n)\` after \`force\`, found \`}\`
         --> x.attn:2:47
          |
        2 |   route blocks(8) topk(2) by q . mean(k) force
          |                                               ^"
      `);
  });
});

describe('usesDataDependentSparsity', () => {
  it('tells routed declarations apart and gives the statement’s span', () => {
    const p = parseOk(`attention a() { mask causal }\nattention b() { select topk(4) by q . k }`);
    expect(p.decls.map(usesDataDependentSparsity)).toEqual([false, true]);
    expect(sparsitySpan(p.decls[0]!)).toBeUndefined();
    expect(sparsitySpan(p.decls[1]!)).toMatchObject({
      line: 2,
      column: 17,
      length: 'select topk(4) by q . k'.length,
    });
  });
});

describe('stdlib routing sources', () => {
  it.each(routingFiles)('%s checks cleanly and names its method', (f) => {
    const source = readStdlib(f);
    const fe = frontend(source, f);
    expect(fe.diagnostics).toEqual([]);
    expect(fe.decls.length).toBe(fe.program.decls.length);
    expect(fe.program.header).toMatch(/Method: /);
    expect(fe.decls.some((d) => usesDataDependentSparsity(d.decl))).toBe(true);
  });

  it('has every routing method of the issue', () => {
    const names = [
      'biformer',
      'landmark',
      'nsa_select',
      'dhsa',
      'cca',
      'tokenselect',
      'tidaldecode',
      'recycled',
    ];
    expect(routingFiles.map((f) => f.replace(/\.attn$/, '')).sort()).toEqual(names.sort());
  });

  it('the files classed static (no routing plan when compiled) use no route, select or emit', () => {
    expect(staticStdlib.length).toBeGreaterThan(0);
    for (const f of staticStdlib) {
      const fe = frontend(readStdlib(f), f);
      expect(fe.diagnostics, f).toEqual([]);
      expect(
        fe.decls.some((d) => usesDataDependentSparsity(d.decl)),
        f,
      ).toBe(false);
    }
  });
});

describe('fuzzing routing programs', () => {
  const programs = [sketches, ...routingFiles.map(readStdlib)];
  const words =
    'route select emit blocks chunks topk by from vote heads groups force first local indices mean max lnmean q k . ( ) , 8'.split(
      ' ',
    );

  it('mutations never throw; clean results round-trip', () => {
    const mutated = fc
      .tuple(
        fc.constantFrom(...programs),
        fc.nat(),
        fc.constantFrom(...words),
        fc.integer({ min: 0, max: 2 }),
      )
      .map(([src, i, w, kind]) => {
        const tokens = lex(src).tokens;
        const t = tokens[i % tokens.length];
        if (!t) return src;
        const end = t.startOffset + t.image.length;
        if (kind === 0) return src.slice(0, t.startOffset) + src.slice(end); // drop a token
        if (kind === 1) return src.slice(0, t.startOffset) + w + ' ' + src.slice(t.startOffset); // insert a word
        return src.slice(0, t.startOffset) + w + src.slice(end); // replace a token
      });
    fc.assert(
      fc.property(mutated, (src) => {
        const fe = frontend(src, 'f.attn');
        for (const d of fe.diagnostics) {
          expect(d.span.offset).toBeGreaterThanOrEqual(0);
          expect(d.span.offset).toBeLessThanOrEqual(src.length);
        }
        expect(() => renderDiagnostics(fe.diagnostics, src)).not.toThrow();
        if (fe.diagnostics.length === 0) {
          const again = parseProgram(printProgram(fe.program), 'f.attn');
          expect(again.diagnostics).toEqual([]);
          expect(printProgram(again.program)).toBe(printProgram(fe.program));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
