// `import { compile } from 'attnc'` works in a browser bundle: esbuild bundles the public entry
// points for platform 'browser' (where an unresolved Node builtin is a build error), nothing is
// left external, no Node module is required, and the compiler bundle runs in a bare JS context
// (no require, process or Buffer) and compiles a kernel there. Browser bundles take chevrotain from
// dist/browser/chevrotain.js (package.json "browser"; lodash-es replaced by src/vendor/
// lodash-es-lite.ts), and compile the stdlib and its broken variants as Node's compile() does.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import vm from 'node:vm';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, CompileError, renderDiagnostics } from '../../src/wgsl.js';
import { browserChevrotain, ensureBrowserChevrotain } from './support.js';

beforeAll(ensureBrowserChevrotain);

async function bundle(entry: string, format: 'esm' | 'iife' = 'esm') {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format,
    ...(format === 'iife' ? { globalName: 'attnc' } : {}),
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { text: r.outputFiles[0]!.text, metafile: r.metafile, warnings: r.warnings };
}

const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

function nodeImports(metafile: Metafile): string[] {
  return Object.entries(metafile.inputs).flatMap(([file, input]) =>
    input.imports.filter((i) => i.external || builtins.has(i.path)).map((i) => `${file} → ${i.path}`),
  );
}

// A bare `require("fs")` (lodash's guarded `freeModule.require("util")` probe is not one).
const bareRequire = /(?<![.\w$])require\(\s*["'](?:node:)?[\w/]+["']\s*\)/;

describe('the compiler core bundles for browsers', () => {
  for (const entry of [
    'src/index.ts',
    'src/wgsl.ts',
    'src/wgsl-async.ts',
    'src/runtime/index.ts',
    'src/codegen/emit-ts.ts',
  ]) {
    it(`${entry}: no Node builtin, nothing external`, async () => {
      const { text, metafile } = await bundle(entry);
      expect(nodeImports(metafile)).toEqual([]);
      expect(text).not.toMatch(bareRequire);
      expect(text).not.toMatch(/from\s*["']node:|import\(\s*["']node:/);
    });
  }

  it('attnc/wgsl leaves the CUDA backend out of a bundle of compile()', async () => {
    const r = await build({
      stdin: {
        contents: "export { compile } from './src/wgsl.ts';",
        resolveDir: process.cwd(),
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.values(r.metafile.outputs).flatMap((o) => Object.keys(o.inputs));
    expect(inputs.some((f) => f.startsWith('src/codegen/wgsl/'))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('src/codegen/cuda/'))).toEqual([]);
  });

  it('takes chevrotain from the browser build, without lodash-es', async () => {
    const { metafile } = await bundle('src/wgsl.ts');
    const inputs = Object.keys(metafile.inputs);
    expect(inputs).toContain(browserChevrotain);
    expect(inputs.filter((f) => /node_modules\/(lodash-es|chevrotain|@chevrotain)\//.test(f))).toEqual([]);
  });

  it('compiles the stdlib and broken variants of it as Node does (artifacts, diagnostics)', async () => {
    const { text } = await bundle('src/wgsl.ts', 'iife');
    const ctx = vm.createContext({ console });
    vm.runInContext(`${text}\nglobalThis.attnc = attnc;`, ctx);
    const outcome = (lib: typeof import('../../src/wgsl.js'), source: string): string => {
      try {
        return JSON.stringify(lib.compile(source, { target: 'wgsl', file: 'f.attn' }).artifact);
      } catch (e) {
        if (!(e instanceof lib.CompileError)) throw e;
        return lib.renderDiagnostics(e.diagnostics, source);
      }
    };
    const inBrowser = vm.runInContext('attnc', ctx) as typeof import('../../src/wgsl.js');
    const inNode = { compile, CompileError, renderDiagnostics } as typeof import('../../src/wgsl.js');
    let cases = 0;
    let rejected = 0;
    for (const f of readdirSync('stdlib').filter((x) => x.endsWith('.attn'))) {
      const s = readFileSync(join('stdlib', f), 'utf8');
      // Every 97th character deleted, or `@)` put there: error recovery and messages.
      const variants = [s];
      for (let i = 0; i < s.length; i += 97)
        variants.push(s.slice(0, i) + s.slice(i + 1), s.slice(0, i) + '@)' + s.slice(i));
      for (const v of variants) {
        const expected = outcome(inNode, v);
        expect(outcome(inBrowser, v), `${f}: ${JSON.stringify(v.slice(0, 80))}`).toBe(expected);
        cases++;
        if (!expected.startsWith('{')) rejected++;
      }
    }
    expect(cases).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(50);
  });

  it('the compiler bundle runs without Node globals and compiles a kernel', async () => {
    const { text } = await bundle('src/index.ts', 'iife');
    const ctx = vm.createContext({ console });
    vm.runInContext(`${text}\nglobalThis.attnc = attnc;`, ctx);
    expect(vm.runInContext('typeof require + typeof process + typeof Buffer', ctx)).toBe(
      'undefinedundefinedundefined',
    );
    const code = vm.runInContext(
      `attnc.compile('attention w(window: int = 8) { mask causal && q - k < window }', { target: 'wgsl' }).artifact.code`,
      ctx,
    ) as string;
    expect(code).toContain('@compute');
  });
});
