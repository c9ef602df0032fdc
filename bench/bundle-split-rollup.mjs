// The Rollup and Rolldown sides of bench/bundle-split.mjs: one export of an entry bundled as Vite's
// production build does, Rollup for Vite up to 7 and Rolldown for Vite 8, with the "browser" field
// on, so `chevrotain` is dist/browser/chevrotain.js as in esbuild's run. Rollup: our .ts sources
// through esbuild's transform (types stripped, nothing else) and each output chunk through
// esbuild's minifier (Vite 7's default minifier): the same input and minifier as esbuild's run,
// so the two differ only in how they split. Rolldown: its own TypeScript support and minifier
// (Oxc, Vite 8's default). Each returns the chunk graph summarizeSplit reads.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import nodeResolve from '@rollup/plugin-node-resolve';
import { transform } from 'esbuild';
import { rolldown } from 'rolldown';
import { rollup } from 'rollup';

const entryId = '\0split-entry';

/** Our .ts sources: imports name them `.js` (NodeNext), esbuild strips their types. */
const typescript = (stub) => ({
  name: 'attnc-ts',
  async resolveId(source, importer) {
    if (!importer || !/^\.\.?\//.test(source) || !source.endsWith('.js')) return null;
    const ts = await this.resolve(source.replace(/\.js$/, '.ts'), importer, { skipSelf: true });
    return ts && !ts.external ? ts : null;
  },
  async load(id) {
    if (!id.endsWith('.ts')) return null;
    if (stub?.test(id)) return stub.source(id);
    const r = await transform(readFileSync(id, 'utf8'), { loader: 'ts', format: 'esm', sourcefile: id });
    return r.code;
  },
});

/**
 * Minifies each chunk with esbuild's transform: leaner than @rollup/plugin-terser (no new
 * dependency; esbuild is already one) and the same minifier as esbuild's own run.
 */
const minify = {
  name: 'esbuild-minify',
  async renderChunk(code) {
    return (await transform(code, { minify: true, format: 'esm', target: 'es2022' })).code;
  },
};

/** The entry module: `exportName` re-exported from `entry`. */
const splitEntry = (entry, exportName) => ({
  name: 'split-entry',
  resolveId: (id) => (id === entryId ? id : null),
  load: (id) => (id === entryId ? `export { ${exportName} } from '${resolve(entry)}';` : null),
});

/**
 * The entry chunk may export more than the entry (what lazy chunks import from it), so the bundler
 * puts the shared code in it, as in an app whose entry calls compileAsync (Vite's app build keeps
 * no entry signature at all), instead of a facade that imports one shared chunk.
 */
const preserveEntrySignatures = 'allow-extension';

/**
 * `exportName` of `entry` split by Rollup: `stub` (optional: `test(id)`, `source(id)`) replaces
 * matching src/ modules as bundle-size's --stub does for esbuild.
 */
export async function rollupSplit(entry, exportName, stub) {
  const bundle = await rollup({
    input: entryId,
    plugins: [
      splitEntry(entry, exportName),
      typescript(stub),
      nodeResolve({ browser: true, extensions: ['.ts', '.js', '.mjs'] }),
    ],
    onwarn: (w, warn) => (w.code === 'CIRCULAR_DEPENDENCY' ? undefined : warn(w)),
    preserveEntrySignatures,
  });
  const { output } = await bundle.generate({ format: 'es', plugins: [minify] });
  await bundle.close();
  return chunkGraph(output);
}

/** The same split by Rolldown (`stub` as for rollupSplit). */
export async function rolldownSplit(entry, exportName, stub) {
  const bundle = await rolldown({
    input: entryId,
    platform: 'browser',
    // Our imports name .ts modules `.js` (NodeNext).
    resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
    plugins: [
      splitEntry(entry, exportName),
      { name: 'stubs', load: (id) => (stub?.test(id) ? stub.source(id) : null) },
    ],
    preserveEntrySignatures,
  });
  const { output } = await bundle.generate({ format: 'es', minify: true });
  await bundle.close();
  return chunkGraph(output);
}

/** A Rollup or Rolldown output as the chunk graph summarizeSplit reads. */
function chunkGraph(output) {
  const chunks = output.filter((o) => o.type === 'chunk');
  return {
    files: new Map(chunks.map((c) => [c.fileName, c.code])),
    statics: new Map(chunks.map((c) => [c.fileName, c.imports])),
    entryChunk: chunks.find((c) => c.isEntry).fileName,
    dynamicEntries: chunks
      .filter((c) => c.isDynamicEntry)
      .map((c) => ({ chunk: c.fileName, source: c.facadeModuleId })),
  };
}
