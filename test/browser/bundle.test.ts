// `import { compile } from 'attnc'` works in a browser bundle: esbuild bundles the public entry
// points for platform 'browser' (where an unresolved Node builtin is a build error), nothing is
// left external, no Node module is required, and the compiler bundle runs in a bare JS context
// (no require, process or Buffer) and compiles a kernel there.
import { builtinModules } from 'node:module';
import vm from 'node:vm';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';

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
  for (const entry of ['src/index.ts', 'src/wgsl.ts', 'src/runtime/index.ts', 'src/codegen/emit-ts.ts']) {
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
