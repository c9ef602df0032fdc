// Writing the CLI's and the REPL's output files. Every file-system failure becomes one line,
// `cannot write PATH: reason (CODE)`, never a stack trace; and directories are made one level at
// a time, because Node 20's `mkdirSync(p, { recursive: true })` loops forever on a pseudo file
// system (`/proc/x`: mkdir answers ENOENT although the parent exists, and it retries).
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { escapeControl } from '../diagnostics.js';

/** A file-system failure on a path the user named; the CLI prints its message and exits 1. */
export class OutputPathError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot write ${escapeControl(path)}: ${reason}`);
    this.name = 'OutputPathError';
  }
}

const reasons: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOENT: 'no such directory, or it cannot be created there',
  EEXIST: 'something that is not a directory is in the way',
  EINVAL: 'invalid path for this file system',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EBUSY: 'the file is busy',
  ETXTBSY: 'the file is busy',
  EMFILE: 'too many open files',
};

/** `e` as an OutputPathError when it is a file-system error (it has an errno code). */
export function pathError(path: string, e: unknown): OutputPathError | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return undefined;
  return new OutputPathError(path, `${reasons[code] ?? (e as Error).message} (${code})`);
}

function rethrow(path: string, e: unknown): never {
  throw pathError(path, e) ?? e;
}

type Kind = 'dir' | 'other' | 'missing';

function kindOf(path: string, shown: string): Kind {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return rethrow(shown, e);
  }
}

/** Deeper than this many missing levels is a mistake, not a plan (and bounds the walk). */
const MAX_NEW_LEVELS = 64;

/**
 * Makes directory `path` and any missing parents, one `mkdir` each (no recursive mkdir, see the
 * top); an existing directory is fine. Fails with OutputPathError naming `path`.
 */
export function ensureDirectory(path: string): void {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    const kind = kindOf(at, path);
    if (kind === 'dir') break;
    if (kind === 'other')
      throw new OutputPathError(
        path,
        at === resolve(path) ? 'it exists and is not a directory' : `${escapeControl(at)} is not a directory`,
      );
    missing.push(at);
    const up = dirname(at);
    if (up === at || missing.length > MAX_NEW_LEVELS)
      throw new OutputPathError(path, 'no existing parent directory');
    at = up;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && kindOf(dir, path) === 'dir') continue;
      rethrow(path, e);
    }
  }
}

/**
 * Makes the missing folders above output file `file` (viz's --out, as compile makes --out DIR).
 * A parent that exists, as a folder or not, is left to the write to report; failures name `file`.
 */
export function ensureParentDirectory(file: string): void {
  const parent = dirname(resolve(file));
  if (kindOf(parent, file) !== 'missing') return;
  try {
    ensureDirectory(parent);
  } catch (e) {
    throw e instanceof OutputPathError ? new OutputPathError(file, e.reason) : e;
  }
}

/**
 * writeFileSync with file-system errors as one-line OutputPathErrors. A FIFO or socket is refused:
 * opening one for writing waits for a reader, possibly forever.
 */
export function writeOutput(path: string, data: string | Uint8Array): void {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st && (st.isFIFO() || st.isSocket()))
      throw new OutputPathError(path, 'it is a FIFO or socket (writing would wait for a reader)');
    writeFileSync(path, data);
  } catch (e) {
    if (e instanceof OutputPathError) throw e;
    rethrow(path, e);
  }
}
