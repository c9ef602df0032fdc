// The code-split side of bench/bundle-size.mjs: bundles one export of an entry with code splitting
// (ESM, minified, platform browser) by three bundlers, esbuild (`splitting: true`), Rollup and
// Rolldown (what Vite up to 7 and Vite 8 build with; bench/bundle-split-rollup.mjs), and reports what a page
// downloads, each output file gzipped on its own as a server sends it: the entry chunk, the first
// load (the entry chunk and the chunks it imports statically, before any import()), per import()
// target (the attnc/wgsl/async features: src/codegen/wgsl/feature-*.ts, and src/dsl/front-*.ts as
// `front …`) its own chunk and what it adds to the first load (its chunk and the shared chunks it
// imports that the first load lacks), and what a page loads in all to compile a few kernels.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { rolldownSplit, rollupSplit } from './bundle-split-rollup.mjs';

const kb = (n) => Math.round((n / 1024) * 10) / 10;

/** An import() target: a WGSL feature (codegen/wgsl/feature-*.ts) or a front-end one (dsl/front-*.ts). */
const lazyEntry = /(?:feature|(front))-([a-z-]+)\.ts$/;

/**
 * The import() targets compileAsync loads for a kernel: a plain mask kernel (`attention causal() {
 * mask q >= k }`) with no options (the row engine) and with wgslEngine 'coop' (what a GPU's limits
 * pick), stdlib/biformer.attn (block routing) and stdlib/kivi.attn (a quantized K/V cache) on the
 * row engine. test/browser/compile-async.test.ts checks the mask kernels' and biformer's loads.
 */
export const kernelLoads = [
  { name: 'mask kernel, row engine', features: ['row-engine'] },
  { name: 'mask kernel, coop engine', features: ['coop-engine'] },
  { name: 'routed (biformer), row engine', features: ['row-engine', 'routing', 'front sparsity'] },
  { name: 'quantized K/V (kivi), row engine', features: ['row-engine', 'quantize', 'front storage'] },
];

/** The output files `from` reaches through static imports, `from` included. */
function staticClosure(statics, from) {
  const seen = new Set(from);
  for (const o of seen) for (const i of statics.get(o) ?? []) seen.add(i);
  return seen;
}

/** esbuild's split of `exportName` of `entry`, as the chunk graph summarizeSplit reads. */
async function esbuildSplit(entry, exportName, plugins) {
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
  const imports = (o) => outputs[o].imports.filter((i) => i.kind === 'import-statement').map((i) => i.path);
  return {
    files: new Map(r.outputFiles.map((f) => [key(f.path), f.text])),
    statics: new Map(Object.keys(outputs).map((o) => [o, imports(o)])),
    entryChunk: Object.keys(outputs).find((o) => outputs[o].entryPoint === '<stdin>'),
    dynamicEntries: Object.keys(outputs)
      .filter((o) => outputs[o].entryPoint && outputs[o].entryPoint !== '<stdin>')
      .map((o) => ({ chunk: o, source: outputs[o].entryPoint })),
    /** Minified bytes per source file in `chunks` (esbuild's metafile; Rollup has no such count). */
    minBytesOf: (chunks) => [...chunks].flatMap((o) => Object.entries(outputs[o].inputs)),
  };
}

/** What a page downloads from the chunk graph `g`; `partOf` names the part a source file is in. */
function summarizeSplit(bundler, entry, g, partOf) {
  const gzip = (set) => [...set].reduce((sum, o) => sum + gzipSync(g.files.get(o)).length, 0);
  const min = (set) => [...set].reduce((sum, o) => sum + g.files.get(o).length, 0);
  const first = staticClosure(g.statics, [g.entryChunk]);
  const features = new Map(
    g.dynamicEntries
      .filter((d) => lazyEntry.test(d.source))
      .map((d) => {
        const [, front, name] = d.source.match(lazyEntry);
        return [front ? `front ${name}` : name, d.chunk];
      }),
  );
  const lazy = [...features]
    .map(([feature, chunk]) => {
      const added = new Set([...staticClosure(g.statics, [chunk])].filter((x) => !first.has(x)));
      return { feature, chunkGzipKB: kb(gzip([chunk])), addsFiles: added.size, addsGzipKB: kb(gzip(added)) };
    })
    .sort((a, b) => a.feature.localeCompare(b.feature));
  const loads = kernelLoads.map(({ name, features: needs }) => {
    const all = staticClosure(g.statics, [g.entryChunk, ...needs.map((f) => features.get(f))]);
    return { name, features: needs, files: all.size, gzipKB: kb(gzip(all)) };
  });
  const minBytes = {};
  for (const [file, x] of g.minBytesOf?.(first) ?? [])
    minBytes[partOf(file)] = (minBytes[partOf(file)] ?? 0) + x.bytesInOutput;
  return {
    bundler,
    entry,
    entryChunk: { minKB: kb(min([g.entryChunk])), gzipKB: kb(gzip([g.entryChunk])) },
    firstLoad: {
      files: first.size,
      minKB: kb(min(first)),
      gzipKB: kb(gzip(first)),
      // One file's gzip of the same code: what splitting it into files costs.
      gzipOneFileKB: kb(gzipSync([...first].map((o) => g.files.get(o)).join('\n')).length),
      parts: Object.entries(minBytes)
        .filter(([, b]) => b > 0)
        .map(([part, b]) => ({ part, minKB: kb(b) }))
        .sort((a, b) => b.minKB - a.minKB),
    },
    lazy,
    kernels: loads,
  };
}

/**
 * `exportName` of `entry` code-split by esbuild, Rollup and Rolldown; `partOf` names the part a source
 * file is in (first-load minified bytes per part, esbuild only); `stub` (bundle-size's --stub:
 * `test(path)`, `source(path)`, `esbuild`: the same as an esbuild plugin) leaves modules out.
 */
export async function measureSplit(entry, exportName, partOf, stub) {
  const name = `${entry} ${exportName} (code-split)`;
  return [
    summarizeSplit(
      'esbuild',
      name,
      await esbuildSplit(entry, exportName, stub ? [stub.esbuild] : []),
      partOf,
    ),
    summarizeSplit('rollup', name, await rollupSplit(entry, exportName, stub), partOf),
    summarizeSplit('rolldown', name, await rolldownSplit(entry, exportName, stub), partOf),
  ];
}

export function printSplit(s) {
  const f = s.firstLoad;
  console.log(
    `${s.entry}, ${s.bundler}: entry chunk ${s.entryChunk.minKB} kB min, ${s.entryChunk.gzipKB} kB gzip`,
  );
  console.log(
    `  first load (entry + ${f.files - 1} static chunks): ${f.minKB} kB min, ${f.gzipKB} kB gzip (${f.gzipOneFileKB} kB as one file)`,
  );
  for (const p of f.parts) console.log(`    ${p.part.padEnd(28)} ${String(p.minKB).padStart(6)} kB min`);
  for (const l of s.lazy)
    console.log(
      `  import() ${l.feature.padEnd(20)} chunk ${String(l.chunkGzipKB).padStart(5)} kB gzip; adds ${l.addsFiles} files, ${l.addsGzipKB} kB gzip`,
    );
  for (const m of s.kernels)
    console.log(`  ${m.name} (${m.features.join(', ')}): ${m.files} files, ${m.gzipKB} kB gzip`);
}
