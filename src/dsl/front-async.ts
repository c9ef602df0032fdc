// The front end with its features loaded as a source needs them (attnc/wgsl/async's
// compileAsync). Apart from front-lazy.ts, which holds the import() calls: compile-core.ts
// imports this module, and a graph that reaches import() changes the bundle of `compile`.
import { hasErrors } from '../diagnostics.js';
import type { LazyTable } from '../lazy-table.js';
import { statementFeaturesOfCst, type FrontFeatures } from './front-features.js';
import { frontendOf, parseSource, type FrontendResult } from './front.js';

/** The front-end features of a page, loaded on demand (front-lazy.ts makes it). */
export type LazyFront = LazyTable<FrontFeatures>;

/**
 * frontend() with the features loaded as the source needs them: the statements its CST holds,
 * then, if it has mistakes and their wording is not loaded yet, the messages and a second run
 * (which words them as frontend() does; the first run's wording was left out).
 */
export async function frontendAsync(source: string, file: string, front: LazyFront): Promise<FrontendResult> {
  const parsed = parseSource(source, file, front.loaded);
  if (parsed.kind === 'parsed') await front.load(statementFeaturesOfCst(parsed.cst));
  const result = frontendOf(parsed, front.loaded);
  if (!hasErrors(result.diagnostics) || front.loaded.messages) return result;
  await front.load(['messages']);
  return frontendOf(parseSource(source, file, front.loaded), front.loaded);
}
