// The code-split side of bench/bundle-size.mjs: bundles one export of an entry with esbuild
// `splitting: true` (ESM, minified, platform browser) and reports what a page downloads, each
// output file gzipped on its own as a server sends it: the entry chunk, the first load (the entry
// chunk and the chunks it imports statically, before any import()), and per import() target (the
// attnc/wgsl/async features: src/codegen/wgsl/feature-*.ts, and src/dsl/front-*.ts as `front …`)
// its own chunk and what it adds to the first load (its chunk and the shared chunks it imports
// that the first load lacks).
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const kb = (n) => Math.round((n / 1024) * 10) / 10;

/** An import() target: a WGSL feature (codegen/wgsl/feature-*.ts) or a front-end one (dsl/front-*.ts). */
const lazyEntry = /(?:feature|(front))-([a-z-]+)\.ts$/;

/** The output files `from` reaches through static imports, `from` included. */
function staticClosure(outputs, from) {
  const seen = new Set(from);
  for (const o of seen)
    for (const i of outputs[o].imports) if (i.kind === 'import-statement') seen.add(i.path);
  return seen;
}

/**
 * `exportName` of `entry` in a code-split bundle; `partOf` names the part a source file is in
 * (first-load minified bytes per part); `plugins` as for esbuild (bundle-size's --stub).
 */
export async function measureSplit(entry, exportName, partOf, plugins = []) {
  const r = await build({
    stdin: {
      contents: `export { ${exportName} } from './${entry}';`,
      resolveDir: process.cwd(),
      loader: 'ts',
    },
    bundle: true,
    splitting: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    outdir: 'split-out',
    logLevel: 'silent',
    plugins,
  });
  const outputs = r.metafile.outputs;
  const key = (path) => Object.keys(outputs).find((k) => path.endsWith(k.replace(/^.*\//, '/')));
  const files = new Map(r.outputFiles.map((f) => [key(f.path), f.text]));
  const gzip = (set) => [...set].reduce((sum, o) => sum + gzipSync(files.get(o)).length, 0);
  const min = (set) => [...set].reduce((sum, o) => sum + files.get(o).length, 0);
  const entryChunk = Object.keys(outputs).find((o) => outputs[o].entryPoint === '<stdin>');
  const first = staticClosure(outputs, [entryChunk]);
  const minBytes = {};
  for (const o of first)
    for (const [file, x] of Object.entries(outputs[o].inputs))
      minBytes[partOf(file)] = (minBytes[partOf(file)] ?? 0) + x.bytesInOutput;
  const lazy = Object.keys(outputs)
    .filter((o) => lazyEntry.test(outputs[o].entryPoint ?? ''))
    .map((o) => {
      const added = new Set([...staticClosure(outputs, [o])].filter((x) => !first.has(x)));
      const [, front, name] = outputs[o].entryPoint.match(lazyEntry);
      const feature = front ? `front ${name}` : name;
      return { feature, chunkGzipKB: kb(gzip([o])), addsFiles: added.size, addsGzipKB: kb(gzip(added)) };
    })
    .sort((a, b) => a.feature.localeCompare(b.feature));
  return {
    entry: `${entry} ${exportName} (code-split)`,
    entryChunk: { minKB: kb(min([entryChunk])), gzipKB: kb(gzip([entryChunk])) },
    firstLoad: {
      files: first.size,
      minKB: kb(min(first)),
      gzipKB: kb(gzip(first)),
      // One file's gzip of the same code: what splitting it into files costs.
      gzipOneFileKB: kb(gzipSync([...first].map((o) => files.get(o)).join('\n')).length),
      parts: Object.entries(minBytes)
        .filter(([, b]) => b > 0)
        .map(([part, b]) => ({ part, minKB: kb(b) }))
        .sort((a, b) => b.minKB - a.minKB),
    },
    lazy,
  };
}

export function printSplit(s) {
  const f = s.firstLoad;
  console.log(`${s.entry}: entry chunk ${s.entryChunk.minKB} kB min, ${s.entryChunk.gzipKB} kB gzip`);
  console.log(
    `  first load (entry + ${f.files - 1} static chunks): ${f.minKB} kB min, ${f.gzipKB} kB gzip (${f.gzipOneFileKB} kB as one file)`,
  );
  for (const p of f.parts) console.log(`    ${p.part.padEnd(28)} ${String(p.minKB).padStart(6)} kB min`);
  for (const l of s.lazy)
    console.log(
      `  import() ${l.feature.padEnd(20)} chunk ${String(l.chunkGzipKB).padStart(5)} kB gzip; adds ${l.addsFiles} files, ${l.addsGzipKB} kB gzip`,
    );
}
