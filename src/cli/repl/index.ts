// `attnc repl [FILE]`: node:readline around a Session. Lines are handled strictly in order (a
// pasted block arrives as many 'line' events while :run may still be awaiting the GPU), history
// persists across sessions, and the WebGPU device is requested before the first prompt (tens of
// ms; capped) so the first :run does not pay for it and Dawn's start-up warnings on stderr land
// above the banner instead of in the middle of a typed line.
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import { getDevice } from '../../runtime/device.js';
import { userErrorMessage } from '../exit.js';
import { dispatch } from './commands.js';
import { complete } from './complete.js';
import { HISTORY_SIZE, HistoryFile, historyPath, loadHistory } from './history.js';
import { Session, type Output } from './session.js';

export interface ReplOptions {
  /** Loaded at start, like `:load FILE`. */
  readonly file?: string | undefined;
  readonly input?: NodeJS.ReadableStream;
  readonly output?: NodeJS.WriteStream;
}

/** How long start-up waits for the device before going on without it (it keeps starting). */
const WARMUP_MS = 3000;

export async function startRepl(o: ReplOptions = {}): Promise<number> {
  if (!process.env.ATTNC_REPL_NO_WARMUP) await warmUpDevice();
  const input = o.input ?? process.stdin;
  const stream = o.output ?? process.stdout;
  const tty = stream.isTTY === true;
  const session = new Session(replOutput(stream, tty), dispatch);
  const path = historyPath();
  const history = new HistoryFile(path, (msg) => session.print(msg));
  const rl = createInterface({
    input,
    output: stream,
    terminal: tty,
    history: loadHistory(path),
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => complete(session, line),
    prompt: session.prompt(),
  });
  session.print('attnc repl — :help for commands, :quit or Ctrl-D to leave');
  const lines = new LineRunner(session, rl);
  if (o.file) lines.handle(`:load ${o.file}`);
  else lines.prompt();
  rl.on('line', (line) => {
    history.append(line);
    lines.handle(line);
  });
  rl.on('SIGINT', () => {
    session.print(session.discardPending() ? '^C (input discarded)' : '^C (:quit or Ctrl-D to leave)');
    lines.prompt();
  });
  return new Promise((resolve) => {
    rl.on('close', () => {
      void lines.close().then(() => {
        stream.write('\n');
        resolve(0);
      });
    });
  });
}

/** Requests the device, waiting at most WARMUP_MS: a head start for the first :run, no more. */
async function warmUpDevice(): Promise<void> {
  // A missing adapter is reported by :run when it asks again; here it is only a head start.
  const device = getDevice().catch(() => undefined);
  await Promise.race([device, new Promise((r) => setTimeout(r, WARMUP_MS).unref())]);
}

/** The session's output: the stream, its size read live (a resized terminal), colour on a TTY. */
function replOutput(stream: NodeJS.WriteStream, tty: boolean): Output {
  return {
    write: (text) => void stream.write(text),
    get columns() {
      return stream.columns || 80;
    },
    get rows() {
      return tty ? stream.rows : undefined;
    },
    color: tty && !process.env.NO_COLOR,
  };
}

/** Runs lines strictly in order: while a command awaits (a :run), later lines queue behind it. */
class LineRunner {
  private queue: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly session: Session,
    private readonly rl: Interface,
  ) {}

  handle(line: string): void {
    if (this.queue)
      return this.enqueue(this.queue.then(() => this.session.input(line)).then(this.done, this.fail));
    let r: boolean | Promise<boolean>;
    try {
      r = this.session.input(line);
    } catch (e) {
      return this.fail(e);
    }
    if (typeof r === 'boolean') this.done(r);
    else this.enqueue(r.then(this.done, this.fail));
  }

  prompt(): void {
    if (this.closed) return;
    this.rl.setPrompt(this.session.prompt());
    this.rl.prompt();
  }

  /** After readline closes: no more prompts; resolves once the queued lines have run. */
  close(): Promise<void> {
    this.closed = true;
    return this.queue ?? Promise.resolve();
  }

  private readonly done = (quit: boolean): void => (quit ? this.rl.close() : this.prompt());

  private readonly fail = (e: unknown): void => {
    // Commands catch their own errors; this is the last line of defence for the session: a
    // user error (a limit hit) is one line, only a bug gets its stack trace.
    const message = userErrorMessage(e);
    this.session.print(
      message !== undefined ? `error: ${message}` : `internal error: ${(e as Error).stack ?? String(e)}`,
    );
    this.prompt();
  };

  private enqueue(p: Promise<void>): void {
    const mine: Promise<void> = p.finally(() => {
      if (this.queue === mine) this.queue = undefined;
    });
    this.queue = mine;
  }
}
