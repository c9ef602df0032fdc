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
import { checkSource } from '../../src/compile.js';

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

/** Whether any declaration of the file reads a paged cache (`cache paged N`: CUDA only for now). */
const isPaged = (file: string): boolean =>
  checkSource(readStdlib(file), stdlibPath(file)).program.decls.some((d) => (d.cache?.length ?? 0) > 0);

/** Kernels over paged K/V caches (`cache paged N`), which compile for CUDA's cp.async and SIMT engines. */
export const pagedStdlib: readonly string[] = stdlibFiles().filter(isPaged);

/**
 * Mask/score-only kernels over packed caches: no route, select or emit (the whole stdlib before
 * routing moved in), no `cache paged`.
 */
export const staticStdlib: readonly string[] = stdlibFiles().filter(
  (f) => !routed.has(f) && !pagedStdlib.includes(f),
);

/** Kernels with data-dependent sparsity (block routing, chunk routing, token selection). */
export const routedStdlib: readonly string[] = stdlibFiles().filter((f) => routed.has(f));
