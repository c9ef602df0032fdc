// `--json` (docs/CLI.md): check, compile and run write exactly one JSON document on stdout, for
// success and failure alike, with the exit codes unchanged. In-process, with the GPU run stubbed
// (its real figures are exercised by the GPU tests of run-kernel); one spawned check proves that
// nothing else reaches the real stdout.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunReport } from '../../src/cli/run-kernel.js';

const report = vi.hoisted(() => ({ current: undefined as unknown }));
vi.mock('../../src/cli/run-kernel.js', () => ({ runKernel: async () => report.current }));

const { runCli } = await import('../../src/cli/cli.js');

type Doc = Record<string, unknown> & { diagnostics?: Record<string, unknown>[] };

async function json(argv: string[], flag = '--json'): Promise<{ code: number; doc: Doc; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await runCli([...argv, flag]);
    return { code, doc: JSON.parse(out) as Doc, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function typo(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'attnc-json-')), 'typo.attn');
  writeFileSync(file, 'attention w(window: int = 8) {\n  mask causal && q - k < windw\n}\n');
  return file;
}

const fakeReport = (err: number): RunReport => ({
  name: 'causal',
  out: { maxAbsError: err, relError: err, nanCount: 0 },
  lse: undefined,
  density: 0.5,
  tiles: { empty: 1, full: 1, partial: 1 },
  compileMs: 1,
  pipelineMs: 2,
  gpuMs: 3,
  referenceMs: 4,
  bytes: { q: 8, k: 8, v: 8, tensors: 0, out: 8, lse: 0, indices: 0, total: 32 },
  tolerance: 1e-5,
});

afterEach(() => {
  report.current = undefined;
});

describe('--json', () => {
  it('check: ok with the attention names; stderr stays empty', async () => {
    const r = await json(['check', 'stdlib/causal.attn']);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ schema: 1, command: 'check', ok: true, exitCode: 0 });
    expect(r.doc.attentions).toEqual(['causal']);
    expect(r.doc.diagnostics).toEqual([]);
    expect(r.err).toBe('');
  });

  it('check: diagnostics with file, line, column, length, severity, message; exit 1', async () => {
    const file = typo();
    const r = await json(['check', file]);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ command: 'check', ok: false, exitCode: 1 });
    expect(r.doc.diagnostics).toEqual([
      {
        file,
        line: 2,
        column: 26,
        length: 5,
        severity: 'error',
        message: 'unknown name `windw`',
        hint: 'did you mean `window`?',
      },
    ]);
    expect(r.err).toBe('');
  });

  it('check of several files: one document listing each file; exit 1 if any has errors', async () => {
    const file = typo();
    const r = await json(['check', 'stdlib/causal.attn', file]);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ command: 'check', ok: false, exitCode: 1 });
    const files = r.doc.files as { file: string; attentions: string[]; diagnostics: { message: string }[] }[];
    expect(files.map((f) => [f.file, f.attentions, f.diagnostics.map((d) => d.message)])).toEqual([
      ['stdlib/causal.attn', ['causal'], []],
      [file, [], ['unknown name `windw`']],
    ]);
    expect(r.err).toBe('');
  });

  it('compile --out: files written, kernel, schedule, entry points, bindings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-json-'));
    const r = await json(['compile', 'stdlib/softcap.attn', '--target', 'cuda', '--out', dir]);
    expect(r.code).toBe(0);
    expect(r.doc).toMatchObject({ command: 'compile', ok: true, target: 'cuda', kernel: 'softcap' });
    expect(r.doc.files).toEqual(
      expect.arrayContaining([join(dir, 'softcap.cu'), join(dir, 'softcap.h'), join(dir, 'softcap.json')]),
    );
    expect(r.doc.schedule).toMatchObject({ dtype: 'bf16', headDim: 64 });
    expect(r.doc.entryPoints).toEqual(
      expect.arrayContaining([expect.objectContaining({ role: 'attention' })]),
    );
    expect(r.doc.bindings).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'q', role: 'q' })]),
    );
    expect(r.doc).not.toHaveProperty('code');
  });

  it('compile without --out carries the code in the document; --dump-ir carries the IR', async () => {
    const r = await json(['compile', 'stdlib/causal.attn']);
    expect(r.doc.files).toEqual([]);
    expect(r.doc.code).toMatch(/@compute/);
    const ir = await json(['compile', 'stdlib/causal.attn', '--dump-ir=fuse']);
    expect(ir.doc).toMatchObject({ ok: true, kernel: 'causal', pass: 'fuse' });
    expect(ir.doc.ir).toEqual(expect.any(String));
  });

  it('compile errors: the program diagnostics, or the usage message; exit 1', async () => {
    const bad = await json(['compile', typo()]);
    expect(bad.code).toBe(1);
    expect(bad.doc).toMatchObject({ ok: false, exitCode: 1, error: { kind: 'diagnostics' } });
    expect(bad.doc.diagnostics?.[0]).toMatchObject({ line: 2, column: 26, length: 5, severity: 'error' });
    const usage = await json(['compile', 'stdlib/causal.attn', '--target', 'metal']);
    expect(usage.code).toBe(1);
    expect(usage.doc).toMatchObject({
      command: 'compile',
      ok: false,
      error: { kind: 'usage', message: '--target expects wgsl or cuda, got `metal`' },
    });
    expect(usage.err).toBe('');
  });

  it('run: comparison figures, timings and bytes; a disagreement is exit 3', async () => {
    report.current = fakeReport(0);
    const ok = await json(['run', 'stdlib/causal.attn', '--nk', '64']);
    expect(ok.code).toBe(0);
    expect(ok.doc).toMatchObject({
      command: 'run',
      ok: true,
      agrees: true,
      sizes: { B: 1, H: 4, Hkv: 4, Nq: 64, Nk: 64, D: 64 },
      dtype: 'f32',
      out: { relError: 0 },
      compileMs: 1,
      gpuMs: 3,
      referenceMs: 4,
      bytes: { total: 32 },
    });
    report.current = fakeReport(0.5);
    const bad = await json(['run', 'stdlib/causal.attn']);
    expect(bad.code).toBe(3);
    expect(bad.doc).toMatchObject({ ok: false, exitCode: 3, agrees: false });
  });

  it("docs/CLI.md's run document names every field a run can carry", async () => {
    // cacheBytesPerToken, cacheLayout and importance were written but not documented.
    report.current = {
      ...fakeReport(0),
      importance: { maxAbsError: 0, relError: 0, nanCount: 0 },
      cacheBytesPerToken: { k: 190, v: 188, total: 378, plain: 512 },
      cacheLayout: '8 HND pages [Hkv, 16, D] in a shuffled block table [1, 7]',
    };
    const { doc } = await json(['run', 'stdlib/causal.attn']);
    const docs = readFileSync('docs/CLI.md', 'utf8');
    const run = docs.slice(docs.indexOf('### `run`'), docs.indexOf('### `doctor`'));
    const listed = /`\{ …head, ([^}]*)\}`/
      .exec(run)![1]!
      .split(',')
      .map((f) => f.trim().replace('?', ''));
    const head = ['schema', 'command', 'ok', 'exitCode'];
    expect(Object.keys(doc).filter((k) => !head.includes(k) && !listed.includes(k))).toEqual([]);
    for (const field of ['importance', 'cacheBytesPerToken', 'cacheLayout'])
      expect(run).toContain(`- \`${field}\``);
  });

  it('no command, or a value on --json: still one document, exit 1', async () => {
    // `attnc --json` printed the usage text; `check F --json=1` printed parseArgs' refusal on
    // stderr and nothing on stdout (JSON.parse throws on both).
    const bare = await json([]);
    expect(bare.code).toBe(1);
    expect(bare.doc).toMatchObject({ command: '', ok: false, error: { kind: 'usage' } });
    expect((bare.doc.error as { message: string }).message).toMatch(/^missing command \(commands: check, /);
    const valued = await json(['check', 'stdlib/causal.attn'], '--json=1');
    expect(valued.code).toBe(1);
    expect(valued.doc).toMatchObject({
      command: 'check',
      error: { kind: 'usage', message: '--json takes no value, got `--json=1`' },
    });
    expect(valued.err).toBe('');
  });

  it("a call's usage error: the message is one line, the command's usage a field of its own", async () => {
    // The usage text was appended to the message (`check: missing FILE\nusage: …\n`).
    const usage = 'usage: attnc check FILE... [--json]\n';
    for (const [argv, message] of [
      [['check'], 'check: missing FILE'],
      [['check', 'stdlib/causal.attn', '--nq', '5'], 'check does not take --nq'],
      [['check', 'stdlib/causal.attn', '--param', 'x=1'], 'check does not take --param'],
    ] as const) {
      const r = await json([...argv]);
      expect([r.code, r.doc.error, r.err]).toEqual([1, { kind: 'usage', message, usage }, '']);
    }
    // Errors that are not about the call's shape carry no usage.
    const missing = await json(['check', 'no-such.attn']);
    expect(missing.doc.error).toEqual({
      kind: 'usage',
      message: 'cannot read no-such.attn: no such file (ENOENT)',
    });
  });

  it('an internal error: a document of kind internal on stdout, the stack on stderr, exit 2', async () => {
    report.current = Promise.reject(new TypeError('boom'));
    const r = await json(['run', 'stdlib/causal.attn']);
    expect(r.code).toBe(2);
    expect(r.doc).toMatchObject({
      command: 'run',
      ok: false,
      error: { kind: 'internal', message: 'TypeError: boom' },
    });
    expect(r.err).toMatch(/internal error: TypeError: boom\n\s+at /);
  });

  it('the built CLI writes the document and nothing else to stdout', () => {
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'check', typo(), '--json'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect((JSON.parse(r.stdout) as Doc).ok).toBe(false);
    expect(r.stderr).toBe('');
  });
});

describe('--version and --help with --json: one document, not a line of text', () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const head = (command: string) => ({ schema: 1, command, ok: true, exitCode: 0 });

  it('attnc --version --json gives the version in a document, exit 0', async () => {
    const r = await json(['--version']);
    expect(r).toEqual({ code: 0, doc: { ...head(''), version }, err: '' });
  });

  it('COMMAND --help --json and --help --json give the usage text in a document', async () => {
    const check = await json(['check', '--help']);
    expect(check.code).toBe(0);
    expect(check.doc).toEqual({ ...head('check'), usage: 'usage: attnc check FILE... [--json]\n' });
    const all = await json(['--help']);
    expect(all.doc).toMatchObject(head(''));
    expect(all.doc['usage']).toMatch(/^usage:\n {2}attnc check FILE/);
  });
});
