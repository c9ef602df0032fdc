// The browser example in a real browser: build it (examples/browser/build.mjs: the CLI generates the
// module, esbuild bundles the page), serve it on 127.0.0.1, open it in Debian's chromium driven by
// playwright-core, and read the verdict the page writes. On CPU-only machines Chromium's
// SwiftShader adapter answers. A missing chromium FAILS (CI installs it in .ci/run), never skips.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const chromiumPath = '/usr/bin/chromium';
const buildDir = 'examples/browser/build';
const flags = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.map': 'application/json',
};

/** A static server for `dir` on 127.0.0.1 (a secure context, as WebGPU requires), random port. */
async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (path.includes('..') || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

interface Outcome {
  name: string;
  relError: number;
  lseRelError: number;
  ok: boolean;
}

describe('the browser example in Chromium (WebGPU on the page, checked against the reference)', () => {
  let server: Server | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  beforeAll(() => {
    expect(
      existsSync(chromiumPath),
      `Debian's chromium is missing at ${chromiumPath}: install it with ` +
        '`apt-get update && apt-get install -y chromium` (.ci/run does this on CI)',
    ).toBe(true);
    expect(existsSync('dist/src/cli/main.js'), 'run `npm run build` first (the example uses the CLI)').toBe(
      true,
    );
    const r = spawnSync(process.execPath, ['examples/browser/build.mjs'], { encoding: 'utf8' });
    expect(r.status, `examples/browser/build.mjs failed:\n${r.stdout}${r.stderr}`).toBe(0);
  });

  afterAll(async () => {
    await context?.close();
    server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('main.ts type-checks (strict) against the generated module and @webgpu/types', () => {
    const program = ts.createProgram(['examples/browser/main.ts'], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      // 'node' for src/runtime/device.ts's guarded `process` check (the bundle never reaches it).
      types: ['@webgpu/types', 'node'],
      strict: true,
      noUncheckedIndexedAccess: true,
      noUnusedLocals: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const diags = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diags).toEqual([]);
  });

  it('the page runs both kernels on navigator.gpu and they match the reference', async () => {
    const served = await serve(buildDir);
    server = served.server;
    profile = mkdtempSync(join(tmpdir(), 'attnc-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: flags,
      viewport: { width: 1000, height: 760 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`page error: ${e.message}`));
    await page.goto(served.url);
    const result = page.locator('#result:not([data-status="running"])');
    await result.waitFor({ timeout: 90_000 });
    const status = await result.getAttribute('data-status');
    const text = await result.textContent();
    const shots = mkdtempSync(join(tmpdir(), 'attnc-shot-'));
    await page.screenshot({ path: join(shots, 'browser-example.png'), fullPage: true });
    console.log(`browser example: screenshot ${join(shots, 'browser-example.png')}\n${text}`);
    expect(status, `${text}\n${logs.join('\n')}`).toBe('pass');
    const outcomes = JSON.parse((await result.getAttribute('data-result')) ?? '[]') as Outcome[];
    expect(outcomes.map((o) => o.name)).toEqual(['document', 'strided_local']);
    for (const o of outcomes) {
      expect(o.ok, o.name).toBe(true);
      expect(o.relError, o.name).toBeLessThanOrEqual(1e-5);
      expect(o.lseRelError, o.name).toBeLessThanOrEqual(1e-5);
    }
    expect(text).toMatch(/adapter: .+/);
  });
});
