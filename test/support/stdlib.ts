// The stdlib file lists the tests iterate over. stdlib/ is one flat folder: static kernels (mask
// and score only) sit next to the routing/selection ones (route, select, emit). Many tests were
// written for the static kernels only (goldens, the CUDA engines' nvcc sweeps, decode, viz), so
// they take `staticStdlib`; the routing tests take `routedStdlib`.
//
// The split is read off the language, not a name list: a file is routed iff one of its
// declarations has a sparsity statement (`AttentionDecl.sparsity`: route, select or emit — what
// the compiler lowers to a routing plan). Only the front end runs (parse and check), so importing
// this module stays cheap. A new stdlib file lands in the right list by itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkSource, compile, type CompileOptions, type Compiled } from '../../src/compile.js';

export const STDLIB_DIR = 'stdlib';

/** Every `.attn` file name in stdlib/ (`causal.attn`, …), sorted. */
export function stdlibFiles(): string[] {
  return readdirSync(STDLIB_DIR)
    .filter((f) => f.endsWith('.attn'))
    .sort();
}

/** `stdlib/<file>`: the path a test compiles or hands to the CLI. */
export const stdlibPath = (file: string): string => join(STDLIB_DIR, file);

export const readStdlib = (file: string): string => readFileSync(stdlibPath(file), 'utf8');

/** Whether any declaration of the file has a `route`, `select` or `emit` statement. */
const isRouted = (file: string): boolean =>
  checkSource(readStdlib(file), stdlibPath(file)).program.decls.some((d) => (d.sparsity?.length ?? 0) > 0);

const routed = new Set(stdlibFiles().filter(isRouted));

/** Whether any declaration of the file reads a paged cache (`cache paged N`). */
const isPaged = (file: string): boolean =>
  checkSource(readStdlib(file), stdlibPath(file)).program.decls.some((d) => (d.cache?.length ?? 0) > 0);

/** Kernels over paged K/V caches (`cache paged N`): CUDA's cp.async and SIMT engines, WGSL's. */
export const pagedStdlib: readonly string[] = stdlibFiles().filter(isPaged);

/** Whether any declaration of the file has a `store` statement (a quantized K/V cache). */
const isStored = (file: string): boolean =>
  checkSource(readStdlib(file), stdlibPath(file)).program.decls.some((d) => (d.storage?.length ?? 0) > 0);

const stored = new Set(stdlibFiles().filter((f) => !routed.has(f) && isStored(f)));

/**
 * Mask/score-only kernels over plain K/V: no route, select or emit, no `store`, no `cache paged` (the whole stdlib
 * before routing and quantized caches moved in).
 */
export const staticStdlib: readonly string[] = stdlibFiles().filter(
  (f) => !routed.has(f) && !stored.has(f) && !pagedStdlib.includes(f),
);

/**
 * Kernels over quantized K/V caches (`store`): not every engine runs every format. A loop over
 * engines compiles them with `compileOffered`, which tells the engine's refusal apart.
 */
export const storedStdlib: readonly string[] = stdlibFiles().filter((f) => stored.has(f));

/** What compiling a stdlib file for one target/engine gives: the result, or why it is not offered. */
export type Offered =
  | { readonly kind: 'compiled'; readonly compiled: Compiled }
  | { readonly kind: 'not offered'; readonly why: string };

/**
 * A compile error that says the engine (or backend) does not run the file's K/V storage format
 * or what it asks beside it: the schedule does not offer that engine for it.
 */
export const STORAGE_REFUSAL = /K\/V storage formats|quantized K\/V caches/;

/** Compiles `file` with `opts`; a storage-format refusal is returned (any other error is thrown). */
export function compileOffered(file: string, opts: CompileOptions): Offered {
  try {
    const compiled = compile(readStdlib(file), { file: stdlibPath(file), ...opts });
    // A WGSL engine asked for but not chosen: the schedule falls back to the row engine.
    const chosen = compiled.artifact.schedule.wgslEngine ?? 'row';
    if (opts.wgslEngine !== undefined && chosen !== opts.wgslEngine)
      return { kind: 'not offered', why: `the WGSL ${opts.wgslEngine} engine: the schedule chose ${chosen}` };
    return { kind: 'compiled', compiled };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    if (STORAGE_REFUSAL.test(why)) return { kind: 'not offered', why };
    throw e;
  }
}

/** A test title for `file` under `what`: says when the engine is not offered for it and why. */
export function offeredTitle(file: string, what: string, o: Offered): string {
  return o.kind === 'compiled' ? `${file} (${what})` : `${file} (${what}): not offered — ${o.why}`;
}

/** Kernels with data-dependent sparsity (block routing, chunk routing, token selection). */
export const routedStdlib: readonly string[] = stdlibFiles().filter((f) => routed.has(f));
