// `attnc repl` used as a person would: in a real terminal (tmux), with a fresh HOME, typing a
// multi-line program, a typo, a redefinition, :mask, :set, :run on WebGPU, :save/:load, and
// history and tab completion across two sessions.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tmux } from './tmux.js';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'attnc-repl-'));
const home = join(dir, 'home');
const attncHome = join(dir, 'attnc');
// Inside the repository, so the bundle's bare imports (chevrotain, webgpu) resolve.
const bundle = join(root, 'node_modules/.cache/attnc-test', `attnc-${process.pid}.mjs`);
const tmux = new Tmux(`attnc-test-${process.pid}`, dir);
const S = 'repl';

/** The attnc CLI as one ESM file, so the REPL runs from the sources without `npm run build`. */
beforeAll(async () => {
  mkdirSync(home);
  await build({
    entryPoints: [join(root, 'src/cli/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: bundle,
    logLevel: 'error',
  });
});

afterAll(() => {
  tmux.kill();
  rmSync(dir, { recursive: true, force: true });
  rmSync(bundle, { force: true });
});

function startRepl(): void {
  const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
  const env = `HOME=${q(home)} ATTNC_HOME=${q(attncHome)}`;
  tmux.start(S, `cd ${q(root)} && env ${env} node scripts/with-gpu.mjs node ${q(bundle)} repl`);
}

const cursorLine = (): string => tmux.screen(S).trimEnd().split('\n').at(-1) ?? '';

/**
 * Types `text`, waits for it to show, then presses Tab and waits for `completed`. Typing and Tab
 * must reach the terminal separately: readline treats keys arriving in one read as a paste and
 * inserts a Tab literally instead of completing.
 */
async function complete(text: string, completed: string): Promise<void> {
  tmux.type(S, text);
  await tmux.waitFor(S, () => cursorLine().endsWith(text.trimEnd()), `\`${text}\` typed`);
  tmux.keys(S, 'Tab');
  await tmux.waitFor(S, () => cursorLine() === completed, `completion to \`${completed}\``);
}

/** The rows of the last mask drawn in `out` (between its ┌ and └ lines), as glyph arrays. */
function maskRows(out: string): string[][] {
  const lines = out.split('\n');
  const top = lines.findIndex((l) => l.startsWith(' ┌'));
  const bottom = lines.findIndex((l, i) => i > top && l.startsWith(' └'));
  return lines.slice(top + 1, bottom).map((l) => [...l].slice(2, -1));
}

/** Every drawn cell against `allowed` (cells split nq rows and nk columns as evenly as possible). */
function expectMask(
  rows: string[][],
  nq: number,
  nk: number,
  allowed: (q: number, k: number) => boolean,
): void {
  const R = rows.length;
  const C = rows[0]!.length;
  expect(C).toBe(nk); // 64 keys fit a 120-column terminal: one column per key
  const wrong: string[] = [];
  for (let r = 0; r < R; r++) {
    expect(rows[r]!.length).toBe(C);
    for (let c = 0; c < C; c++) {
      const qs = [];
      for (let q = Math.floor((r * nq) / R); q < Math.floor(((r + 1) * nq) / R); q++) qs.push(allowed(q, c));
      const want = qs.every(Boolean) ? '█' : qs.some(Boolean) ? '▒' : '░';
      if (rows[r]![c] !== want) wrong.push(`(${r}, ${c}): ${rows[r]![c]} not ${want}`);
    }
  }
  expect(wrong).toEqual([]);
}

describe('attnc repl in a terminal', () => {
  it('starts with a fresh HOME', async () => {
    startRepl();
    await tmux.waitFor(
      S,
      (t) => t.includes('attnc repl — :help') && /attnc> $/m.test(t),
      'the prompt',
      30_000,
    );
  });

  it('reads a multi-line block and draws its mask', async () => {
    const out = await tmux.send(
      S,
      ['attention causal_t() {', '  // braces in comments { do not count', '  mask causal', '}'],
      /defined causal_t \(current\)/,
    );
    expect(out).toContain('   ...>   mask causal');
    const mask = await tmux.send(S, ':mask 64 64', /density 50\.8%.*tiles/);
    const rows = maskRows(mask);
    expect(rows[0]![63]).toBe('░'); // top right: masked
    expect(rows.at(-1)![0]).toBe('█'); // bottom left: allowed
    expectMask(rows, 64, 64, (q, k) => q >= k);
    // On a TTY the glyphs are coloured by tile class (both tiles of this shape are partial: yellow).
    expect(tmux.capture(S, true)).toContain('\x1b[33m█');
  });

  it('shows a typo with the CLI diagnostics and carries on', async () => {
    const out = await tmux.send(S, ['attention bad() {', '  mask causl && q > 0', '}'], /did you mean/);
    expect(out).toContain('error: unknown name `causl`');
    expect(out).toContain(' --> <repl>:2:8');
    expect(out).toContain('2 |   mask causl && q > 0');
    expect(out).toMatch(/\| {8}\^{5} did you mean `causal`\?/);
    expect(await tmux.send(S, ':list', /\* causal_t/)).not.toContain('bad');
    expect(await tmux.send(S, ':mask 0 64', /error: /)).toContain(':mask expects positive nq');
  });

  it('redefines the block and redraws; :set changes a param', async () => {
    await tmux.send(
      S,
      ['attention causal_t(window: int = 4) {', '  mask causal && q - k < window', '}'],
      /redefined causal_t \(current\)/,
    );
    expectMask(maskRows(await tmux.send(S, ':mask 64 64', /density/)), 64, 64, (q, k) => q >= k && q - k < 4);
    await tmux.send(S, ':set window=8', /^\s*window=8$/m);
    const out = await tmux.send(S, ':mask 64 64', /density/);
    expect(out).toContain('causal_t  nq=64 nk=64  b=0 h=0  window=8');
    expectMask(maskRows(out), 64, 64, (q, k) => q >= k && q - k < 8);
    expect(await tmux.send(S, ':set windw=3', /error/)).toContain('no setting or param `windw`');
  });

  it('runs the kernel on WebGPU and compares with the reference', async () => {
    const out = await tmux.send(S, ':run --nq 64 --nk 64 --heads 1 --dim 16', /reference|error/, 60_000);
    expect(out).toContain('causal_t: agrees with the reference');
    expect(out).toMatch(/time: compile [\d.]+ ms, pipeline [\d.]+ ms, kernel [\d.]+ ms/);
  });

  it('round-trips :save and :load', async () => {
    const file = join(dir, 'session.attn');
    await tmux.send(S, `:save ${file}`, /saved causal_t to/);
    expect(readFileSync(file, 'utf8')).toBe(
      'attention causal_t(window: int = 4) {\n  mask causal && q - k < window\n}\n',
    );
    await tmux.send(S, ['attention other() {', '  mask k < 3', '}'], /defined other/);
    await tmux.send(S, `:load ${file}`, /loaded causal_t from .*; current: causal_t/);
    expect(await tmux.send(S, ':list', /\* causal_t/)).toContain('  other');
  });

  it('drops a half-typed block on Ctrl-C, and leaves on :quit with the history saved', async () => {
    tmux.line(S, 'attention half() {');
    await tmux.waitFor(S, (t) => /\.\.\.> $/m.test(t), 'the continuation prompt');
    tmux.keys(S, 'C-c');
    await tmux.waitFor(S, (t) => t.includes('^C (input discarded)'), 'the discarded input');
    tmux.line(S, ':quit');
    await tmux.waitFor(S, () => tmux.dead(S), 'the REPL to exit');
    const history = readFileSync(join(attncHome, 'history'), 'utf8').split('\n');
    for (const line of ['attention causal_t() {', '  mask causal', ':mask 64 64', ':set window=8', ':quit'])
      expect(history).toContain(line);
  });

  it('recalls history in a new session and completes commands, params and builtins', async () => {
    tmux.kill();
    startRepl();
    await tmux.waitFor(S, (t) => /attnc> $/m.test(t), 'the prompt', 30_000);
    tmux.keys(S, 'Up');
    await tmux.waitFor(
      S,
      () => /attnc> :quit\s*$/.test(tmux.screen(S).trimEnd()),
      'the last line of history',
    );
    tmux.keys(S, 'C-u');
    await tmux.send(S, `:load ${join(dir, 'session.attn')}`, /loaded causal_t/);
    await complete(':se', 'attnc> :set');
    await complete(' wi', 'attnc> :set window=');
    tmux.type(S, '16');
    tmux.keys(S, 'Enter');
    await tmux.waitFor(S, (t) => /^window=16$/m.test(t), ':set by completion');
    await complete('attention tc() { mask cau', 'attnc> attention tc() { mask causal');
    tmux.line(S, ' }');
    await tmux.waitFor(S, (t) => t.includes('defined tc (current)'), 'completion of `causal`');
    expect(tmux.capture(S)).toContain('attnc> attention tc() { mask causal }');
    tmux.line(S, ':quit');
    await tmux.waitFor(S, () => tmux.dead(S), 'the REPL to exit');
  });
});
