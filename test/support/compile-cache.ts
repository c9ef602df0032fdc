// A content-addressed cache of compiler runs (nvcc, g++, gcc) shared by every test file of one
// vitest run: CI compiles the same translation unit from several test files (and several tests of
// one file), and a repeated compile of identical input is pure cost. The run's global setup
// (compile-cache-setup.ts) makes a fresh directory per run and names it in ATTNC_COMPILE_CACHE,
// so nothing outlives the run; without that variable nothing is cached.
//
// The key covers everything that changes a compiler's output: the compiler (its resolved path
// and `--version`), every argument (input files by content, the output by role), the content of
// each header a source includes that resolves outside the system directories (followed
// recursively, resolved in the compiler's order: the includer's directory for "…", then -I
// directories), and the environment variables compilers read. System headers and libraries are
// covered by the compiler's identity: they cannot change within one run. A source whose includes
// cannot be followed statically (a macro include, __has_include) is not cached, nor is a run with
// flags that write other files, nor a failed run (failures are rerun, so their messages stay
// first-hand).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

export interface CompileResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What one compiler run reads and writes, as far as the cache needs to know. */
interface CompilePlan {
  readonly key: string;
  readonly output: string;
  /** Paths that may appear in the compiler's messages, replaced by placeholders when stored. */
  readonly paths: readonly string[];
}

const COMPILERS = new Set(['nvcc', 'g++', 'gcc', 'c++', 'cc', 'clang', 'clang++']);
/** Flags that make a compiler write files besides `-o`, or run something: never cached. */
const UNCACHEABLE_FLAG =
  /^(-M|-save-temps|-keep|--keep|-odir|--output-directory|-dryrun|--dryrun|-run$|--run$)/;
const ENV_READ_BY_COMPILERS = [
  'NVCC_APPEND_FLAGS',
  'NVCC_PREPEND_FLAGS',
  'CPATH',
  'C_INCLUDE_PATH',
  'CPLUS_INCLUDE_PATH',
  'LIBRARY_PATH',
  'CUDA_HOME',
  'GCC_EXEC_PREFIX',
  'COMPILER_PATH',
] as const;
const SYSTEM_PREFIXES = ['/usr/', '/opt/', '/lib/', '/lib64/'];

export function isCompiler(cmd: string): boolean {
  return COMPILERS.has(basename(cmd));
}

export function cacheDir(): string | undefined {
  return process.env.ATTNC_COMPILE_CACHE || undefined;
}

const identities = new Map<string, string>();

/** The compiler's resolved path and version banner (once per process and compiler). */
function compilerIdentity(cmd: string): string {
  let id = identities.get(cmd);
  if (id === undefined) {
    const path = execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' }).trim();
    id = `${path}\n${execFileSync(cmd, ['--version'], { encoding: 'utf8' })}`;
    identities.set(cmd, id);
  }
  return id;
}

const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();
const isSystemPath = (p: string): boolean => SYSTEM_PREFIXES.some((s) => p.startsWith(s));

/** -I directories in command-line order (both `-Idir` and `-I dir`). */
function includeDirs(args: readonly string[], cwd: string): string[] {
  const dirs: string[] = [];
  args.forEach((a, i) => {
    if (a === '-I' && args[i + 1] !== undefined) dirs.push(resolve(cwd, args[i + 1]!));
    else if (a.startsWith('-I') && a.length > 2) dirs.push(resolve(cwd, a.slice(2)));
  });
  return dirs;
}

const INCLUDE = /^\s*#\s*include\s*(?:"([^"]+)"|<([^>]+)>|(.*))/gm;
const SOURCE = /\.(cu|cuh|c|cc|cpp|cxx|h|hh|hpp|inc)$/;

/**
 * Adds to `graph` the content hash of `path` and, for a source, one line per include: what it
 * resolved to (a content hash outside the system directories, followed recursively; a system path;
 * or nothing found). Returns false when an include cannot be resolved statically.
 */
function describeFile(path: string, dirs: readonly string[], graph: Map<string, string>): boolean {
  if (graph.has(path)) return true;
  const bytes = readFileSync(path);
  const self = sha(bytes);
  graph.set(path, self);
  if (!SOURCE.test(path)) return true;
  const text = bytes.toString('utf8');
  if (text.includes('__has_include') || text.includes('#include_next')) return false;
  for (const [, quoted, angled, other] of text.matchAll(INCLUDE)) {
    if (other !== undefined && other.trim() !== '') return false; // #include MACRO
    const name = (quoted ?? angled)!;
    const searched = [...(quoted !== undefined ? [dirname(path)] : []), ...dirs];
    const found = isAbsolute(name)
      ? isFile(name)
        ? name
        : undefined
      : searched.map((d) => join(d, name)).find(isFile);
    let target = 'not found (a system header)';
    if (found !== undefined && isSystemPath(found)) target = `system ${found}`;
    else if (found !== undefined) {
      if (!describeFile(found, dirs, graph)) return false;
      target = graph.get(found)!;
    }
    graph.set(`${self} includes ${name}`, target);
  }
  return true;
}

/** The cache key and output of a compiler run, or undefined when it must not be cached. */
export function planCompile(cmd: string, args: readonly string[], cwd: string): CompilePlan | undefined {
  const out = args.indexOf('-o');
  if (out < 0 || args.lastIndexOf('-o') !== out || args[out + 1] === undefined) return undefined;
  if (args.some((a) => UNCACHEABLE_FLAG.test(a))) return undefined;
  const output = resolve(cwd, args[out + 1]!);
  const dirs = includeDirs(args, cwd);
  const graph = new Map<string, string>();
  const inputs: string[] = [];
  const normalized: string[] = [];
  for (const [i, a] of args.entries()) {
    const p = resolve(cwd, a);
    if (i === out + 1) normalized.push('<output>');
    else if (a.startsWith('-') || !isFile(p)) normalized.push(a);
    else {
      if (!describeFile(p, dirs, graph)) return undefined;
      normalized.push(`<input ${graph.get(p)}>`);
      inputs.push(p);
    }
  }
  // The include graph by content only: the same headers in another scratch directory match.
  const includes = [...graph.entries()]
    .filter(([k]) => k.includes(' includes '))
    .map((e) => e.join(' -> '))
    .sort();
  const env = ENV_READ_BY_COMPILERS.map((v) => `${v}=${process.env[v] ?? ''}`);
  const key = sha(JSON.stringify([compilerIdentity(cmd), normalized, includes, env]));
  const scratch = [output, ...inputs].map(dirname).filter((d) => d.startsWith(tmpdir()) && d !== tmpdir());
  const paths = [...new Set([output, ...inputs, ...scratch])].sort((a, b) => b.length - a.length);
  return { key, output, paths };
}

/** Compiler messages with the run's own paths made placeholders (and back). */
function withPlaceholders(text: string, paths: readonly string[]): string {
  return paths.reduce((t, p, i) => t.split(p).join(`\u0000${i}\u0000`), text);
}
function withPaths(text: string, paths: readonly string[]): string {
  return paths.reduce((t, p, i) => t.split(`\u0000${i}\u0000`).join(p), text);
}

interface Stored {
  readonly stdout: string;
  readonly stderr: string;
  readonly mode: number;
}

/** Writes `data` to `path` atomically (a temporary name, then rename), safe under parallel workers. */
function writeAtomic(path: string, write: (tmp: string) => void): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  write(tmp);
  renameSync(tmp, path);
}

/** Replays a stored run into `plan.output`; undefined on a miss. */
export function lookup(dir: string, plan: CompilePlan): CompileResult | undefined {
  const meta = join(dir, `${plan.key}.json`);
  if (!existsSync(meta)) return undefined;
  const stored = JSON.parse(readFileSync(meta, 'utf8')) as Stored;
  copyFileSync(join(dir, `${plan.key}.out`), plan.output);
  chmodSync(plan.output, stored.mode);
  return {
    code: 0,
    stdout: withPaths(stored.stdout, plan.paths),
    stderr: withPaths(stored.stderr, plan.paths),
  };
}

/** Stores a successful run (its output first, the metadata that marks it complete last). */
export function store(dir: string, plan: CompilePlan, r: CompileResult): void {
  if (r.code !== 0 || !isFile(plan.output)) return;
  const stored: Stored = {
    stdout: withPlaceholders(r.stdout, plan.paths),
    stderr: withPlaceholders(r.stderr, plan.paths),
    mode: statSync(plan.output).mode & 0o777,
  };
  writeAtomic(join(dir, `${plan.key}.out`), (tmp) => copyFileSync(plan.output, tmp));
  writeAtomic(join(dir, `${plan.key}.json`), (tmp) => writeFileSync(tmp, JSON.stringify(stored)));
}

/**
 * With ATTNC_COMPILE_LOG set, one JSON line per compiler run (how the cache's gain is counted): `ms`
 * is the compiler's own wall time (0 for a hit), not the wait in the test file's queue.
 */
export function logCompile(entry: {
  readonly cmd: string;
  readonly key: string | undefined;
  readonly hit: boolean;
  readonly ms: number;
  readonly file: string;
}): void {
  const log = process.env.ATTNC_COMPILE_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ ...entry, cmd: basename(entry.cmd) })}\n`);
}
