// What the browser entry `attnc/wgsl` may pull into a bundle: an import-graph check on esbuild's
// metafile (sizes are benchmarks, bench/bundle-size.mjs). The whole entry must leave out the CUDA
// backend, the backward kernels, the WebGPU runtime and the float64 references, Node-only code
// and the optional peers; a bundle of `compile()` alone must also leave out what only other
// exports use (the TS module emitter, the runtime, the AST evaluator, the visualisations, the IR
// dump). A failure names the import chain.
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBrowserChevrotain } from './support.js';

beforeAll(ensureBrowserChevrotain);

/** Modules no bundle of `attnc/wgsl` may contain. */
const forbiddenInEntry: readonly RegExp[] = [
  /^src\/codegen\/cuda\//,
  /^src\/backward\.ts$/,
  /^src\/codegen\/[^/]+\/backward/,
  /^src\/cli\//,
  /^src\/runtime\/(webgpu|device|lavapipe|backward|stored-run|reference|kv-cache)/,
  /node_modules\/(webgpu|prettier|pngjs|yocto-spinner)\//,
  /^node:/,
];

/** Modules a bundle of `compile()` from `attnc/wgsl` may not contain besides. */
const forbiddenInCompile: readonly RegExp[] = [
  ...forbiddenInEntry,
  /^src\/codegen\/emit-ts/,
  /^src\/runtime\//,
  /^src\/viz\//,
  /^src\/ir\/(dump|derive)/,
];

async function metafileOf(contents: string): Promise<Metafile> {
  const r = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts', sourcefile: '<entry>' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    external: ['node:*'],
    logLevel: 'silent',
  });
  return r.metafile;
}

/**
 * Each module that matches a pattern and puts code into the bundle (metafile.inputs also lists
 * what tree shaking dropped), with the import chain that brings it in from the entry.
 */
function forbiddenChains(meta: Metafile, patterns: readonly RegExp[]): string[] {
  const bundled = new Set(
    Object.values(meta.outputs).flatMap((o) =>
      Object.entries(o.inputs)
        .filter(([, x]) => x.bytesInOutput > 0)
        .map(([file]) => file),
    ),
  );
  const external = Object.values(meta.inputs).flatMap((x) =>
    x.imports.filter((i) => i.external).map((i) => i.path),
  );
  const from = new Map<string, string>();
  const queue = ['<entry>'];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (from.has(imp.path) || imp.path === '<entry>') continue;
      from.set(imp.path, file);
      queue.push(imp.path);
    }
  }
  const chain = (file: string): string => {
    const parent = from.get(file);
    return parent === undefined || parent === '<entry>' ? file : `${chain(parent)} → ${file}`;
  };
  return [...from.keys()]
    .filter((f) => bundled.has(f) || external.includes(f))
    .filter((f) => patterns.some((p) => p.test(f)))
    .map(chain);
}

describe('attnc/wgsl import graph', () => {
  it('the whole entry: no CUDA backend, backward kernels, GPU runtime, references, Node-only code or peers', async () => {
    const meta = await metafileOf("export * from './src/wgsl.ts';");
    expect(forbiddenChains(meta, forbiddenInEntry)).toEqual([]);
  });

  it('compile() alone: none of the above, nor the emitter, runtime, reference, viz or IR dump', async () => {
    const meta = await metafileOf("export { compile } from './src/wgsl.ts';");
    expect(Object.keys(meta.inputs).some((f) => f.startsWith('src/codegen/wgsl/'))).toBe(true);
    expect(forbiddenChains(meta, forbiddenInCompile)).toEqual([]);
  });

  it('the check sees through re-exports: attnc compile() reaches the CUDA backend, with its chain', async () => {
    const meta = await metafileOf("export { compile } from './src/index.ts';");
    const chains = forbiddenChains(meta, [/^src\/codegen\/cuda\/target\.ts$/]);
    expect(chains).toHaveLength(1);
    expect(chains[0]).toMatch(/^src\/index\.ts → .* → src\/codegen\/cuda\/target\.ts$/);
  });
});
