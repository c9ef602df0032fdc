#!/usr/bin/env node
// Bundles the `attnc` executable (package.json "bin") into dist/cli/: one ESM file per command
// group, split at the CLI's dynamic imports, so `attnc check` loads the frontend alone instead of
// ~800 ES modules (chevrotain's lodash-es among them) — startup from ~1 s to well under 150 ms
// (bench/host.mjs, "cli startup"). Optional and native packages stay external and are imported
// only by the commands that need them. Run by `npm run build` after tsc.
// Usage: node scripts/build-cli.mjs [--metafile FILE]
import { rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const outdir = 'dist/cli';
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { attnc: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // webgpu: native Dawn, optional; prettier: optional; pngjs and yocto-spinner: dependencies that
  // only viz and run load — resolved from node_modules at run time, like any dependency.
  external: ['webgpu', 'prettier', 'prettier/*', 'pngjs', 'yocto-spinner'],
  chunkNames: 'chunks/[name]-[hash]',
  // Whitespace and syntax only: an internal error's stack keeps readable function names.
  minifyWhitespace: true,
  minifySyntax: true,
  // The grammar is validated wherever else it loads (tests, the library): the executable skips
  // chevrotain's self-checks, a quarter of `attnc check`'s startup (src/dsl/grammar-checks.ts).
  define: { ATTNC_SKIP_GRAMMAR_CHECKS: 'true' },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const arg = process.argv.indexOf('--metafile');
if (arg > 0) writeFileSync(process.argv[arg + 1], JSON.stringify(result.metafile));
