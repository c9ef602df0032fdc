// Diagnostics print source lines, names and paths from files a user may not have written: no
// control or bidi character reaches the terminal raw, and the caret stays under the span.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeControl, renderDiagnostic, renderDiagnostics } from '../../src/diagnostics.js';
import { frontend } from '../../src/dsl/index.js';

// Anything a terminal would interpret: C0 (but newline), DEL, C1, bidi controls.
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const span = (column: number, length: number) => ({
  file: 'x.attn',
  line: 1,
  column,
  offset: column - 1,
  length,
});

describe('escaping in diagnostics', () => {
  it('an ESC sequence in a source line is shown as \\x1B, never raw', () => {
    const src = 'attention m() {\n  mask q >= k \x1b[2J\x1b]0;pwned\x07 && k < 4\n}\n';
    const text = renderDiagnostics(frontend(src, 'esc.attn').diagnostics, src);
    expect(text).toContain('error');
    expect(text).not.toMatch(RAW);
    expect(text).toContain('\\x1B[2J');
  });

  it('bidi overrides (Trojan Source), C1 and DEL are escaped too', () => {
    for (const ch of ['\u202e', '\u2066', '\u200f', '\u0085', '\u009b', '\u007f', '\r']) {
      const out = escapeControl(`a${ch}b`);
      expect(out, JSON.stringify(ch)).not.toMatch(RAW);
      expect(out).toMatch(/^a\\(x|u)[0-9A-F]+b$/);
    }
    expect(escapeControl('ok\nnext')).toBe('ok\nnext');
  });

  it('keeps the caret under the span when escapes widen the line before it', () => {
    const line = '\x1b\u202e\tbad';
    const d = { severity: 'error' as const, message: 'm', span: span(4, 3) };
    const [, , shown, caret] = renderDiagnostic(d, line).split('\n').slice(1);
    const body = shown!.slice(shown!.indexOf('| ') + 2);
    const marks = caret!.slice(caret!.indexOf('| ') + 2);
    expect(body).toBe('\\x1B\\u202E    bad');
    expect(body.slice(marks.indexOf('^'), marks.lastIndexOf('^') + 1)).toBe('bad');
  });

  it('a caret on an escaped character covers its whole escape', () => {
    const d = { severity: 'error' as const, message: 'unexpected character', span: span(3, 1) };
    const [, , shown, caret] = renderDiagnostic(d, 'a \x1b b').split('\n').slice(1);
    const body = shown!.slice(shown!.indexOf('| ') + 2);
    const marks = caret!.slice(caret!.indexOf('| ') + 2);
    expect(body.slice(marks.indexOf('^'), marks.lastIndexOf('^') + 1)).toBe('\\x1B');
  });

  it('messages, hints and file names are escaped', () => {
    const d = {
      severity: 'error' as const,
      message: 'bad `\x1b`',
      hint: 'h\u202e',
      span: { ...span(1, 1), file: 'f\x1b.attn' },
    };
    expect(renderDiagnostic(d, 'x')).not.toMatch(RAW);
  });

  it('`attnc check` on a file with escape sequences prints none of them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-esc-'));
    const file = join(dir, 'evil.attn');
    writeFileSync(file, 'attention m() {\n  // \x1b[31mred\n  mask q >= k && \x1b[2J\u202e\n}\n');
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'check', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('\\x1B[2J\\u202E');
    expect(r.stderr + r.stdout).not.toMatch(RAW);
  });

  it('paths in the lines check, compile and viz print themselves are escaped too', () => {
    // Only diagnostics escaped: `FILE: ok`, `FILE: N errors` and `wrote PATH` printed a path raw.
    const dir = join(mkdtempSync(join(tmpdir(), 'attnc-esc-')), 'a\x1b[2J\u202eb');
    mkdirSync(dir);
    const good = join(dir, 'good.attn');
    const bad = join(dir, 'bad.attn');
    writeFileSync(good, 'attention m() { mask causal }\n');
    writeFileSync(bad, 'attention m() { mask q >= kk }\n');
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });
    const runs = [
      cli('check', good, bad),
      cli('compile', good, '--target', 'cuda', '--out', join(dir, 'out')),
      cli('viz', good, '--out', join(dir, 'm.svg'), '--nq', '64', '--nk', '64'),
    ];
    expect(runs.map((r) => r.status)).toEqual([1, 0, 0]);
    const text = runs.map((r) => r.stdout + r.stderr).join('');
    expect(text).toMatch(/a\\x1B\[2J\\u202Eb\/good\.attn: ok/);
    expect(text).toMatch(/a\\x1B\[2J\\u202Eb\/bad\.attn: 1 error/);
    expect(text).toMatch(/wrote \S*a\\x1B\[2J\\u202Eb\/out\/m\.cu/);
    expect(text).toMatch(/wrote \S*a\\x1B\[2J\\u202Eb\/m\.svg: m, density/);
    expect(text).not.toMatch(RAW);
  });
});

describe('long source lines in diagnostics', () => {
  /** The shown line and the caret line of a one-diagnostic rendering, without their gutters. */
  const snippet = (text: string): { body: string; marks: string } => {
    const [, , shown, caret] = text.split('\n').slice(1);
    return { body: shown!.slice(shown!.indexOf('| ') + 2), marks: caret!.slice(caret!.indexOf('| ') + 2) };
  };

  it('shows a window of a 100,000-character line around the span, marked with …', () => {
    // The whole line was printed (200 KB for one error, twice with its caret line of spaces).
    const src = `attention a() { mask q > k && ${' '.repeat(100_000)}zz && q < 5 + ${'1 + '.repeat(200)}1 }`;
    const text = renderDiagnostics(frontend(src, 'long.attn').diagnostics, src);
    expect(text).toContain('unknown name `zz`');
    expect(text.length).toBeLessThan(600);
    const { body, marks } = snippet(text);
    expect(body.startsWith('…') && body.endsWith('…')).toBe(true);
    expect(body.slice(marks.indexOf('^'), marks.lastIndexOf('^') + 1)).toBe('zz');
  });

  it('a span longer than the window gets a caret to the window`s end', () => {
    const d = { severity: 'error' as const, message: 'm', span: span(5, 5000) };
    const { body, marks } = snippet(renderDiagnostic(d, `abcd${'x'.repeat(6000)}`));
    expect(body.startsWith('abcd') && body.endsWith('…')).toBe(true);
    expect(marks).toBe(`    ${'^'.repeat(body.length - 5)}`);
  });

  it('puts the caret under the span after wide (CJK) characters, two columns each', () => {
    // The caret counted 注释 as two columns, a terminal shows four: it pointed two columns short.
    const src = 'attention a() { /* 注释 */ mask q > kk }';
    const { body, marks } = snippet(renderDiagnostics(frontend(src, 'w.attn').diagnostics, src));
    expect(body).toBe(src);
    expect(marks).toBe(
      `${' '.repeat('attention a() { /* '.length + 4 + ' */ mask q > '.length)}^^ did you mean \`k\`?`,
    );
  });

  it('leaves a line that fits alone', () => {
    const line = `mask ${'q + '.repeat(25)}k`;
    const d = { severity: 'error' as const, message: 'm', span: span(line.length, 1) };
    const { body, marks } = snippet(renderDiagnostic(d, line));
    expect(body).toBe(line);
    expect(marks).toBe(`${' '.repeat(line.length - 1)}^`);
  });
});
