// Builds the browser example into examples/browser/build/: generates the kernel module with the
// CLI (`attnc compile stdlib/document.attn --emit ts`), bundles main.ts (which imports it, plus
// attnc's compiler, runtime and reference) with esbuild for the browser, and copies index.html.
//
//   npm run build && node examples/browser/build.mjs            # then serve examples/browser/build/
//   npm run build && node examples/browser/build.mjs --serve    # esbuild serves it on 127.0.0.1
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const usage = 'usage: node examples/browser/build.mjs [--serve]';
let serve = false;
try {
  // Strict: a misspelt --serve would otherwise build and exit without serving.
  serve = parseArgs({ options: { serve: { type: 'boolean' } } }).values.serve === true;
} catch (e) {
  console.error(`browser/build.mjs: ${e.message.split('\n')[0]} (${usage})`);
  process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(here, 'build');
const cli = join(root, 'dist/src/cli/main.js');
// package.json's "browser" field points chevrotain at dist/browser/chevrotain.js (scripts/build-browser.mjs).
for (const built of [cli, join(root, 'dist/browser/chevrotain.js')])
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`);

mkdirSync(join(out, 'generated'), { recursive: true });
// Head dim 32 and the portable default limits: the module runs on any WebGPU device.
execFileSync(
  process.execPath,
  [cli, 'compile', 'stdlib/document.attn', '--target', 'wgsl', '--emit', 'ts', '--dim', '32'].concat([
    '--out',
    join(out, 'generated'),
  ]),
  { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
);
await esbuild.build({
  entryPoints: [join(here, 'main.ts')],
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  outfile: join(out, 'main.js'),
  sourcemap: true,
  logLevel: 'warning',
});
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
console.log(`built ${out}`);

if (serve) {
  const ctx = await esbuild.context({});
  const { hosts, port } = await ctx.serve({ servedir: out, host: '127.0.0.1' });
  console.log(`serving on http://${hosts[0]}:${port}/ (WebGPU needs a secure context: 127.0.0.1 is one)`);
}
