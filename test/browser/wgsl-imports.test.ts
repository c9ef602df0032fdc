// What the browser entry `attnc/wgsl` may pull into a bundle: an import-graph check on esbuild's
// metafile (sizes are benchmarks, bench/bundle-size.mjs). The whole entry must leave out the CUDA
// backend, the backward kernels, the WebGPU runtime and the float64 references, Node-only code
// and the optional peers; a bundle of `compile()` alone must also leave out what only other
// exports use (the TS module emitter, the runtime, the AST evaluator, the visualisations, the IR
// dump). The static graph of attnc/wgsl/async (src/wgsl-async.ts) must also leave out the code
// generators its compileAsync loads with import(), and a code-split bundle must put them in chunks
// the entry loads only through import(). A failure names the import chain.
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

/**
 * What compileAsync loads with import() and nothing else may import: the WGSL code generators
 * (src/codegen/wgsl/features-lazy.ts) and the front end's statements and messages (src/dsl/front-lazy.ts).
 */
const lazilyLoaded: readonly RegExp[] = [
  /^src\/codegen\/wgsl\/(feature-|routing|coop-route|decode|quantize|importance|dequant(-vec4|-run)?\.ts$)/,
  // The engines: a kernel renders with the one its schedule picks (and their shared row pieces).
  /^src\/codegen\/wgsl\/(attention(-row)?|coop(-tile|-loop|-select)?|entry-lines|salient-list)\.ts$/,
  /^src\/dsl\/(front-(sparsity|storage|operand-quant|messages)|(cst|check)-(sparsity|storage)|cst-pieces)\.ts$/,
  /^src\/dsl\/(cache|operand-quant|pv|qk)-stmt\.ts$/,
  /^src\/dsl\/(parser-messages|suggest)\.ts$/,
  /^src\/ir\/(lower-routing|routing-check|storage-support|int8qk-support)\.ts$/,
  /^src\/quant\/(format|elem)\.ts$/,
];

async function metafileOf(contents: string, splitting = false): Promise<Metafile> {
  const r = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts', sourcefile: '<entry>' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    external: ['node:*'],
    logLevel: 'silent',
    ...(splitting ? { splitting, outdir: 'split' } : {}),
  });
  return r.metafile;
}

/** The modules that put code into `outputs` (metafile.inputs also lists what tree shaking dropped). */
const modulesIn = (meta: Metafile, outputs: Iterable<string>): Set<string> =>
  new Set(
    [...outputs].flatMap((o) =>
      Object.entries(meta.outputs[o]!.inputs)
        .filter(([, x]) => x.bytesInOutput > 0)
        .map(([file]) => file),
    ),
  );

/** The entry's output and the chunks it imports statically (what a page loads before any import()). */
function staticChunks(meta: Metafile): Set<string> {
  const outputs = meta.outputs;
  const chunks = new Set([Object.keys(outputs).find((o) => outputs[o]!.entryPoint === '<entry>')!]);
  for (const o of chunks)
    for (const i of outputs[o]!.imports) if (i.kind === 'import-statement') chunks.add(i.path);
  return chunks;
}

/**
 * Each module that matches a pattern and puts code into the bundle (or into the `within` chunks),
 * with the import chain that brings it in from the entry (static imports only with `within`).
 */
function forbiddenChains(meta: Metafile, patterns: readonly RegExp[], within?: Set<string>): string[] {
  const bundled = modulesIn(meta, within ?? Object.keys(meta.outputs));
  const external = Object.values(meta.inputs).flatMap((x) =>
    x.imports.filter((i) => i.external).map((i) => i.path),
  );
  const from = new Map<string, string>();
  const queue = ['<entry>'];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (from.has(imp.path) || imp.path === '<entry>') continue;
      if (within && imp.kind === 'dynamic-import') continue;
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

describe('attnc/wgsl/async import graph', () => {
  it('code-split: the chunks a page loads first hold neither what compileAsync imports lazily nor the rest', async () => {
    const meta = await metafileOf("export { compileAsync } from './src/wgsl-async.ts';", true);
    const statics = staticChunks(meta);
    expect(forbiddenChains(meta, [...forbiddenInCompile, ...lazilyLoaded], statics)).toEqual([]);
    // The chunks behind import() hold them: the check sees them where they are.
    const rest = Object.keys(meta.outputs).filter((o) => !statics.has(o) && o.endsWith('.js'));
    const lazy = [...modulesIn(meta, rest)].filter((f) => lazilyLoaded.some((p) => p.test(f)));
    expect(lazy).toContain('src/codegen/wgsl/routing-topk.ts');
    expect(lazy).toContain('src/dsl/parser-messages.ts');
    expect(lazy).toContain('src/ir/lower-routing.ts');
    expect(lazy).toContain('src/quant/format.ts');
    expect(lazy).toContain('src/codegen/wgsl/attention.ts');
    expect(lazy).toContain('src/codegen/wgsl/coop.ts');
    expect(lazy.length).toBeGreaterThan(35);
  });
});
