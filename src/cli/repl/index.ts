// `attnc repl [FILE]`: node:readline around a Session. Lines are handled strictly in order (a
// pasted block arrives as many 'line' events while :run may still be awaiting the GPU), history
// persists across sessions, and the WebGPU device is requested before the first prompt (tens of
// ms; capped) so the first :run does not pay for it and Dawn's start-up warnings on stderr land
// above the banner instead of in the middle of a typed line.
import { createInterface } from 'node:readline';
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
  if (!process.env.ATTNC_REPL_NO_WARMUP) {
    // A missing adapter is reported by :run when it asks again; here it is only a head start.
    const device = getDevice().catch(() => undefined);
    await Promise.race([device, new Promise((r) => setTimeout(r, WARMUP_MS).unref())]);
  }
  const input = o.input ?? process.stdin;
  const stream = o.output ?? process.stdout;
  const tty = stream.isTTY === true;
  const out: Output = {
    write: (text) => void stream.write(text),
    get columns() {
      return stream.columns || 80;
    },
    get rows() {
      return tty ? stream.rows : undefined;
    },
    color: tty && !process.env.NO_COLOR,
  };
  const session = new Session(out, dispatch);
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

  // Lines run strictly in order: while a command awaits (a :run), later lines queue behind it.
  let queue: Promise<void> | undefined;
  let closed = false;
  const prompt = (): void => {
    if (closed) return;
    rl.setPrompt(session.prompt());
    rl.prompt();
  };
  const done = (quit: boolean): void => (quit ? rl.close() : prompt());
  const fail = (e: unknown): void => {
    // Commands catch their own errors; this is the last line of defence for the session: a
    // user error (a limit hit) is one line, only a bug gets its stack trace.
    const message = userErrorMessage(e);
    session.print(
      message !== undefined ? `error: ${message}` : `internal error: ${(e as Error).stack ?? String(e)}`,
    );
    prompt();
  };
  const enqueue = (p: Promise<void>): void => {
    const mine: Promise<void> = p.finally(() => {
      if (queue === mine) queue = undefined;
    });
    queue = mine;
  };
  const handle = (line: string): void => {
    if (queue) return enqueue(queue.then(() => session.input(line)).then(done, fail));
    let r: boolean | Promise<boolean>;
    try {
      r = session.input(line);
    } catch (e) {
      return fail(e);
    }
    if (typeof r === 'boolean') done(r);
    else enqueue(r.then(done, fail));
  };

  if (o.file) handle(`:load ${o.file}`);
  else prompt();
  rl.on('line', (line) => {
    history.append(line);
    handle(line);
  });
  rl.on('SIGINT', () => {
    session.print(session.discardPending() ? '^C (input discarded)' : '^C (:quit or Ctrl-D to leave)');
    prompt();
  });
  return new Promise((resolve) => {
    rl.on('close', () => {
      closed = true;
      void (queue ?? Promise.resolve()).then(() => {
        stream.write('\n');
        resolve(0);
      });
    });
  });
}
