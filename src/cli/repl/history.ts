// REPL history across sessions: one line per entry in $ATTNC_HOME/history (default
// ~/.attnc/history), appended as lines are entered so a crashed session keeps its history.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const HISTORY_SIZE = 1000;

export function historyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.ATTNC_HOME || join(homedir(), '.attnc'), 'history');
}

/** Newest first, as readline wants it; the file is trimmed to HISTORY_SIZE lines. */
export function loadHistory(path: string): string[] {
  let lines: string[];
  try {
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

export class HistoryFile {
  private last: string | undefined;
  private failed = false;
  constructor(
    readonly path: string,
    private readonly warn: (msg: string) => void,
  ) {}

  append(line: string): void {
    if (!line.trim() || line === this.last || this.failed) return;
    this.last = line;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      appendFileSync(this.path, line + '\n');
    } catch (e) {
      this.failed = true;
      this.warn(`history: cannot write ${this.path} (${(e as Error).message}); not saving history`);
    }
  }
}
