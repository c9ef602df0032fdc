// The published package as a new user gets it: `npm pack`, installed into an empty project (no
// webgpu, no prettier: optional peers), type-checked by a strict consumer tsconfig that checks our
// .d.ts files too (skipLibCheck off), and run: both compiler entries, attnc/wgsl/async's
// compileAsync, the CLI bin, and a clear error naming `webgpu` when a kernel is run without it. A browser bundle of `attnc/wgsl` from the
// installed package takes the browser chevrotain (package.json "browser"), without lodash-es.
// The consumer type-checks with TypeScript 5 (ours), 6 and 7: those declare WebGPU in their DOM lib,
// which conflicts with @webgpu/types.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import vm from 'node:vm';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const repo = resolve('.');
const tsc = join(repo, 'node_modules/typescript/bin/tsc');
/**
 * TypeScript 6 and 7, installed into the consumer project with the package, not our
 * devDependencies: every typescript declares the `tsc` bin, and an `npm install` into an existing
 * checkout linked node_modules/.bin/tsc to the alias it added (typescript-6), so `npm run
 * typecheck` and the build would have changed compiler.
 */
const newerTypescripts = ['typescript-6@npm:typescript@6.0.3', 'typescript-7@npm:typescript@7.0.2'];
let project = '';
let files: string[] = [];
/** The tsc of `pkg`: ours for `typescript`, else the consumer's alias. */
const tscOf = (pkg: string): string =>
  pkg === 'typescript' ? tsc : join(project, 'node_modules', pkg, 'bin/tsc');

const sh = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });

const consumerTs = `
import { compile, CompileError, type Artifact } from 'attnc';
import { compile as compileWgsl } from 'attnc/wgsl';
import { compileAsync } from 'attnc/wgsl/async';
import { createKernel, getDevice, MissingDependencyError, type RunInputs } from 'attnc/runtime';

const source = 'attention w(window: int = 8) { mask causal && q - k < window }';
const cuda: Artifact = compile(source, { target: 'cuda' }).artifact;
const wgsl: Artifact = compileWgsl(source, { target: 'wgsl' }).artifact;
const lazy: Artifact = (await compileAsync(source, { target: 'wgsl' })).artifact;
let rejected = '';
try {
  compileWgsl(source, { target: 'cuda' });
} catch (e) {
  if (e instanceof CompileError) rejected = e.message.split('\\n')[0] ?? '';
}
let missing = '';
try {
  const device: GPUDevice = await getDevice();
  await createKernel(device, wgsl);
} catch (e) {
  if (e instanceof MissingDependencyError) missing = e.message;
}
const inputs: Partial<RunInputs> = { B: 1 };
console.log(JSON.stringify({ cuda: cuda.code.includes('extern "C"'), wgsl: wgsl.code.includes('@compute'), lazySame: lazy.code === wgsl.code, rejected, missing, B: inputs.B }));
`;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-pack-'));
  const out = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', dir], repo)) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = out[0]!.files.map((f) => f.path);
  project = join(dir, 'consumer');
  sh('mkdir', ['-p', project], dir);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  const tgz = join(dir, out[0]!.filename);
  sh(
    'npm',
    ['install', tgz, ...newerTypescripts, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'],
    project,
  );
  writeFileSync(join(project, 'main.ts'), consumerTs);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM'],
        types: [],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        outDir: 'out',
      },
      files: ['main.ts'],
    }),
  );
  writeFileSync(join(project, 'w.attn'), 'attention w(window: int = 8) { mask causal && q - k < window }\n');
}, 300_000);

describe('the npm package', () => {
  it('ships the compiled code, LICENSE and stdlib; no source maps, tests or benches', () => {
    expect(files).toContain('LICENSE');
    expect(files).toContain('dist/src/wgsl.js');
    expect(files).toContain('dist/src/wgsl.d.ts');
    expect(files).toContain('dist/src/wgsl-async.js');
    expect(files).toContain('dist/browser/chevrotain.js');
    expect(files).toContain('dist/browser/chevrotain.LICENSE.txt');
    expect(files.some((f) => f.startsWith('stdlib/'))).toBe(true);
    // The language and CLI references README links to: an installed package had neither.
    expect(files).toContain('docs/LANGUAGE.md');
    expect(files).toContain('docs/CLI.md');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => /^(dist\/)?(test|bench)\//.test(f))).toEqual([]);
  });

  it('installs without its optional peers (webgpu, prettier)', () => {
    const installed = readdirSync(join(project, 'node_modules'));
    expect(installed).toContain('attnc');
    expect(installed).not.toContain('webgpu');
    expect(installed).not.toContain('prettier');
  });

  it('type-checks a strict consumer, our .d.ts files included', () => {
    expect(() => sh(process.execPath, [tsc, '-p', '.'], project)).not.toThrow();
    expect(existsSync(join(project, 'out/main.js'))).toBe(true);
  });

  // attnc/runtime's WebGPU types: from @webgpu/types before TypeScript 6 (exports' `types@<6`:
  // types/runtime-ts5.d.ts), from the DOM lib from 6 on, where loading both fails (TS2300, TS6200).
  it.each([
    ['typescript', '5.', true],
    ['typescript-6', '6.', false],
    ['typescript-7', '7.', false],
  ])('type-checks the same consumer with %s (%sx)', (pkg, major, webgpuTypes) => {
    // --listFiles: every file read, one path a line, then any diagnostics.
    const r = spawnSync(process.execPath, [tscOf(pkg), '-p', '.', '--noEmit', '--listFiles'], {
      cwd: project,
      encoding: 'utf8',
    });
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect({ status: r.status, diagnostics: lines.filter((l) => !l.startsWith('/')) }).toEqual({
      status: 0,
      diagnostics: [],
    });
    expect(lines.some((l) => l.includes('/node_modules/@webgpu/types/'))).toBe(webgpuTypes);
    expect(sh(process.execPath, [tscOf(pkg), '--version'], project)).toContain(`Version ${major}`);
  });

  // TypeScript 5's `moduleResolution: node10` (what `module: commonjs` implies) reads no `exports`:
  // package.json's typesVersions maps the subpaths (TS2307 "could not be resolved under your current
  // 'moduleResolution' setting" before). TypeScript 6 deprecates node10 and 7 removed it.
  it('resolves attnc/wgsl and attnc/runtime types under TypeScript 5 node10 resolution', () => {
    writeFileSync(
      join(project, 'node10.ts'),
      [
        "import type { Artifact } from 'attnc';",
        "import type { compile as compileWgsl } from 'attnc/wgsl';",
        "import type { compileAsync } from 'attnc/wgsl/async';",
        "import type { RunInputs, createKernel } from 'attnc/runtime';",
        'export type Used = [Artifact, typeof compileWgsl, typeof compileAsync, RunInputs, typeof createKernel, GPUDevice];',
        '',
      ].join('\n'),
    );
    const options = { module: 'commonjs', moduleResolution: 'node10', lib: ['ES2023', 'DOM'], types: [] };
    writeFileSync(
      join(project, 'tsconfig.node10.json'),
      JSON.stringify({
        compilerOptions: { ...options, strict: true, noEmit: true, skipLibCheck: false },
        files: ['node10.ts'],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.node10.json'], {
      cwd: project,
      encoding: 'utf8',
    });
    expect({ status: r.status, out: r.stdout }).toEqual({ status: 0, out: '' });
  });

  it('runs: both entries compile (compileAsync as compile does), attnc/wgsl rejects cuda, a missing webgpu is named', () => {
    const r = JSON.parse(sh(process.execPath, ['out/main.js'], project)) as Record<string, unknown>;
    expect(r.cuda).toBe(true);
    expect(r.wgsl).toBe(true);
    expect(r.lazySame).toBe(true);
    expect(r.rejected).toMatch(/target `cuda` is not in this build.*import from 'attnc'/);
    expect(r.missing).toMatch(/optional package `webgpu`.*npm install webgpu/);
    expect(r.B).toBe(1);
  });

  it('bundles for browsers with the browser chevrotain (no lodash-es) and compiles there', async () => {
    const r = await build({
      stdin: { contents: "export { compile } from 'attnc/wgsl';", resolveDir: project, loader: 'js' },
      absWorkingDir: project,
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'attnc',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('node_modules/attnc/dist/browser/chevrotain.js');
    expect(inputs.filter((f) => /node_modules\/(lodash-es|chevrotain|@chevrotain)\//.test(f))).toEqual([]);
    const ctx = vm.createContext({});
    vm.runInContext(r.outputFiles[0]!.text, ctx);
    const code = vm.runInContext(
      "attnc.compile('attention w(window: int = 8) { mask causal && q - k < window }', { target: 'wgsl' }).artifact.code",
      ctx,
    ) as string;
    expect(code).toContain('@compute');
  });

  it('the bin is the bundled executable and runs from the installed package', () => {
    expect(files).toContain('dist/cli/attnc.js');
    const bin = join(project, 'node_modules/.bin/attnc');
    expect(sh(bin, ['check', 'w.attn'], project)).toBe('w.attn: ok (1 attention: w)\n');
    expect(sh(bin, ['--version'], project)).toMatch(/^attnc \d+\.\d+\.\d+\n$/);
    // Another command's lazily loaded chunk, and --json, work from the package too.
    const doc = JSON.parse(sh(bin, ['compile', 'w.attn', '--target', 'cuda', '--json'], project)) as {
      ok: boolean;
      kernel: string;
    };
    expect(doc).toMatchObject({ ok: true, kernel: 'w' });
  });

  it("README's `attnc check stdlib/….attn` in a project points at the package's stdlib", () => {
    // It said only "no such file": the stdlib is in node_modules, not in the user's project.
    const r = spawnSync(join(project, 'node_modules/.bin/attnc'), ['check', 'stdlib/document.attn'], {
      cwd: project,
      encoding: 'utf8',
    });
    expect([r.status, r.stderr]).toEqual([
      1,
      "attnc: cannot read stdlib/document.attn: no such file (ENOENT); attnc's stdlib has it: node_modules/attnc/stdlib/document.attn\n",
    ]);
  });
});
