// Browser bundle size of `compile()` per public entry (esbuild, minified, platform browser), split
// into parts: each part's minified bytes (esbuild's metafile) and what it costs in the gzip bundle
// (the gzip size of the bundle minus that of the bundle with the part's bytes cut out, attributed
// through the source map). `attnc/wgsl` (src/wgsl.ts) leaves the CUDA backend out.
//   node bench/bundle-size.mjs [--json FILE] [--chevrotain DIR] [--node-chevrotain] [--stub REGEX]
// Browser bundles take chevrotain from dist/browser/chevrotain.js (package.json "browser"; chevrotain
// with its lodash-es replaced by src/vendor/lodash-es-lite.ts), which this script builds first
// (scripts/build-browser.mjs). --node-chevrotain also measures each entry with chevrotain from
// node_modules instead (lodash-es and all: the bundle before the browser build; `withNodeChevrotain`).
// --chevrotain DIR also measures each entry with another chevrotain install in place of ours (the
// one DIR resolves, e.g. a newer major put into a scratch project: `npm i chevrotain@12` there);
// the JSON then holds both (`rows`, `withOtherChevrotain`). --stub REGEX asks what leaving code
// out would save: each src/ module whose path matches becomes a stub whose exports throw (so the
// bundle no longer works for what they did; the numbers are a what-if, not a build).
// attnc/wgsl/async's compileAsync is measured code-split besides, by esbuild and by Rollup
// (bench/bundle-split.mjs: the entry chunk, the first load, what each import() chunk adds, what a
// plain mask kernel loads in all; the JSON's `split`, one record per bundler).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildBrowserChevrotain } from '../scripts/build-browser.mjs';
import { measureSplit, printSplit } from './bundle-split.mjs';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    chevrotain: { type: 'string' },
    'node-chevrotain': { type: 'boolean' },
    stub: { type: 'string' },
  },
});
const kb = (n) => Math.round((n / 1024) * 10) / 10;

/** The part a source file of the bundle belongs to (first match). */
const partRules = [
  [/^dist\/browser\/chevrotain\.js$/, 'chevrotain (browser build)'],
  [/node_modules\/lodash-es\//, 'lodash-es'],
  [/node_modules\/(@chevrotain\/|chevrotain\/)/, 'chevrotain'],
  [/node_modules\//, 'other packages'],
  [/^src\/dsl\/|^src\/diagnostics\.ts$/, 'front end (src/dsl)'],
  [/^src\/codegen\/cuda\//, 'CUDA backend'],
  [/^src\/codegen\/wgsl\/(routing|coop-route)/, 'WGSL routing'],
  [/^src\/codegen\/wgsl\/(quantize|dequant)/, 'WGSL quantized K/V'],
  [/^src\/codegen\/wgsl\/decode/, 'WGSL decode'],
  [/^src\/codegen\/wgsl\/coop/, 'WGSL coop engine'],
  [/^src\/codegen\/wgsl\/importance/, 'WGSL importance'],
  [/^src\/codegen\/wgsl\//, 'WGSL core'],
  [/^src\//, 'IR, passes, compile'],
];
const partOf = (file) => {
  const f = file.replace(/^.*?\/(src\/|node_modules\/)/, (_, d) => (d === 'src/' ? d : 'node_modules/'));
  return partRules.find(([re]) => re.test(f))?.[1] ?? 'esbuild glue';
};

const B64 = Object.fromEntries(
  [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]),
);

/** Source-map v3 mappings → per generated line, [column, source index | -1] segments. */
function decodeMappings(mappings) {
  let source = 0;
  return mappings.split(';').map((line) => {
    let col = 0;
    return line
      .split(',')
      .filter(Boolean)
      .map((seg) => {
        const fields = [];
        let value = 0;
        let shift = 0;
        for (const c of seg) {
          const d = B64[c];
          value += (d & 31) << shift;
          if (d & 32) shift += 5;
          else {
            fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = shift = 0;
          }
        }
        col += fields[0];
        if (fields.length > 1) source += fields[1];
        return [col, fields.length > 1 ? source : -1];
      });
  });
}

/** The bundle with every character esbuild attributes to `part` removed. */
function without(lines, owners, part) {
  return lines
    .map((line, i) => {
      let out = '';
      let at = 0;
      for (const [start, end, owner] of owners[i] ?? []) {
        if (owner !== part) continue;
        out += line.slice(at, start);
        at = end;
      }
      return out + line.slice(at);
    })
    .join('\n');
}

/** Resolves `chevrotain` from `dir` (its own dependencies then resolve from there too). */
const otherChevrotain = (dir) => ({
  name: 'other-chevrotain',
  setup(b) {
    b.onResolve({ filter: /^chevrotain$/ }, (a) =>
      a.pluginData === 'other'
        ? undefined
        : b.resolve('chevrotain', { kind: a.kind, resolveDir: dir, pluginData: 'other' }),
    );
  },
});

/** Resolves `chevrotain` to the package in node_modules (not the browser build package.json names). */
const nodeChevrotain = {
  name: 'node-chevrotain',
  setup(b) {
    const path = fileURLToPath(import.meta.resolve('chevrotain'));
    b.onResolve({ filter: /^chevrotain$/ }, () => ({ path }));
  },
};

/** Replaces matching src/ modules by stubs: each exported function or constant throws. */
const stubs = (pattern) => {
  const source = (path) => {
    const exported = /^export (?:async )?(?:function\*?|const|let|class) (\w+)/gm;
    // A set: overload signatures export one name several times.
    const names = new Set([...readFileSync(path, 'utf8').matchAll(exported)].map((m) => m[1]));
    const stub = (n) => `export const ${n} = () => { throw new Error('stubbed by bundle-size --stub'); };`;
    return [...names].map(stub).join('\n');
  };
  const test = (path) => /\/src\/.*\.ts$/.test(path) && pattern.test(path);
  const esbuild = {
    name: 'stubs',
    setup(b) {
      b.onLoad({ filter: /\/src\/.*\.ts$/ }, (a) =>
        test(a.path) ? { contents: source(a.path), loader: 'ts' } : undefined,
      );
    },
  };
  return { test, source, esbuild };
};

async function measure(entry, chevrotainDir, withNodeChevrotain = false) {
  const r = await build({
    stdin: { contents: `export { compile } from './${entry}';`, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    sourcemap: 'external',
    outfile: 'bundle.js',
    logLevel: 'silent',
    plugins: [
      ...(chevrotainDir ? [otherChevrotain(chevrotainDir)] : []),
      ...(withNodeChevrotain ? [nodeChevrotain] : []),
      ...(args.stub ? [stubs(new RegExp(args.stub)).esbuild] : []),
    ],
  });
  const js = r.outputFiles
    .find((f) => f.path.endsWith('.js'))
    .text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '');
  const map = JSON.parse(r.outputFiles.find((f) => f.path.endsWith('.map')).text);
  const gzip = gzipSync(js).length;
  const lines = js.split('\n');
  const sourcePart = map.sources.map(partOf);
  const owners = decodeMappings(map.mappings).map((segs, i) =>
    segs.map(([col, src], k) => [
      col,
      segs[k + 1]?.[0] ?? lines[i]?.length ?? col,
      src < 0 ? 'esbuild glue' : sourcePart[src],
    ]),
  );
  const minBytes = {};
  for (const out of Object.values(r.metafile.outputs))
    for (const [file, x] of Object.entries(out.inputs))
      minBytes[partOf(file)] = (minBytes[partOf(file)] ?? 0) + x.bytesInOutput;
  const parts = Object.entries(minBytes)
    .filter(([, bytes]) => bytes > 0)
    .map(([part, bytes]) => ({
      part,
      minKB: kb(bytes),
      gzipKB: kb(gzip - gzipSync(without(lines, owners, part)).length),
    }))
    .sort((a, b) => b.gzipKB - a.gzipKB);
  return {
    entry,
    minKB: kb(js.length),
    gzipKB: kb(gzip),
    brotliKB: kb(brotliCompressSync(js).length),
    parts,
  };
}

await buildBrowserChevrotain();
const entries = ['src/index.ts', 'src/wgsl.ts'];
const rows = [];
for (const e of entries) rows.push(await measure(e));
const nodeRows = [];
if (args['node-chevrotain']) for (const e of entries) nodeRows.push(await measure(e, undefined, true));
const other = [];
if (args.chevrotain) for (const e of entries) other.push(await measure(e, args.chevrotain));
const version = (dir) =>
  JSON.parse(readFileSync(join(dir, 'node_modules/chevrotain/package.json'), 'utf8')).version;
const otherVersion = args.chevrotain ? `chevrotain ${version(args.chevrotain)}` : '';
const print = (r, note) => {
  console.log(`${r.entry}: ${r.minKB} kB min, ${r.gzipKB} kB gzip, ${r.brotliKB} kB brotli${note}`);
  for (const p of r.parts)
    console.log(
      `  ${p.part.padEnd(28)} ${String(p.minKB).padStart(6)} kB min ${String(p.gzipKB).padStart(6)} kB gzip`,
    );
};
for (const r of rows) print(r, '');
for (const r of nodeRows) print(r, ' (chevrotain from node_modules)');
for (const r of other) print(r, ` (${otherVersion})`);
const split = await measureSplit(
  'src/wgsl-async.ts',
  'compileAsync',
  partOf,
  args.stub ? stubs(new RegExp(args.stub)) : undefined,
);
for (const s of split) printSplit(s);
if (args.json) {
  const ours = { chevrotain: version('.'), ...(args.stub ? { stubbed: args.stub } : {}) };
  const withOther = args.chevrotain
    ? { withOtherChevrotain: { chevrotain: version(args.chevrotain), rows: other } }
    : {};
  const withNode = args['node-chevrotain'] ? { withNodeChevrotain: { rows: nodeRows } } : {};
  const date = new Date().toISOString().slice(0, 10);
  const doc = { date, ...ours, rows, split, ...withNode, ...withOther };
  writeFileSync(args.json, JSON.stringify(doc, null, 2) + '\n');
}
