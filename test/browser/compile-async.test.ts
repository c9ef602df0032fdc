// attnc/wgsl/async's compileAsync loads the engines, routing, quantize and importance code
// generators with import() (src/codegen/wgsl/features-lazy.ts), and the front end's routing, storage and qk/pv
// statements and its error messages (src/dsl/front-lazy.ts), and must give what `compile` gives:
// the same artifacts, warnings and errors (positions, messages, hints) on the stdlib and on broken
// variants of it, in-process and from a code-split browser bundle whose chunks Node loads for
// real. A loader that fails rejects naming its feature, and a kernel loads only what it uses.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWithAsync, type CompileOptions } from '../../src/compile-core.js';
import type { WgslFeature } from '../../src/codegen/wgsl/features.js';
import { chunkLoaders } from '../../src/codegen/wgsl/features-lazy.js';
import { lazyWgslTarget } from '../../src/codegen/wgsl/target-lazy.js';
import { frontend } from '../../src/dsl/index.js';
import type { FrontFeature } from '../../src/dsl/front-features.js';
import { frontChunkLoaders, lazyFront } from '../../src/dsl/front-lazy.js';
import * as wgsl from '../../src/wgsl.js';
import * as wgslAsync from '../../src/wgsl-async.js';
import { ensureBrowserChevrotain } from './support.js';

/** What the checks call: compileAsync and the classes and renderer of its own copy of the API. */
type Api = Pick<typeof wgslAsync, 'compileAsync' | 'CompileError' | 'renderDiagnostics'>;

const configs: readonly Omit<CompileOptions, 'entry'>[] = [
  { target: 'wgsl', dtype: 'f32' },
  { target: 'wgsl', dtype: 'f16', limits: { shaderF16: true } },
  { target: 'wgsl', dtype: 'f32', wgslEngine: 'coop' },
  { target: 'wgsl', dtype: 'f32', importance: 'sum' },
];

/** Every stdlib declaration under every config, and a few sources compile refuses. */
const cases: { name: string; source: string; options: CompileOptions }[] = [];
for (const f of readdirSync('stdlib').filter((x) => x.endsWith('.attn'))) {
  const source = readFileSync(join('stdlib', f), 'utf8');
  for (const { decl } of frontend(source, f).decls)
    for (const c of configs)
      cases.push({ name: `${f} ${decl.name}`, source, options: { ...c, entry: decl.name } });
}
/**
 * Broken variants of each stdlib file (first config only): a misspelt name at the end of the
 * last declaration (a checker error with a "did you mean"), and the file cut inside its last
 * statements (parse errors, in routing and storage statements too).
 */
for (const f of readdirSync('stdlib').filter((x) => x.endsWith('.attn'))) {
  const source = readFileSync(join('stdlib', f), 'utf8');
  const options: CompileOptions = { ...configs[0]!, file: f };
  const misspelt = source.replace(/}\s*$/, '  mask q >= kq\n}\n');
  cases.push({ name: `${f} misspelt`, source: misspelt, options });
  cases.push({ name: `${f} cut`, source: source.slice(0, Math.floor(source.length * 0.93)), options });
}
cases.push(
  { name: 'syntax error', source: 'attention a( { mask q >= }', options: { target: 'wgsl' } },
  { name: 'cuda target', source: 'attention a() { mask q >= k }', options: { target: 'cuda' } },
  // Every statement the front end loads on demand, with and without mistakes in it.
  ...[
    'attention s() {\n  qk int8 smooth k\n  pv e4m3 smooth v\n  mask q >= k\n}',
    'attention s() {\n  qk int4\n  pv e4m3 smooth q\n  mask q >= k\n}',
    'attention s() {\n  importance normalized\n  mask q >= k\n}',
    'attention s() {\n  importance average\n  mask q >= k\n}',
    'attention s() {\n  cache paged 16\n  mask q >= k\n}',
    'attention s() {\n  cache pagd 12\n  mask q >= k\n}',
  ].map((source, i) => ({ name: `statements ${i}`, source, options: { target: 'wgsl' as const } })),
);

/** An outcome as text: the artifact and warnings, or the rendered diagnostics. */
const outcome = (
  api: Pick<Api, 'CompileError' | 'renderDiagnostics'>,
  source: string,
  result: wgsl.Compiled | unknown,
): string => {
  if (result instanceof api.CompileError)
    return `error: ${api.renderDiagnostics(result.diagnostics, source)}`;
  if (result instanceof Error) return `${result.name}: ${result.message}`;
  const { artifact, warnings } = result as wgsl.Compiled;
  return JSON.stringify({ artifact, warnings });
};
const sync = (c: (typeof cases)[number]): string => {
  try {
    return outcome(wgsl, c.source, wgsl.compile(c.source, c.options));
  } catch (e) {
    return outcome(wgsl, c.source, e);
  }
};
const lazy = async (api: Api, c: (typeof cases)[number]): Promise<string> =>
  outcome(api, c.source, await api.compileAsync(c.source, c.options).catch((e: unknown) => e));

/** compileAsync of `api` gives what attnc/wgsl's compile gives, in Node, on every case. */
async function expectSameAsCompile(api: Api): Promise<void> {
  let compiled = 0;
  let refused = 0;
  for (const c of cases) {
    const expected = sync(c);
    expect(await lazy(api, c), c.name).toBe(expected);
    if (expected.startsWith('{')) compiled++;
    if (expected.startsWith('error: ')) refused++;
  }
  expect(compiled).toBeGreaterThan(60);
  expect(refused).toBeGreaterThan(2 * readdirSync('stdlib').length);
}

/** `loaders` that record each load in `asked`; the `failing` one rejects until the network is up. */
function recording<K extends string, L extends Readonly<Record<K, () => Promise<unknown>>>>(
  loaders: L,
  asked: K[],
  failing: K,
  network: { up: boolean },
): L {
  const load = (f: K) => (): Promise<unknown> => {
    asked.push(f);
    return f === failing && !network.up ? Promise.reject(new Error('network down')) : loaders[f]();
  };
  return Object.fromEntries((Object.keys(loaders) as K[]).map((f) => [f, load(f)])) as unknown as L;
}

describe('compileAsync', () => {
  it('gives what compile gives on the stdlib (artifacts, warnings, CompileErrors)', async () => {
    await expectSameAsCompile(wgslAsync);
  });

  it('rejects, never throws, on a wrong kind of argument', async () => {
    // A synchronous throw would escape this expect and fail the test as well.
    await expect(wgslAsync.compileAsync(42 as unknown as string, { target: 'wgsl' })).rejects.toThrow(
      TypeError,
    );
  });

  it('loads only what a kernel uses, names a feature that fails to load, loads it on a later call', async () => {
    const asked: WgslFeature[] = [];
    const network = { up: false };
    const loaders = recording(chunkLoaders, asked, 'routing', network);
    const backends = { wgsl: lazyWgslTarget(loaders) };
    const front = lazyFront();
    const mask = 'attention causal() { mask q >= k }';
    const compiled = await compileWithAsync(backends, front, mask, { target: 'wgsl' });
    expect(compiled.artifact.code).toBe(wgsl.compile(mask, { target: 'wgsl' }).artifact.code);
    // A plain mask kernel loads its engine, decode module included (bench/bundle-split.mjs maskKernelLoads).
    expect(asked).toEqual(['rowEngine']);
    // The coop engine is a chunk of its own: a page compiles for one engine.
    const coop = await compileWithAsync(backends, front, mask, { target: 'wgsl', wgslEngine: 'coop' });
    expect(coop.artifact.decode?.artifact.code).toBe(
      wgsl.compile(mask, { target: 'wgsl', wgslEngine: 'coop' }).artifact.decode?.artifact.code,
    );
    expect(asked).toEqual(['rowEngine', 'coopEngine']);
    const routed = readFileSync('stdlib/biformer.attn', 'utf8');
    await expect(compileWithAsync(backends, front, routed, { target: 'wgsl' })).rejects.toThrow(
      "could not load the WGSL routing/selection code generator (feature 'routing'): network down",
    );
    // A failed load is not remembered: the next call tries again, and loads each chunk once.
    network.up = true;
    const again = await compileWithAsync(backends, front, routed, { target: 'wgsl' });
    expect(again.artifact.code).toBe(wgsl.compile(routed, { target: 'wgsl' }).artifact.code);
    await compileWithAsync(backends, front, routed, { target: 'wgsl' });
    expect(asked).toEqual(['rowEngine', 'coopEngine', 'routing', 'routing']);
  });
});

describe('compileAsync: the front end', () => {
  it('loads the statements a source holds, its messages only for a mistake, and names one that fails', async () => {
    const asked: FrontFeature[] = [];
    const network = { up: false };
    const loaders = recording(frontChunkLoaders, asked, 'storage', network);
    const front = lazyFront(loaders);
    const backends = { wgsl: lazyWgslTarget() };
    await compileWithAsync(backends, front, 'attention causal() { mask q >= k }', { target: 'wgsl' });
    expect(asked).toEqual([]);
    await compileWithAsync(backends, front, readFileSync('stdlib/biformer.attn', 'utf8'), { target: 'wgsl' });
    expect(asked).toEqual(['sparsity']);
    const broken = 'attention a() {\n  mask q >= kq\n}';
    const error = await compileWithAsync(backends, front, broken, { target: 'wgsl' }).catch(
      (e: unknown) => e,
    );
    expect(asked).toEqual(['sparsity', 'messages']);
    expect(error).toBeInstanceOf(wgsl.CompileError);
    expect((error as InstanceType<typeof wgsl.CompileError>).diagnostics[0]).toMatchObject({
      message: 'unknown name `kq`',
      hint: 'did you mean `q`?',
      span: { line: 2, column: 13 },
    });
    const stored = readFileSync('stdlib/kivi.attn', 'utf8');
    await expect(compileWithAsync(backends, front, stored, { target: 'wgsl' })).rejects.toThrow(
      "could not load the front end's K/V storage statements (feature 'storage'): network down",
    );
    network.up = true;
    const again = await compileWithAsync(backends, front, stored, { target: 'wgsl' });
    expect(again.artifact.code).toBe(wgsl.compile(stored, { target: 'wgsl' }).artifact.code);
  });
});

describe('compileAsync from a code-split browser bundle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-split-'));
  beforeAll(ensureBrowserChevrotain);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads its chunks and gives what compile gives on the stdlib', async () => {
    await build({
      stdin: { contents: "export * from './src/wgsl-async.ts';", resolveDir: process.cwd(), loader: 'ts' },
      bundle: true,
      splitting: true,
      platform: 'browser',
      format: 'esm',
      outdir: dir,
      entryNames: 'entry',
      logLevel: 'silent',
    });
    expect(readdirSync(dir).filter((f) => f.startsWith('feature-'))).toHaveLength(5);
    expect(readdirSync(dir).filter((f) => f.startsWith('front-'))).toHaveLength(4);
    const bundled = (await import(pathToFileURL(join(dir, 'entry.js')).href)) as Api;
    await expectSameAsCompile(bundled);
  });
});
