// A progress line on stderr for work that can take seconds (`attnc run` at 64 K keys spends most
// of half a minute in the CPU reference): only for a person watching a terminal, so never with
// --json, in CI, or when stderr is a pipe or a file (what a script reads stays byte-identical).
// The spinner is yocto-spinner, loaded only when shown, so other commands never pay for it.
import type { Writable } from 'node:stream';

/** What a long command tells the user as it goes. */
export interface Progress {
  /** A new phase has started (replaces the previous text). */
  phase(text: string): void;
  /** Clears the line; the command's own output follows. */
  done(): void;
}

export const silentProgress: Progress = { phase: () => {}, done: () => {} };

export interface ProgressContext {
  readonly stream: Writable & { isTTY?: boolean };
  readonly json: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Whether to show progress at all (the spinner library has its own test; this one is ours). */
export function wantsProgress(c: ProgressContext): boolean {
  return c.stream.isTTY === true && !c.json && !('CI' in c.env) && c.env.TERM !== 'dumb';
}

/** A spinner on `stream` (stderr) when wantsProgress, else the silent one. */
export async function startProgress(c: ProgressContext): Promise<Progress> {
  if (!wantsProgress(c)) return silentProgress;
  const { default: yoctoSpinner } = await import('yocto-spinner');
  // The spinner hides the cursor; its own SIGINT/SIGTERM handlers show it again before exiting.
  const spinner = yoctoSpinner({ stream: c.stream }).start();
  return {
    phase: (text) => {
      spinner.text = text;
    },
    done: () => {
      spinner.stop();
    },
  };
}
