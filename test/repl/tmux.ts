// Driving a terminal program the way a person does: a detached tmux session on a private socket,
// keys sent with send-keys, the screen read back with capture-pane, and polling (never fixed
// sleeps) until the expected text appears.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class Tmux {
  private readonly conf: string;
  constructor(
    private readonly socket: string,
    dir: string,
  ) {
    // Scrollback for long outputs; keep a dead pane so a crash can still be read.
    this.conf = join(dir, 'tmux.conf');
    writeFileSync(this.conf, 'set -g history-limit 50000\nset -g remain-on-exit on\n');
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-u', '-L', this.socket, '-f', this.conf, ...args], { encoding: 'utf8' });
  }

  start(name: string, command: string, width = 120, height = 40): void {
    // Right after kill-server the old server may still be exiting on this socket, and the new
    // session dies with it ("server exited unexpectedly"): try again a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        this.tmux('new-session', '-d', '-x', String(width), '-y', String(height), '-s', name, command);
        return;
      } catch (e) {
        if (attempt >= 5 || !/server exited unexpectedly/.test(String(e))) throw e;
        execFileSync('sleep', ['0.2']);
      }
    }
  }

  /** Literal text, no Enter. */
  type(name: string, text: string): void {
    this.tmux('send-keys', '-t', name, '-l', text);
  }

  /** Named keys: Enter, Tab, Up, C-c, C-u … */
  keys(name: string, ...keys: string[]): void {
    this.tmux('send-keys', '-t', name, ...keys);
  }

  line(name: string, text: string): void {
    this.type(name, text);
    this.keys(name, 'Enter');
  }

  /** The whole scrollback and screen, wrapped lines joined; `escapes` keeps colours. */
  capture(name: string, escapes = false): string {
    return this.tmux('capture-pane', '-p', '-J', ...(escapes ? ['-e'] : []), '-S', '-', '-t', name);
  }

  /** The visible screen only. */
  screen(name: string): string {
    return this.tmux('capture-pane', '-p', '-t', name);
  }

  /** The cursor line shows `prompt` and nothing typed after it. */
  atPrompt(name: string, prompt = 'attnc>'): boolean {
    const last = this.screen(name).trimEnd().split('\n').at(-1) ?? '';
    return last.trim() === prompt;
  }

  dead(name: string): boolean {
    return this.tmux('display-message', '-p', '-t', name, '#{pane_dead}').trim() === '1';
  }

  async waitFor(
    name: string,
    ok: (capture: string) => boolean,
    what: string,
    timeoutMs = 15_000,
  ): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const dead = this.dead(name); // before reading, so a just-exited program's last output counts
      const text = this.capture(name);
      if (ok(text)) return text;
      if (Date.now() > until || dead)
        throw new Error(`timed out waiting for ${what}; the terminal shows:\n${text.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  /**
   * Types `input` (a line, or the lines of a block) at the prompt and waits until the echo of its
   * first line appears once more than before and the output after it matches `expect`; returns
   * that output.
   */
  async send(
    name: string,
    input: string | readonly string[],
    expect: RegExp,
    timeoutMs = 15_000,
  ): Promise<string> {
    const lines = typeof input === 'string' ? [input] : input;
    const echo = `attnc> ${lines[0]}`;
    const count = (t: string): number => t.split(echo).length - 1;
    const before = count(this.capture(name));
    // Line by line, each after its prompt, as a person types (typed-ahead lines echo before the
    // REPL prints the continuation prompt, which would scramble the transcript).
    for (const [i, l] of lines.entries()) {
      if (i > 0) await this.waitFor(name, () => this.atPrompt(name, '...>'), `the prompt before \`${l}\``);
      this.line(name, l);
    }
    const after = (t: string): string => t.slice(t.lastIndexOf(echo) + echo.length);
    const text = await this.waitFor(
      name,
      (t) => count(t) > before && expect.test(after(t)),
      `${expect} after \`${lines[0]}\``,
      timeoutMs,
    );
    return after(text);
  }

  kill(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // Already gone.
    }
  }
}
