// REPL history across sessions: one line per entry in $ATTNC_HOME/history (default
// ~/.attnc/history), appended as lines are entered so a crashed session keeps its history.
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureDirectory, OutputPathError, pathError } from '../out-path.js';

export const HISTORY_SIZE = 1000;

export function historyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.ATTNC_HOME || join(homedir(), '.attnc'), 'history');
}

/** Newest first, as readline wants it; the file is trimmed to HISTORY_SIZE lines. */
export function loadHistory(path: string): string[] {
  let lines: string[];
  try {
    // Only a regular file: reading a FIFO or a device named `history` would block or never end.
    if (!statSync(path).isFile()) return [];
    lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
  if (lines.length > HISTORY_SIZE) {
    lines = lines.slice(-HISTORY_SIZE);
    try {
      writeFileSync(path, lines.join('\n') + '\n');
    } catch {
      // A read-only history still works for this session.
    }
  }
  return lines.reverse();
}

/**
 * The history file of this session. Its directory is made once, at start (ensureDirectory: one
 * mkdir per level, so a pseudo file system such as /proc fails at once instead of looping); when
 * that or a later write fails the session says so in one line and goes on without history.
 */
export class HistoryFile {
  private last: string | undefined;
  private failed = false;
  constructor(
    readonly path: string,
    private readonly warn: (msg: string) => void,
  ) {
    try {
      ensureDirectory(dirname(path));
    } catch (e) {
      this.disable(e);
    }
  }

  /** False once history cannot be written: nothing more is tried this session. */
  get saving(): boolean {
    return !this.failed;
  }

  append(line: string): void {
    if (!line.trim() || line === this.last || this.failed) return;
    this.last = line;
    try {
      appendFileSync(this.path, line + '\n');
    } catch (e) {
      this.disable(e);
    }
  }

  private disable(e: unknown): void {
    this.failed = true;
    const why =
      e instanceof OutputPathError
        ? e.message
        : (pathError(this.path, e)?.message ?? `cannot write ${this.path}: ${(e as Error).message}`);
    this.warn(`history: ${why}; this session keeps no history`);
  }
}
