// Browser bundle size of `compile()` per public entry (esbuild, minified, platform browser), and
// the largest contributors. `attnc/wgsl` (src/wgsl.ts) leaves the CUDA backend out.
//   node bench/bundle-size.mjs [--json FILE]
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const kb = (n) => Math.round((n / 1024) * 10) / 10;

async function measure(entry) {
  const r = await build({
    stdin: { contents: `export { compile } from './${entry}';`, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const bytes = r.outputFiles[0].contents;
  const parts = {};
  for (const out of Object.values(r.metafile.outputs))
    for (const [file, x] of Object.entries(out.inputs)) {
      const key = file.includes('node_modules/')
        ? file.split('node_modules/')[1].split('/')[0]
        : file.split('/').slice(0, 3).join('/');
      parts[key] = (parts[key] ?? 0) + x.bytesInOutput;
    }
  const top = Object.entries(parts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, v]) => ({ part: k, minKB: kb(v) }));
  return { entry, minKB: kb(bytes.length), gzipKB: kb(gzipSync(bytes).length), top };
}

const rows = [await measure('src/index.ts'), await measure('src/wgsl.ts')];
for (const r of rows)
  console.log(
    `${r.entry}: ${r.minKB} kB min, ${r.gzipKB} kB gzip (${r.top.map((t) => `${t.part} ${t.minKB}`).join(', ')})`,
  );
const at = process.argv.indexOf('--json');
if (at > 0)
  writeFileSync(
    process.argv[at + 1],
    JSON.stringify({ date: new Date().toISOString().slice(0, 10), rows }, null, 2) + '\n',
  );
