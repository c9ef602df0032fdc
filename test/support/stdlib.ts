// The stdlib file lists the tests iterate over. stdlib/ is one flat folder: static kernels (mask
// and score only) sit next to the routing/selection ones (route, select, emit). Many tests were
// written for the static kernels only (goldens, the CUDA engines' nvcc sweeps, decode, viz), so
// they take `staticStdlib`; the routing tests take `routedStdlib`.
//
// The split is read off the compiler, not a name list: a file is routed iff one of its
// declarations compiles (WGSL, which takes every routing construct) to a kernel with a routing
// plan (`AttentionKernel.routing`). A new stdlib file lands in the right list by itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile } from '../../src/compile.js';

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

/** Whether any declaration of the file compiles to a kernel with a routing plan. */
function isRouted(file: string): boolean {
  const source = readStdlib(file);
  const path = stdlibPath(file);
  const first = compile(source, { target: 'wgsl', file: path });
  if (first.kernel.routing) return true;
  return first.program.decls
    .slice(1)
    .some((d) => compile(source, { target: 'wgsl', file: path, entry: d.name }).kernel.routing !== undefined);
}

const routed = new Set(stdlibFiles().filter(isRouted));

/** Mask/score-only kernels: no route, select or emit (the whole stdlib before routing moved in). */
export const staticStdlib: readonly string[] = stdlibFiles().filter((f) => !routed.has(f));

/** Kernels with data-dependent sparsity (block routing, chunk routing, token selection). */
export const routedStdlib: readonly string[] = stdlibFiles().filter((f) => routed.has(f));
