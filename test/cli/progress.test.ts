// Progress on stderr (src/cli/progress.ts): a spinner naming the phase for a person at a terminal,
// nothing at all for a pipe, a file, --json or CI. The TTY path is driven through a fake TTY
// stream; the pipe path through `attnc run` with the GPU work stubbed to report its phases.
import { clearLine, cursorTo, moveCursor } from 'node:readline';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunOptions, RunReport } from '../../src/cli/run-kernel.js';

const phases = vi.hoisted(() => ({ seen: [] as string[] }));
vi.mock('../../src/cli/run-kernel.js', () => ({
  runKernel: async (_source: string, o: RunOptions): Promise<RunReport> => {
    for (const p of ['device', 'compile', 'gpu', 'reference', 'compare'] as const) {
      phases.seen.push(p);
      o.onPhase?.(p);
    }
    const agreement = { maxAbsError: 0, relError: 0, nanCount: 0 };
    return {
      name: 'causal',
      out: agreement,
      lse: undefined,
      density: 1,
      tiles: { empty: 0, full: 1, partial: 0 },
      compileMs: 1,
      pipelineMs: 1,
      gpuMs: 1,
      referenceMs: 1,
      bytes: { q: 0, k: 0, v: 0, tensors: 0, out: 0, lse: 0, indices: 0, total: 0 },
      tolerance: 1e-5,
    };
  },
}));

const { startProgress, wantsProgress } = await import('../../src/cli/progress.js');
const { runCli } = await import('../../src/cli/cli.js');

/** A writable that says it is a terminal (tty.WriteStream's cursor methods too) and keeps what it was sent. */
function fakeTty(): Writable & { isTTY: true; columns: number; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, {
    isTTY: true as const,
    columns: 80,
    text: () => chunks.join(''),
    cursorTo: (x: number) => cursorTo(stream, x),
    moveCursor: (dx: number, dy: number) => moveCursor(stream, dx, dy),
    clearLine: (dir: -1 | 0 | 1) => clearLine(stream, dir),
  });
}

afterEach(() => {
  phases.seen = [];
});

describe('progress', () => {
  it('shows only for a terminal, without --json, outside CI, not on a dumb terminal', () => {
    const tty = fakeTty();
    const pipe = new Writable({ write: (_c, _e, done) => done() });
    expect(wantsProgress({ stream: tty, json: false, env: {} })).toBe(true);
    expect(wantsProgress({ stream: pipe, json: false, env: {} })).toBe(false);
    expect(wantsProgress({ stream: tty, json: true, env: {} })).toBe(false);
    expect(wantsProgress({ stream: tty, json: false, env: { CI: 'true' } })).toBe(false);
    expect(wantsProgress({ stream: tty, json: false, env: { TERM: 'dumb' } })).toBe(false);
  });

  it('on a terminal: each phase text is drawn, and the line is cleared at the end', async () => {
    const tty = fakeTty();
    const p = await startProgress({ stream: tty, json: false, env: {} });
    p.phase('computing the float64 reference on the CPU');
    p.done();
    const text = tty.text();
    expect(text).toContain('computing the float64 reference on the CPU');
    // Interactive: the cursor is hidden while spinning and shown again, the line erased.
    if (!('CI' in process.env)) {
      expect(text).toContain('\u001B[?25l');
      expect(text).toContain('\u001B[?25h');
      expect(text).toMatch(/\u001B\[[012]K/);
    }
  });

  it('not a terminal: the silent progress writes nothing', async () => {
    const pipe = Object.assign(new Writable({ write: (_c, _e, done) => done() }), { isTTY: false });
    const write = vi.spyOn(pipe, 'write');
    const p = await startProgress({ stream: pipe, json: false, env: {} });
    p.phase('compiling');
    p.done();
    expect(write).not.toHaveBeenCalled();
  });

  it('attnc run with stderr not a terminal: the phases pass, stderr gets nothing extra', async () => {
    expect(process.stderr.isTTY).not.toBe(true);
    let err = '';
    let out = '';
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    try {
      expect(await runCli(['run', 'stdlib/causal.attn'])).toBe(0);
    } finally {
      e.mockRestore();
      o.mockRestore();
    }
    expect(phases.seen).toEqual(['device', 'compile', 'gpu', 'reference', 'compare']);
    expect(err).toBe('');
    expect(out).toContain('causal: agrees with the reference');
  });
});
