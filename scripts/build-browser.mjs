#!/usr/bin/env node
// Builds dist/browser/chevrotain.js: chevrotain bundled with its lodash-es replaced by
// src/vendor/lodash-es-lite.ts. package.json's "browser" field maps our `chevrotain` imports to it,
// so a browser bundler (esbuild, webpack, vite) takes chevrotain from there: lodash-es brings ~230
// modules for the 38 functions chevrotain calls, 10 kB of the 113 kB gzip that a browser bundle of
// `compile()` from `attnc/wgsl` was (bench/bundle-size.mjs). Only chevrotain is prebuilt: our own
// modules stay separate files, so the consumer's bundler still drops whole modules it does not
// need (package.json "sideEffects": false), which a prebuilt bundle of our entries would prevent.
// Node (the library, the CLI, the tests) keeps the real chevrotain. Run by `npm run build`.
// Usage: node scripts/build-browser.mjs [--out FILE]
import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
/** Where package.json's "browser" field points `chevrotain`. */
export const browserChevrotain = resolve(root, 'dist/browser/chevrotain.js');

/** Resolves `lodash-es` (chevrotain's import of it) to the lite module. */
export const lodashLite = {
  name: 'lodash-es-lite',
  setup(b) {
    const lite = resolve(root, 'src/vendor/lodash-es-lite.ts');
    b.onResolve({ filter: /^lodash-es$/ }, () => ({ path: lite }));
  },
};

/** chevrotain's ESM entry in node_modules. */
const chevrotainPath = () => fileURLToPath(import.meta.resolve('chevrotain'));
/** chevrotain's package directory (its package.json and LICENSE.txt). */
const chevrotainDir = () => resolve(dirname(chevrotainPath()), '../..');

const version = () => JSON.parse(readFileSync(resolve(chevrotainDir(), 'package.json'), 'utf8')).version;

/**
 * Writes the browser chevrotain to `out` (through a temporary file and a rename, so that a
 * bundler reading it meanwhile never sees half a file). Whitespace and syntax are minified, names
 * kept: the consumer's bundler minifies further.
 */
export async function buildBrowserChevrotain(out = browserChevrotain) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build({
    // The package itself, by path: by name, our own "browser" field would map it to this file.
    stdin: { contents: `export * from ${JSON.stringify(chevrotainPath())};`, resolveDir: root, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    plugins: [lodashLite],
    minifyWhitespace: true,
    minifySyntax: true,
    // chevrotain is Apache-2.0: the file names it and its license travels alongside.
    banner: {
      js: `/*! chevrotain ${version()} (Apache-2.0, see chevrotain.LICENSE.txt), lodash-es replaced by attnc's src/vendor/lodash-es-lite.ts */`,
    },
    outfile: tmp,
    logLevel: 'warning',
  });
  renameSync(tmp, out);
  copyFileSync(resolve(chevrotainDir(), 'LICENSE.txt'), resolve(dirname(out), 'chevrotain.LICENSE.txt'));
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = process.argv.indexOf('--out');
  await buildBrowserChevrotain(arg > 0 ? resolve(process.argv[arg + 1]) : undefined);
}
