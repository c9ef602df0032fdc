// `attnc repl` against hostile settings and input (issue 9, items 6, 8, 9), in a real terminal:
// a history directory that cannot be made (ATTNC_HOME under /proc: recursive mkdir loops there),
// and a mask of 10^10 pairs. Each answers promptly, and Ctrl-D still leaves. (A 47 KB line is
// too long for tmux send-keys: test/repl/long-input.test.ts feeds it to the session.)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tmux } from './tmux.js';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'attnc-repl-hostile-'));
const bundle = join(root, 'node_modules/.cache/attnc-test', `attnc-hostile-${process.pid}.mjs`);
const tmux = new Tmux(`attnc-hostile-${process.pid}`, dir);
const S = 'repl';
/** Hang guards (a busy 2-core machine), not timings: each answer takes a second or two. */
const ANSWER_MS = 30_000;

beforeAll(async () => {
  mkdirSync(join(dir, 'home'));
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

describe('attnc repl with hostile settings and input', () => {
  it('ATTNC_HOME=/proc/x: starts without history, says so in one line', async () => {
    const env = `HOME=${dir}/home ATTNC_HOME=/proc/x ATTNC_REPL_NO_WARMUP=1`;
    tmux.start(S, `cd ${root} && env ${env} node ${bundle} repl`);
    const text = await tmux.waitFor(S, (t) => /attnc> $/m.test(t), 'the prompt', ANSWER_MS);
    const notes = text.split('\n').filter((l) => l.startsWith('history: '));
    expect(notes).toEqual([
      'history: cannot write /proc/x: no such directory, or it cannot be created there (ENOENT); this session keeps no history',
    ]);
    // Entering a line used to make the directory then, and spin forever.
    await tmux.send(S, 'attention c() { mask causal }', /defined c \(current\)/, ANSWER_MS);
  });

  it(':mask 100000 100000 is sampled, bounded, and says so', async () => {
    const out = await tmux.send(S, ':mask 100000 100000', /ms\n/, ANSWER_MS);
    expect(out).toMatch(/density 50\.0% \(estimated: \d tokens sampled per cell and axis\)/);
    expect(out).toMatch(/tiles 64×24: 6513021 in all, classified in boxes of \d+×\d+ tiles/);
  });

  it('Ctrl-D leaves', async () => {
    await tmux.waitFor(S, () => tmux.atPrompt(S), 'the prompt', ANSWER_MS);
    tmux.keys(S, 'C-d');
    await tmux.waitFor(S, () => tmux.dead(S), 'the REPL to exit', ANSWER_MS).catch(() => undefined);
    expect(tmux.dead(S)).toBe(true);
  });
});
