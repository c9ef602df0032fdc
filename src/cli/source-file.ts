// Reading a `.attn` file the user named (the CLI's FILE, the REPL's :load): only a regular file of
// a sane size, so `/dev/zero`, a FIFO or a directory is a one-line error instead of a hang or an
// out-of-memory crash.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeControl } from '../diagnostics.js';
import { packageRoot } from './package-root.js';

/** Larger sources are refused before reading (the 5 MB stress sources of issue 9 fit easily). */
export const MAX_SOURCE_BYTES = 64 * 1024 * 1024;

export class SourceFileError extends Error {
  override name = 'SourceFileError';
}

/** errno codes a user meets reading a file they named, in words. */
const readReasons: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EIO: 'input/output error',
};

/** `reason (CODE)` for a file-system error, as OutputPathError words its own. */
function readFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code !== 'string') return (e as Error).message;
  return `${readReasons[code] ?? (e as Error).message} (${code})`;
}

/**
 * The file's text: UTF-8, without the byte-order mark some editors write (it read as "unexpected
 * character U+FEFF" at 1:1). Bytes that are not UTF-8 (a binary file, Latin-1 text) are named
 * with their line instead of being lexed as U+FFFD characters.
 */
function decodeSource(bytes: Uint8Array, fail: (why: string) => never): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const lossy = new TextDecoder('utf-8').decode(bytes);
    const at = lossy.indexOf('\uFFFD');
    const line = lossy.slice(0, at).split('\n').length;
    return fail(`not UTF-8 text (the first invalid byte is on line ${line}); save it as UTF-8`);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function readSourceFile(path: string): string {
  const fail = (why: string): never => {
    throw new SourceFileError(`cannot read ${escapeControl(path)}: ${why}`);
  };
  try {
    const st = statSync(path);
    if (st.isDirectory()) fail('it is a directory');
    if (!st.isFile()) fail('not a regular file');
    if (st.size > MAX_SOURCE_BYTES) fail(`${st.size} bytes; sources are limited to ${MAX_SOURCE_BYTES}`);
    return decodeSource(readFileSync(path), fail);
  } catch (e) {
    if (e instanceof SourceFileError) throw e;
    return fail(readFailure(e) + stdlibHint(path, e));
  }
}

/**
 * README's commands name `stdlib/….attn` from the repository's root; with the package installed
 * that file is in node_modules. A missing `stdlib/NAME.attn` the package has is pointed there.
 */
function stdlibHint(path: string, e: unknown): string {
  const name = /^(?:\.\/)?stdlib\/([\w.-]+\.attn)$/.exec(path)?.[1];
  const root =
    name !== undefined && (e as NodeJS.ErrnoException).code === 'ENOENT' ? packageRoot() : undefined;
  if (root === undefined) return '';
  const packaged = fileURLToPath(new URL(`stdlib/${name}`, root.dir));
  if (!existsSync(packaged)) return '';
  // node_modules/attnc/stdlib/… from a project; an absolute path from anywhere else.
  const near = relative(process.cwd(), packaged);
  return `; attnc's stdlib has it: ${near.startsWith('..') ? packaged : near}`;
}
